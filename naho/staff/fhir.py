"""The staff directory as FHIR R4 Practitioner resources (FR Core conventions), and the read-only
lookups the FHIR facade needs.

A Practitioner shows the name, the national identifiers and whether the account is active:
nothing of the account itself (username, roles, e-mail) nor of the units worked in. FR Core
`fr-core-practitioner` slices: `rpps` (system https://rpps.esante.gouv.fr, the 11 digits) and
`idNatPs` (urn:oid:1.2.250.1.71.4.2.1), whose value for a professional of the RPPS is "8" followed
by the RPPS number (ANS TRE_G08 prefix 8 = RPPS, as in FR Core's own examples).
"""

from __future__ import annotations

import uuid

from fhir.resources.R4B.practitioner import Practitioner
from sqlalchemy import select
from sqlalchemy.orm import Session

from naho.staff import service
from naho.staff.models import StaffMember
from naho.staff.rules import rpps_is_valid
from naho.staff.schemas import StaffPublic

RPPS_SYSTEM = "https://rpps.esante.gouv.fr"
IDNPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
FR_CORE_V2_0203 = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203"
_IDNPS_RPPS_PREFIX = "8"


def practitioner_resource(s: StaffPublic) -> Practitioner:
    identifiers = []
    if s.rpps:
        identifiers = [
            {"use": "official", "system": IDNPS_SYSTEM, "value": _IDNPS_RPPS_PREFIX + s.rpps,
             "type": {"coding": [{"system": FR_CORE_V2_0203, "code": "IDNPS",
                                  "display": "Identifiant National de Professionnel de Santé"}]}},
            {"use": "official", "system": RPPS_SYSTEM, "value": s.rpps,
             "type": {"coding": [{"system": FR_CORE_V2_0203, "code": "RPPS", "display": "N° RPPS"}]}},
        ]
    return Practitioner(
        id=str(s.id), active=s.active, identifier=identifiers or None,
        name=[{"use": "official", "family": s.last_name, "given": [s.first_name]}],
    )


def rpps_of(system: str | None, value: str) -> str | None:
    """The RPPS number an identifier search designates, or None when it designates none."""
    if system == IDNPS_SYSTEM or (system is None and len(value) == 12):
        value = value[1:] if value.startswith(_IDNPS_RPPS_PREFIX) else ""
    elif system not in (None, RPPS_SYSTEM):
        return None
    return value if rpps_is_valid(value) else None


def find_staff(session: Session, staff_id: uuid.UUID) -> StaffPublic | None:
    exists = session.scalars(select(StaffMember.id).where(StaffMember.id == staff_id)).first()
    return service.get_staff(session, staff_id) if exists else None


def staff_by_rpps(session: Session, rpps: str) -> StaffPublic | None:
    staff_id = session.scalars(select(StaffMember.id).where(StaffMember.rpps == rpps)).first()
    return service.get_staff(session, staff_id) if staff_id else None
