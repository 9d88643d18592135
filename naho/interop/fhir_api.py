"""The FHIR R4 facade, first slice: read and search of Patient, Encounter, Organization, Location
and Practitioner, and the CapabilityStatement.

Routes stay thin: parameters are checked against `SUPPORTED` (the table the CapabilityStatement
is generated from), the domains' services answer, their `fhir.py` map to FHIR. Patient data goes
through the one door (STYLE.md R7): `identity.service` for patients, `platform.access` for the
patient of a stay; a patient one may not open is absent from searches and "not known" on read.
"""

from __future__ import annotations

import uuid
from functools import partial

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from naho.identity import fhir as identity_fhir
from naho.identity import service as identity
from naho.interop import fhir
from naho.platform.access import PatientNotFound, Purpose, access_patient, reading_purpose
from naho.platform.deps import ActorDep, ContainerDep
from naho.platform.security.actor import Actor
from naho.platform.security.policy import PUBLIC, Policy
from naho.platform.security.rules import STAFF_ROLES, Role
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

_P = fhir.SearchParam
PATIENT = fhir.ResourceSupport("Patient", "Patients of the group's index (MPI); only those the caller may open.", (
    _P("identifier", "token", f"IPP ({identity_fhir.IPP_SYSTEM}|00001234) or INS (urn:oid:1.2.250.1.213.1.4.8|…, "
                              "qualified identities only)"),
    _P("family", "string", "Start of the birth or used name"),
    _P("given", "string", "Start of any first name (with identifier, family, name or birthdate)"),
    _P("name", "string", "Start of the birth or used name (or of a first name, with another criterion)"),
    _P("birthdate", "date", "eq (a day alone finds patients), ge, gt, le, lt"),
    _P("gender", "token", "male | female | other | unknown (with another criterion)"),
))
ENCOUNTER = fhir.ResourceSupport("Encounter", "Stays (venues, IHE PAM FR) of the patients the caller may open.", (
    _P("patient", "reference", "Patient/id: the patient's stays, newest first"),
    _P("subject", "reference", "Patient/id, as patient"),
    _P("identifier", "token", f"NDA ({record_fhir.NDA_SYSTEM}|…)"),
    _P("status", "token", "planned | in-progress | onleave | finished | cancelled (comma: or)"),
    _P("date", "date", "A date within the stay (eq, ge, gt, le, lt)"),
))
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
SUPPORTED = {r.type: r for r in (PATIENT, ENCOUNTER, ORGANIZATION, LOCATION, PRACTITIONER)}


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
                found = record_fhir.encounter_id_by_nda(s, token.code) \
                    if token.system in (None, record_fhir.NDA_SYSTEM) else None
                stays = [record.get_encounter(s, found)] if found else []
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
        uow.commit()
    return fhir.searchset_response(request, search, resources, has_next=more, total=len(matching))


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


# --- anything else ------------------------------------------------------------------------------------------

def _unsupported(resource_type: str) -> fhir.UnsupportedResourceType:
    return fhir.UnsupportedResourceType(
        f"resource type {resource_type!r} is not served here (supported: {', '.join(SUPPORTED)})")


@router.get("/{resource_type}", dependencies=[Depends(READERS)])
def unsupported_search(resource_type: str) -> Response:
    raise _unsupported(resource_type)


@router.get("/{resource_type}/{resource_id}", dependencies=[Depends(READERS)])
def unsupported_read(resource_type: str, resource_id: str) -> Response:
    raise _unsupported(resource_type)
