"""The patient index as FHIR R4 Patient resources (FR Core conventions), and Patient search.

Identifier systems follow FR Core: the IPP is the group's own (`type` PI, use usual); the INS
matricule is sent only when the identity is qualified, which `PatientPublic.ins` already
guarantees (RNIV; FR Core `fr-core-patient-ins`: "le matricule INS ne peut être véhiculé que dans
le cas d'une identité qualifiée"), under its assigning authority's OID. Search goes through
`service.search_patients`, so results are only those the person may open, and audited.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from fhir.resources.R4B.patient import Patient

from naho.identity import rules, service
from naho.identity.schemas import PatientPublic
from naho.platform.access import CareRelationshipPort
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


def find_patients(uow: UnitOfWork, actor: Actor, port: CareRelationshipPort, c: PatientCriteria, *,
                  offset: int, count: int) -> tuple[list[PatientPublic], bool]:
    """One page of the patients matching `c` that this person may open, and whether more follow.

    The index is asked by identifier, else by the first word of the family name, else by birth
    date; the other criteria filter its answer (FHIR `given` matches any first name, which the
    index search does not), within `FILTERED_SCAN` visible patients.
    """
    text = ""
    words: list[str] = []
    if c.identifier:
        query = _identifier_query(*c.identifier)
        if query is None:
            return [], False
        text = query  # an identifier names one patient: nothing to scan
    elif c.family or c.name:
        words = rules.normalise_name(c.family or c.name or "").split()
        if not words:
            return [], False
        text = words[0]
    if not text and c.birth_day is None:
        return [], False
    wanted = offset + count + 1
    # Only when the index applies every criterion itself is its first page the right one.
    exact = len(words) <= 1 and not (c.family and c.name) and c.given is None and c.birth_matches is None \
        and c.genders is None
    found = service.search_patients(uow, actor, text, port, birth_date=c.birth_day,
                                    limit=wanted if exact else max(wanted, FILTERED_SCAN))
    matching = [p for p in found if _matches(p, c)]
    return matching[offset:offset + count], len(matching) > offset + count
