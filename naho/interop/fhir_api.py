"""The FHIR R4 facade: read and search of Patient, Encounter, Organization, Location, Practitioner,
the chart (Condition, AllergyIntolerance, Observation, DocumentReference and its Binary), the
audit trail (AuditEvent), Patient/$everything, and the CapabilityStatement.

Routes stay thin: parameters are checked against `SUPPORTED` (the table the CapabilityStatement
is generated from), the domains' services answer, their `fhir.py` map to FHIR. Patient data goes
through the one door (STYLE.md R7): `identity.service` for patients, `platform.access` for the
patient of a stay; a patient one may not open is absent from searches and "not known" on read.
Clinical content is opened for care only, as on the patient page: an administrative reader
(admissions, identity vigilance, a system with a token) sees identities and stays, never the chart.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial

from fastapi import APIRouter, Depends, Request
from fhir.resources.R4B.binary import Binary
from fhir.resources.R4B.resource import Resource
from sqlalchemy.orm import Session
from starlette.responses import Response

from naho.identity import fhir as identity_fhir
from naho.identity import service as identity
from naho.interop import fhir, fhir_audit
from naho.medication import fhir as medication_fhir
from naho.platform import audit
from naho.platform.access import CareRelationshipPort, PatientNotFound, Purpose, access_patient, reading_purpose
from naho.platform.deps import ActorDep, ContainerDep
from naho.platform.security.actor import Actor
from naho.platform.security.policy import PUBLIC, Policy, requires
from naho.platform.security.rules import STAFF_ROLES, Role
from naho.record import chart
from naho.record import fhir as record_fhir
from naho.record import service as record
from naho.record.errors import EncounterNotFound
from naho.record.schemas import EncounterPublic
from naho.sites import fhir as sites_fhir
from naho.staff import fhir as staff_fhir
from naho.staff import service as staff

router = APIRouter(prefix=fhir.BASE_PATH, tags=["fhir"], dependencies=[Depends(fhir.negotiate)])
#: Staff, and systems calling with a bearer token; what they see of patients, the door decides.
READERS = Policy("staff-or-interface", STAFF_ROLES | {Role.INTERFACE})
#: A document's bytes: the clinicians the chart page lets download it (record.pages CLINICIANS).
DOCUMENT_READERS = requires(Role.PHYSICIAN, Role.NURSE, Role.PHARMACIST)
#: The audit trail: IT administrators (the /admin/audit page) and the medical information
#: department, which reviews accesses (break-the-glass) and answers patients asking who read them.
AUDIT_READERS = requires(Role.IT_ADMIN, Role.MEDICAL_INFORMATION)

_P = fhir.SearchParam
PATIENT = fhir.ResourceSupport("Patient", "Patients of the group's index (MPI); only those the caller may open.", (
    _P("identifier", "token", f"IPP ({identity_fhir.IPP_SYSTEM}|00001234) or INS (urn:oid:1.2.250.1.213.1.4.8|…, "
                              "qualified identities only)"),
    _P("family", "string", "Start of the birth or used name"),
    _P("given", "string", "Start of any first name (with identifier, family, name or birthdate)"),
    _P("name", "string", "Start of the birth or used name (or of a first name, with another criterion)"),
    _P("birthdate", "date", "eq (a day alone finds patients), ge, gt, le, lt"),
    _P("gender", "token", "male | female | other | unknown (with another criterion)"),
), operations=(fhir.Operation("everything", "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                              "The patient, their stays, problems, allergies, vital signs and documents, "
                              f"paged with _count (default and at most {fhir.MAX_COUNT}) and _offset"),))
ENCOUNTER = fhir.ResourceSupport("Encounter", "Stays (venues, IHE PAM FR) of the patients the caller may open.", (
    _P("patient", "reference", "Patient/id: the patient's stays, newest first"),
    _P("subject", "reference", "Patient/id, as patient"),
    _P("identifier", "token", f"NDA ({record_fhir.NDA_SYSTEM}|…)"),
    _P("status", "token", "planned | in-progress | onleave | finished | cancelled (comma: or)"),
    _P("date", "date", "A date within the stay (eq, ge, gt, le, lt)"),
), includes=("Encounter:patient", "Encounter:subject"))
ORGANIZATION = fhir.ResourceSupport("Organization", "The group (GHT) and its establishments.", (
    _P("identifier", "token", f"FINESS ({sites_fhir.FINESS_SYSTEM}|…) or establishment code "
                              f"({sites_fhir.ESTABLISHMENT_SYSTEM}|…)"),
    _P("name", "string", "Start of the name or short name"),
))
LOCATION = fhir.ResourceSupport("Location", "Units (wa), rooms (ro) and beds (bd) of the establishments.", (
    _P("identifier", "token", f"Unit ({sites_fhir.UNIT_SYSTEM}|…) or bed ({sites_fhir.BED_SYSTEM}|…) code"),
    _P("name", "string", "Start of the name"),
    _P("organization", "reference", "Organization/id of the establishment"),
    _P("partof", "reference", "Location/id: the rooms of a unit, the beds of a room"),
    _P("status", "token", "active | inactive"),
))
PRACTITIONER = fhir.ResourceSupport("Practitioner", "Professionals of the staff directory.", (
    _P("identifier", "token", f"RPPS ({staff_fhir.RPPS_SYSTEM}|…) or IDNPS ({staff_fhir.IDNPS_SYSTEM}|8…)"),
    _P("name", "string", "Part of the first or last name"),
))
_SUBJECT = (_P("patient", "reference", "Patient/id (required, or subject)"),
            _P("subject", "reference", "Patient/id, as patient"))
CONDITION = fhir.ResourceSupport("Condition", "Problems and diagnoses (ICD-10) of the patients the caller cares for.", (
    *_SUBJECT,
    _P("code", "token", f"ICD-10 ({record_fhir.ICD10_SYSTEM}|I10); comma: or"),
    _P("clinical-status", "token", "active | resolved"),
    _P("verification-status", "token", "confirmed | entered-in-error (left out unless asked for)"),
    _P("category", "token", "problem-list-item"),
), includes=("Condition:patient", "Condition:subject"))
ALLERGY = fhir.ResourceSupport("AllergyIntolerance", "Allergies and intolerances of the patients the caller "
                               "cares for.", (
    _P("patient", "reference", "Patient/id (required)"),
    _P("code", "token", f"ATC class or substance ({record_fhir.ATC_SYSTEM}|J01C) or another allergen "
                        f"({record_fhir.SUBSTANCE_SYSTEM}|FOOD:peanut); comma: or"),
    _P("clinical-status", "token", "active | inactive"),
    _P("verification-status", "token", "confirmed | entered-in-error (left out unless asked for)"),
    _P("category", "token", "medication | food | environment"),
), includes=("AllergyIntolerance:patient",))
OBSERVATION = fhir.ResourceSupport("Observation", "Vital signs (LOINC, UCUM units) of the patients the caller "
                                   "cares for, newest first.", (
    *_SUBJECT,
    _P("code", "token", f"LOINC ({record_fhir.LOINC_SYSTEM}|8867-4); comma: or"),
    _P("date", "date", "effectiveDateTime (eq, ge, gt, le, lt; repeat for a range)", repeatable=True),
    _P("category", "token", "vital-signs"),
    _P("status", "token", "final | entered-in-error (left out unless asked for)"),
), includes=("Observation:patient", "Observation:subject"))
DOCUMENT = fhir.ResourceSupport("DocumentReference", "Documents of the chart (PDF, text; content read as Binary) "
                                "and clinical notes (text inline) of the patients the caller cares for.", (
    *_SUBJECT,
    _P("date", "date", "When the document was filed or the note written (eq, ge, gt, le, lt; repeat for a "
                       "range)", repeatable=True),
    _P("type", "token", f"Notes by LOINC type ({record_fhir.LOINC_SYSTEM}|11506-3 progress note, 34746-8 nurse "
                        "note, 34109-9 other); comma: or"),
    _P("status", "token", "current"),
), includes=("DocumentReference:patient", "DocumentReference:subject"))
BINARY = fhir.ResourceSupport("Binary", "The content of a DocumentReference (same id), base64 in JSON; for "
                              "physicians, nurses and pharmacists caring for the patient.", (),
                              interactions=("read",))
AUDIT_EVENT = fhir.ResourceSupport("AuditEvent", "The audit trail, newest first: for IT administrators and the "
                                   "medical information department; reading it is itself audited.", (
    _P("patient", "reference", "Patient/id: the events about this patient"),
    _P("entity", "reference", "Patient/id, as patient"),
    _P("agent", "reference", "Practitioner/id: the events of this professional"),
    _P("agent-name", "string", "Part of the name or username of who acted"),
    _P("date", "date", "recorded (eq, ge, gt, le, lt; repeat for a range)", repeatable=True),
    _P("action", "token", "C | R | U | D | E; comma: or"),
    _P("subtype", "token", f"naho's audit tag ({fhir_audit.SUBTYPE_SYSTEM}|patient:record:denied); comma: or"),
))
MEDICATION = fhir.ResourceSupport("Medication", "Products of the group's formulary (livret thérapeutique), "
                                  "with their substances (ATC) and strengths.", (
    _P("code", "token", f"Product code ({medication_fhir.PRODUCT_SYSTEM}|PARA500CP); comma: or"),
    _P("ingredient-code", "token", f"ATC code or class of the first substance ({medication_fhir.ATC_SYSTEM}|N02BE); "
                                   "a prefix finds the class; comma: or"),
    _P("status", "token", "active | inactive"),
))
MEDICATION_REQUEST = fhir.ResourceSupport("MedicationRequest", "Medication orders of the patients the caller cares "
                                          "for, one resource per version (priorPrescription names the one it "
                                          "replaced), newest first.", (
    *_SUBJECT,
    _P("status", "token", "active | on-hold | stopped; comma: or"),
    _P("encounter", "reference", "Encounter/id: the orders of a stay"),
    _P("medication", "reference", "Medication/id: the orders of a product"),
), includes=("MedicationRequest:patient", "MedicationRequest:subject"))
MEDICATION_DISPENSE = fhir.ResourceSupport("MedicationDispense", "Doses dispensed nominatively by the pharmacy "
                                           "(one per labelled dose, lot and expiry in a contained Medication), of "
                                           "the patients the caller cares for, newest first.", (
    *_SUBJECT,
    _P("status", "token", "preparation | in-progress | completed; comma: or"),
    _P("prescription", "reference", "MedicationRequest/id: the doses of an order version"),
), includes=("MedicationDispense:patient", "MedicationDispense:subject"))
MEDICATION_ADMINISTRATION = fhir.ResourceSupport("MedicationAdministration", "Bedside events (doses given, partly "
                                                 "given or not given, infusion starts, rate and bag changes, stops) "
                                                 "of the patients the caller cares for, newest first.", (
    *_SUBJECT,
    _P("status", "token", "completed | not-done | in-progress; comma: or"),
    _P("request", "reference", "MedicationRequest/id: the events of an order version"),
), includes=("MedicationAdministration:patient", "MedicationAdministration:subject"))
SUPPORTED = {r.type: r for r in (PATIENT, ENCOUNTER, ORGANIZATION, LOCATION, PRACTITIONER, CONDITION, ALLERGY,
                                 OBSERVATION, DOCUMENT, BINARY, AUDIT_EVENT, MEDICATION, MEDICATION_REQUEST,
                                 MEDICATION_DISPENSE, MEDICATION_ADMINISTRATION)}
#: $everything pages deeper than a search (each kind of entry is paged by the database).
EVERYTHING = fhir.ResourceSupport("Patient", "Patient/$everything", ())
EVERYTHING_WINDOW = 50_000


def _purpose(actor: Actor) -> Purpose:
    # As the JSON API and the pages; a system acts for administration (ADT, orders), never care.
    return reading_purpose(actor)


def _read_id(value: str, kind: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise fhir.ResourceNotFound(f"{kind}/{value} is not known") from None


#: The id of no resource (naho's ids are random UUIDs): what a malformed reference designates.
_NOTHING = uuid.UUID(int=0)


def _ref_id(search: fhir.Search, name: str, kind: str) -> uuid.UUID | None:
    """The id a reference parameter names (None: not given); a malformed id finds nothing."""
    value = search.get(name)
    if value is None:
        return None
    try:
        return uuid.UUID(fhir.parse_reference(value, kind, name))
    except ValueError:
        return _NOTHING


def _token(search: fhir.Search, name: str) -> fhir.Token | None:
    value = search.get(name)
    if value is None:
        return None
    parts = fhir.split_or(value)
    if len(parts) != 1:
        raise fhir.InvalidRequest(f"{name} takes a single value")
    token = fhir.parse_token(parts[0])
    if not token.code:
        raise fhir.InvalidRequest(f"{name} needs a value (system|value or value)")
    return token


def _patients(s: Session, patient_ids: list[uuid.UUID]) -> list[Resource]:
    """Patient resources for `_include`, of patients the caller was just let in for (no new audit:
    the access that showed the matches covers them)."""
    found = identity.summaries(s, dict.fromkeys(patient_ids))
    return [identity_fhir.patient_resource(found[i]) for i in dict.fromkeys(patient_ids) if i in found]


def _codes(search: fhir.Search, name: str, allowed: frozenset[str]) -> frozenset[str] | None:
    value = search.get(name)
    if value is None:
        return None
    codes = frozenset(fhir.parse_token(v).code for v in fhir.split_or(value))
    unknown = sorted(codes - allowed)
    if unknown:
        raise fhir.InvalidRequest(f"{name}={unknown[0]!r} is not one of {', '.join(sorted(allowed))}")
    return codes


# --- CapabilityStatement ------------------------------------------------------------------------------------

@router.get("/metadata", dependencies=[Depends(PUBLIC)])
def metadata(request: Request, container: ContainerDep) -> Response:
    """What this server does; public, as FHIR clients read it before they authenticate."""
    statement = fhir.capability_statement(fhir.base_url(request), SUPPORTED.values(), software="naho",
                                          version=request.app.version, now=container.clock.now())
    return fhir.resource_response(statement, pretty=fhir.read_options(request))


# --- Patient ------------------------------------------------------------------------------------------------

@router.get("/Patient/{resource_id}", dependencies=[Depends(READERS)])
def read_patient(resource_id: str, request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    pretty = fhir.read_options(request)
    try:
        found = identity.get_patient(container.uow(), actor, _read_id(resource_id, "Patient"), _purpose(actor),
                                     container.ports["care"])
    except PatientNotFound:
        raise fhir.ResourceNotFound(f"Patient/{resource_id} is not known") from None
    return fhir.resource_response(identity_fhir.patient_resource(found), pretty=pretty)


@router.get("/Patient", dependencies=[Depends(READERS)])
def search_patient(request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    search = fhir.parse_search(request, PATIENT)
    zone = fhir.local_zone(request)
    token = _token(search, "identifier")
    value = search.get("birthdate")
    birth = fhir.parse_date(value, zone, "birthdate") if value is not None else None
    birth_day = birth.exact_day(zone) if birth else None
    criteria = identity_fhir.PatientCriteria(
        identifier=(token.system, token.code) if token else None, family=search.get("family"),
        given=search.get("given"), name=search.get("name"), birth_day=birth_day,
        birth_matches=partial(birth.matches_day, zone=zone) if birth and birth_day is None else None,
        genders=_codes(search, "gender", identity_fhir.GENDERS),
    )
    if not criteria.anchored:
        raise fhir.InvalidRequest("a Patient search needs identifier, family, name or a birthdate (a day, "
                                  "e.g. birthdate=1951-07-02)")
    found, more = identity_fhir.find_patients(container.uow(), actor, container.ports["care"], criteria,
                                              offset=search.offset, count=search.count)
    return fhir.searchset_response(request, search, [identity_fhir.patient_resource(p) for p in found],
                                   has_next=more)


# --- Encounter ----------------------------------------------------------------------------------------------

@router.get("/Encounter/{resource_id}", dependencies=[Depends(READERS)])
def read_encounter(resource_id: str, request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    pretty = fhir.read_options(request)
    encounter_id = _read_id(resource_id, "Encounter")
    uow = container.uow()
    with uow:
        s = uow.session
        try:
            stay = record.get_encounter(s, encounter_id)
            access_patient(s, actor, stay.patient_id, _purpose(actor), now=uow.clock.now(),
                           port=container.ports["care"], action="patient:stay:view", target=stay.nda)
        except (EncounterNotFound, PatientNotFound):
            # One answer for a stay that does not exist and one whose patient is not the caller's.
            raise fhir.ResourceNotFound(f"Encounter/{resource_id} is not known") from None
        resource = record_fhir.encounter_resources(s, [stay])[0]
        uow.commit()
    return fhir.resource_response(resource, pretty=pretty)


@router.get("/Encounter", dependencies=[Depends(READERS)])
def search_encounter(request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    search = fhir.parse_search(request, ENCOUNTER)
    if search.get("patient") and search.get("subject"):
        raise fhir.InvalidRequest("give patient or subject, not both")
    patient_id = _ref_id(search, "patient", "Patient")
    if patient_id is None:
        patient_id = _ref_id(search, "subject", "Patient")
    token = _token(search, "identifier")
    if patient_id is None and token is None:
        raise fhir.InvalidRequest("an Encounter search needs patient (or subject) or identifier")
    statuses = None
    if (value := search.get("status")) is not None:
        statuses = record_fhir.statuses_from_fhir([fhir.parse_token(v).code for v in fhir.split_or(value)])
        if statuses is None:
            raise fhir.InvalidRequest(f"status={value!r}: use planned, in-progress, onleave, finished or cancelled")
    dates = None
    if (value := search.get("date")) is not None:
        dates = fhir.parse_date(value, fhir.local_zone(request), "date")
    uow = container.uow()
    with uow:
        s = uow.session
        stays: list[EncounterPublic] = []
        try:
            if token is not None:
                found = record.stay_by_nda(s, token.code) if token.system in (None, record_fhir.NDA_SYSTEM) else None
                stays = [record.get_encounter(s, found[0])] if found else []
                stays = [e for e in stays if patient_id is None or e.patient_id == patient_id]
                for e in stays:
                    access_patient(s, actor, e.patient_id, _purpose(actor), now=uow.clock.now(),
                                   port=container.ports["care"], action="patient:stay:view", target=e.nda)
            elif patient_id is not None:
                access_patient(s, actor, patient_id, _purpose(actor), now=uow.clock.now(),
                               port=container.ports["care"], action="patient:stay:list")
                stays = record.stays_of(s, patient_id)
        except PatientNotFound:
            stays = []  # the refusal is audited; a search shows only what the caller may see
        matching = [e for e in stays if (statuses is None or e.status in statuses)
                    and (dates is None or dates.matches(e.started_at, e.ended_at))]
        shown, more = fhir.page(matching, search)
        resources = record_fhir.encounter_resources(s, shown)
        # Only patients of stays shown: each went through the door above.
        included = _patients(s, [e.patient_id for e in shown]) if search.includes else []
        uow.commit()
    return fhir.searchset_response(request, search, resources, has_next=more, total=len(matching),
                                   included=included)


# --- Organization and Location ------------------------------------------------------------------------------

@router.get("/Organization/{resource_id}", dependencies=[Depends(READERS)])
def read_organization(resource_id: str, request: Request, container: ContainerDep) -> Response:
    pretty = fhir.read_options(request)
    with container.session_factory() as s:
        found = sites_fhir.get_organization(s, _read_id(resource_id, "Organization"))
    if found is None:
        raise fhir.ResourceNotFound(f"Organization/{resource_id} is not known")
    return fhir.resource_response(found, pretty=pretty)


@router.get("/Organization", dependencies=[Depends(READERS)])
def search_organization(request: Request, container: ContainerDep) -> Response:
    search = fhir.parse_search(request, ORGANIZATION)
    token = _token(search, "identifier")
    with container.session_factory() as s:
        found = sites_fhir.find_organizations(s, identifier=(token.system, token.code) if token else None,
                                              name=search.get("name"))
    shown, more = fhir.page(found, search)
    return fhir.searchset_response(request, search, shown, has_next=more, total=len(found))


@router.get("/Location/{resource_id}", dependencies=[Depends(READERS)])
def read_location(resource_id: str, request: Request, container: ContainerDep) -> Response:
    pretty = fhir.read_options(request)
    with container.session_factory() as s:
        found = sites_fhir.get_location(s, _read_id(resource_id, "Location"))
    if found is None:
        raise fhir.ResourceNotFound(f"Location/{resource_id} is not known")
    return fhir.resource_response(found, pretty=pretty)


@router.get("/Location", dependencies=[Depends(READERS)])
def search_location(request: Request, container: ContainerDep) -> Response:
    search = fhir.parse_search(request, LOCATION)
    token = _token(search, "identifier")
    statuses = _codes(search, "status", frozenset({"active", "suspended", "inactive"}))
    active = None
    if statuses is not None:
        kept = statuses - {"suspended"}  # naho suspends no location
        if not kept:
            return fhir.searchset_response(request, search, [], has_next=False, total=0)
        active = None if len(kept) == 2 else "active" in kept
    criteria = sites_fhir.LocationCriteria(
        identifier=(token.system, token.code) if token else None, name=search.get("name"),
        organization_id=_ref_id(search, "organization", "Organization"),
        partof_id=_ref_id(search, "partof", "Location"), active=active,
    )
    with container.session_factory() as s:
        found, total = sites_fhir.find_locations(s, criteria, offset=search.offset, count=search.count)
    return fhir.searchset_response(request, search, found, has_next=search.offset + len(found) < total, total=total)


# --- Practitioner -------------------------------------------------------------------------------------------

@router.get("/Practitioner/{resource_id}", dependencies=[Depends(READERS)])
def read_practitioner(resource_id: str, request: Request, container: ContainerDep) -> Response:
    pretty = fhir.read_options(request)
    with container.session_factory() as s:
        found = staff_fhir.find_staff(s, _read_id(resource_id, "Practitioner"))
    if found is None:
        raise fhir.ResourceNotFound(f"Practitioner/{resource_id} is not known")
    return fhir.resource_response(staff_fhir.practitioner_resource(found), pretty=pretty)


@router.get("/Practitioner", dependencies=[Depends(READERS)])
def search_practitioner(request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    search = fhir.parse_search(request, PRACTITIONER)
    token = _token(search, "identifier")
    name = search.get("name")
    if token is None:
        # The directory as listed elsewhere: paged and audited by the staff service.
        members, total = staff.browse_staff(container.uow(), actor, search=name, limit=search.count,
                                            offset=search.offset)
        resources = [staff_fhir.practitioner_resource(m) for m in members]
        return fhir.searchset_response(request, search, resources, has_next=search.offset + len(members) < total,
                                       total=total)
    rpps = staff_fhir.rpps_of(token.system, token.code)
    with container.session_factory() as s:
        member = staff_fhir.staff_by_rpps(s, rpps) if rpps else None
    members = [member] if member and (not name or name.casefold() in
                                       f"{member.first_name} {member.last_name}".casefold()) else []
    shown, more = fhir.page(members, search)
    return fhir.searchset_response(request, search, [staff_fhir.practitioner_resource(m) for m in shown],
                                   has_next=more, total=len(members))


# --- the chart: Condition, AllergyIntolerance, Observation, DocumentReference, Binary ------------------------

#: The word of the audit tag for each chart resource: patient:<word>:list, patient:<word>:view.
_CHART_SUBJECT = {"Condition": "condition", "AllergyIntolerance": "allergy", "Observation": "observation",
                  "DocumentReference": "document"}
#: The values a status or category parameter may take, per resource (FHIR's value sets).
_CHART_VALUES: dict[str, dict[str, frozenset[str]]] = {
    "Condition": {"clinical-status": record_fhir.CONDITION_CLINICAL_CODES,
                  "verification-status": record_fhir.CONDITION_VERIFICATION_CODES,
                  "category": record_fhir.CONDITION_CATEGORIES},
    "AllergyIntolerance": {"clinical-status": record_fhir.ALLERGY_CLINICAL_CODES,
                           "verification-status": record_fhir.ALLERGY_VERIFICATION_CODES,
                           "category": record_fhir.ALLERGY_CATEGORIES},
    "Observation": {"status": record_fhir.OBSERVATION_STATUSES, "category": record_fhir.OBSERVATION_CATEGORIES},
    "DocumentReference": {"status": record_fhir.DOCUMENT_STATUSES},
}


def _binary_base(request: Request) -> str:
    return f"{fhir.base_url(request)}/Binary"


def _open_chart(s: Session, actor: Actor, patient_id: uuid.UUID, port: CareRelationshipPort, now: datetime, *,
                action: str, target: str | None = None) -> None:
    """Through the door for clinical content, or PatientNotFound with the refusal in the trail.
    As on the patient page, the door opens the chart to clinicians only (`reading_purpose`): a
    clerk or a porter working in the patient's unit is shown identities and stays, never the chart."""
    access_patient(s, actor, patient_id, Purpose.CARE, now=now, port=port, action=action, target=target)


def _subject(search: fhir.Search) -> uuid.UUID:
    """The patient a chart search is about: required (a chart is searched one patient at a time)."""
    if search.get("patient") and search.get("subject"):
        raise fhir.InvalidRequest("give patient or subject, not both")
    patient_id = _ref_id(search, "patient", "Patient")
    if patient_id is None and search.resource.param("subject") is not None:
        patient_id = _ref_id(search, "subject", "Patient")
    if patient_id is None:
        needs = "patient (or subject)" if search.resource.param("subject") else "patient"
        raise fhir.InvalidRequest(f"a {search.resource.type} search needs {needs}")
    return patient_id


def _code_tokens(search: fhir.Search, name: str) -> tuple[tuple[str | None, str], ...] | None:
    value = search.get(name)
    if value is None:
        return None
    tokens = [fhir.parse_token(v) for v in fhir.split_or(value)]
    if not tokens or any(not t.code for t in tokens):
        raise fhir.InvalidRequest(f"{name} needs a code (system|code or code)")
    return tuple((t.system, t.code) for t in tokens)


def _date_bounds(search: fhir.Search, name: str, request: Request) -> tuple[datetime | None, datetime | None]:
    """[since, before) of an instant satisfying every `date` given (AND)."""
    since: datetime | None = None
    before: datetime | None = None
    for value in search.all(name):
        low, high = fhir.parse_date(value, fhir.local_zone(request), name).instant_bounds()
        since = low if since is None or (low is not None and low > since) else since
        before = high if before is None or (high is not None and high < before) else before
    return since, before


def _chart_criteria(search: fhir.Search, request: Request) -> record_fhir.ChartCriteria:
    values = _CHART_VALUES[search.resource.type]
    sets = {name: _codes(search, name, allowed) for name, allowed in values.items()}
    since, before = _date_bounds(search, "date", request)
    return record_fhir.ChartCriteria(
        codes=_code_tokens(search, "code"), types=_code_tokens(search, "type"),
        clinical_status=sets.get("clinical-status"),
        verification_status=sets.get("verification-status"), status=sets.get("status"),
        categories=sets.get("category"), since=since, before=before,
    )


def _search_chart(request: Request, container: ContainerDep, actor: Actor, support: fhir.ResourceSupport) -> Response:
    search = fhir.parse_search(request, support)
    patient_id = _subject(search)
    criteria = _chart_criteria(search, request)
    uow = container.uow()
    with uow:
        s = uow.session
        try:
            _open_chart(s, actor, patient_id, container.ports["care"], uow.clock.now(),
                        action=f"patient:{_CHART_SUBJECT[support.type]}:list")
        except PatientNotFound:
            # The refusal is audited; a search shows only what the caller may see: nothing.
            return fhir.searchset_response(request, search, [], has_next=False, total=0)
        found, total = record_fhir.find_chart_entries(s, support.type, patient_id, criteria, offset=search.offset,
                                                      count=search.count, binary_base=_binary_base(request))
        included = _patients(s, [patient_id]) if search.includes and found else []
        uow.commit()
    return fhir.searchset_response(request, search, found, has_next=search.offset + len(found) < total,
                                   total=total, included=included)


def _read_chart(request: Request, container: ContainerDep, actor: Actor, resource_type: str,
                resource_id: str) -> Response:
    pretty = fhir.read_options(request)
    entry_id = _read_id(resource_id, resource_type)
    uow = container.uow()
    with uow:
        s = uow.session
        try:
            patient_id = record_fhir.chart_entry_patient(s, resource_type, entry_id)
            if patient_id is None:
                raise PatientNotFound("no such entry")
            _open_chart(s, actor, patient_id, container.ports["care"], uow.clock.now(),
                        action=f"patient:{_CHART_SUBJECT[resource_type]}:view", target=str(entry_id))
        except PatientNotFound:
            # One answer for an entry that does not exist and one whose patient is not the caller's.
            raise fhir.ResourceNotFound(f"{resource_type}/{resource_id} is not known") from None
        resource = record_fhir.read_chart_entry(s, resource_type, entry_id, _binary_base(request))
        uow.commit()
    return fhir.resource_response(resource, pretty=pretty)


@router.get("/Condition/{resource_id}", dependencies=[Depends(READERS)])
def read_condition(resource_id: str, request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    return _read_chart(request, container, actor, "Condition", resource_id)


@router.get("/Condition", dependencies=[Depends(READERS)])
def search_condition(request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    return _search_chart(request, container, actor, CONDITION)


@router.get("/AllergyIntolerance/{resource_id}", dependencies=[Depends(READERS)])
def read_allergy(resource_id: str, request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    return _read_chart(request, container, actor, "AllergyIntolerance", resource_id)


@router.get("/AllergyIntolerance", dependencies=[Depends(READERS)])
def search_allergy(request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    return _search_chart(request, container, actor, ALLERGY)


@router.get("/Observation/{resource_id}", dependencies=[Depends(READERS)])
def read_observation(resource_id: str, request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    return _read_chart(request, container, actor, "Observation", resource_id)


@router.get("/Observation", dependencies=[Depends(READERS)])
def search_observation(request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    return _search_chart(request, container, actor, OBSERVATION)


@router.get("/DocumentReference/{resource_id}", dependencies=[Depends(READERS)])
def read_document(resource_id: str, request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    return _read_chart(request, container, actor, "DocumentReference", resource_id)


@router.get("/DocumentReference", dependencies=[Depends(READERS)])
def search_document(request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    return _search_chart(request, container, actor, DOCUMENT)


@router.get("/Binary/{resource_id}", dependencies=[Depends(DOCUMENT_READERS)])
def read_binary(resource_id: str, request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    """A document's bytes as a Binary resource (JSON only, as the whole facade), through the door
    of its patient and audited like a download from the chart page."""
    pretty = fhir.read_options(request)
    document_id = _read_id(resource_id, "Binary")
    try:
        meta, content = chart.open_document(container.uow(), actor, document_id, container.ports["care"])
    except (EncounterNotFound, PatientNotFound):
        raise fhir.ResourceNotFound(f"Binary/{resource_id} is not known") from None
    binary = Binary(id=str(meta.id), contentType=meta.media_type, data=base64.b64encode(content),
                    securityContext={"reference": f"DocumentReference/{meta.id}"})
    return fhir.resource_response(binary, pretty=pretty)


# --- Medication, MedicationRequest ----------------------------------------------------------------------

def _product_codes(search: fhir.Search, name: str, system: str) -> list[str] | None:
    tokens = _code_tokens(search, name)
    if tokens is None:
        return None
    return [code for token_system, code in tokens if token_system in (None, system)]


@router.get("/Medication/{resource_id}", dependencies=[Depends(READERS)])
def read_medication(resource_id: str, request: Request, container: ContainerDep) -> Response:
    pretty = fhir.read_options(request)
    with container.uow() as uow:
        found = medication_fhir.read_medication(uow.session, resource_id)
    if found is None:
        raise fhir.ResourceNotFound(f"Medication/{resource_id} is not known")
    return fhir.resource_response(found, pretty=pretty)


@router.get("/Medication", dependencies=[Depends(READERS)])
def search_medication(request: Request, container: ContainerDep) -> Response:
    """The formulary is not patient data: any staff member or system may read it."""
    search = fhir.parse_search(request, MEDICATION)
    with container.uow() as uow:
        found, total = medication_fhir.find_medications(
            uow.session, products=_product_codes(search, "code", medication_fhir.PRODUCT_SYSTEM),
            atc=_product_codes(search, "ingredient-code", medication_fhir.ATC_SYSTEM),
            statuses=_codes(search, "status", medication_fhir.MEDICATION_STATUSES),
            offset=search.offset, count=search.count)
    return fhir.searchset_response(request, search, found, has_next=search.offset + len(found) < total,
                                   total=total)


@router.get("/MedicationRequest/{resource_id}", dependencies=[Depends(READERS)])
def read_medication_request(resource_id: str, request: Request, container: ContainerDep,
                            actor: ActorDep) -> Response:
    return _read_medication_resource(request, container, actor, "MedicationRequest", resource_id)


@router.get("/MedicationRequest", dependencies=[Depends(READERS)])
def search_medication_request(request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    search = fhir.parse_search(request, MEDICATION_REQUEST)
    patient_id = _subject(search)
    medication = search.get("medication")
    criteria = medication_fhir.RequestCriteria(
        statuses=_codes(search, "status", medication_fhir.REQUEST_STATUSES),
        encounter_id=_ref_id(search, "encounter", "Encounter"),
        product=fhir.parse_reference(medication, "Medication", "medication") if medication is not None else None)
    uow = container.uow()
    with uow:
        s = uow.session
        try:
            _open_chart(s, actor, patient_id, container.ports["care"], uow.clock.now(), action="medication:order:view")
        except PatientNotFound:
            return fhir.searchset_response(request, search, [], has_next=False, total=0)
        found, total = medication_fhir.find_requests(s, patient_id, criteria, offset=search.offset,
                                                     count=search.count)
        included = _patients(s, [patient_id]) if search.includes and found else []
        uow.commit()
    return fhir.searchset_response(request, search, found, has_next=search.offset + len(found) < total,
                                   total=total, included=included)


def _read_medication_resource(request: Request, container: ContainerDep, actor: Actor, resource_type: str,
                              resource_id: str) -> Response:
    pretty = fhir.read_options(request)
    event_id = _read_id(resource_id, resource_type)
    uow = container.uow()
    with uow:
        s = uow.session
        try:
            patient_id = medication_fhir.resource_patient(s, resource_type, event_id)
            if patient_id is None:
                raise PatientNotFound("no such row")
            _open_chart(s, actor, patient_id, container.ports["care"], uow.clock.now(),
                        action=_MEDICATION_ACTIONS[resource_type], target=str(event_id))
        except PatientNotFound:
            raise fhir.ResourceNotFound(f"{resource_type}/{resource_id} is not known") from None
        resource = medication_fhir.read_resource(s, resource_type, event_id)
        uow.commit()
    return fhir.resource_response(resource, pretty=pretty)


def _search_medication_events(request: Request, container: ContainerDep, actor: Actor,
                              support: fhir.ResourceSupport, order_param: str) -> Response:
    search = fhir.parse_search(request, support)
    patient_id = _subject(search)
    allowed = (medication_fhir.DISPENSE_STATUSES if support is MEDICATION_DISPENSE
               else medication_fhir.ADMINISTRATION_STATUSES)
    criteria = medication_fhir.EventCriteria(statuses=_codes(search, "status", allowed),
                                             order_id=_ref_id(search, order_param, "MedicationRequest"))
    find = (medication_fhir.find_dispenses if support is MEDICATION_DISPENSE
            else medication_fhir.find_administrations)
    uow = container.uow()
    with uow:
        s = uow.session
        try:
            _open_chart(s, actor, patient_id, container.ports["care"], uow.clock.now(),
                        action=_MEDICATION_ACTIONS[support.type])
        except PatientNotFound:
            return fhir.searchset_response(request, search, [], has_next=False, total=0)
        found, total = find(s, patient_id, criteria, offset=search.offset, count=search.count)
        included = _patients(s, [patient_id]) if search.includes and found else []
        uow.commit()
    return fhir.searchset_response(request, search, found, has_next=search.offset + len(found) < total,
                                   total=total, included=included)


_MEDICATION_ACTIONS = {"MedicationRequest": "medication:order:view", "MedicationDispense": "medication:dispensing:view",
                       "MedicationAdministration": "medication:administration:view"}


@router.get("/MedicationDispense/{resource_id}", dependencies=[Depends(READERS)])
def read_medication_dispense(resource_id: str, request: Request, container: ContainerDep,
                             actor: ActorDep) -> Response:
    return _read_medication_resource(request, container, actor, "MedicationDispense", resource_id)


@router.get("/MedicationDispense", dependencies=[Depends(READERS)])
def search_medication_dispense(request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    return _search_medication_events(request, container, actor, MEDICATION_DISPENSE, "prescription")


@router.get("/MedicationAdministration/{resource_id}", dependencies=[Depends(READERS)])
def read_medication_administration(resource_id: str, request: Request, container: ContainerDep,
                                   actor: ActorDep) -> Response:
    return _read_medication_resource(request, container, actor, "MedicationAdministration", resource_id)


@router.get("/MedicationAdministration", dependencies=[Depends(READERS)])
def search_medication_administration(request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    return _search_medication_events(request, container, actor, MEDICATION_ADMINISTRATION, "request")


# --- Patient/$everything ------------------------------------------------------------------------------------

@router.get("/Patient/{resource_id}/$everything", dependencies=[Depends(READERS)])
def patient_everything(resource_id: str, request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    """The patient's record in one searchset: the patient, stays, problems, allergies, vital signs,
    documents, medication orders, dispensed doses and administrations, in that order, newest first
    within each; one pass through the door per page."""
    search = fhir.parse_search(request, EVERYTHING, default_count=fhir.MAX_COUNT, window=EVERYTHING_WINDOW)
    patient_id = _read_id(resource_id, "Patient")
    uow = container.uow()
    with uow:
        s = uow.session
        try:
            _open_chart(s, actor, patient_id, container.ports["care"], uow.clock.now(),
                        action="patient:record:everything")
        except PatientNotFound:
            raise fhir.ResourceNotFound(f"Patient/{resource_id} is not known") from None
        shown: list[Resource] = []
        position = 0  # where the current kind of resource starts in the whole result

        def wanted() -> tuple[int, int]:
            """(offset within the current kind, how many of it) the page still asks for."""
            return max(0, search.offset - position), max(0, search.count - len(shown))

        skip, room = wanted()
        if skip < 1 and room:
            shown.extend(_patients(s, [patient_id]))
        position += 1
        stays = record.stays_of(s, patient_id)
        skip, room = wanted()
        shown.extend(record_fhir.encounter_resources(s, stays[skip:skip + room]) if room else [])
        position += len(stays)
        for kind in record_fhir.CHART_TYPES:
            skip, room = wanted()
            found, total = record_fhir.find_chart_entries(s, kind, patient_id, record_fhir.ChartCriteria(),
                                                          offset=skip, count=room, binary_base=_binary_base(request))
            shown.extend(found)
            position += total
        events = medication_fhir.EventCriteria()
        medication: list[Callable[[int, int], tuple[Sequence[Resource], int]]] = [
            lambda o, c: medication_fhir.find_requests(s, patient_id, medication_fhir.RequestCriteria(), offset=o,
                                                       count=c),
            lambda o, c: medication_fhir.find_dispenses(s, patient_id, events, offset=o, count=c),
            lambda o, c: medication_fhir.find_administrations(s, patient_id, events, offset=o, count=c)]
        for find in medication:
            skip, room = wanted()
            found_events, total = find(skip, room)
            shown.extend(found_events)
            position += total
        uow.commit()
    return fhir.searchset_response(request, search, shown, has_next=search.offset + len(shown) < position,
                                   total=position, path=f"Patient/{resource_id}/$everything")


# --- AuditEvent ---------------------------------------------------------------------------------------------

def _audit_criteria(search: fhir.Search, s: Session, request: Request) -> fhir_audit.AuditCriteria:
    if search.get("patient") and search.get("entity"):
        raise fhir.InvalidRequest("give patient or entity, not both")
    patient_id = _ref_id(search, "patient", "Patient")
    if patient_id is None:
        patient_id = _ref_id(search, "entity", "Patient")
    accounts = None
    if (staff_id := _ref_id(search, "agent", "Practitioner")) is not None:
        account = fhir_audit.account_of_practitioner(s, staff_id)
        accounts = (account,) if account else ()
    subtypes = None
    if (value := search.get("subtype")) is not None:
        tokens = [fhir.parse_token(v) for v in fhir.split_or(value)]
        subtypes = tuple(t.code for t in tokens if t.system in (None, fhir_audit.SUBTYPE_SYSTEM))
    since, before = _date_bounds(search, "date", request)
    return fhir_audit.AuditCriteria(
        patient_id=patient_id, account_ids=accounts, agent_name=search.get("agent-name"),
        actions=_codes(search, "action", fhir_audit.ACTIONS), subtypes=subtypes, since=since, before=before,
    )


@router.get("/AuditEvent/{resource_id}", dependencies=[Depends(AUDIT_READERS)])
def read_audit_event(resource_id: str, request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    pretty = fhir.read_options(request)
    event_id = _read_id(resource_id, "AuditEvent")
    with container.uow() as uow:
        found = fhir_audit.read_audit_event(uow.session, event_id)
        if found is None:
            raise fhir.ResourceNotFound(f"AuditEvent/{resource_id} is not known")
        audit.record(uow.session, actor, audit.AuditTag.AUDIT_VIEWED, at=uow.clock.now(), target=str(event_id),
                     details={"via": "fhir"})
        uow.commit()
    return fhir.resource_response(found, pretty=pretty)


@router.get("/AuditEvent", dependencies=[Depends(AUDIT_READERS)])
def search_audit_event(request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    search = fhir.parse_search(request, AUDIT_EVENT)
    with container.uow() as uow:
        criteria = _audit_criteria(search, uow.session, request)
        # Read first, then trace the reading: the page shown does not list its own viewing. A search
        # about one patient is traced with the patient, who may ask who looked at their trail.
        found, more = fhir_audit.find_audit_events(uow.session, criteria, offset=search.offset, count=search.count)
        audit.record(uow.session, actor, audit.AuditTag.AUDIT_VIEWED, at=uow.clock.now(),
                     patient_id=criteria.patient_id, details={"via": "fhir", "query": str(request.url.query)[:500]})
        uow.commit()
    return fhir.searchset_response(request, search, found, has_next=more)


# --- anything else ------------------------------------------------------------------------------------------

def _unsupported(resource_type: str) -> fhir.UnsupportedResourceType:
    return fhir.UnsupportedResourceType(
        f"resource type {resource_type!r} is not served here (supported: {', '.join(SUPPORTED)})")


@router.get("/{resource_type}", dependencies=[Depends(READERS)])
def unsupported_search(resource_type: str) -> Response:
    if resource_type in SUPPORTED:  # served, but not searched (Binary: read through its DocumentReference)
        raise fhir.UnsupportedResourceType(f"{resource_type} is read by id only: it cannot be searched")
    raise _unsupported(resource_type)


@router.get("/{resource_type}/{resource_id}", dependencies=[Depends(READERS)])
def unsupported_read(resource_type: str, resource_id: str) -> Response:
    raise _unsupported(resource_type)
