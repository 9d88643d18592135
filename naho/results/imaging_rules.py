"""Pure rules of imaging: what a DICOMweb (QIDO-RS) answer says about studies, series and
instances, the display windows, the accession numbers of imaging orders, and who may order,
report and see which study.

No I/O: the PACS adapters (`orthanc.py`, `dicom_store.py`) hand the DICOM JSON model
(PS3.18 F.2) to these parsers, so both adapters answer the same summaries.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from naho.platform.errors import DomainError, Forbidden
from naho.platform.security.rules import Role
from naho.staff.rules import luhn_key

#: DICOM attribute tags (group+element, as the JSON model keys them).
STUDY_DATE, STUDY_TIME = "00080020", "00080030"
ACCESSION_NUMBER = "00080050"
MODALITIES_IN_STUDY = "00080061"
MODALITY = "00080060"
STUDY_DESCRIPTION, SERIES_DESCRIPTION = "00081030", "0008103E"
REFERRING_PHYSICIAN = "00080090"
SOP_CLASS_UID, SOP_INSTANCE_UID = "00080016", "00080018"
PATIENT_NAME, PATIENT_ID, ISSUER_OF_PATIENT_ID = "00100010", "00100020", "00100021"
OTHER_PATIENT_IDS_SEQUENCE = "00101002"
BODY_PART = "00180015"
STUDY_UID, SERIES_UID = "0020000D", "0020000E"
STUDY_ID, SERIES_NUMBER, INSTANCE_NUMBER = "00200010", "00200011", "00200013"
SERIES_COUNT, STUDY_INSTANCE_COUNT, SERIES_INSTANCE_COUNT = "00201206", "00201208", "00201209"
NUMBER_OF_FRAMES = "00280008"
#: What naho asks QIDO-RS to return beyond the defaults of each level.
STUDY_FIELDS = (STUDY_DESCRIPTION, MODALITIES_IN_STUDY, SERIES_COUNT, STUDY_INSTANCE_COUNT, ISSUER_OF_PATIENT_ID,
                OTHER_PATIENT_IDS_SEQUENCE)
SERIES_FIELDS = (SERIES_DESCRIPTION, BODY_PART, SERIES_INSTANCE_COUNT)
INSTANCE_FIELDS = (NUMBER_OF_FRAMES,)

_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


class ImagingRefused(DomainError):
    """A value that breaks an imaging rule (status 422)."""

    status = 422


class NotAUid(ImagingRefused):
    """A DICOM UID is digits and dots, at most 64 characters (PS3.5 9.1)."""


def is_uid(value: str) -> bool:
    """A DICOM UID: what naho puts in a PACS URL is checked so, never passed through as typed."""
    return 0 < len(value) <= 64 and _UID.match(value) is not None


def require_uid(value: str) -> str:
    if not is_uid(value):
        raise NotAUid("not a DICOM UID", rule="NotAUid")
    return value


# --- the DICOM JSON model ------------------------------------------------------------------------

def _values(item: Mapping[str, Any], tag: str) -> list[Any]:
    element = item.get(tag)
    if not isinstance(element, Mapping):
        return []
    values = element.get("Value")
    return list(values) if isinstance(values, list) else []


def text_of(item: Mapping[str, Any], tag: str) -> str:
    """The first value as text ('' when absent); a person name as 'FAMILY Given'."""
    values = _values(item, tag)
    if not values or values[0] is None:
        return ""
    first = values[0]
    if isinstance(first, Mapping):  # PN: {"Alphabetic": "DOE^JOHN"}
        return " ".join(p for p in str(first.get("Alphabetic", "")).split("^") if p).strip()
    return str(first).strip()


def int_of(item: Mapping[str, Any], tag: str) -> int | None:
    value = text_of(item, tag)
    try:
        return int(float(value)) if value else None
    except ValueError:
        return None


def dicom_datetime(day: str, clock: str, zone: ZoneInfo) -> datetime | None:
    """DA (YYYYMMDD) and TM (HHMMSS.FFFFFF, parts optional) in the modality's local time, as UTC."""
    try:
        d = date(int(day[0:4]), int(day[4:6]), int(day[6:8])) if len(day) >= 8 else None
    except ValueError:
        return None
    if d is None:
        return None
    digits = clock.split(".")[0]
    try:
        t = time(int(digits[0:2] or 0), int(digits[2:4] or 0), int(digits[4:6] or 0)) if digits else time(0)
    except ValueError:
        t = time(0)
    return datetime.combine(d, t, tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True)
class StudySummary:
    """One study as the PACS knows it: whose (PatientID and its issuer, other ids), which order
    it fulfils (accession number), when, what."""

    uid: str
    patient_id: str
    issuer: str
    other_patient_ids: tuple[tuple[str, str], ...]  # (id, issuer)
    patient_name: str
    accession_number: str
    performed_at: datetime | None
    description: str
    modalities: tuple[str, ...]
    series_count: int | None
    instance_count: int | None


@dataclass(frozen=True)
class SeriesSummary:
    study_uid: str
    uid: str
    modality: str
    number: int | None
    description: str
    body_part: str
    instance_count: int | None


@dataclass(frozen=True)
class InstanceRef:
    """One image (or multi-frame object) of a series, in the order the viewer scrolls."""

    study_uid: str
    series_uid: str
    uid: str
    number: int | None
    frames: int


def study_from_json(item: Mapping[str, Any], zone: ZoneInfo) -> StudySummary | None:
    """A QIDO-RS study (DICOM JSON); None when it has no valid Study Instance UID."""
    uid = text_of(item, STUDY_UID)
    if not is_uid(uid):
        return None
    others = tuple((text_of(o, PATIENT_ID), text_of(o, ISSUER_OF_PATIENT_ID))
                   for o in _values(item, OTHER_PATIENT_IDS_SEQUENCE) if isinstance(o, Mapping))
    modalities = tuple(str(m) for m in _values(item, MODALITIES_IN_STUDY) if m)
    return StudySummary(
        uid=uid, patient_id=text_of(item, PATIENT_ID), issuer=text_of(item, ISSUER_OF_PATIENT_ID),
        other_patient_ids=tuple(o for o in others if o[0]), patient_name=text_of(item, PATIENT_NAME),
        accession_number=text_of(item, ACCESSION_NUMBER),
        performed_at=dicom_datetime(text_of(item, STUDY_DATE), text_of(item, STUDY_TIME), zone),
        description=text_of(item, STUDY_DESCRIPTION), modalities=modalities,
        series_count=int_of(item, SERIES_COUNT), instance_count=int_of(item, STUDY_INSTANCE_COUNT))


def studies_from_json(items: Iterable[Mapping[str, Any]], zone: ZoneInfo) -> list[StudySummary]:
    """Studies newest first (undated last); the same study twice (two ids matched) once."""
    seen: dict[str, StudySummary] = {}
    for item in items:
        study = study_from_json(item, zone)
        if study is not None:
            seen.setdefault(study.uid, study)
    oldest = datetime.min.replace(tzinfo=UTC)
    return sorted(seen.values(), key=lambda s: (s.performed_at or oldest, s.uid), reverse=True)


def series_from_json(items: Iterable[Mapping[str, Any]], study_uid: str) -> list[SeriesSummary]:
    """Series of a study in series number order."""
    found = [SeriesSummary(study_uid, uid, text_of(i, MODALITY), int_of(i, SERIES_NUMBER),
                           text_of(i, SERIES_DESCRIPTION), text_of(i, BODY_PART), int_of(i, SERIES_INSTANCE_COUNT))
             for i in items if is_uid(uid := text_of(i, SERIES_UID))]
    return sorted(found, key=lambda s: (s.number is None, s.number or 0, s.uid))


def instances_from_json(items: Iterable[Mapping[str, Any]], study_uid: str, series_uid: str) -> list[InstanceRef]:
    """Instances of a series in instance number order (the scrolling order of the viewer)."""
    found = [InstanceRef(study_uid, series_uid, uid, int_of(i, INSTANCE_NUMBER),
                         max(1, int_of(i, NUMBER_OF_FRAMES) or 1))
             for i in items if is_uid(uid := text_of(i, SOP_INSTANCE_UID))]
    return sorted(found, key=lambda x: (x.number is None, x.number or 0, x.uid))


@dataclass(frozen=True)
class Frame:
    """One picture the viewer shows: an instance and a frame in it (1-based, as DICOMweb)."""

    instance_uid: str
    frame: int


def frames_of(instances: Sequence[InstanceRef]) -> list[Frame]:
    """Every frame of a series, in scrolling order: each instance's frames in turn."""
    return [Frame(i.uid, n) for i in instances for n in range(1, i.frames + 1)]


# --- whose study -------------------------------------------------------------------------------

def study_belongs(study: StudySummary, ipp: str, *, authority: str, other_ids: Iterable[tuple[str, str]] = ()) -> bool:
    """Is this study the patient's? Its PatientID is our IPP (issuer ours or unstated), or one of
    its ids (PatientID or Other Patient IDs) is an id the patient is known by in that issuer's
    domain. A bare id of another issuer never matches: two domains' numbers collide."""
    ours = authority.upper()
    known = {(value, issuer.upper()) for value, issuer in other_ids if value and issuer}
    candidates = ((study.patient_id, study.issuer), *study.other_patient_ids)
    for value, issuer in candidates:
        if not value:
            continue
        if value == ipp and issuer.upper() in ("", ours):
            return True
        if issuer and (value, issuer.upper()) in known:
            return True
    return False


# --- display windows ---------------------------------------------------------------------------

@dataclass(frozen=True)
class WindowPreset:
    """A grey-level window in Hounsfield units (center, width), as PS3.3 C.11.2.1.2 applies it."""

    code: str
    center: float
    width: float

    @property
    def dicomweb(self) -> str:
        """The `window` parameter of a DICOMweb rendered request (PS3.18 8.3.5.1.4)."""
        return f"{self.center:g},{self.width:g},linear"


#: Usual CT presets; "default" (no preset) is the window the modality wrote in the image.
WINDOW_PRESETS: dict[str, WindowPreset] = {p.code: p for p in (
    WindowPreset("soft-tissue", 40, 400),
    WindowPreset("lung", -600, 1500),
    WindowPreset("bone", 400, 1800),
    WindowPreset("brain", 40, 80),
)}


class UnknownWindow(ImagingRefused):
    """No such display window."""


def window_preset(code: str | None) -> WindowPreset | None:
    """The preset a request names; None or '' for the image's own window."""
    if not code:
        return None
    preset = WINDOW_PRESETS.get(code)
    if preset is None:
        raise UnknownWindow(f"unknown window {code!r}", rule="UnknownWindow")
    return preset


def window_bounds(center: float, width: float) -> tuple[float, float]:
    """The values mapped to black and white by the linear window of PS3.3 C.11.2.1.2.1: below
    `c - 0.5 - (w - 1) / 2` black, above `c - 0.5 + (w - 1) / 2` white (width at least 1)."""
    w = max(width, 1.0)
    return center - 0.5 - (w - 1) / 2, center - 0.5 + (w - 1) / 2


#: Sizes of the rendered pictures (longest side, pixels): thumbnails and the viewer.
THUMBNAIL_SIZE = 128
VIEWER_SIZE = 512


# --- imaging orders ----------------------------------------------------------------------------

class Urgency(StrEnum):
    ROUTINE = "routine"
    URGENT = "urgent"
    STAT = "stat"  # immediate: the patient's life depends on it


#: Modalities one may order (DICOM codes; the pages name them).
MODALITIES = frozenset({"CR", "CT", "MR", "US", "NM", "PT", "MG", "XA"})
MAX_BODY_PART, MAX_QUESTION, MIN_QUESTION = 100, 2000, 5
ACCESSION_PREFIX = "IM"


class ImagingOrderInvalid(ImagingRefused):
    """An imaging order needs a known modality, a body part, a clinical question and an urgency."""


@dataclass(frozen=True)
class OrderRequest:
    modality: str
    body_part: str
    question: str
    urgency: Urgency


def check_order(modality: str, body_part: str, question: str, urgency: str) -> OrderRequest:
    """The order as it will be kept, or ImagingOrderInvalid naming the first broken rule. The
    clinical question is what the radiologist needs to justify the exam (Code de la santé
    publique R1333-46: a request states its justification)."""
    modality, body_part, question = modality.strip().upper(), " ".join(body_part.split()), question.strip()
    if modality not in MODALITIES:
        raise ImagingOrderInvalid(f"unknown modality {modality!r}", rule="UnknownModality")
    if not body_part or len(body_part) > MAX_BODY_PART:
        raise ImagingOrderInvalid(f"the body part takes 1 to {MAX_BODY_PART} characters", rule="BodyPartRequired")
    if len(question) < MIN_QUESTION or len(question) > MAX_QUESTION:
        raise ImagingOrderInvalid(f"the clinical question takes {MIN_QUESTION} to {MAX_QUESTION} characters",
                                  rule="ClinicalQuestionRequired")
    try:
        level = Urgency(urgency)
    except ValueError:
        raise ImagingOrderInvalid(f"unknown urgency {urgency!r}", rule="UnknownUrgency") from None
    return OrderRequest(modality, body_part, question, level)


def accession_number(year: int, sequence: int) -> str:
    """The order's accession number: IM, two digits of the year, seven of the sequence, a Luhn
    key (12 characters: DICOM's SH takes 16; HL7 OBR-18/ORC-3 carry it as is)."""
    if not 0 < sequence < 10_000_000:
        raise ValueError("the accession sequence runs from 1 to 9,999,999 a year")
    body = f"{year % 100:02d}{sequence:07d}"
    return f"{ACCESSION_PREFIX}{body}{luhn_key(body)}"


def is_accession_number(value: str) -> bool:
    body = value[len(ACCESSION_PREFIX):]
    return (value.startswith(ACCESSION_PREFIX) and len(body) == 10 and body.isdigit()
            and luhn_key(body[:-1]) == body[-1])


class OrderStatus(StrEnum):
    ORDERED = "ordered"  # waiting for the exam
    PERFORMED = "performed"  # a study with its accession number is in the PACS
    REPORTED = "reported"  # the radiologist's report is signed
    CANCELLED = "cancelled"


def order_status(cancelled: bool, has_study: bool, has_report: bool) -> OrderStatus:
    if cancelled:
        return OrderStatus.CANCELLED
    if has_report:
        return OrderStatus.REPORTED
    return OrderStatus.PERFORMED if has_study else OrderStatus.ORDERED


# --- who may do what ---------------------------------------------------------------------------

#: Who sees images and reports: the clinicians of the care team (the door decides the relationship).
VIEWERS = frozenset({Role.PHYSICIAN, Role.NURSE, Role.PHARMACIST})
#: Who orders an exam and who writes a report: physicians (a radiologist is a physician).
ORDERERS = frozenset({Role.PHYSICIAN})
REPORTERS = frozenset({Role.PHYSICIAN})
MIN_REPORT, MAX_REPORT = 10, 20_000


class NotAllowedToOrder(Forbidden):
    """Only a physician orders an imaging exam."""


class NotAllowedToReport(Forbidden):
    """Only a physician writes an imaging report."""


class ReportInvalid(ImagingRefused):
    """A report needs its findings and a conclusion."""


def check_may_order(roles: frozenset[Role]) -> None:
    if not roles & ORDERERS:
        raise NotAllowedToOrder("only a physician orders an imaging exam", rule="NotAllowedToOrder")


def check_may_report(roles: frozenset[Role]) -> None:
    if not roles & REPORTERS:
        raise NotAllowedToReport("only a physician writes an imaging report", rule="NotAllowedToReport")


def check_report(findings: str, conclusion: str) -> tuple[str, str]:
    findings, conclusion = findings.strip(), conclusion.strip()
    if not MIN_REPORT <= len(findings) <= MAX_REPORT:
        raise ReportInvalid(f"the findings take {MIN_REPORT} to {MAX_REPORT} characters", rule="FindingsRequired")
    if not 1 <= len(conclusion) <= MAX_REPORT:
        raise ReportInvalid("the report needs a conclusion", rule="ConclusionRequired")
    return findings, conclusion
