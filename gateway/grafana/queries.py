"""InfluxQL the dashboards share, written for every InfluxQL server (InfluxDB 1.6+ up to 3.x).

Conditions are InfluxQL text with Grafana's macros (``$timeFilter``...) and variables; tag and field
names are always double-quoted, so the dashboards' tests can check each against DESIGN.md's schema.
"""

from __future__ import annotations

INTERNET = "\"party\" != 'local'"  # traffic that leaves the lab's network
THIRD_PARTY = "\"party\" = 'third'"  # neither the maker nor a service working for it
BYTES = 'sum("bytes_out") + sum("bytes_in")'  # bytes exchanged, both directions
SENT_RECEIVED = 'sum("bytes_out") AS "sent", sum("bytes_in") AS "received"'
DEVICE = '"device" =~ /^$device$/'  # the device detail's variable (a regex: Grafana escapes it there)


def where(*conditions: str) -> str:
    """``cond AND cond AND $timeFilter``."""
    return " AND ".join((*conditions, "$timeFilter"))


def select(what: str, source: str, *conditions: str, group_by: str = "", tail: str = "") -> str:
    """``SELECT what FROM source WHERE conditions AND $timeFilter [GROUP BY ...] [tail]``.

    `source` is a quoted measurement (``'"traffic"'``) or a parenthesised subquery.
    """
    parts = ["SELECT", what, "FROM", source, "WHERE", where(*conditions)]
    if group_by:
        parts += ["GROUP BY", group_by]
    if tail:
        parts.append(tail)
    return " ".join(parts)


def sub(query: str) -> str:
    """A subquery, for `select`'s source."""
    return f"({query})"


def distinct_count(tag: str, *conditions: str, per: str = "", alias: str = "") -> str:
    """How many distinct values of `tag` the matching traffic has (InfluxQL has no COUNT(DISTINCT tag)).

    The inner query makes one point per tag value; the outer counts them, per `per` when given.
    """
    inner_group = f'"{per}", "{tag}"' if per else f'"{tag}"'
    inner = select('sum("bytes_out") AS "bytes"', '"traffic"', *conditions, group_by=inner_group)
    return select(f'count("bytes") AS "{alias or tag}"', sub(inner), group_by=f'"{per}"' if per else "")


def bytes_share(part: str, whole: str, *, per: str = "", alias: str = "share", rounded: bool = False) -> str:
    """Percent of the bytes matching `whole` that also match `part` (per `per` tag when given).

    InfluxQL 1.x cannot sum conditionally, and of several subqueries in one FROM it only reads the
    fields of the first (1.6.7 returns null for the others); all three subqueries here therefore give
    the same field `x`: minus the part, zero, and the whole. Per group, min(x) is minus the part (or
    zero when there is none) and max(x) is the whole, so -100 * min / max is the share. `rounded`
    gives whole percents (for tables, where the share is shown as text).
    """
    group = f'"{per}"' if per else ""
    minus_part = select(
        '-sum("bytes_out") - sum("bytes_in") AS "x"', '"traffic"', whole, part, group_by=group
    )
    zero = select('0 * sum("bytes_out") AS "x"', '"traffic"', whole, group_by=group)
    total = select(f'{BYTES} AS "x"', '"traffic"', whole, group_by=group)
    share = '-100 * min("x") / max("x")'
    what = f'{f"round({share})" if rounded else share} AS "{alias}"'
    return select(what, ", ".join(map(sub, (minus_part, zero, total))), group_by=group)


def rate(field: str, *conditions: str, by: str = "", measurement: str = "traffic") -> str:
    """Bytes per second of `field` over time (bins of ``$__interval``), one series per `by` tag."""
    return select(
        f'sum("{field}") / ($__interval_ms / 1000)',
        f'"{measurement}"',
        *conditions,
        group_by=f'time($__interval), "{by}" fill(0)' if by else "time($__interval) fill(0)",
    )


def hour_of_day(hour: int, field: str, *conditions: str) -> str:
    """The `field` total of hour `hour` (lab's local time, ``$timezone``) of each day, stamped at midnight.

    Inner: hourly sums, every hour present (fill(0)). Middle: windows of one day starting at `hour`;
    their first point is that hour's sum. Outer: one point per local day, so the 24 queries (one per
    hour) line up as the 24 rows of a day-by-hour heatmap. The ranges start a day early, so that every
    window of a visible day starts on an hour that exists (a window that starts before the first hour
    would take a later hour's sum); windows of earlier days fall outside the panel's range.
    """
    span = "time >= ${__from}ms - 1d AND time <= ${__to}ms"
    tz = "tz('$timezone')"

    def spanned(what: str, source: str, *where_: str, group_by: str) -> str:
        return " ".join(
            ["SELECT", what, "FROM", source, "WHERE", " AND ".join((*where_, span)), "GROUP BY", group_by]
        )

    inner = spanned(f'sum("{field}") AS "v"', '"traffic"', *conditions, group_by=f"time(1h) fill(0) {tz}")
    middle = spanned('first("v") AS "v"', sub(inner), group_by=f"time(1d, {hour}h) {tz}")
    return spanned('first("v")', sub(middle), group_by=f"time(1d) {tz}")


def events(event_type: str, *columns: str, device: str = "") -> str:
    """The events of one type (a /regex/, or "" for all), newest first, with the given columns."""
    conditions = [device] if device else []
    if event_type.startswith("/"):
        conditions.append(f'"type" =~ {event_type}')
    elif event_type:
        conditions.append(f"\"type\" = '{event_type}'")
    return select(", ".join(columns), '"event"', *conditions, tail="ORDER BY time DESC LIMIT 500")
