"""FHIR R4 writes where naho is the source: create and update of Patient, create of Condition,
AllergyIntolerance and Observation (vital signs), and transaction / batch Bundles (bulk ingest).

Routes stay thin and go through the domain services, so a FHIR write obeys the same rules, the
same door and the same audit as the pages: `identity.service.register_patient` (duplicate stop)
and `update_traits`, `record.chart.add_condition | add_allergy | record_vitals`. Inbound
resources are validated with fhir.resources (R4B models), then mapped to the domains' shapes.

A Bundle is the bulk path (loading a legacy record, docs/adr/0005-fhir-writes-and-bulk-ingest.md):
only a system holding a bearer token with the INTERFACE role posts one; its rows are written in
bulk in one unit of work (`identity.service.import_identities`, `record.chart.import_entries`)
with one audit event for the whole bundle; duplicate identities are not stopped one by one but
left to identity vigilance's worklist, which sees them through their blocking keys.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any
from urllib.parse import unquote

from fastapi import APIRouter, Depends, Request
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.resource import Resource
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from naho.identity import fhir as identity_fhir
from naho.identity import service as identity
from naho.identity.errors import PossibleDuplicates
from naho.identity.schemas import PatientCreate
from naho.interop import fhir
from naho.platform import audit
from naho.platform.access import PatientNotFound, Purpose, decide
from naho.platform.deps import ActorDep, Container, ContainerDep
from naho.platform.errors import DomainError
from naho.platform.i18n import PARIS
from naho.platform.security.actor import Actor
from naho.platform.security.policy import Policy
from naho.platform.security.rules import CARE_ROLES, STAFF_ROLES, Role
from naho.record import chart, crossref
from naho.record import fhir as record_fhir
from naho.record import rules as record_rules
from naho.record.schemas import AllergyCreate, ConditionCreate, VitalsCreate

router = APIRouter(prefix=fhir.BASE_PATH, tags=["fhir"], dependencies=[Depends(fhir.negotiate)])
#: Who registers and corrects identities, as `/api/patients` (the door decides which patient).
REGISTRARS = Policy("fhir-registrars", {Role.ADMISSION_CLERK, Role.IDENTITY_VIGILANCE, Role.INTERFACE})
#: Who writes clinical entries: clinicians, for the patients of their care team (the door decides).
CLINICIANS = Policy("fhir-clinicians", CARE_ROLES)
#: Who posts Bundles: systems only; the route also requires a bearer token (ADR 0005).
BULK = Policy("fhir-bulk", {Role.INTERFACE})
ANY_CALLER = Policy("fhir-staff-or-interface", STAFF_ROLES | {Role.INTERFACE})

#: A registration that may be a known person is refused (409) unless this header states why it is
#: somebody else; the reason goes into the identity's history, as on the registration page.
#: Header values are ASCII: send accented reasons percent-encoded (UTF-8), they are decoded.
NOT_DUPLICATE_HEADER = "X-Naho-Not-Duplicate"
#: Why an identity is corrected (PUT Patient), kept in its history; a default says "FHIR".
REASON_HEADER = "X-Naho-Reason"
DEFAULT_REASON = "corrected through the FHIR API"
MAX_ENTRIES = 10_000

ICD10_SYSTEMS = frozenset({"http://hl7.org/fhir/sid/icd-10", "http://hl7.org/fhir/sid/icd-10-fr",
                           "https://smt.esante.gouv.fr/terminologie-cim-10"})
ATC_SYSTEM = "http://www.whocc.no/atc"
#: naho's substance codes for what ATC does not name (FOOD:peanut, ENV:latex), as stored.
SUBSTANCE_SYSTEM = "https://naho.ght-artois.fr/fhir/CodeSystem/substance"
LOINC_SYSTEM = "http://loinc.org"
UCUM_SYSTEM = "http://unitsofmeasure.org"
BLOOD_PRESSURE_PANEL = "85354-9"
_ACTIVE = {"active", "recurrence", "relapse"}
_RESOLVED = {"resolved", "remission", "inactive"}
_JSON_BODIES = frozenset({fhir.MEDIA_TYPE, "application/json", "application/json+fhir"})
_STATUS_LINE = {200: "200 OK", 201: "201 Created", 400: "400 Bad Request", 403: "403 Forbidden",
                404: "404 Not Found", 409: "409 Conflict", 412: "412 Precondition Failed",
                422: "422 Unprocessable Entity"}


fhir.WRITES.update({
    "Patient": fhir.WriteSupport(("create", "update"), (
        f"Create registers a provisional identity; a possible duplicate is refused (409) unless the header "
        f"{NOT_DUPLICATE_HEADER} states why this is somebody else (percent-encoded UTF-8). If-None-Exist takes "
        f"identifier=system|value (IPP, INS, or another system's identifier learnt from a bundle). Update "
        f"corrects traits and contact (RNIV rules), the reason in {REASON_HEADER}. "
        "Prefer: return=minimal|representation|OperationOutcome."), conditional_create=True),
    "Condition": fhir.WriteSupport(("create",), "Create: ICD-10 coded, active, by the patient's care team."),
    "AllergyIntolerance": fhir.WriteSupport(("create",), "Create: ATC or naho substance code, by the care team."),
    "Observation": fhir.WriteSupport(("create",), "Create: vital signs by LOINC (UCUM units; blood-pressure panel "
                                                  "85354-9 with components), by the care team."),
})
fhir.SYSTEM_WRITES.update({
    "transaction": "POST a Bundle of creates (Patient, Condition, AllergyIntolerance, Observation; urn:uuid "
                   "references; ifNoneExist on Patient; other systems' Patient.identifier kept): all or "
                   "nothing. Systems with a bearer token only.",
    "batch": "POST a Bundle of creates, each entry on its own. Systems with a bearer token only.",
})


# --- errors ----------------------------------------------------------------------------------------

class InvalidResource(fhir.FhirError):
    """The body is not a valid R4 resource of the expected type (the issues say where)."""

    def __init__(self, detail: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        if errors:
            self.extra["errors"] = errors


class UnsupportedMediaType(fhir.FhirError):
    status = 415
    issue = "not-supported"


class DuplicateSuspected(fhir.FhirError):
    status = 409
    issue = "duplicate"


class PreconditionFailed(fhir.FhirError):
    status = 412
    issue = "multiple-matches"


class BulkRefused(fhir.FhirError):
    status = 403
    issue = "forbidden"


# --- parsing -----------------------------------------------------------------------------------------

async def _json_body(request: Request) -> dict[str, Any]:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in _JSON_BODIES:
        raise UnsupportedMediaType(f"send the resource as {fhir.MEDIA_TYPE}, not {media or 'no content type'}")
    try:
        body = json.loads(await request.body())
    except ValueError as exc:
        raise fhir.InvalidRequest(f"the body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise fhir.InvalidRequest("the body must be a FHIR resource (a JSON object)")
    return body


def parse_resource(data: Any, expected: str | None = None) -> Resource:
    """A resource validated by its fhir.resources R4B model; 400 with every issue otherwise."""
    if not isinstance(data, dict):
        raise InvalidResource("a resource must be a JSON object")
    kind = data.get("resourceType")
    if expected is not None and kind != expected:
        raise InvalidResource(f"the body must be a {expected} resource, not {kind!r}")
    try:
        model = get_fhir_model_class(str(kind))
    except (ValueError, KeyError):
        raise InvalidResource(f"{kind!r} is not a FHIR R4 resource type") from None
    try:
        resource: Resource = model.model_validate(data)
    except ValidationError as exc:
        errors = [{"loc": [kind, *e.get("loc", ())], "msg": e.get("msg", "")} for e in exc.errors()]
        raise InvalidResource(f"invalid {kind} resource ({len(errors)} issue(s))", errors) from None
    return resource


def _when(value: Any, where: str) -> datetime | None:
    """A FHIR date or dateTime as an aware instant (a day alone: its midnight, Paris time)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=PARIS)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=PARIS)
    raise InvalidResource(f"{where} must be a full date or a date and time, not {value!r}")


def _coding(concept: Any, systems: frozenset[str] | set[str]) -> Any:
    return next((c for c in (concept.coding or ()) if c.system in systems and c.code), None) if concept else None


def _status_code(concept: Any) -> str | None:
    coding = next((c for c in (concept.coding or ()) if c.code), None) if concept else None
    return coding.code if coding else None


def _checked(shape: Callable[..., Any], where: str, **fields: Any) -> Any:
    try:
        return shape(**fields)
    except ValidationError as exc:
        raise InvalidResource(f"{where}: " + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                                       for e in exc.errors())) from None


def _refused(exc: record_rules.StayRuleError, where: str) -> chart.ChartEntryRefused:
    return chart.ChartEntryRefused(f"{where}: {exc}", rule=type(exc).__name__, issue="business-rule")


# --- FHIR → the chart's shapes ----------------------------------------------------------------------

def condition_data(resource: Any) -> tuple[ConditionCreate, str]:
    """Condition → (ConditionCreate, status active | resolved); the ICD-10 code checked."""
    coding = _coding(resource.code, ICD10_SYSTEMS)
    if coding is None:
        raise InvalidResource("Condition.code needs an ICD-10 coding (system http://hl7.org/fhir/sid/icd-10)")
    label = coding.display or (resource.code.text if resource.code else None)
    if not label:
        raise InvalidResource("Condition.code needs a display or a text (the problem as the clinician wrote it)")
    verification = _status_code(resource.verificationStatus)
    if verification in ("entered-in-error", "refuted"):
        raise InvalidResource(f"a Condition whose verificationStatus is {verification} is not recorded")
    clinical = _status_code(resource.clinicalStatus) or "active"
    if clinical not in _ACTIVE | _RESOLVED:
        raise InvalidResource(f"Condition.clinicalStatus {clinical!r} is not known")
    try:
        code = record_rules.check_icd10(coding.code)
    except record_rules.StayRuleError as exc:
        raise _refused(exc, "Condition.code") from None
    data = _checked(ConditionCreate, "Condition", icd10=code, label=label[:300],
                    onset=_when(resource.onsetDateTime, "Condition.onsetDateTime"))
    return data, "active" if clinical in _ACTIVE else "resolved"


def allergy_data(resource: Any) -> AllergyCreate:
    """AllergyIntolerance → AllergyCreate; the substance as ATC or one of naho's substance codes."""
    coding = _coding(resource.code, {ATC_SYSTEM, SUBSTANCE_SYSTEM})
    if coding is None:
        raise InvalidResource(f"AllergyIntolerance.code needs an ATC coding ({ATC_SYSTEM}) or a substance "
                              f"coding ({SUBSTANCE_SYSTEM}, e.g. FOOD:peanut)")
    code = f"ATC:{coding.code}" if coding.system == ATC_SYSTEM else coding.code
    clinical = _status_code(resource.clinicalStatus) or "active"
    verification = _status_code(resource.verificationStatus)
    if clinical != "active" or verification in ("entered-in-error", "refuted"):
        raise InvalidResource("only an active AllergyIntolerance (not refuted nor entered in error) is recorded")
    try:
        code = record_rules.check_substance(code)
    except record_rules.StayRuleError as exc:
        raise _refused(exc, "AllergyIntolerance.code") from None
    reaction = None
    if resource.reaction:
        first = resource.reaction[0]
        shown = [m.text or next((c.display for c in m.coding or () if c.display), None) for m in first.manifestation]
        reaction = first.description or ", ".join(s for s in shown if s) or None
    criticality = {"low": "low", "high": "high"}.get(resource.criticality or "", "unknown")
    created: AllergyCreate = _checked(
        AllergyCreate, "AllergyIntolerance", substance_code=code,
        substance_label=(coding.display or (resource.code.text if resource.code else None) or code)[:200],
        kind=resource.type or "allergy", criticality=criticality, reaction=(reaction or None) and reaction[:300])
    return created


def _quantity(quantity: Any, loinc: str, where: str) -> float:
    sign = record_rules.VITAL_BY_LOINC.get(loinc)
    if sign is None:
        known = ", ".join(f"{v.loinc} ({v.key})" for v in record_rules.VITAL_SIGNS.values())
        raise InvalidResource(f"{where}: LOINC {loinc} is not a vital sign naho records (known: {known})")
    if quantity is None or quantity.value is None:
        raise InvalidResource(f"{where} needs a valueQuantity")
    if quantity.code and quantity.code != sign.unit:
        raise InvalidResource(f"{where}: {sign.key} is recorded in {sign.unit} (UCUM), not {quantity.code}")
    value = float(quantity.value)
    try:
        record_rules.check_vital(sign.key, value)
    except record_rules.StayRuleError as exc:
        raise _refused(exc, where) from None
    return value


def vital_measures(resource: Any) -> tuple[list[tuple[str, float]], datetime | None]:
    """Observation → [(LOINC, value)], when: one vital sign, or a blood-pressure panel (85354-9)
    with its systolic and diastolic components (the FHIR vital-signs profile)."""
    if resource.status not in ("final", "amended", "corrected"):
        raise InvalidResource(f"only a final Observation is recorded, not one whose status is {resource.status}")
    coding = _coding(resource.code, {LOINC_SYSTEM})
    if coding is None:
        raise InvalidResource("Observation.code needs a LOINC coding (system http://loinc.org)")
    if coding.code == BLOOD_PRESSURE_PANEL:
        measures = []
        for index, component in enumerate(resource.component or ()):
            part = _coding(component.code, {LOINC_SYSTEM})
            if part is not None:
                where = f"Observation.component[{index}]"
                measures.append((part.code, _quantity(component.valueQuantity, part.code, where)))
        if not measures:
            raise InvalidResource("a blood-pressure panel needs its systolic and diastolic components")
    else:
        measures = [(coding.code, _quantity(resource.valueQuantity, coding.code, "Observation"))]
    when = _when(resource.effectiveDateTime, "Observation.effectiveDateTime")
    return measures, when


def _patient_reference(reference: Any, where: str) -> str:
    value = getattr(reference, "reference", None)
    if not value:
        raise InvalidResource(f"{where} must reference the patient (Patient/id)")
    return str(value)


def _existing_patient(value: str, where: str) -> uuid.UUID:
    """The id in `Patient/<id>` (or an absolute URL ending so); anything else is refused."""
    kind, _, tail = value.rstrip("/").rpartition("/")
    if kind.rsplit("/", 1)[-1] != "Patient":
        raise InvalidResource(f"{where} must reference a Patient (Patient/id), not {value!r}")
    try:
        return uuid.UUID(tail)
    except ValueError:
        raise fhir.ResourceNotFound(f"{where}: Patient/{tail} is not known") from None


def _identifier_condition(value: str) -> tuple[str | None, str]:
    """`identifier=system|value` of If-None-Exist (the only criterion a conditional create takes):
    naho's IPP, an INS, or the identifier another system gave (learnt from its earlier loads)."""
    name, _, token = value.strip().partition("=")
    if name != "identifier" or not token or "&" in token:
        raise fhir.InvalidRequest("If-None-Exist takes one criterion, identifier=system|value "
                                  f"({identity_fhir.IPP_SYSTEM}|…, an INS system or another system's)")
    parsed = fhir.parse_token(token)
    if not parsed.code:
        raise fhir.InvalidRequest("If-None-Exist: identifier needs a value")
    return parsed.system, parsed.code


def _is_ours(system: str | None) -> bool:
    return system in (None, identity_fhir.IPP_SYSTEM) or system in identity_fhir.INS_SYSTEMS


def _foreign_identifiers(resource: Any) -> list[tuple[str, str]]:
    """(system, value) of the identifiers another system gave this patient (its IPP...)."""
    return [(i.system, i.value) for i in resource.identifier or () if i.system and i.value and not _is_ours(i.system)]


def _known_by_foreign(session: Any, system: str, value: str) -> list[uuid.UUID]:
    """The patient another system's identifier was learnt for, following a merge."""
    found = crossref.patient_of(session, system, value)
    if found is None:
        return []
    return [identity.merged_into(session, found) or found]


def _refuse_assigned_identifiers(resource: Any) -> None:
    if identity_fhir.identifier_of(resource, identity_fhir.IPP_SYSTEM):
        raise InvalidResource("the IPP is assigned by naho: leave it out (or find the patient with "
                              "If-None-Exist: identifier=…)")
    if any(identity_fhir.identifier_of(resource, system) for system in identity_fhir.INS_SYSTEMS):
        raise InvalidResource("an INS is retrieved from the INSi teleservice by identity vigilance, not received")


# --- responses ---------------------------------------------------------------------------------------

def _header_text(request: Request, name: str) -> str | None:
    """A free-text header (a reason), percent-decoded; None when absent or blank."""
    value = unquote(request.headers.get(name) or "").strip()
    return value or None


def _prefer(request: Request) -> str:
    for part in request.headers.get("prefer", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "return":
            wanted = value.strip().strip('"')
            if wanted in ("minimal", "representation", "OperationOutcome"):
                return wanted
    return "representation"


def _written(request: Request, resource: Resource, status: int) -> Response:
    """201 / 200 with Location, and the body the client preferred (RFC 7240, FHIR http.html)."""
    kind = resource.get_resource_type()
    headers = {"Location": f"{fhir.base_url(request)}/{kind}/{resource.id}"}
    prefer = _prefer(request)
    if prefer == "minimal":
        return Response(status_code=status, headers={**headers, "Cache-Control": "no-store"})
    if prefer == "OperationOutcome":
        outcome = fhir.operation_outcome(status, f"{kind}/{resource.id} {'created' if status == 201 else 'updated'}")
        outcome.issue[0].severity, outcome.issue[0].code = "information", "informational"
        return fhir.FhirResponse(fhir.dump(outcome), status_code=status, headers=headers)
    return fhir.FhirResponse(fhir.dump(resource), status_code=status, headers=headers)


# --- Patient -----------------------------------------------------------------------------------------

def _find_by_identifier(container: Container, actor: Actor, condition: str) -> list[uuid.UUID]:
    system, value = _identifier_condition(condition)
    if not _is_ours(system):
        with container.session_factory() as s:
            return _known_by_foreign(s, str(system), value)
    criteria = identity_fhir.PatientCriteria(identifier=(system, value))
    found, _more = identity_fhir.find_patients(container.uow(), actor, container.ports["care"], criteria,
                                               offset=0, count=2)
    return [p.id for p in found]


def _duplicates(exc: PossibleDuplicates) -> DuplicateSuspected:
    shown = "; ".join(f"IPP {c['ipp']} {c['name']} born {c['birth_date']} ({c['verdict']}, score {c['score']})"
                      for c in exc.extra.get("candidates", []))
    return DuplicateSuspected(f"patients that may be this person already exist: {shown}. Use one of them, or "
                              f"send the header {NOT_DUPLICATE_HEADER}: <why this is somebody else>")


def create_patient(container: Container, actor: Actor, resource: Any, *, if_none_exist: str | None,
                   not_duplicate: str | None) -> tuple[Any, int]:
    _refuse_assigned_identifiers(resource)
    data = identity_fhir.patient_create(resource)
    if if_none_exist is not None:
        found = _find_by_identifier(container, actor, if_none_exist)
        if len(found) > 1:
            raise PreconditionFailed(f"If-None-Exist: {if_none_exist} matches several patients")
        if found:
            known = identity.get_patient(container.uow(), actor, found[0], Purpose.IDENTITY, container.ports["care"])
            return identity_fhir.patient_resource(known), 200
    try:
        created = identity.register_patient(container.uow(), actor, data, confirm_reason=not_duplicate)
    except PossibleDuplicates as exc:
        raise _duplicates(exc) from None
    return identity_fhir.patient_resource(created), 201


@router.post("/Patient", dependencies=[Depends(REGISTRARS)])
async def post_patient(request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    """Register an identity (a provisional one, with a new IPP), unless it may already exist (409)."""
    resource = parse_resource(await _json_body(request), "Patient")
    written, status = await run_in_threadpool(
        create_patient, container, actor, resource, if_none_exist=request.headers.get("if-none-exist"),
        not_duplicate=_header_text(request, NOT_DUPLICATE_HEADER))
    return _written(request, written, status)


def update_patient(container: Container, actor: Actor, patient_id: uuid.UUID, resource: Any, reason: str) -> Any:
    data = identity_fhir.traits_update(resource, reason)
    try:
        updated = identity.update_traits(container.uow(), actor, patient_id, data, container.ports["care"])
    except PatientNotFound:
        raise fhir.ResourceNotFound(f"Patient/{patient_id} is not known (naho assigns ids: create with POST)") \
            from None
    return identity_fhir.patient_resource(updated)


@router.put("/Patient/{resource_id}", dependencies=[Depends(REGISTRARS)])
async def put_patient(resource_id: str, request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    """Correct an identity's traits and contact (RNIV rules of `update_traits`: strict traits from
    INSi locked, a validated identity whose strict traits change goes back to provisional)."""
    resource = parse_resource(await _json_body(request), "Patient")
    if resource.id != resource_id:
        raise InvalidResource(f"the Patient's id ({resource.id!r}) must be the one in the URL ({resource_id!r})")
    try:
        patient_id = uuid.UUID(resource_id)
    except ValueError:
        raise fhir.ResourceNotFound(f"Patient/{resource_id} is not known") from None
    reason = _header_text(request, REASON_HEADER) or DEFAULT_REASON
    updated = await run_in_threadpool(update_patient, container, actor, patient_id, resource, reason)
    return _written(request, updated, 200)


# --- clinical entries --------------------------------------------------------------------------------

def _through_door(write: Callable[[], Any], patient_id: uuid.UUID) -> Any:
    try:
        return write()
    except PatientNotFound:
        # One answer for a patient that does not exist and one outside the caller's care team.
        raise fhir.ResourceNotFound(f"Patient/{patient_id} is not known") from None


def create_clinical(container: Container, actor: Actor, resource: Any, base: str) -> Resource:
    kind = resource.get_resource_type()
    port = container.ports["care"]
    if kind == "Condition":
        patient_id = _existing_patient(_patient_reference(resource.subject, "Condition.subject"), "Condition.subject")
        data, status = condition_data(resource)
        if status != "active":
            raise InvalidResource("a Condition created alone is active (a resolved one comes with a legacy record, "
                                  "in a transaction Bundle)")
        new_id = _through_door(lambda: chart.add_condition(container.uow(), actor, patient_id, data, port), patient_id)
    elif kind == "AllergyIntolerance":
        where = "AllergyIntolerance.patient"
        patient_id = _existing_patient(_patient_reference(resource.patient, where), where)
        allergy = allergy_data(resource)
        new_id = _through_door(lambda: chart.add_allergy(container.uow(), actor, patient_id, allergy, port),
                               patient_id)
    else:
        patient_id = _existing_patient(_patient_reference(resource.subject, "Observation.subject"),
                                       "Observation.subject")
        measures, when = vital_measures(resource)
        vitals = VitalsCreate(effective_at=when, **{record_rules.VITAL_BY_LOINC[code].key: value
                                                     for code, value in measures})
        rows = _through_door(lambda: chart.record_vitals(container.uow(), actor, patient_id, vitals, port),
                             patient_id)
        new_id = rows[0].id  # a panel is stored as its measures; the first names the Observation
    with container.session_factory() as s:
        # The entry as stored (codes in their normal form, author, dates): what a read answers.
        stored: Resource = record_fhir.read_chart_entry(s, kind, new_id, f"{base}/Binary")
    return stored


def _clinical_route(kind: str) -> Callable[..., Any]:
    async def post(request: Request, container: ContainerDep, actor: ActorDep) -> Response:
        resource = parse_resource(await _json_body(request), kind)
        written = await run_in_threadpool(create_clinical, container, actor, resource, fhir.base_url(request))
        return _written(request, written, 201)
    post.__name__ = f"post_{kind.lower()}"
    post.__doc__ = f"Record a {kind} in the chart of a patient of the caller's care team."
    return post


for _kind in ("Condition", "AllergyIntolerance", "Observation"):
    router.add_api_route(f"/{_kind}", _clinical_route(_kind), methods=["POST"], dependencies=[Depends(CLINICIANS)])


# --- Bundles: transaction and batch (bulk ingest) -----------------------------------------------------

WRITABLE = ("Patient", "Condition", "AllergyIntolerance", "Observation")


@dataclass
class _Entry:
    index: int
    kind: str = ""
    full_url: str | None = None
    if_none_exist: str | None = None
    patient: PatientCreate | None = None
    #: The patient a clinical entry belongs to: an existing id, or the fullUrl of a Patient entry.
    subject: uuid.UUID | str | None = None
    #: Identifiers another system gave the patient: kept (record.crossref) to find it again.
    foreign: list[tuple[str, str]] = field(default_factory=list)
    allergy: AllergyCreate | None = None
    condition: tuple[ConditionCreate, str] | None = None
    vitals: tuple[list[tuple[str, float]], datetime | None] | None = None
    error: DomainError | None = None
    status: int = 201
    location: str | None = None
    ids: list[uuid.UUID] = field(default_factory=list)


def _map_entry(index: int, raw: Any) -> _Entry:
    entry = _Entry(index)
    if not isinstance(raw, dict):
        raise fhir.InvalidRequest("an entry must be a JSON object")
    request = raw.get("request") or {}
    method, url = request.get("method"), str(request.get("url") or "")
    entry.full_url = raw.get("fullUrl")
    resource = parse_resource(raw.get("resource"))
    entry.kind = resource.get_resource_type()
    if method != "POST" or url.split("?")[0].strip("/") != entry.kind:
        raise fhir.InvalidRequest(f"entries create resources (request POST {entry.kind}); {method} {url} is "
                                  "not supported in a Bundle")
    if entry.kind not in WRITABLE:
        raise fhir.UnsupportedResourceType(f"{entry.kind} is not written here (supported: {', '.join(WRITABLE)})")
    if entry.kind == "Patient":
        _refuse_assigned_identifiers(resource)
        entry.patient = identity_fhir.patient_create(resource)
        entry.foreign = _foreign_identifiers(resource)
        entry.if_none_exist = request.get("ifNoneExist")
        if entry.if_none_exist is not None:
            _identifier_condition(entry.if_none_exist)
        return entry
    where, reference = {"Condition": ("Condition.subject", "subject"),
                        "AllergyIntolerance": ("AllergyIntolerance.patient", "patient"),
                        "Observation": ("Observation.subject", "subject")}[entry.kind]
    value = _patient_reference(getattr(resource, reference), where)
    entry.subject = value if value.startswith("urn:uuid:") else _existing_patient(value, where)
    if entry.kind == "Condition":
        entry.condition = condition_data(resource)
    elif entry.kind == "AllergyIntolerance":
        entry.allergy = allergy_data(resource)
    else:
        entry.vitals = vital_measures(resource)
    return entry


def _outcome_entry(error: DomainError) -> dict[str, Any]:
    outcome = fhir.operation_outcome(error.status, error.detail, issue=error.extra.get("issue"),
                                     errors=error.extra.get("errors") or ())
    return {"response": {"status": _STATUS_LINE.get(error.status, str(error.status)), "outcome": fhir.dump(outcome)}}


#: What an entry of a transaction or batch may hold besides its resource (Bundle.entry, R4).
_ENTRY_ELEMENTS = frozenset({"id", "extension", "modifierExtension", "link", "fullUrl", "resource", "search",
                             "request", "response"})
_REQUEST_ELEMENTS = frozenset({"id", "extension", "modifierExtension", "method", "url", "ifNoneMatch",
                               "ifModifiedSince", "ifMatch", "ifNoneExist"})


def _envelope(data: dict[str, Any]) -> tuple[str, list[Any]]:
    """The Bundle's own elements validated by the R4B model, its entries' envelopes checked here
    (validating 800 entry envelopes with the model cost a fifth of a whole bundle's ingest); each
    resource is then validated by its own model."""
    kind = data.get("type")
    if kind not in ("transaction", "batch"):
        raise fhir.InvalidRequest(f"POST {fhir.BASE_PATH} takes a Bundle of type transaction or batch, "
                                  f"not {kind!r}")
    entries = data.get("entry") or []
    if not isinstance(entries, list):
        raise InvalidResource("Bundle.entry must be a list")
    if len(entries) > MAX_ENTRIES:
        raise fhir.InvalidRequest(f"a Bundle holds at most {MAX_ENTRIES} entries; split the load")
    try:
        Bundle.model_validate({**data, "entry": None})
    except ValidationError as exc:
        errors = [{"loc": ["Bundle", *e.get("loc", ())], "msg": e.get("msg", "")} for e in exc.errors()]
        raise InvalidResource("invalid Bundle", errors) from None
    for index, entry in enumerate(entries):
        request = entry.get("request") if isinstance(entry, dict) else None
        where = f"Bundle.entry[{index}]"
        if not isinstance(entry, dict) or set(entry) - _ENTRY_ELEMENTS:
            raise InvalidResource(f"{where} is not a Bundle entry")
        if not isinstance(request, dict) or set(request) - _REQUEST_ELEMENTS or not all(
                isinstance(request.get(k), str) for k in ("method", "url")):
            raise InvalidResource(f"{where}.request needs a method and a url (and nothing unknown)")
        if not isinstance(entry.get("fullUrl", ""), str):
            raise InvalidResource(f"{where}.fullUrl must be a string")
    return kind, entries


def ingest_bundle(container: Container, actor: Actor, data: dict[str, Any]) -> dict[str, Any]:
    """A transaction (all or nothing) or a batch (each entry on its own), written in bulk in one
    unit of work with one audit event; returns the response Bundle as JSON."""
    kind, raw_entries = _envelope(data)
    transaction = kind == "transaction"
    entries: list[_Entry] = []
    for index, raw in enumerate(raw_entries):
        try:
            entries.append(_map_entry(index, raw))
        except DomainError as exc:
            if transaction:
                raise _at_entry(exc, index) from None
            entries.append(_Entry(index, error=exc))
    urls = [e.full_url for e in entries if e.full_url]
    if len(urls) != len(set(urls)):
        twice = next(u for u in urls if urls.count(u) > 1)
        raise InvalidResource(f"fullUrl {twice} names two entries of this Bundle")
    by_url = {e.full_url: e for e in entries if e.kind == "Patient" and e.full_url and e.error is None}
    for entry in entries:
        if entry.error is None and isinstance(entry.subject, str) and (
                not transaction or entry.subject not in by_url):
            error = InvalidResource(f"{entry.subject} names no Patient of this Bundle" if transaction else
                                    "entries of a batch do not reference one another (use a transaction)")
            if transaction:
                raise _at_entry(error, entry.index)
            entry.error = error
    uow = container.uow()
    port = container.ports["care"]
    with uow:
        s = uow.session
        now = uow.clock.now()
        # Conditional creates: a patient found by identifier is used, not created again.
        for entry in entries:
            if entry.error is None and entry.if_none_exist is not None:
                system, value = _identifier_condition(entry.if_none_exist)
                found = identity_fhir.ids_by_identifier(s, system, value) if _is_ours(system) else \
                    _known_by_foreign(s, str(system), value)
                if len(found) > 1:
                    error: DomainError = PreconditionFailed(f"ifNoneExist {entry.if_none_exist} matches "
                                                            "several patients")
                    if transaction:
                        raise _at_entry(error, entry.index)
                    entry.error = error
                elif found:
                    entry.ids, entry.status = found, 200
        # Existing patients named by reference: the door's decision, for administration (ADR 0005).
        existing = {e.subject for e in entries if e.error is None and isinstance(e.subject, uuid.UUID)} | \
            {e.ids[0] for e in entries if e.error is None and e.kind == "Patient" and e.ids}
        refused = {p for p in existing if decide(s, actor, p, Purpose.ADMINISTRATION, now, port) is None}
        for entry in entries:
            named = entry.ids[0] if entry.kind == "Patient" and entry.ids else entry.subject
            if entry.error is None and named in refused:
                error = fhir.ResourceNotFound(f"Patient/{named} is not known")
                if transaction:
                    raise _at_entry(error, entry.index)
                entry.error = error
        new_patients = [e for e in entries if e.error is None and e.kind == "Patient" and not e.ids]
        ids = identity.import_identities(s, [e.patient for e in new_patients if e.patient], now=now,
                                         actor_label=actor.label)
        for entry, patient_id in zip(new_patients, ids, strict=True):
            entry.ids = [patient_id]
        crossref.remember_patients(s, [(system, value, e.ids[0]) for e in entries if e.error is None and e.ids
                                       and e.kind == "Patient" for system, value in e.foreign],
                                   now=now, source=f"FHIR Bundle by {actor.label}")
        for entry in entries:  # urn:uuid references, now that their patients have ids
            if entry.error is None and isinstance(entry.subject, str):
                entry.subject = by_url[entry.subject].ids[0]
        ok = [e for e in entries if e.error is None]
        allergies = [e for e in ok if e.allergy is not None]
        conditions = [e for e in ok if e.condition is not None]
        vitals = [e for e in ok if e.vitals is not None]
        when = [(e, code, value, e.vitals[1] or now) for e in vitals if e.vitals for code, value in e.vitals[0]]
        written = chart.import_entries(
            s, author=actor.label, now=now,
            allergies=[(e.subject, e.allergy) for e in allergies],  # type: ignore[misc]
            conditions=[(e.subject, *e.condition) for e in conditions],  # type: ignore[misc]
            vitals=[(e.subject, code, value, at) for e, code, value, at in when])  # type: ignore[misc]
        for entry, row_id in zip(allergies, written["allergy"], strict=True):
            entry.ids = [row_id]
        for entry, row_id in zip(conditions, written["condition"], strict=True):
            entry.ids = [row_id]
        for (entry, _c, _v, _a), row_id in zip(when, written["observation"], strict=True):
            entry.ids.append(row_id)
        counts: dict[str, int] = {}
        for entry in ok:
            counts[entry.kind] = counts.get(entry.kind, 0) + 1
        patients = sorted({str(e.ids[0]) for e in ok if e.kind == "Patient"} |
                          {str(e.subject) for e in ok if e.kind != "Patient"})
        audit.record(s, actor, "patient:record:import", at=now, target=f"Bundle {kind}",
                     details={"written": counts,
                              "patients_created": len(ids), "patients": patients,
                              "refused_entries": sum(1 for e in entries if e.error is not None)})
        uow.commit()
    return _response_bundle(kind, entries)


def _at_entry(error: DomainError, index: int) -> DomainError:
    """A transaction fails as a whole: the error names the entry it comes from."""
    error.detail = f"Bundle.entry[{index}]: {error.detail}"
    error.args = (error.detail,)
    return error


def _response_bundle(kind: str, entries: list[_Entry]) -> dict[str, Any]:
    """The transaction-response / batch-response, in entry order. Written as JSON directly: building
    it with the Bundle model cost as much as validating the bundle received (its shape is fixed
    here, and tests/interop/test_fhir_write.py validates it with fhir.resources)."""
    answered = []
    for entry in entries:
        if entry.error is not None:
            answered.append(_outcome_entry(entry.error))
            continue
        line = _STATUS_LINE[entry.status]
        answered.append({"response": {"status": line, "location": f"{entry.kind}/{entry.ids[0]}"}})
    return {"resourceType": "Bundle", "type": f"{kind}-response", "entry": answered}


@router.post("", dependencies=[Depends(BULK)])
async def post_bundle(request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    """A transaction or batch Bundle: the bulk path, for systems (a bearer token) only."""
    if actor.via != "token":
        raise BulkRefused("Bundles are posted by a system with a bearer token (naho token create), not from a "
                          "session")
    data = await _json_body(request)
    if data.get("resourceType") != "Bundle":
        raise InvalidResource(f"POST {fhir.BASE_PATH} takes a Bundle, not {data.get('resourceType')!r}")
    answer = await run_in_threadpool(ingest_bundle, container, actor, data)
    return fhir.FhirResponse(answer)


# --- anything else ---------------------------------------------------------------------------------------

@router.post("/{resource_type}", dependencies=[Depends(ANY_CALLER)])
def unsupported_create(resource_type: str) -> Response:
    raise fhir.UnsupportedResourceType(f"{resource_type!r} is not created here (supported: {', '.join(WRITABLE)})")


@router.put("/{resource_type}/{resource_id}", dependencies=[Depends(ANY_CALLER)])
def unsupported_update(resource_type: str, resource_id: str) -> Response:
    raise fhir.UnsupportedResourceType(f"{resource_type!r} is not updated here (supported: Patient)")
