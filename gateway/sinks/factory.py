"""Builds the InfluxDB sink the configuration asks for (api v1 or v2), with its spool under state_dir."""

from __future__ import annotations

from gateway.config import Config, InfluxApi, InfluxConfig
from gateway.sinks.batcher import Batcher
from gateway.sinks.influxdb import InfluxSetupError, InfluxV1Client, RetentionSetup
from gateway.sinks.reliable import LiveWriter, LiveWriterFactory, Outcomes, ReliableSink, Timing, Transport
from gateway.sinks.spool import SPOOL_DIR, SPOOL_MAX_BYTES, Spool


def open_spool(cfg: Config, max_bytes: int = SPOOL_MAX_BYTES) -> Spool:
    """The spool of this gateway: ``<state_dir>/spool``. Raises SpoolError when it cannot be used."""
    return Spool(cfg.state_dir / SPOOL_DIR, max_bytes)


def influx_transport(
    cfg: InfluxConfig, timing: Timing, retention: RetentionSetup = RetentionSetup.LEAVE
) -> tuple[Transport, LiveWriterFactory]:
    """The write API of ``cfg.api``, and how to build its live writer.

    ``retention``: whether set-up gives the database's default policy ``retention_days`` (v1 only; a
    v2 bucket's retention is the bucket's own setting).
    """
    if cfg.api == InfluxApi.V2:
        # influxdb-client (and reactivex, urllib3 2) take 0.1 s to import: only v2 users pay for them
        from gateway.sinks.influxdb_v2 import InfluxV2Client  # noqa: PLC0415

        v2 = InfluxV2Client(cfg, timing)
        return v2, v2.live_writer
    v1 = InfluxV1Client(cfg, retention)

    def batcher(outcomes: Outcomes, batch_size: int, flush_interval_s: float) -> LiveWriter:
        return Batcher(v1.send, outcomes, batch_size, flush_interval_s, timing, cfg.timeout_s)

    return v1, batcher


def open_influx_sink(
    cfg: Config,
    *,
    spool_max_bytes: int = SPOOL_MAX_BYTES,
    timing: Timing | None = None,
    retention: RetentionSetup = RetentionSetup.APPLY,
) -> ReliableSink:
    """A started sink: InfluxDB set up and checked, or unreachable and spooling.

    ``retention``: APPLY (the live gateway) gives the database's default retention policy
    ``influxdb.retention_days``; LEAVE (a replay of old captures, whose points a short policy would
    refuse) only creates what is missing.

    Raises InfluxSetupError (with what to do) when InfluxDB refuses us, SpoolError when the spool
    folder cannot be used.
    """
    timing = timing or Timing()
    spool = open_spool(cfg, spool_max_bytes)
    transport, live = influx_transport(cfg.influxdb, timing, retention)
    sink = ReliableSink(
        transport,
        live,
        spool,
        gateway_id=cfg.gateway_id,
        batch_size=cfg.influxdb.batch_size,
        flush_interval_s=cfg.influxdb.flush_interval_s,
        timing=timing,
    )
    try:
        sink.start()
    except InfluxSetupError:
        sink.abort()
        raise
    return sink
