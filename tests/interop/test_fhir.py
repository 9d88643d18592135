"""The FHIR transport's own syntax: date and token search values, references, OperationOutcome."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from naho.interop import fhir

PARIS = ZoneInfo("Europe/Paris")


def test_a_day_is_the_interval_of_that_local_day() -> None:
    day = fhir.parse_date("1951-07-02", PARIS, "birthdate")
    assert (day.prefix, day.start, day.end) == (
        "eq", datetime(1951, 7, 2, tzinfo=PARIS), datetime(1951, 7, 3, tzinfo=PARIS))
    assert day.exact_day(PARIS) == date(1951, 7, 2)
    assert fhir.parse_date("1951-07", PARIS, "birthdate").exact_day(PARIS) is None


@pytest.mark.parametrize(("value", "day", "expected"), [
    ("1951", date(1951, 12, 31), True),
    ("1951", date(1952, 1, 1), False),
    ("ge1951-07-02", date(1951, 7, 2), True),
    ("ge1951-07-02", date(1951, 7, 1), False),
    ("gt1951-07-02", date(1951, 7, 2), False),
    ("gt1951-07", date(1951, 8, 1), True),
    ("le1951-07", date(1951, 7, 31), True),
    ("le1951-07", date(1951, 8, 1), False),
    ("lt1951-07-02", date(1951, 7, 2), False),
    ("lt1951-07-02", date(1951, 7, 1), True),
    ("eq1951-12", date(1951, 12, 31), True),
])
def test_date_prefixes_compare_days(value: str, day: date, expected: bool) -> None:
    assert fhir.parse_date(value, PARIS, "birthdate").matches_day(day, PARIS) is expected


def test_a_period_is_matched_by_overlap_and_an_open_stay_reaches_forever() -> None:
    since = datetime(2026, 11, 20, 8, tzinfo=UTC)
    assert fhir.parse_date("ge2026-11-25", PARIS, "date").matches(since, None)
    assert not fhir.parse_date("ge2026-11-25", PARIS, "date").matches(since, datetime(2026, 11, 22, tzinfo=UTC))
    assert fhir.parse_date("le2026-11-20", PARIS, "date").matches(since, None)
    assert not fhir.parse_date("lt2026-11-20", PARIS, "date").matches(since, None)
    assert not fhir.parse_date("2026-11", PARIS, "date").matches(since, None)  # eq: the stay is not over
    assert fhir.parse_date("2026-11", PARIS, "date").matches(since, datetime(2026, 11, 22, tzinfo=UTC))


def test_a_time_needs_a_zone_and_unsupported_prefixes_are_refused() -> None:
    at = fhir.parse_date("ge2026-11-25T10:00Z", PARIS, "date")
    assert at.start == datetime(2026, 11, 25, 10, tzinfo=UTC)
    for wrong in ("2026-11-25T10:00", "sa2026", "2026-13-01", "yesterday", "ne2026"):
        with pytest.raises(fhir.InvalidRequest):
            fhir.parse_date(wrong, PARIS, "date")


def test_tokens_and_or_lists() -> None:
    assert fhir.parse_token("urn:oid:1.2|123") == fhir.Token("urn:oid:1.2", "123")
    assert fhir.parse_token("123") == fhir.Token(None, "123")
    assert fhir.parse_token("|123") == fhir.Token("", "123")
    assert fhir.split_or("in-progress,onleave") == ["in-progress", "onleave"]
    assert fhir.split_or(r"a\,b,c") == ["a,b", "c"]


def test_references_name_their_type() -> None:
    assert fhir.parse_reference("Patient/abc", "Patient", "patient") == "abc"
    assert fhir.parse_reference("abc", "Patient", "patient") == "abc"
    assert fhir.parse_reference("https://naho.example/fhir/R4/Patient/abc", "Patient", "patient") == "abc"
    with pytest.raises(fhir.InvalidRequest, match="must reference a Patient"):
        fhir.parse_reference("Practitioner/abc", "Patient", "patient")


def test_an_error_becomes_an_operation_outcome_with_its_issue_type() -> None:
    outcome = fhir.operation_outcome(404, "Patient/x is not known")
    assert fhir.dump(outcome) == {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "not-found", "diagnostics": "Patient/x is not known"}]}
    assert fhir.operation_outcome(500, None).issue[0].severity == "fatal"
    assert fhir.operation_outcome(400, "bad", issue="not-supported").issue[0].code == "not-supported"
