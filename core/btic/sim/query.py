"""The Reporting API's query parameters, applied to the simulated sessions.

As the API guides define them: exactly one of ``start_date``,
``start_time``, ``end_date``, ``end_time`` with a ``duration`` (0: to the
present; bounds inclusive), or ``lsid``/``lsids`` (not on listing reports),
and an optional ``limit``. Selecting by end time returns closed sessions only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone

from btic.sim.data import SimSession

TIME_PARAMETERS = ("start_date", "start_time", "end_date", "end_time")


class QueryError(Exception):
    """A query the appliance refuses; the message is the text of its ``<error>``."""


def select_sessions(
    sessions: Iterable[SimSession],
    report: str,
    params: Mapping[str, str],
    kind: str,
    now: float,
) -> list[SimSession]:
    """The sessions of ``report`` that ``params`` select, as the appliance sees them at ``now``.

    :param kind: ``listing`` for a ``...Listing`` report, else the full report.
    :raises QueryError: for parameters the appliance refuses.
    """
    wanted = [s for s in sessions if s.report == report and s.start <= now]
    if "lsid" in params or "lsids" in params:
        if kind == "listing":
            raise QueryError("The lsid and lsids parameters are not accepted by listing reports.")
        ids = (
            {params["lsid"]}
            if "lsid" in params
            else {i.strip() for i in params["lsids"].split(",") if i.strip()}
        )
        return [s for s in wanted if s.lsid in ids]
    given = [p for p in TIME_PARAMETERS if p in params]
    if len(given) != 1:
        raise QueryError(
            "Exactly one of start_date, start_time, end_date, end_time, lsid or lsids "
            "must be given."
        )
    field = given[0]
    low, high = _bounds(field, params)
    selected = []
    for s in wanted:
        if field.startswith("end"):
            if not s.closed_at(now):
                continue
            moment = s.end
        else:
            moment = s.start
        if moment >= low and (high is None or moment <= high):
            selected.append(s)
    limit = params.get("limit", "all")
    return selected if limit == "all" else _limit(selected, limit)


def _bounds(field: str, params: Mapping[str, str]) -> tuple[int, int | None]:
    """(first, last) UNIX second of the window; last is None for "to the present"."""
    if "duration" not in params:
        raise QueryError(f"The duration parameter is required with {field}.")
    try:
        duration = int(params["duration"])
        if duration < 0:
            raise ValueError
    except ValueError:
        raise QueryError("Invalid duration: must be a non-negative integer.") from None
    try:
        if field.endswith("_date"):
            day = datetime.strptime(params[field], "%Y-%m-%d").replace(tzinfo=timezone.utc)
            low = int(day.timestamp())
            return low, (low + duration * 86400 - 1 if duration else None)
        low = int(params[field])
        return low, (low + duration if duration else None)
    except ValueError:
        expected = "use YYYY-MM-DD." if field.endswith("_date") else "use a UNIX timestamp."
        raise QueryError(f"Invalid {field}: {expected}") from None


def _limit(sessions: list[SimSession], limit: str) -> list[SimSession]:
    kind, _, value = limit.partition(":")
    if kind == "rep" and value.isdigit():
        return [s for s in sessions if int(value) in s.rep_ids]
    if kind in ("team", "members") and (value == "all" or value.isdigit()):
        return [s for s in sessions if s.team_ids and (value == "all" or int(value) in s.team_ids)]
    if kind == "site" and value.isdigit():
        return [s for s in sessions if s.site_id == int(value)]
    raise QueryError("Invalid limit: use all, rep:ID, team:all, team:ID, members:ID or site:ID.")
