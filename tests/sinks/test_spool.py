"""The disk spool: order, bound (oldest dropped, loudly), crash safety, one deliverer at a time."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.sinks.batch import Batch, Delivered
from gateway.sinks.spool import CORRUPT_DIR, Dropped, Spool, SpoolBusyError
from tests.conftest import ROOT


def lines_of(n: int, size: int = 10) -> list[str]:
    return [f"m,batch={n} i={i}i {n * 1000 + i}" for i in range(size)]


def drain(spool: Spool, max_points: int = 1) -> list[bytes]:
    """Deliver everything, one batch at a time, collecting what was sent."""
    sent: list[bytes] = []

    def send(batch: Batch) -> Delivered:
        sent.append(batch.body)
        return Delivered()

    while spool.deliver_oldest(send, max_points) is not None:
        pass
    return sent


def test_batches_come_back_in_the_order_they_were_cut(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    for n in (3, 1, 2):  # a batch cut earlier may be spooled later (it failed after retries)
        spool.append(Batch.of(lines_of(n), stamp_ns=n))
    depth = spool.depth()
    assert (depth.batches, depth.points) == (3, 30)
    assert depth.oldest_age_s is not None
    assert drain(spool) == [Batch.of(lines_of(n)).body for n in (1, 2, 3)]
    assert spool.depth().batches == 0


def test_batches_are_merged_up_to_a_size_for_delivery(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for n in range(1, 6):
        spool.append(Batch.of(lines_of(n), stamp_ns=n))
    sent = drain(spool, max_points=25)
    assert [body.count(b"\n") for body in sent] == [20, 20, 10]
    assert b"".join(sent) == b"".join(Batch.of(lines_of(n)).body for n in range(1, 6))


def test_a_failed_send_removes_nothing_and_a_second_flush_sends_nothing(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(Batch.of(lines_of(1)))

    def down(batch: Batch) -> Delivered:
        raise ConnectionError

    with pytest.raises(ConnectionError):
        spool.deliver_oldest(down, 100)
    assert spool.depth().points == 10
    assert len(drain(spool)) == 1
    assert drain(spool) == []  # the second flush: nothing left, nothing sent twice
    assert Spool(tmp_path).depth().batches == 0  # and the removal is on disk


def test_a_full_spool_drops_the_oldest_and_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    one = len(b"#mouchard-spool 1 points=10 crc32=00000000\n" + Batch.of(lines_of(10)).body)
    spool = Spool(tmp_path, max_bytes=4 * one)
    with caplog.at_level(logging.WARNING):
        dropped = [spool.append(Batch.of(lines_of(n), stamp_ns=n)) for n in range(10, 16)]
    assert dropped[:4] == [Dropped()] * 4
    assert dropped[4:] == [Dropped(1, 10), Dropped(1, 10)]
    assert spool.dropped == Dropped(2, 20)
    assert "DROPPED its 1 oldest batches (10 points)" in caplog.text
    assert drain(spool) == [Batch.of(lines_of(n)).body for n in (12, 13, 14, 15)]  # the newest four


def test_a_batch_larger_than_the_spool_is_dropped_loudly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path, max_bytes=100)
    with caplog.at_level(logging.WARNING):
        assert spool.append(Batch.of(lines_of(1))) == Dropped(1, 10)
    assert "larger than the whole spool" in caplog.text
    assert spool.depth().batches == 0


def test_a_damaged_batch_is_set_aside_and_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(tmp_path)
    for n in (1, 2):
        spool.append(Batch.of(lines_of(n), stamp_ns=n))
    first = sorted(tmp_path.glob("*.lp"))[0]
    first.write_bytes(first.read_bytes().replace(b"i=3i", b"i=9i"))  # one flipped digit
    with caplog.at_level(logging.WARNING):
        assert drain(Spool(tmp_path)) == [Batch.of(lines_of(2)).body]
    assert (tmp_path / CORRUPT_DIR / first.name).exists()
    assert "damaged" in caplog.text


def test_only_one_process_delivers_at_a_time(tmp_path: Path) -> None:
    mine, theirs = Spool(tmp_path), Spool(tmp_path)  # two opens: two flock owners, as two processes
    mine.append(Batch.of(lines_of(1)))

    def send(batch: Batch) -> Delivered:
        with pytest.raises(SpoolBusyError):
            theirs.deliver_oldest(send, 10)
        return Delivered()

    assert mine.deliver_oldest(send, 10) is not None
    assert theirs.depth().batches == 0  # it sees the removal made by the other


def test_two_writers_share_one_spool(tmp_path: Path) -> None:
    one, two = Spool(tmp_path), Spool(tmp_path)
    for n in range(1, 7):
        (one if n % 2 else two).append(Batch.of(lines_of(n), stamp_ns=n))
    assert one.depth().points == two.depth().points == 60
    assert drain(two) == [Batch.of(lines_of(n)).body for n in range(1, 7)]
    assert one.is_empty()


WRITER = """
import os, sys, time
from pathlib import Path
from gateway.sinks.batch import Batch
from gateway.sinks.spool import Spool

def slow_write(fd, data, _write=os.write):  # a slow disk: 4 kB per millisecond
    time.sleep(0.001)
    return _write(fd, data[:4096])

os.write = slow_write
spool = Spool(Path(sys.argv[1]))
size = int(sys.argv[2])
for n in range(1, 100_000):
    spool.append(Batch.of([f"m,batch={n} i={i}i {n * 1000 + i}" for i in range(size)], stamp_ns=n))
    print(n, flush=True)
"""


@pytest.mark.parametrize("kill_after", [1, 4])
def test_a_killed_writer_loses_no_complete_batch(tmp_path: Path, kill_after: int) -> None:
    """SIGKILL in the middle of an append: every batch it reported is there, whole; the torn one is not."""
    size = 1000  # ~25 kB: a few milliseconds of writing
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path), str(size)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    done = 0
    while done < kill_after:
        done = int(child.stdout.readline())
    while not list(tmp_path.glob(".tmp-*")):  # the next batch is being written: kill it now
        time.sleep(0.0005)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert list(tmp_path.glob(".tmp-*")), "the kill should land inside a write"
    spool = Spool(tmp_path)
    assert not list(tmp_path.glob(".tmp-*"))  # the torn write is cleaned away, never delivered
    sent = drain(spool, max_points=size)
    assert len(sent) in (done, done + 1)  # the batch being written may have been renamed in time
    for n, body in enumerate(sent, start=1):
        assert body == Batch.of(lines_of(n, size)).body
