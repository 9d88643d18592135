"""The patient index as FHIR R4 Patient resources (FR Core conventions), and Patient search.

Identifier systems follow FR Core: the IPP is the group's own (`type` PI, use usual); the INS
matricule is sent only when the identity is qualified, which `PatientPublic.ins` already
guarantees (RNIV; FR Core `fr-core-patient-ins`: "le matricule INS ne peut être véhiculé que dans
le cas d'une identité qualifiée"), under its assigning authority's OID. Search (`find_patients`) applies every criterion
the index can in SQL, as ordered range scans that read only a page whatever the size of the index,
then keeps only the patients the person may open (`platform.access.decide`), and is audited as
`service.search_patients` is. Inbound Patient resources (FHIR create and update) are mapped to
`PatientCreate` / `TraitsUpdate` here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from fhir.resources.R4B.patient import Patient
from pydantic import ValidationError
from sqlalchemy import ColumnElement, Select, and_, not_, or_, select
from sqlalchemy.orm import Session

from naho.identity import rules, service
from naho.identity.models import Patient as PatientRow
from naho.identity.schemas import PatientCreate, PatientPublic, TraitsUpdate
from naho.platform import audit
from naho.platform.access import CareRelationshipPort, Purpose, decide
from naho.platform.errors import DomainError
from naho.platform.security.actor import Actor
from naho.platform.uow import UnitOfWork

#: The group's permanent patient identifier (IPP), one for every establishment of the GHT.
IPP_SYSTEM = "https://naho.ght-artois.fr/fhir/sid/ipp"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
FR_CORE_V2_0203 = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203"

#: INS assigning authority → (FR Core identifier type, display, use): fr-core-patient-ins slices.
_INS_TYPES: dict[str, tuple[str, str, str]] = {
    rules.INS_NIR_OID: ("INS-NIR", "NIR définitif", "official"),
    rules.INS_NIA_OID: ("INS-NIA", "NIR temporaire", "temp"),
    rules.INS_NIR_TEST_OID: ("INS-NIR-TEST", "NIR TEST", "official"),
    rules.INS_NIR_DEMO_OID: ("INS-NIR-DEMO", "NIR DEMO", "official"),
}
INS_SYSTEMS: dict[str, str] = {f"urn:oid:{oid}": oid for oid in _INS_TYPES}

#: RNIV sex → FHIR administrative gender. "I" (indéterminé, provisional identities only) is not
#: a gender other than male or female but one not yet known: "unknown", the value FR Core's INS
#: gender value set keeps besides male and female.
GENDER_BY_SEX = {"M": "male", "F": "female", "I": "unknown"}
GENDERS = frozenset({"male", "female", "other", "unknown"})

#: How many visible patients a search with filters the service does not apply scans at most.
FILTERED_SCAN = 250


def ins_identifier(ins: str, oid: str) -> dict[str, object]:
    code, display, use = _INS_TYPES[oid]
    return {"use": use, "type": {"coding": [{"system": FR_CORE_V2_0203, "code": code, "display": display}]},
            "system": f"urn:oid:{oid}", "value": ins}


def patient_resource(p: PatientPublic) -> Patient:
    identifiers: list[dict[str, object]] = [{
        "use": "usual", "system": IPP_SYSTEM, "value": p.ipp,
        "type": {"coding": [{"system": V2_0203, "code": "PI", "display": "Patient internal identifier"}]},
    }]
    if p.ins and p.ins_oid in _INS_TYPES:
        identifiers.append(ins_identifier(p.ins, p.ins_oid))
    first_names = p.first_names.split()
    names: list[dict[str, object]] = [{"use": "official", "family": p.birth_name, "given": first_names}]
    if p.used_name or p.used_first_name:
        names.append({"use": "usual", "family": p.used_name or p.birth_name,
                      "given": [p.used_first_name or first_names[0]]})
    telecom = [{"system": system, "value": value, "use": "home"}
               for system, value in (("phone", p.phone), ("email", p.email)) if value]
    address = [{"use": "home", "line": [p.address] if p.address else None, "postalCode": p.postcode,
                "city": p.city}] if p.address or p.postcode or p.city else None
    # No `active`: a merged record is not flagged in PatientPublic, so it could not be told apart.
    return Patient(
        id=str(p.id), identifier=identifiers, name=names, gender=GENDER_BY_SEX[p.sex],
        birthDate=p.birth_date, telecom=telecom or None, address=address,
    )


@dataclass(frozen=True)
class PatientCriteria:
    """A Patient search, in plain values (the FHIR syntax is parsed by the facade).

    `identifier` is (system, value), system None for any; `birth_day` an exact date the index
    can look up; `birth_matches` any other birthdate condition.
    """

    identifier: tuple[str | None, str] | None = None
    family: str | None = None
    given: str | None = None
    name: str | None = None
    birth_day: date | None = None
    birth_matches: Callable[[date], bool] | None = None
    genders: frozenset[str] | None = None

    @property
    def anchored(self) -> bool:
        """The index can only be searched by identifier, name or exact birth date."""
        return bool(self.identifier or self.family or self.name or self.birth_day)


def _identifier_query(system: str | None, value: str) -> str | None:
    """The index query finding this identifier, or None when no patient can carry it."""
    ipp_like = value.isdigit() and len(value) <= 10
    ins_like = len(value) == 15 and value[:1] in "12"
    if system == IPP_SYSTEM:
        return value if ipp_like else None
    if system in INS_SYSTEMS:
        return value.upper() if ins_like else None
    if system is None:
        return value.upper() if ipp_like or ins_like else None
    return None  # another system, or "" (an identifier without system): none of ours


def _has_identifier(p: PatientPublic, system: str | None, value: str) -> bool:
    ipp = value.isdigit() and p.ipp == value.zfill(8)
    ins = p.ins is not None and p.ins == value.upper()
    if system == IPP_SYSTEM:
        return ipp
    if system in INS_SYSTEMS:
        return ins and p.ins_oid == INS_SYSTEMS[system]
    return ipp or ins


def _starts(words: list[str], prefix: str) -> bool:
    wanted = rules.normalise_name(prefix)
    return bool(wanted) and any(w.startswith(wanted) for w in words if w)


def _families(p: PatientPublic) -> list[str]:
    return [n for n in (p.birth_name, p.used_name) if n]


def _givens(p: PatientPublic) -> list[str]:
    return [*p.first_names.split(), *([p.used_first_name] if p.used_first_name else [])]


def _matches(p: PatientPublic, c: PatientCriteria) -> bool:
    if c.identifier and not _has_identifier(p, *c.identifier):
        return False
    if c.family and not _starts(_families(p), c.family):
        return False
    if c.given and not _starts(_givens(p), c.given):
        return False
    if c.name and not _starts(_families(p) + _givens(p), c.name):
        return False
    if c.birth_day and p.birth_date != c.birth_day:
        return False
    if c.birth_matches and not c.birth_matches(p.birth_date):
        return False
    return not (c.genders is not None and GENDER_BY_SEX[p.sex] not in c.genders)


#: Patients a search reads at most to fill one page when the caller may not open every patient
#: (a nurse sees only her care team's): the rows are decided one by one until the page is full.
VISIBILITY_SCAN = 4
_SEX_BY_GENDER = {"male": "M", "female": "F", "unknown": "I"}


def _given_clause(given: str) -> ColumnElement[bool] | None:
    wanted = rules.normalise_name(given)
    if not wanted:
        return None
    return or_(PatientRow.first_names.like(f"{wanted}%"), PatientRow.first_names.like(f"% {wanted}%"),
               PatientRow.used_first_name.like(f"{wanted}%"))


def _queries(c: PatientCriteria, exact: bool) -> list[tuple[Select[tuple[PatientRow]], Callable[[PatientRow], str]]]:
    """The index queries answering `c`, each with the name its rows are ordered by.

    A family prefix is two queries, birth name then used name (a woman found by her married name),
    each an ordered range scan that stops at the page: merging them by the name that matched keeps
    one total order, so paging is stable.
    """
    base = select(PatientRow).where(PatientRow.merged_into_id.is_(None))
    if c.birth_day is not None:
        base = base.where(PatientRow.birth_date == c.birth_day)
    if exact and c.given:
        clause = _given_clause(c.given)
        if clause is None:
            return []
        base = base.where(clause)
    if exact and c.genders is not None:
        base = base.where(PatientRow.sex.in_([s for g, s in _SEX_BY_GENDER.items() if g in c.genders]))
    if c.identifier:
        where = _identifier_where(*c.identifier)
        return [] if where is None else [(base.where(where), lambda r: r.birth_name)]
    family = rules.normalise_name(c.family or c.name or "")
    if c.family or c.name:
        if not family:
            return []
        birth = service.prefix_range(PatientRow.birth_name, family)
        used = service.prefix_range(PatientRow.used_name, family)
        return [
            (base.where(birth).order_by(PatientRow.birth_name, PatientRow.first_names, PatientRow.id),
             lambda r: r.birth_name),
            (base.where(used, not_(birth)).order_by(PatientRow.used_name, PatientRow.first_names, PatientRow.id),
             lambda r: r.used_name or ""),
        ]
    if c.birth_day is None:
        return []
    return [(base.order_by(PatientRow.birth_name, PatientRow.first_names, PatientRow.id), lambda r: r.birth_name)]


def find_patients(uow: UnitOfWork, actor: Actor, port: CareRelationshipPort, c: PatientCriteria, *,
                  offset: int, count: int) -> tuple[list[PatientPublic], bool]:
    """One page of the patients matching `c` that this person may open, and whether more follow.

    Every criterion the index can apply is in SQL (identifier, family prefix on the birth or used
    name, birth day, given, gender), so a page costs a range scan of the page's rows whatever the
    size of the index (benchmarked at 1,000,000 patients: bench/fhir_ingest.py). Only two criteria
    are filtered afterwards, within `FILTERED_SCAN` rows: a `name` (it may match a first name) and
    a birthdate range together with a name. Visibility is decided row by row through
    `platform.access.decide` and the search is audited, as `service.search_patients` does.
    """
    exact = c.name is None and c.birth_matches is None
    wanted = offset + count + 1
    limit = wanted if exact else max(wanted, FILTERED_SCAN)
    queries = _queries(c, exact)
    if not queries:
        return [], False
    with uow:
        s = uow.session
        now = uow.clock.now()
        rows: list[tuple[tuple[str, str, str], PatientRow]] = []
        for query, name_of in queries:
            rows += [((name_of(r), r.first_names, str(r.id)), r)
                     for r in s.scalars(query.limit(limit * VISIBILITY_SCAN))]
        rows.sort(key=lambda pair: pair[0])
        purposes = (Purpose.ADMINISTRATION, Purpose.IDENTITY, Purpose.CARE)
        matching: list[PatientPublic] = []
        for _key, row in rows:
            if len(matching) >= wanted:
                break
            public = service.to_public(row)
            if (exact or _matches(public, c)) and any(decide(s, actor, row.id, p, now, port) for p in purposes):
                matching.append(public)
        shown = matching[offset:offset + count]
        audit.record(s, actor, "patient:search", at=now, target=_describe(c)[:100] or None,
                     details={"shown": [str(p.id) for p in shown]})
        uow.commit()
    return shown, len(matching) > offset + count


def _describe(c: PatientCriteria) -> str:
    parts = [f"identifier={c.identifier[1]}" if c.identifier else "", f"family={c.family}" if c.family else "",
             f"given={c.given}" if c.given else "", f"name={c.name}" if c.name else "",
             f"birthdate={c.birth_day.isoformat()}" if c.birth_day else ""]
    return " ".join(p for p in parts if p)


# --- from FHIR: a Patient resource sent by a client, as the index's shapes -------------------------

class PatientResourceRefused(DomainError):
    """A Patient resource naho cannot take as an identity (the detail says which element)."""

    status = 400

    def __init__(self, detail: str, **extra: object) -> None:
        super().__init__(detail, issue="invalid", **extra)


def _official_name(resource: Patient) -> tuple[Any, Any]:
    names = resource.name or []
    official = next((n for n in names if n.use == "official"), None) or \
        next((n for n in names if n.use in (None, "") and n.family), None)
    usual = next((n for n in names if n.use == "usual" and n is not official), None)
    if official is None or not official.family or not official.given:
        raise PatientResourceRefused("Patient.name needs an official name (use=official) with a family name (the "
                                     "birth name) and at least one given name (the birth first names)")
    return official, usual


def _first(items: Iterable[Any] | None, system: str) -> str | None:
    return next((t.value for t in items or () if t.system == system and t.value), None)


def patient_fields(resource: Patient) -> dict[str, Any]:
    """The traits and contact a Patient resource gives, in the index's names (not yet checked)."""
    official, usual = _official_name(resource)
    if resource.gender not in _SEX_BY_GENDER:
        raise PatientResourceRefused("Patient.gender must be male, female or unknown (RNIV knows no other sex)")
    if not isinstance(resource.birthDate, date) or len(str(resource.birthDate)) != 10:
        raise PatientResourceRefused("Patient.birthDate must be a full date (YYYY-MM-DD)")
    address = next((a for a in resource.address or () if a.use in (None, "home")), None)
    return {
        "birth_name": official.family, "first_names": " ".join(official.given),
        "used_name": usual.family if usual and usual.family else None,
        "used_first_name": usual.given[0] if usual and usual.given else None,
        "sex": _SEX_BY_GENDER[resource.gender], "birth_date": resource.birthDate,
        "phone": _first(resource.telecom, "phone"), "email": _first(resource.telecom, "email"),
        "address": ", ".join(address.line) if address and address.line else None,
        "postcode": address.postalCode if address else None, "city": address.city if address else None,
    }


def _checked(shape: type[Any], fields: dict[str, Any]) -> Any:
    try:
        return shape(**fields)
    except ValidationError as exc:
        raise PatientResourceRefused(
            "the Patient does not fit an identity: " + "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())) from None


def patient_create(resource: Patient) -> PatientCreate:
    """A Patient resource as a registration. naho assigns the IPP and an INS is retrieved from
    INSi, never typed in (RNIV); another system's identifiers are the transport's business (a
    bulk load keeps them, interop.fhir_write); a client finds an existing patient by identifier
    with a conditional create (If-None-Exist)."""
    fields = patient_fields(resource)
    for name in ("birth_name", "first_names"):
        if not rules.normalise_name(fields[name]):
            raise PatientResourceRefused("the birth name and first names need at least one letter")
    created: PatientCreate = _checked(PatientCreate, fields)
    return created


def traits_update(resource: Patient, reason: str) -> TraitsUpdate:
    """A Patient resource sent with PUT: its traits and contact replace the identity's (an element
    left out is emptied, as an update replaces the whole resource)."""
    update: TraitsUpdate = _checked(TraitsUpdate, {**patient_fields(resource), "reason": reason})
    return update


def identifier_of(resource: Patient, system: str) -> str | None:
    return _first(resource.identifier, system)


def _identifier_where(system: str | None, value: str) -> ColumnElement[bool] | None:
    query = _identifier_query(system, value)
    if query is None:
        return None
    if query.isdigit() and len(query) <= 10:
        return PatientRow.ipp == query.zfill(8)
    # The INS identifies only a qualified identity (RNIV EXI SI 08), under its own authority.
    where = and_(PatientRow.ins == query, PatientRow.status == str(rules.IdentityStatus.QUALIFIED))
    return and_(where, PatientRow.ins_oid == INS_SYSTEMS[system]) if system in INS_SYSTEMS else where


def ids_by_identifier(session: Session, system: str | None, value: str) -> list[uuid.UUID]:
    """Live patients carrying this identifier (conditional create; the caller decides access)."""
    where = _identifier_where(system, value)
    if where is None:
        return []
    return list(session.scalars(select(PatientRow.id).where(where, PatientRow.merged_into_id.is_(None)).limit(2)))
