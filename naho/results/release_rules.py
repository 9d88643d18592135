"""When a result reaches the patient's portal: pure rules, configurable per kind of result
(naho/results/data/release_rules.yaml). Values in, values out (STYLE.md R1).

A report is released once, at the moment its policy is met, and stays released (a later
correction is shown in its place: the patient sees what the physicians see). The policies:

* at validation: as soon as the laboratory sends it final (normal results, by default);
* after a physician has seen it (abnormal results, by default);
* after the physician has told the patient (sensitive results: HIV serology, genetics, cancer
  pathology), so that no one learns such news alone in front of a screen;
* a number of days after validation, or sooner when its author releases it (imaging reports).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any


class ReleaseRulesInvalid(ValueError):
    """The release rules file says something naho cannot apply."""


class ReleasePolicy(StrEnum):
    AT_VALIDATION = "at_validation"
    AFTER_SEEN = "after_seen"
    AFTER_TOLD = "after_told"
    AFTER_DAYS = "after_days"


class Waiting(StrEnum):
    """Why a report is still held back from the patient."""

    NOT_FINAL = "not_final"
    PHYSICIAN_SEEN = "physician_seen"
    PATIENT_TOLD = "patient_told"
    DELAY = "delay"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True)
class KindRules:
    """The policies of one kind of result (laboratory, imaging)."""

    normal: ReleasePolicy
    abnormal: ReleasePolicy
    sensitive: ReleasePolicy
    days: int
    sensitive_codes: frozenset[str]  # LOINC codes of sensitive tests
    sensitive_services: frozenset[str]  # battery / service codes (OBR-4) that are sensitive


@dataclass(frozen=True)
class ReleaseRules:
    kinds: Mapping[str, KindRules]

    def of(self, kind: str) -> KindRules:
        try:
            return self.kinds[kind]
        except KeyError as exc:
            raise ReleaseRulesInvalid(f"no release rules for results of kind {kind!r}") from exc


@dataclass(frozen=True)
class ReportFacts:
    """What the rules need to know of one report."""

    kind: str
    validated_at: datetime | None  # when it became final; None while preliminary
    withdrawn: bool  # every result cancelled or deleted
    abnormal: bool  # a current result carries an abnormal flag
    codes: frozenset[str]  # LOINC codes of its results
    service_code: str
    seen_at: datetime | None = None  # a physician marked it seen
    told_at: datetime | None = None  # the physician recorded that the patient was told
    author_released_at: datetime | None = None  # its author released it (imaging)


@dataclass(frozen=True)
class Decision:
    policy: ReleasePolicy
    sensitive: bool
    released_at: datetime | None  # None: held back
    waiting: Waiting | None  # why it is held back


_LOINC = re.compile(r"^\d{1,7}-\d$")
_DEFAULTS = {"normal": "at_validation", "abnormal": "after_seen", "sensitive": "after_told"}


def _policy(value: Any, where: str) -> ReleasePolicy:
    try:
        return ReleasePolicy(str(value))
    except ValueError as exc:
        choices = ", ".join(p.value for p in ReleasePolicy)
        raise ReleaseRulesInvalid(f"{where}: {value!r} is not a release policy ({choices})") from exc


def _codes(values: Iterable[Any], where: str) -> frozenset[str]:
    codes = frozenset(str(v).strip() for v in values)
    bad = sorted(c for c in codes if not _LOINC.match(c))
    if bad:
        raise ReleaseRulesInvalid(f"{where}: not LOINC codes: {', '.join(bad)}")
    return codes


def parse_release_rules(data: Mapping[str, Any]) -> ReleaseRules:
    """The rules file, checked whole: a mistake refuses the file rather than releasing early."""
    kinds: dict[str, KindRules] = {}
    for kind, raw in (data or {}).items():
        if not isinstance(raw, Mapping):
            raise ReleaseRulesInvalid(f"{kind}: a mapping of policies is expected")
        unknown = set(raw) - {"normal", "abnormal", "sensitive", "days", "sensitive_loinc", "sensitive_services"}
        if unknown:
            raise ReleaseRulesInvalid(f"{kind}: unknown keys {', '.join(sorted(unknown))}")
        policies = {key: _policy(raw.get(key, default), f"{kind}.{key}") for key, default in _DEFAULTS.items()}
        days = raw.get("days", 0)
        if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= 365:
            raise ReleaseRulesInvalid(f"{kind}.days: a whole number of days from 0 to 365 is expected")
        if ReleasePolicy.AFTER_DAYS in policies.values() and days == 0:
            raise ReleaseRulesInvalid(f"{kind}: after_days needs days > 0")
        # A sensitive result must never go out sooner than an abnormal one.
        if policies["sensitive"] is ReleasePolicy.AT_VALIDATION:
            raise ReleaseRulesInvalid(f"{kind}.sensitive: sensitive results cannot be released at validation")
        services = frozenset(str(s).strip().upper() for s in raw.get("sensitive_services", []) or [])
        kinds[str(kind)] = KindRules(
            normal=policies["normal"], abnormal=policies["abnormal"], sensitive=policies["sensitive"], days=days,
            sensitive_codes=_codes(raw.get("sensitive_loinc", []) or [], f"{kind}.sensitive_loinc"),
            sensitive_services=services)
    if not kinds:
        raise ReleaseRulesInvalid("no kind of result is described")
    return ReleaseRules(kinds)


def is_sensitive(facts: ReportFacts, rules: KindRules) -> bool:
    return bool(facts.codes & rules.sensitive_codes) or facts.service_code.strip().upper() in rules.sensitive_services


def decide(facts: ReportFacts, rules: ReleaseRules, now: datetime) -> Decision:
    """Is the report released to the patient, since when, or what does it wait for?"""
    kind = rules.of(facts.kind)
    sensitive = is_sensitive(facts, kind)
    policy = kind.sensitive if sensitive else kind.abnormal if facts.abnormal else kind.normal
    if facts.withdrawn:
        return Decision(policy, sensitive, None, Waiting.WITHDRAWN)
    if facts.validated_at is None:
        return Decision(policy, sensitive, None, Waiting.NOT_FINAL)
    if policy is ReleasePolicy.AT_VALIDATION:
        return Decision(policy, sensitive, facts.validated_at, None)
    if policy is ReleasePolicy.AFTER_SEEN:
        # Told implies seen: a physician who told the patient has seen the result.
        seen = min((t for t in (facts.seen_at, facts.told_at) if t is not None), default=None)
        return Decision(policy, sensitive, max(seen, facts.validated_at), None) if seen else Decision(
            policy, sensitive, None, Waiting.PHYSICIAN_SEEN)
    if policy is ReleasePolicy.AFTER_TOLD:
        return Decision(policy, sensitive, max(facts.told_at, facts.validated_at), None) if facts.told_at else Decision(
            policy, sensitive, None, Waiting.PATIENT_TOLD)
    due = facts.validated_at + timedelta(days=kind.days)
    if facts.author_released_at is not None and facts.author_released_at < due:
        due = max(facts.author_released_at, facts.validated_at)
    return Decision(policy, sensitive, due, None) if due <= now else Decision(policy, sensitive, None, Waiting.DELAY)
