"""Opening hours of a hand-over queue: when lawyers are on duty, and when they next are.

    hours = OpeningHours.parse("Europe/Moscow", "mon-fri", "10:00", "19:00")
    hours.is_open(time.time())          # a lawyer is on duty now?
    hours.next_opening(time.time())     # the next moment one is (an aware datetime)

Pure and clock-free: every question takes "now" (a time.time() value), so the desk's
clock, and a test's frozen one, decide. Times are wall-clock times in the queue's zone
(zoneinfo), so a change to or from summer time moves nothing; holidays are dates in that
zone on which nobody is on duty. One window a day (`from` to `to`, `to` after `from`; "24:00"
is the end of the day), on the days listed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
END_OF_DAY = 24 * 60
# Looking further than a year ahead means the holidays cover every working day: a mistake.
SEARCH_DAYS = 400


@dataclass(frozen=True, slots=True)
class OpeningHours:
    zone: ZoneInfo
    days: frozenset[int]  # 0 = Monday
    opens: int  # minutes after midnight
    closes: int  # minutes after midnight, after `opens`; at most 24:00
    holidays: frozenset[dt.date] = frozenset()
    # How the zone is named to people, by language ("*": any); default: the zone's id.
    zone_names: Mapping[str, str] = field(default_factory=dict)

    # ------------------------------------------------------------------ building

    @staticmethod
    def parse(
        timezone: str,
        days: str | Iterable[str],
        opens: str,
        closes: str,
        holidays: Iterable[dt.date] = (),
        zone_names: Mapping[str, str] | str | None = None,
    ) -> OpeningHours:
        """Raises ValueError, worded for the config file, for anything it cannot read."""
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {timezone!r}: use an IANA name such as Europe/Moscow"
            ) from None
        start, end = parse_time(opens), parse_time(closes)
        if end <= start:
            raise ValueError(f"`to` ({closes}) must be later than `from` ({opens})")
        if start >= END_OF_DAY:
            raise ValueError(f"`from` ({opens}) must be before 24:00")
        names = {"*": zone_names} if isinstance(zone_names, str) else dict(zone_names or {})
        return OpeningHours(zone, parse_days(days), start, end, frozenset(holidays), names)

    # ------------------------------------------------------------------ questions

    def is_open(self, now: float) -> bool:
        local = dt.datetime.fromtimestamp(now, self.zone)
        minute = local.hour * 60 + local.minute
        return self._working(local.date()) and self.opens <= minute < self.closes

    def next_opening(self, now: float) -> dt.datetime:
        """The next moment the queue opens (at or after `now` when it is closed; the next
        day's opening when it is open now), in the queue's zone."""
        today = dt.datetime.fromtimestamp(now, self.zone).date()
        for ahead in range(SEARCH_DAYS):
            day = today + dt.timedelta(days=ahead)
            if not self._working(day):
                continue
            opening = self._at(day, self.opens)
            if opening.timestamp() >= now:
                return opening
        raise ValueError("the opening hours never open: check `days` and `holidays`")

    def _working(self, day: dt.date) -> bool:
        return day.weekday() in self.days and day not in self.holidays

    def _at(self, day: dt.date, minutes: int) -> dt.datetime:
        midnight = dt.datetime.combine(day, dt.time(0), self.zone)
        if minutes >= END_OF_DAY:
            return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), self.zone)
        return midnight.replace(hour=minutes // 60, minute=minutes % 60)

    # ------------------------------------------------------------------ words

    def describe(self, short_days: list[str]) -> str:
        """'Mon–Fri 10:00–19:00' with the day names given (Monday first)."""
        return f"{describe_days(self.days, short_days)} {clock(self.opens)}–{clock(self.closes)}"

    def zone_name(self, language: str) -> str:
        names = self.zone_names
        return names.get(language) or names.get("*") or str(self.zone.key)


def parse_time(value: str | int) -> int:
    """'10:00' -> 600. YAML reads an unquoted 10:00 as the number 600 (base 60): taken too."""
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value <= END_OF_DAY:
            return value
        raise ValueError(f'{value} is not a time of day; write it in quotes: "10:00"')
    text = str(value).strip()
    hours, colon, minutes = text.partition(":")
    if not (colon and hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ValueError(f'{value!r} is not a time of day such as "10:00"')
    total = int(hours) * 60 + int(minutes)
    if int(minutes) > 59 or total > END_OF_DAY:
        raise ValueError(f"{value!r} is not a time of day between 00:00 and 24:00")
    return total


def parse_days(value: str | Iterable[str]) -> frozenset[int]:
    """'mon-fri', 'mon-fri,sat', ['mon', 'wed'] or 'sat-mon' (round the week end)."""
    items = value.split(",") if isinstance(value, str) else list(value)
    days: set[int] = set()
    for item in items:
        first, dash, last = str(item).strip().lower().partition("-")
        start = _day(first)
        end = _day(last) if dash else start
        day = start
        while True:
            days.add(day)
            if day == end:
                break
            day = (day + 1) % 7
    if not days:
        raise ValueError("`days` names no day: write e.g. mon-fri")
    return frozenset(days)


def _day(name: str) -> int:
    key = name.strip()[:3]
    if key not in DAY_NAMES or not name.strip():
        raise ValueError(f"{name!r} is not a day: use mon, tue, wed, thu, fri, sat, sun")
    return DAY_NAMES.index(key)


def describe_days(days: frozenset[int], names: list[str]) -> str:
    """{0,1,2,3,4,6} -> 'Mon–Fri, Sun' (runs of three or more days as a range)."""
    runs: list[list[int]] = []
    for day in sorted(days):
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    parts = []
    for run in runs:
        if len(run) >= 3:
            parts.append(f"{names[run[0]]}–{names[run[-1]]}")
        else:
            parts.extend(names[d] for d in run)
    return ", ".join(parts)


def clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
