"""Pure rules of the discharge letter (lettre de liaison à la sortie, Code de la santé publique
R. 1112-1-2): what it holds, what may still change, and the layout its PDF and its structured
twin (a FHIR document Bundle, ADR 0013) are drawn from. Values in, values or errors out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any

#: LOINC 11490-0 "Physician Discharge summary", the type code of the French discharge letter
#: (JDV_J07-XdsTypeCode-CISIS, as xdm.TYPE_DISCHARGE_LETTER).
LOINC_DISCHARGE_LETTER = "11490-0"
#: The free-text sections the physician writes, and their longest accepted text.
EDITABLE_SECTIONS = ("reasons", "procedures", "synthesis", "follow_up")
MAX_SECTION_CHARS = 20_000


class LetterStatus(StrEnum):
    DRAFT = "draft"
    SIGNED = "signed"


class LetterRuleError(ValueError):
    """Base of the discharge letter's refusals."""


class LetterAlreadySigned(LetterRuleError):
    """A signed letter is locked: it is filed and may have been sent as it is."""


class LetterSectionInvalid(LetterRuleError):
    """An edit names a section that is not free text, or is too long."""


@dataclass(frozen=True)
class Diagnosis:
    icd10: str
    label: str
    status: str  # active | resolved


@dataclass(frozen=True)
class Treatment:
    """A treatment at discharge and its change versus admission (medication.reconciliation)."""

    change: str  # new | continued | modified | stopped | not_reconciled
    drug: str
    dose: str | None
    frequency: str | None
    reason: str | None


@dataclass(frozen=True)
class PendingResult:
    label: str
    observed_at: dt.datetime
    status: str


@dataclass(frozen=True)
class FollowUp:
    starts_at: dt.datetime
    what: str
    where: str


@dataclass(frozen=True)
class LetterContent:
    """Everything the letter says. Drafted from the stay, then the free text is the physician's."""

    patient_name: str
    patient_birth_date: dt.date
    patient_sex: str
    ipp: str
    ins: str | None
    nda: str
    establishment: str
    unit: str | None
    admitted_at: dt.datetime
    discharged_at: dt.datetime | None
    diagnoses: tuple[Diagnosis, ...] = ()
    treatments: tuple[Treatment, ...] = ()
    pending_results: tuple[PendingResult, ...] = ()
    appointments: tuple[FollowUp, ...] = ()
    allergies: tuple[str, ...] = ()
    reasons: str = ""
    procedures: str = ""
    synthesis: str = ""
    follow_up: str = ""


def draft(*, patient_name: str, patient_birth_date: dt.date, patient_sex: str, ipp: str, ins: str | None, nda: str,
          establishment: str, unit: str | None, admitted_at: dt.datetime, discharged_at: dt.datetime | None,
          diagnoses: Sequence[Diagnosis], treatments: Sequence[Treatment], pending_results: Sequence[PendingResult],
          appointments: Sequence[FollowUp], allergies: Sequence[str], reasons: str = "") -> LetterContent:
    """The first draft: the stay's data in a stable order (active diagnoses first, treatments by
    change then name, the soonest appointment first); the free-text sections start empty but
    for the reasons for admission the stay may already carry."""
    order = {"new": 0, "modified": 1, "continued": 2, "stopped": 3, "not_reconciled": 4}
    return LetterContent(
        patient_name=patient_name, patient_birth_date=patient_birth_date, patient_sex=patient_sex, ipp=ipp, ins=ins,
        nda=nda, establishment=establishment, unit=unit, admitted_at=admitted_at, discharged_at=discharged_at,
        diagnoses=tuple(sorted(diagnoses, key=lambda d: (d.status != "active", d.icd10))),
        treatments=tuple(sorted(treatments, key=lambda t: (order.get(t.change, 9), t.drug.lower()))),
        pending_results=tuple(sorted(pending_results, key=lambda r: r.observed_at)),
        appointments=tuple(sorted(appointments, key=lambda a: a.starts_at)),
        allergies=tuple(allergies), reasons=reasons.strip())


def edit(content: LetterContent, status: LetterStatus, changes: Mapping[str, str]) -> LetterContent:
    """The letter with its free-text sections changed; refused once signed (LetterAlreadySigned)."""
    if status is LetterStatus.SIGNED:
        raise LetterAlreadySigned("a signed letter can no longer be changed")
    unknown = set(changes) - set(EDITABLE_SECTIONS)
    if unknown:
        raise LetterSectionInvalid(f"not a free-text section: {', '.join(sorted(unknown))}")
    cleaned: dict[str, Any] = {}
    for name, text in changes.items():
        text = text.replace("\r\n", "\n").strip()
        if len(text) > MAX_SECTION_CHARS:
            raise LetterSectionInvalid(f"section {name} exceeds {MAX_SECTION_CHARS} characters")
        cleaned[name] = text
    return replace(content, **cleaned)


def check_signable(status: LetterStatus) -> None:
    if status is LetterStatus.SIGNED:
        raise LetterAlreadySigned("the letter is already signed")


# --- storage as JSON ------------------------------------------------------------------------------


def to_json(content: LetterContent) -> dict[str, Any]:
    """The content as the letter row stores it (dates as ISO strings)."""
    def encode(value: Any) -> Any:
        if isinstance(value, dt.datetime | dt.date):
            return value.isoformat()
        if isinstance(value, dict):
            return {k: encode(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [encode(v) for v in value]
        return value
    data: dict[str, Any] = encode(asdict(content))
    return data


def from_json(data: Mapping[str, Any]) -> LetterContent:
    def when(value: str | None) -> dt.datetime | None:
        return dt.datetime.fromisoformat(value) if value else None

    admitted = when(data["admitted_at"])
    assert admitted is not None
    return LetterContent(
        patient_name=data["patient_name"], patient_birth_date=dt.date.fromisoformat(data["patient_birth_date"]),
        patient_sex=data["patient_sex"], ipp=data["ipp"], ins=data.get("ins"), nda=data["nda"],
        establishment=data["establishment"], unit=data.get("unit"), admitted_at=admitted,
        discharged_at=when(data.get("discharged_at")),
        diagnoses=tuple(Diagnosis(**d) for d in data.get("diagnoses", [])),
        treatments=tuple(Treatment(**t) for t in data.get("treatments", [])),
        pending_results=tuple(PendingResult(r["label"], dt.datetime.fromisoformat(r["observed_at"]), r["status"])
                              for r in data.get("pending_results", [])),
        appointments=tuple(FollowUp(dt.datetime.fromisoformat(a["starts_at"]), a["what"], a["where"])
                           for a in data.get("appointments", [])),
        allergies=tuple(data.get("allergies", [])),
        reasons=data.get("reasons", ""), procedures=data.get("procedures", ""), synthesis=data.get("synthesis", ""),
        follow_up=data.get("follow_up", ""))


# --- the layout shared by the PDF and the preview ----------------------------------------------


@dataclass(frozen=True)
class Section:
    """One titled block of the letter. `key` names it for the structured twin (LOINC code)."""

    key: str
    title: str
    lines: tuple[str, ...]


#: LOINC codes of the sections in the FHIR Composition (Composition.section.code).
SECTION_LOINC = {
    "reasons": ("42349-1", "Reason for referral (narrative)"),
    "diagnoses": ("11535-2", "Hospital discharge Dx Narrative"),
    "procedures": ("47519-4", "History of Procedures Document"),
    "synthesis": ("8648-8", "Hospital course Narrative"),
    "treatments": ("10183-2", "Hospital discharge medications Narrative"),
    "pending_results": ("30954-2", "Relevant diagnostic tests/laboratory data Narrative"),
    "follow_up": ("18776-5", "Plan of care note"),
    "allergies": ("48765-2", "Allergies and adverse reactions Document"),
}

CHANGE_LABELS = {"new": "new", "continued": "continued", "modified": "modified", "stopped": "stopped",
                 "not_reconciled": "not reconciled"}


def sections(content: LetterContent, labels: Mapping[str, str], tz: dt.tzinfo,
             none: str = "-") -> list[Section]:
    """The letter's sections in reading order. `labels` translates the titles and words (English
    keys: 'Reasons for admission', 'new'...); times are shown in `tz` (Europe/Paris on screen)."""
    def t(key: str) -> str:
        return labels.get(key, key)

    def at(moment: dt.datetime) -> str:
        return moment.astimezone(tz).strftime("%d/%m/%Y %H:%M")

    def text(value: str) -> tuple[str, ...]:
        return tuple(value.split("\n")) if value.strip() else (none,)

    treatments = tuple(
        " ".join(x for x in (f"[{t(CHANGE_LABELS.get(m.change, m.change))}]", m.drug, m.dose or "", m.frequency or "")
                 if x) + (f" ({m.reason})" if m.reason else "")
        for m in content.treatments) or (none,)
    return [
        Section("reasons", t("Reasons for admission"), text(content.reasons)),
        Section("diagnoses", t("Diagnoses"),
                tuple(f"{d.icd10} {d.label}" + ("" if d.status == "active" else f" ({t(d.status)})")
                      for d in content.diagnoses) or (none,)),
        Section("procedures", t("Procedures"), text(content.procedures)),
        Section("synthesis", t("Summary of the stay"), text(content.synthesis)),
        Section("treatments", t("Treatments at discharge"), treatments),
        Section("allergies", t("Allergies"), content.allergies or (none,)),
        Section("pending_results", t("Results pending"),
                tuple(f"{r.label} ({at(r.observed_at)})" for r in content.pending_results) or (none,)),
        Section("follow_up", t("Follow-up"),
                tuple(f"{at(a.starts_at)} {a.what} - {a.where}" for a in content.appointments)
                + (text(content.follow_up) if content.follow_up.strip() else ())
                or (none,)),
    ]
