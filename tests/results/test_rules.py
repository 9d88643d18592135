"""The pure rules of laboratory results: values, ranges, flags, statuses, conversions, critical
values, escalation, the cumulative table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from naho.results import rules
from naho.results.rules import ResultStatus as S

T0 = datetime(2026, 11, 25, 8, tzinfo=UTC)


@pytest.mark.parametrize(("value_type", "raw", "expected"), [
    ("NM", "4.2", rules.Value(4.2, None)),
    ("NM", "4,2", rules.Value(4.2, None)),  # French decimal comma
    ("NM", " -1.5e2 ", rules.Value(-150.0, None)),
    ("NM", "<5", rules.Value(5.0, None, "<")),
    ("SN", ">=^60", rules.Value(60.0, None, ">=")),
    ("ST", "Trouble", rules.Value(None, "Trouble")),
    ("TX", "", rules.Value(None, None)),
])
def test_values_are_read_according_to_their_type(value_type: str, raw: str, expected: rules.Value) -> None:
    assert rules.parse_value(value_type, raw) == expected


@pytest.mark.parametrize("raw", ["quatre", "4.2.1", "", "nan", "1e999"])
def test_a_numeric_value_that_is_no_number_is_refused(raw: str) -> None:
    with pytest.raises(rules.NotANumber):
        rules.parse_value("NM", raw)


def test_reference_ranges_and_derived_flags() -> None:
    assert rules.parse_range("3.5-5.1") == rules.ReferenceRange("3.5-5.1", 3.5, 5.1)
    assert rules.parse_range("<5") == rules.ReferenceRange("<5", None, 5.0)
    assert rules.parse_range("> 60") == rules.ReferenceRange("> 60", 60.0, None)
    assert rules.parse_range("négatif") == rules.ReferenceRange("négatif", None, None)
    normal = rules.parse_range("3.5-5.1")
    assert rules.derive_flags(rules.Value(3.1, None), normal, ()) == ("L",)
    assert rules.derive_flags(rules.Value(5.6, None), normal, ()) == ("H",)
    assert rules.derive_flags(rules.Value(4.0, None), normal, ()) == ()
    assert rules.derive_flags(rules.Value(5.6, None), normal, ("N",)) == ("N",)  # the laboratory knows best
    assert rules.parse_flags(["hh", " ", "A"]) == ("HH", "A")
    assert not rules.is_abnormal(("N",)) and rules.is_abnormal(("L",))


def test_loinc_codes_units_and_statuses() -> None:
    assert rules.check_loinc(" 2823-3 ") == "2823-3"
    for bad in ("K", "2823", "2823-33", "LN-1"):
        with pytest.raises(rules.NotLoinc):
            rules.check_loinc(bad)
    assert rules.ucum("µmol/l") == "umol/L" and rules.ucum("G/L") == "g/L" and rules.ucum("{INR}") == "{INR}"
    assert rules.parse_status("c") is S.CORRECTED
    with pytest.raises(rules.UnknownResultStatus):
        rules.parse_status("Z")


def test_a_final_result_is_never_replaced_by_a_preliminary_one() -> None:
    assert rules.next_status(None, S.PRELIMINARY) is S.PRELIMINARY
    assert rules.next_status(S.PRELIMINARY, S.FINAL) is S.FINAL
    assert rules.next_status(S.FINAL, S.CORRECTED) is S.CORRECTED
    assert rules.next_status(S.CORRECTED, S.CANCELLED) is S.CANCELLED
    for done in (S.FINAL, S.CORRECTED):
        with pytest.raises(rules.FinalResultNotPreliminary):
            rules.next_status(done, S.PRELIMINARY)


def test_creatinine_feeds_the_chart_in_micromoles_per_litre() -> None:
    assert rules.chart_value("14682-9", "umol/L", 88) == ("14682-9", "umol/L", 88.0)
    assert rules.chart_value("2160-0", "mg/dL", 1.0) == ("14682-9", "umol/L", 88.42)
    assert rules.chart_value("2160-0", "mg/L", 10) == ("14682-9", "umol/L", 88.42)
    assert rules.chart_value("2823-3", "mmol/L", 4.0) is None
    assert rules.chart_value("14682-9", "umol/L", None) is None


CRITICAL = rules.load_critical_rules({
    "escalate_after_minutes": 10,
    "senior_physicians": {"LENS-MED-MIN": ["chef"]},
    "tests": {"2823-3": {"label": "Potassium", "unit": "mmol/l", "low": 2.8, "high": 6.2}}})


def test_critical_values_by_threshold_in_the_same_unit_or_by_the_laboratorys_flag() -> None:
    assert CRITICAL.thresholds["2823-3"].unit == "mmol/L" and CRITICAL.senior_physicians == {"LENS-MED-MIN": ("chef",)}
    assert rules.critical(CRITICAL, "2823-3", "mmol/L", 6.2, ()) == "high"
    assert rules.critical(CRITICAL, "2823-3", "mmol/L", 2.8, ()) == "low"
    assert rules.critical(CRITICAL, "2823-3", "mmol/L", 4.0, ()) is None
    assert rules.critical(CRITICAL, "2823-3", "mEq/L", 9.0, ()) is None  # another unit proves nothing
    assert rules.critical(CRITICAL, "718-7", "g/dL", 5.0, ("LL",)) == "low"
    assert rules.critical(CRITICAL, "5778-6", "", None, ("AA",)) == "high"


@pytest.mark.parametrize("data", [
    {"tests": {"K": {"label": "K", "unit": "mmol/L", "high": 6}}},
    {"tests": {"2823-3": {"label": "K", "unit": "mmol/L"}}},
    {"tests": {"2823-3": {"unit": "mmol/L", "high": 6}}},
    {"tests": ["2823-3"]},
    {"escalate_after_minutes": "soon"},
])
def test_a_malformed_critical_values_file_is_refused(data: dict[str, object]) -> None:
    with pytest.raises(rules.BadCriticalValues):
        rules.load_critical_rules(data)


def test_the_shipped_critical_values_file_loads() -> None:
    from naho.results.service import load_critical_rules

    shipped = load_critical_rules()
    assert shipped.escalate_after_minutes == 15 and "2823-3" in shipped.thresholds


def test_an_alert_escalates_once_and_only_when_nobody_acknowledged_it_in_time() -> None:
    assert not rules.escalation_due(T0, False, False, T0 + timedelta(minutes=9), 10)
    assert rules.escalation_due(T0, False, False, T0 + timedelta(minutes=10), 10)
    assert not rules.escalation_due(T0, True, False, T0 + timedelta(hours=1), 10)
    assert not rules.escalation_due(T0, False, True, T0 + timedelta(hours=1), 10)


def _version(chain: str, loinc: str, number: float | None, status: str, at: datetime, order: int,
             flags: tuple[str, ...] = ()) -> rules.Version:
    return rules.Version(chain, loinc, loinc, number, None, "", "mmol/L", "3.5-5.1", flags, status, at, order)


def test_the_cumulative_table_shows_each_tests_latest_version_by_date_with_what_it_replaced() -> None:
    day2 = T0 + timedelta(days=1)
    dates, rows = rules.cumulative([
        _version("r2:K", "2823-3", 4.6, "F", day2, 2),
        _version("r1:K", "2823-3", 5.6, "F", T0, 1, ("H",)),
        _version("r2:K", "2823-3", 4.2, "C", day2, 3),
        _version("r2:Na", "2951-2", 140, "P", day2, 4),
        _version("r2:Na", "2951-2", None, "X", day2, 5),
    ])
    assert dates == [day2, T0]
    potassium, sodium = rows
    assert potassium.cells[day2] == rules.Cell("4.2", 4.2, "mmol/L", (), "C", True, ("4.6",))
    assert potassium.cells[T0].flags == ("H",) and not potassium.cells[T0].corrected
    assert sodium.cells[day2].status == "X" and sodium.cells[day2].previous == ("140",)


@given(st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=1, max_size=30),
       st.one_of(st.none(), st.floats(min_value=-1e6, max_value=1e6)),
       st.one_of(st.none(), st.floats(min_value=-1e6, max_value=1e6)))
def test_the_trend_span_holds_every_point_and_the_reference_band(values: list[float], low: float | None,
                                                                 high: float | None) -> None:
    bottom, top = rules.trend([(T0, v) for v in values], low, high)
    assert bottom < top
    assert all(bottom <= v <= top for v in [*values, *(b for b in (low, high) if b is not None)])
