"""Pure rules of laboratory results: values, units, statuses, abnormal flags, critical values,
the cumulative table. No session, clock or HL7 here (STYLE.md R1, R13): values in, values out.

Sources: HL7 v2.5 chapter 7 (OBX-2 value types, OBX-8 table 0078 abnormal flags, OBX-11 table
0085 result statuses), LOINC for the test codes, UCUM for the units.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class ResultRuleError(Exception):
    """A result breaks a rule; the class name is the rule's name."""


class NotLoinc(ResultRuleError):
    """The observation is not identified by a LOINC code."""


class NotANumber(ResultRuleError):
    """A numeric (NM) value that is not a number."""


class UnknownResultStatus(ResultRuleError):
    """OBX-11 outside HL7 table 0085 (as naho takes it)."""


class FinalResultNotPreliminary(ResultRuleError):
    """A final (or corrected) result cannot go back to preliminary: only a correction follows it."""


class ResultStatus(StrEnum):
    """OBX-11, HL7 table 0085 (the values a laboratory sends)."""

    PRELIMINARY = "P"
    FINAL = "F"
    CORRECTED = "C"
    CANCELLED = "X"  # no result will come (sample lost, test cancelled)
    DELETED = "D"  # the result was sent in error and is withdrawn

    @property
    def withdrawn(self) -> bool:
        return self in (ResultStatus.CANCELLED, ResultStatus.DELETED)

    @property
    def valid(self) -> bool:
        """A value clinicians may act on and other domains may read (final or corrected)."""
        return self in (ResultStatus.FINAL, ResultStatus.CORRECTED)


#: OBX-8 abnormal flags (table 0078) naho shows; others are kept as sent.
ABNORMAL_FLAGS = frozenset({"L", "H", "LL", "HH", "<", ">", "A", "AA", "N", "U", "D", "B", "W", "S", "R", "I"})
CRITICAL_FLAGS = frozenset({"LL", "HH", "AA"})
_LOINC = re.compile(r"^\d{1,7}-\d$")
_NUMBER = re.compile(r"^\s*([<>]=?)?\s*([+-]?\d+(?:[.,]\d+)?(?:[eE][+-]?\d+)?)\s*$")
_RANGE = re.compile(r"^\s*([+-]?\d+(?:[.,]\d+)?)\s*-\s*([+-]?\d+(?:[.,]\d+)?)\s*$")
_BOUND = re.compile(r"^\s*([<>]=?)\s*([+-]?\d+(?:[.,]\d+)?)\s*$")
#: Unit spellings laboratories send, in UCUM (case-sensitive: "L" is litre, "l" is not UCUM).
_UCUM = {"µmol/l": "umol/L", "umol/l": "umol/L", "mmol/l": "mmol/L", "mg/l": "mg/L", "g/l": "g/L",
         "mg/dl": "mg/dL", "g/dl": "g/dL", "ui/l": "[IU]/L", "u/l": "U/L", "iu/l": "[IU]/L", "giga/l": "10*9/L",
         "g/l ": "g/L", "10^9/l": "10*9/L", "10*9/l": "10*9/L", "tera/l": "10*12/L", "10^12/l": "10*12/L",
         "%": "%", "fl": "fL", "pg": "pg", "sec": "s", "s": "s", "mmhg": "mm[Hg]", "ml/min": "mL/min",
         "ml/min/1,73m2": "mL/min/{1.73_m2}", "ml/min/1.73m2": "mL/min/{1.73_m2}"}


def check_loinc(code: str) -> str:
    """The LOINC code (number, dash, check digit), or NotLoinc."""
    code = code.strip()
    if not _LOINC.match(code):
        raise NotLoinc(f"{code!r} is not a LOINC code")
    return code


def ucum(unit: str) -> str:
    """A unit as UCUM writes it, from the spellings laboratories use ("µmol/l" → "umol/L")."""
    unit = unit.strip()
    return _UCUM.get(unit.lower(), unit)


@dataclass(frozen=True)
class Value:
    """A result's value: a number (with a comparator for "<5"), or text."""

    number: float | None
    text: str | None
    comparator: str = ""


def parse_value(value_type: str, raw: str) -> Value:
    """OBX-5 read according to OBX-2: NM and SN are numbers (French decimal commas accepted),
    ST, TX, FT and CE are text; NotANumber for an NM that is none."""
    raw = raw.strip()
    if value_type in ("NM", "SN"):
        if value_type == "SN":  # structured numeric: comparator ^ number
            parts = raw.split("^")
            raw = "".join(parts[:2])
        match = _NUMBER.match(raw)
        if match is None:
            raise NotANumber(f"{raw!r} is not a number")
        number = float(match.group(2).replace(",", "."))
        if not math.isfinite(number):
            raise NotANumber(f"{raw!r} is not a finite number")
        return Value(number, None, match.group(1) or "")
    return Value(None, raw or None)


@dataclass(frozen=True)
class ReferenceRange:
    """OBX-7 as sent and its bounds when readable ("3.5-5.1", "<5", ">60")."""

    text: str
    low: float | None
    high: float | None


def parse_range(text: str) -> ReferenceRange:
    text = text.strip()
    if match := _RANGE.match(text):
        low, high = (float(g.replace(",", ".")) for g in match.groups())
        return ReferenceRange(text, low, high)
    if match := _BOUND.match(text):
        bound = float(match.group(2).replace(",", "."))
        above = match.group(1).startswith(">")
        return ReferenceRange(text, bound if above else None, None if above else bound)
    return ReferenceRange(text, None, None)


def parse_status(code: str) -> ResultStatus:
    try:
        return ResultStatus(code.strip().upper())
    except ValueError:
        raise UnknownResultStatus(f"result status {code!r} is not one of P, F, C, X, D") from None


def parse_flags(raw: Iterable[str]) -> tuple[str, ...]:
    """OBX-8 repetitions, upper-cased, empty ones dropped."""
    return tuple(f.strip().upper() for f in raw if f.strip())


def derive_flags(value: Value, reference: ReferenceRange, sent: Sequence[str]) -> tuple[str, ...]:
    """The flags sent win; without any, L or H from the reference range (the laboratory's own
    judgement first: it knows the method, the age and sex norms)."""
    if sent:
        return tuple(sent)
    if value.number is None:
        return ()
    if reference.low is not None and value.number < reference.low:
        return ("L",)
    if reference.high is not None and value.number > reference.high:
        return ("H",)
    return ()


def is_abnormal(flags: Sequence[str]) -> bool:
    return any(f not in ("N", "") for f in flags)


def next_status(previous: ResultStatus | None, received: ResultStatus) -> ResultStatus:
    """The status a result takes when `received` follows `previous` for the same test of the
    same report; a preliminary after a final is refused (FinalResultNotPreliminary)."""
    if previous is not None and previous.valid and received is ResultStatus.PRELIMINARY:
        raise FinalResultNotPreliminary("a final result cannot be replaced by a preliminary one")
    return received


# --- the chart's laboratory results (record.rules.LAB_RESULTS) -----------------------------------

@dataclass(frozen=True)
class ChartConversion:
    """How a result feeds the chart: into `loinc` in `unit`, multiplying by `factor`."""

    loinc: str
    unit: str
    factor: float


#: Serum creatinine: 14682-9 in µmol/L as is; 2160-0 in mg/dL × 88.42 (molar mass 113.12 g/mol).
CHART_FEEDS: dict[tuple[str, str], ChartConversion] = {
    ("14682-9", "umol/L"): ChartConversion("14682-9", "umol/L", 1.0),
    ("2160-0", "mg/dL"): ChartConversion("14682-9", "umol/L", 88.42),
    ("2160-0", "mg/L"): ChartConversion("14682-9", "umol/L", 8.842),
}


def chart_value(loinc: str, unit: str, number: float | None) -> tuple[str, str, float] | None:
    """The (LOINC, unit, value) a numeric result files in the chart, or None if the chart does
    not keep this test in this unit."""
    conversion = CHART_FEEDS.get((loinc, unit))
    if conversion is None or number is None:
        return None
    return conversion.loinc, conversion.unit, round(number * conversion.factor, 2)


# --- critical values -----------------------------------------------------------------------------

@dataclass(frozen=True)
class CriticalThreshold:
    """A test's critical limits in one unit (naho/results/data/critical_values.yaml)."""

    loinc: str
    label: str
    unit: str
    low: float | None
    high: float | None


@dataclass(frozen=True)
class CriticalRules:
    thresholds: Mapping[str, CriticalThreshold]
    #: Minutes an alert waits for its acknowledgement before going to the unit's senior physician.
    escalate_after_minutes: float = 15.0
    #: Unit code → usernames of the senior physicians (chef de service) alerts escalate to.
    senior_physicians: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


class BadCriticalValues(ValueError):
    """The critical values file does not have the documented shape."""


def load_critical_rules(data: Mapping[str, object]) -> CriticalRules:
    """The critical values file as read by yaml.safe_load (see the file's header for its shape)."""
    try:
        tests = data.get("tests") or {}
        assert isinstance(tests, Mapping)
        thresholds = {}
        for loinc, spec in tests.items():
            assert isinstance(spec, Mapping)
            low, high = spec.get("low"), spec.get("high")
            if low is None and high is None:
                raise BadCriticalValues(f"{loinc}: give low, high or both")
            thresholds[check_loinc(str(loinc))] = CriticalThreshold(
                str(loinc), str(spec["label"]), ucum(str(spec["unit"])),
                float(low) if low is not None else None, float(high) if high is not None else None)
        seniors = data.get("senior_physicians") or {}
        assert isinstance(seniors, Mapping)
        minutes = data.get("escalate_after_minutes", 15)
        assert isinstance(minutes, int | float)
        return CriticalRules(thresholds, float(minutes),
                             {str(unit): tuple(str(u) for u in users) for unit, users in seniors.items()})
    except (AssertionError, KeyError, TypeError, ValueError, NotLoinc) as exc:
        if isinstance(exc, BadCriticalValues):
            raise
        raise BadCriticalValues(f"critical values file: {exc}") from exc


def critical(rules: CriticalRules, loinc: str, unit: str, number: float | None, flags: Sequence[str]) -> str | None:
    """"low" or "high" when the result is a critical value, else None: beyond the configured
    threshold (same unit only: a threshold in another unit proves nothing), or flagged LL/HH/AA
    by the laboratory."""
    threshold = rules.thresholds.get(loinc)
    if threshold is not None and number is not None and threshold.unit == unit:
        if threshold.low is not None and number <= threshold.low:
            return "low"
        if threshold.high is not None and number >= threshold.high:
            return "high"
    if "LL" in flags:
        return "low"
    if "HH" in flags or "AA" in flags:
        return "high"
    return None


def escalation_due(raised_at: datetime, acknowledged: bool, escalated: bool, now: datetime,
                   minutes: float) -> bool:
    """An alert goes to the senior physician when nobody acknowledged it in time, once."""
    return not acknowledged and not escalated and (now - raised_at).total_seconds() >= minutes * 60


# --- the cumulative table ------------------------------------------------------------------------

@dataclass(frozen=True)
class Cell:
    """One result in the cumulative table."""

    shown: str
    number: float | None
    unit: str
    flags: tuple[str, ...]
    status: str
    corrected: bool
    previous: tuple[str, ...]  # values it replaced, oldest first


@dataclass(frozen=True)
class Row:
    loinc: str
    label: str
    unit: str
    reference: str
    cells: dict[datetime, Cell]


@dataclass(frozen=True)
class Version:
    """One received version of one test of one report (the input of the cumulative table)."""

    chain: object  # what identifies the test of the report across versions
    loinc: str
    label: str
    number: float | None
    text: str | None
    comparator: str
    unit: str
    reference: str
    flags: tuple[str, ...]
    status: str
    observed_at: datetime
    received_order: int


def shown_value(number: float | None, text: str | None, comparator: str = "") -> str:
    if number is not None:
        return f"{comparator}{number:g}"
    return text or ""


def cumulative(versions: Iterable[Version]) -> tuple[list[datetime], list[Row]]:
    """Tests × dates: each test's latest version per report, the values it replaced kept beside
    it; columns are the observation times, newest first; rows in the order tests first appear."""
    chains: dict[object, list[Version]] = {}
    for v in sorted(versions, key=lambda v: v.received_order):
        chains.setdefault(v.chain, []).append(v)
    rows: dict[str, Row] = {}
    dates: set[datetime] = set()
    for chain in chains.values():
        latest = chain[-1]
        earlier = tuple(shown_value(v.number, v.text, v.comparator) for v in chain[:-1]
                        if not ResultStatus(v.status).withdrawn)
        cell = Cell(shown_value(latest.number, latest.text, latest.comparator), latest.number, latest.unit,
                    latest.flags, latest.status, latest.status == ResultStatus.CORRECTED, earlier)
        row = rows.setdefault(latest.loinc, Row(latest.loinc, latest.label, latest.unit, latest.reference, {}))
        row.cells[latest.observed_at] = cell
        dates.add(latest.observed_at)
    return sorted(dates, reverse=True), list(rows.values())


def trend(points: Sequence[tuple[datetime, float]], reference_low: float | None,
          reference_high: float | None) -> tuple[float, float]:
    """The vertical span of a test's trend plot: every point and the reference band, with a margin."""
    values = [v for _, v in points] + [b for b in (reference_low, reference_high) if b is not None]
    if not values:
        return 0.0, 1.0
    low, high = min(values), max(values)
    margin = max((high - low) * 0.1, abs(high) * 0.05, 0.1)
    return low - margin, high + margin
