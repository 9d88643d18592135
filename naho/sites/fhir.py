"""The group's structure as FHIR R4 resources: Organization (the group, its establishments) and
Location (units, rooms, beds), with the read-only queries the FHIR facade needs.

Establishments carry their FINESS under FR Core's system and type FINEG: an establishment of
the GHT is a site where care is given, a FINESS entité géographique. Units, rooms and beds keep
the codes of the reference file under the group's own identifier systems.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B.location import Location
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.reference import Reference
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from naho.sites.models import Bed, Establishment, HospitalGroup, Room, Unit

FINESS_SYSTEM = "https://finess.esante.gouv.fr"
FR_CORE_V2_0203 = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203"
GROUP_SYSTEM = "https://naho.ght-artois.fr/fhir/sid/group"
ESTABLISHMENT_SYSTEM = "https://naho.ght-artois.fr/fhir/sid/establishment"
UNIT_SYSTEM = "https://naho.ght-artois.fr/fhir/sid/unit"
BED_SYSTEM = "https://naho.ght-artois.fr/fhir/sid/bed"
ORGANIZATION_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
PHYSICAL_TYPE = "http://terminology.hl7.org/CodeSystem/location-physical-type"

#: Location.physicalType of each level (FHIR location-physical-type): ward, room, bed.
_PHYSICAL = {"unit": ("wa", "Ward"), "room": ("ro", "Room"), "bed": ("bd", "Bed")}

Identifier = tuple[str | None, str]  # (system, value); system None matches any


def _physical(kind: str) -> dict[str, Any]:
    code, display = _PHYSICAL[kind]
    return {"coding": [{"system": PHYSICAL_TYPE, "code": code, "display": display}]}


def _ref(kind: str, row_id: uuid.UUID, display: str) -> Reference:
    return Reference(reference=f"{kind}/{row_id}", display=display)


# --- Organization ---------------------------------------------------------------------------------------

def _group_resource(group: HospitalGroup) -> Organization:
    return Organization(id=str(group.id), active=True, name=group.name,
                        identifier=[{"system": GROUP_SYSTEM, "value": group.code}])


def _establishment_resource(e: Establishment, group: HospitalGroup | None) -> Organization:
    return Organization(
        id=str(e.id), active=True, name=e.name, alias=[e.short_name] if e.short_name != e.name else None,
        identifier=[
            {"use": "official", "system": FINESS_SYSTEM, "value": e.finess,
             "type": {"coding": [{"system": FR_CORE_V2_0203, "code": "FINEG",
                                  "display": "FINESS d'entité géographique"}]}},
            {"system": ESTABLISHMENT_SYSTEM, "value": e.code},
        ],
        type=[{"coding": [{"system": ORGANIZATION_TYPE, "code": "prov", "display": "Healthcare Provider"}]}],
        address=[{"use": "work", "type": "physical", "line": [e.address], "postalCode": e.postcode,
                  "city": e.city, "country": "FR"}],
        partOf=_ref("Organization", group.id, group.name) if group else None,
    )


def _group(session: Session) -> HospitalGroup | None:
    # naho serves one group (GHT): its establishments are part of it.
    return session.scalars(select(HospitalGroup).order_by(HospitalGroup.code).limit(1)).first()


def all_organizations(session: Session) -> list[Organization]:
    """The group, then its establishments (pivot first, then by name, as everywhere in naho)."""
    group = _group(session)
    establishments = session.scalars(select(Establishment).order_by(Establishment.pivot.desc(), Establishment.name))
    found = [_group_resource(group)] if group else []
    return found + [_establishment_resource(e, group) for e in establishments]


def _folded(text: str) -> str:
    """Case and accents ignored, as FHIR string search asks."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).casefold()


def find_organizations(session: Session, *, identifier: Identifier | None = None,
                       name: str | None = None) -> list[Organization]:
    """Organizations with this identifier and whose name or alias starts with `name`."""
    found = []
    for org in all_organizations(session):
        if identifier is not None:
            system, value = identifier
            if not any(i.value == value and system in (None, i.system) for i in org.identifier or []):
                continue
        if name and not any(_folded(n).startswith(_folded(name)) for n in [org.name or "", *(org.alias or [])]):
            continue
        found.append(org)
    return found


def get_organization(session: Session, org_id: uuid.UUID) -> Organization | None:
    establishment = session.get(Establishment, org_id)
    if establishment is not None:
        return _establishment_resource(establishment, _group(session))
    group = session.get(HospitalGroup, org_id)
    return _group_resource(group) if group else None


# --- Location ---------------------------------------------------------------------------------------------

def _status(active: bool) -> str:
    return "active" if active else "inactive"


def _unit_resource(u: Unit, e: Establishment) -> Location:
    return Location(
        id=str(u.id), status=_status(u.active), name=u.name, mode="instance", physicalType=_physical("unit"),
        identifier=[{"system": UNIT_SYSTEM, "value": u.code}],
        managingOrganization=_ref("Organization", e.id, e.name),
    )


def _room_resource(r: Room, u: Unit, e: Establishment) -> Location:
    return Location(
        id=str(r.id), status=_status(r.active), name=r.label, mode="instance", physicalType=_physical("room"),
        partOf=_ref("Location", u.id, u.name), managingOrganization=_ref("Organization", e.id, e.name),
    )


def _bed_resource(b: Bed, r: Room, e: Establishment) -> Location:
    return Location(
        id=str(b.id), status=_status(b.active), name=_bed_name(r.label, b.label), mode="instance",
        physicalType=_physical("bed"), identifier=[{"system": BED_SYSTEM, "value": b.code}],
        partOf=_ref("Location", r.id, r.label), managingOrganization=_ref("Organization", e.id, e.name),
    )


def _bed_name(room: str, bed: str) -> str:
    return f"{room}-{bed}"


def _load(session: Session, kind: str, location_id: uuid.UUID) -> Location | None:
    if kind == "unit":
        unit = session.get(Unit, location_id)
        return _unit_resource(unit, _establishment_of(session, unit)) if unit else None
    if kind == "room":
        room = session.get(Room, location_id)
        return _room_resource(room, room.unit, _establishment_of(session, room.unit)) if room else None
    bed = session.get(Bed, location_id)
    return _bed_resource(bed, bed.room, _establishment_of(session, bed.room.unit)) if bed else None


def get_location(session: Session, location_id: uuid.UUID) -> Location | None:
    """A unit, a room or a bed (their ids are UUIDs: they never collide)."""
    for kind in ("unit", "room", "bed"):
        found = _load(session, kind, location_id)
        if found is not None:
            return found
    return None


def _establishment_of(session: Session, unit: Unit) -> Establishment:
    establishment = session.get(Establishment, unit.establishment_id)
    assert establishment is not None
    return establishment


@dataclass(frozen=True)
class LocationCriteria:
    """A Location search in plain values; ids are those of the Organization / Location resources."""

    identifier: Identifier | None = None
    name: str | None = None
    organization_id: uuid.UUID | None = None
    partof_id: uuid.UUID | None = None
    active: bool | None = None


def _location_queries(c: LocationCriteria) -> list[tuple[str, Select[Any]]]:
    """One id query per level (units, rooms, beds), filtered and ordered; a level that cannot
    match is left out."""
    units = select(Unit.id).order_by(Unit.code)
    rooms = select(Room.id).join(Unit, Room.unit_id == Unit.id).order_by(Unit.code, Room.label)
    beds = select(Bed.id).join(Room, Bed.room_id == Room.id).join(Unit, Bed.unit_id == Unit.id).order_by(Bed.code)
    levels: dict[str, Select[Any]] = {"unit": units, "room": rooms, "bed": beds}
    if c.identifier is not None:
        system, value = c.identifier
        levels.pop("room")
        if system not in (None, UNIT_SYSTEM):
            levels.pop("unit")
        if system not in (None, BED_SYSTEM):
            levels.pop("bed")
        if "unit" in levels:
            levels["unit"] = levels["unit"].where(Unit.code == value)
        if "bed" in levels:
            levels["bed"] = levels["bed"].where(Bed.code == value)
    if c.name:
        named = {"unit": Unit.name, "room": Room.label, "bed": Room.label + "-" + Bed.label}
        levels = {k: q.where(named[k].istartswith(c.name, autoescape=True)) for k, q in levels.items()}
    if c.organization_id is not None:
        levels = {k: q.where(Unit.establishment_id == c.organization_id) for k, q in levels.items()}
    if c.partof_id is not None:
        levels.pop("unit", None)  # a unit is part of no other location
        if "room" in levels:
            levels["room"] = levels["room"].where(Room.unit_id == c.partof_id)
        if "bed" in levels:
            levels["bed"] = levels["bed"].where(Bed.room_id == c.partof_id)
    if c.active is not None:
        flag = {"unit": Unit.active, "room": Room.active, "bed": Bed.active}
        levels = {k: q.where(flag[k].is_(c.active)) for k, q in levels.items()}
    return list(levels.items())


def find_locations(session: Session, c: LocationCriteria, *, offset: int, count: int) -> tuple[list[Location], int]:
    """One page of the matching units, then rooms, then beds, and the total."""
    chosen: list[tuple[str, uuid.UUID]] = []
    total = 0
    for kind, query in _location_queries(c):
        size = session.execute(select(func.count()).select_from(query.order_by(None).subquery())).scalar_one()
        start = max(0, offset - total)
        if start < size and len(chosen) < count:
            ids = session.scalars(query.offset(start).limit(count - len(chosen)))
            chosen.extend((kind, i) for i in ids)
        total += size
    found = [_load(session, kind, i) for kind, i in chosen]
    return [loc for loc in found if loc is not None], total


# --- references for other domains' resources ----------------------------------------------------------------

@dataclass(frozen=True)
class SiteReferences:
    """References to Organization / Location resources, by the codes other domains store."""

    establishments: dict[str, Reference]
    units: dict[str, Reference]
    beds: dict[str, Reference]


def references(session: Session, *, establishments: Sequence[str], units: Sequence[str],
               beds: Sequence[str]) -> SiteReferences:
    est = {code: _ref("Organization", row_id, name) for code, row_id, name in session.execute(
        select(Establishment.code, Establishment.id, Establishment.name).where(Establishment.code.in_(establishments)))}
    unit = {code: _ref("Location", row_id, name) for code, row_id, name in session.execute(
        select(Unit.code, Unit.id, Unit.name).where(Unit.code.in_(units)))}
    bed = {code: _ref("Location", row_id, _bed_name(room, label)) for code, row_id, room, label in session.execute(
        select(Bed.code, Bed.id, Room.label, Bed.label).join(Room, Bed.room_id == Room.id).where(Bed.code.in_(beds)))}
    return SiteReferences(est, unit, bed)
