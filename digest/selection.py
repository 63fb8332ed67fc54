"""Which articles belong to a window of whole local days."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, tzinfo


def window(
    since: date | None, until: date | None, tz: tzinfo
) -> tuple[datetime | None, datetime | None]:
    """[start, end) instants covering the local days ``since`` … ``until``, both inclusive.

    Each bound is local midnight in ``tz``, so a day is 23 or 25 hours long across a DST change.
    """
    start = datetime.combine(since, time(), tzinfo=tz) if since else None
    end = datetime.combine(until + timedelta(days=1), time(), tzinfo=tz) if until else None
    return start, end
