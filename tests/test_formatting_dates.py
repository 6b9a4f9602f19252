"""The French date filters give what Babel's patterns give, without Babel's per-call cost."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from babel.dates import format_date, format_datetime

from citoyens.formatting import day_fr, deadline_fr, month_fr, short_day_fr, weekday_fr
from citoyens.forms import PARIS


def test_the_date_filters_match_babel_on_every_day_of_two_years():
    day = date(2026, 1, 1)
    while day < date(2028, 1, 1):
        assert day_fr(day) == format_date(day, "EEEE d MMMM y", locale="fr_FR")
        assert weekday_fr(day) == format_date(day, "EEEE d MMMM", locale="fr_FR")
        assert short_day_fr(day) == format_date(day, "EEE d MMM", locale="fr_FR")
        assert month_fr(day) == format_date(day, "MMMM y", locale="fr_FR")
        day += timedelta(days=1)
    assert day_fr(None) == weekday_fr(None) == short_day_fr(None) == month_fr(None) == ""


def test_the_deadline_matches_babel_in_paris_time_across_daylight_saving():
    moment = datetime(2026, 3, 27, 5, 7, tzinfo=UTC)
    for _ in range(24 * 4):
        expected = format_datetime(
            moment.astimezone(PARIS), "EEE d MMM 'à' H'h'mm", locale="fr_FR", tzinfo=PARIS
        )
        assert deadline_fr(moment) == expected
        moment += timedelta(minutes=53)
    assert deadline_fr(datetime(2026, 12, 5, 7, 30)) == "sam. 5 déc. à 8h30"  # naive: UTC
    assert deadline_fr(None) == ""
