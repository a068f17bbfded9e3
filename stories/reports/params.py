"""The parameters every report takes: a time zone and a date range, validated once.

Days are calendar days in the time zone `tz` (an IANA name, default UTC); `from` and
`to` are inclusive ISO dates. A bad value is a ValidationError naming the parameter,
which the API answers as a 400 (code validation_error)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ValidationError
from django.utils import timezone

DEFAULT_DAYS = 84  # twelve weeks up to today
MAX_DAYS = 732  # two years: the daily series stay small enough to draw and to send
PERIODS = ("week", "sprint")


@dataclass(frozen=True)
class ReportParams:
    tz: ZoneInfo
    start: date  # first day, inclusive
    end: date  # last day, inclusive
    now: datetime

    @property
    def start_at(self) -> datetime:
        """The first moment of `start` in the time zone."""
        return day_start(self.start, self.tz)

    @property
    def end_at(self) -> datetime:
        """The first moment after `end` (exclusive bound)."""
        return day_start(self.end + timedelta(days=1), self.tz)

    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    @property
    def today(self) -> date:
        return self.now.astimezone(self.tz).date()

    def as_dict(self) -> dict:
        return {"tz": self.tz.key, "from": self.start.isoformat(), "to": self.end.isoformat()}


def day_start(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=tz).astimezone(UTC)


def week_of(day: date) -> date:
    """The Monday that starts `day`'s ISO week."""
    return day - timedelta(days=day.weekday())


def parse_tz(value: str | None) -> ZoneInfo:
    name = (value or "UTC").strip()
    try:
        if not name or "\x00" in name or len(name) > 64:
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            {"tz": [f"Unknown time zone {name[:64]!r}: give an IANA name such as Europe/Berlin."]}
        ) from None


def parse_day(value: str | None, name: str) -> date | None:
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError({name: [f"Give a date as YYYY-MM-DD, not {value[:40]!r}."]}) from None


def parse_params(query: Mapping[str, str], *, now: datetime | None = None) -> ReportParams:
    """tz, from and to from a query string (missing: UTC, the twelve weeks up to today)."""
    now = now or timezone.now()
    tz = parse_tz(query.get("tz"))
    end = parse_day(query.get("to"), "to")
    start = parse_day(query.get("from"), "from")
    today = now.astimezone(tz).date()
    if end is None:
        end = today if start is None else min(today, start + timedelta(days=DEFAULT_DAYS - 1))
        end = max(end, start) if start else end
    if start is None:
        start = end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise ValidationError({"from": [f"'from' ({start}) is after 'to' ({end})."]})
    if (end - start).days + 1 > MAX_DAYS:
        raise ValidationError(
            {"to": [f"A report covers at most {MAX_DAYS} days; this range has {(end - start).days + 1}."]}
        )
    return ReportParams(tz=tz, start=start, end=end, now=now)


def parse_period(value: str | None) -> str:
    period = (value or "week").strip()
    if period not in PERIODS:
        raise ValidationError({"period": [f"Give one of: {', '.join(PERIODS)}."]})
    return period
