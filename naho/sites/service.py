"""Use cases of the group's structure: import the reference file, read it, move the rollout."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from naho.platform import audit
from naho.platform.audit import AuditTag
from naho.platform.security.actor import Actor
from naho.platform.uow import UnitOfWork
from naho.sites.errors import (
    EstablishmentNotFound,
    InvalidReference,
    RolloutTransitionRefused,
    UnitNotFound,
)
from naho.sites.models import Bed, Department, Establishment, HospitalGroup, Room, Unit
from naho.sites.rules import (
    GroupSpec,
    InvalidReferenceError,
    RolloutState,
    RolloutTransitionError,
    check_rollout_transition,
    parse_reference,
)
from naho.sites.schemas import BedPublic, EstablishmentPublic, ImportReport, UnitChoice, UnitPublic

Progress = Callable[[int, int], None]


def load_reference(path: Path) -> GroupSpec:
    """Read and check a reference file (YAML or JSON: YAML is a superset)."""
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        return parse_reference(data if isinstance(data, dict) else {})
    except InvalidReferenceError as exc:
        raise InvalidReference(f"{path.name}: {exc}") from exc
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise InvalidReference(f"{path.name}: cannot be read ({exc})") from exc


def _set(row: Any, counter: Counter[str], label: str, /, **values: Any) -> None:
    changed = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    if changed:
        counter[label] += 1


def import_reference(uow: UnitOfWork, actor: Actor, spec: GroupSpec,
                     progress: Progress | None = None) -> ImportReport:
    """Create or update everything the reference describes; idempotent.

    Rows are matched by code (rooms by label in their unit, beds by code). Nothing is deleted:
    units, rooms and beds absent from the file become inactive. An establishment's rollout
    state is taken from the file only when it is created; afterwards it moves by
    `change_rollout` (it is operational state, not reference data).
    """
    created: Counter[str] = Counter()
    updated: Counter[str] = Counter()
    deactivated: Counter[str] = Counter()
    with uow:
        s = uow.session
        now = uow.clock.now()
        group = s.execute(select(HospitalGroup).where(HospitalGroup.code == spec.code)).scalar_one_or_none()
        if group is None:
            s.add(HospitalGroup(code=spec.code, name=spec.name))
            created["group"] += 1
        else:
            _set(group, updated, "group", name=spec.name)
        establishments = {e.code: e for e in s.scalars(select(Establishment))}
        departments = {d.code: d for d in s.scalars(select(Department))}
        units = {u.code: u for u in s.scalars(select(Unit))}
        rooms = {(r.unit_id, r.label): r for r in s.scalars(select(Room))}
        beds = {b.code: b for b in s.scalars(select(Bed))}
        seen_units: set[str] = set()
        seen_rooms: set[tuple[Any, str]] = set()
        seen_beds: set[str] = set()
        total = sum(len(e.units) for e in spec.establishments)
        done = 0
        for e in spec.establishments:
            est = establishments.get(e.code)
            fields = dict(name=e.name, short_name=e.short_name, finess=e.finess, city=e.city,
                          postcode=e.postcode, address=e.address, pivot=e.pivot)
            if est is None:
                est = Establishment(code=e.code, rollout_state=str(e.rollout), rollout_changed_at=now, **fields)
                s.add(est)
                created["establishment"] += 1
            else:
                _set(est, updated, "establishment", **fields)
            s.flush()
            for d in e.departments:
                dep = departments.get(d.code)
                if dep is None:
                    dep = Department(code=d.code, name=d.name, establishment_id=est.id)
                    s.add(dep)
                    created["department"] += 1
                else:
                    _set(dep, updated, "department", name=d.name, establishment_id=est.id)
                s.flush()
                for u in d.units:
                    seen_units.add(u.code)
                    unit = units.get(u.code)
                    ufields = dict(name=u.name, kind=u.kind, building=u.building, floor=u.floor,
                                   establishment_id=est.id, department_id=dep.id, active=True)
                    if unit is None:
                        unit = Unit(code=u.code, **ufields)
                        s.add(unit)
                        s.flush()
                        created["unit"] += 1
                    else:
                        _set(unit, updated, "unit", **ufields)
                    for r in u.rooms:
                        seen_rooms.add((unit.id, r.label))
                        room = rooms.get((unit.id, r.label))
                        if room is None:
                            room = Room(unit_id=unit.id, label=r.label, kind=r.kind, active=True)
                            s.add(room)
                            s.flush()
                            created["room"] += 1
                        else:
                            _set(room, updated, "room", kind=r.kind, active=True)
                        for b in r.beds:
                            seen_beds.add(b.code)
                            bed = beds.get(b.code)
                            if bed is None:
                                s.add(Bed(code=b.code, label=b.label, room_id=room.id, unit_id=unit.id, active=True))
                                created["bed"] += 1
                            else:
                                _set(bed, updated, "bed", label=b.label, room_id=room.id,
                                     unit_id=unit.id, active=True)
                    done += 1
                    if progress:
                        progress(done, total)
        for code, unit in units.items():
            if code not in seen_units and unit.active:
                unit.active = False
                deactivated["unit"] += 1
        for key, room in rooms.items():
            if key not in seen_rooms and room.active:
                room.active = False
                deactivated["room"] += 1
        for code, bed in beds.items():
            if code not in seen_beds and bed.active:
                bed.active = False
                deactivated["bed"] += 1
        report = ImportReport(created=dict(created), updated=dict(updated), deactivated=dict(deactivated))
        audit.record(s, actor, AuditTag.SITES_IMPORTED, at=now, target=spec.code,
                     details=report.model_dump())
        uow.commit()
        return report


def _establishment_public(e: Establishment, unit_count: int = 0, bed_count: int = 0) -> EstablishmentPublic:
    return EstablishmentPublic(
        id=e.id, code=e.code, name=e.name, short_name=e.short_name, finess=e.finess, city=e.city,
        postcode=e.postcode, address=e.address, pivot=e.pivot, rollout_state=e.rollout_state,
        unit_count=unit_count, bed_count=bed_count,
    )


def list_establishments(session: Session) -> list[EstablishmentPublic]:
    unit_counts = dict(session.execute(
        select(Unit.establishment_id, func.count()).where(Unit.active).group_by(Unit.establishment_id)
    ).all())
    bed_counts = dict(session.execute(
        select(Unit.establishment_id, func.count(Bed.id)).join(Bed, Bed.unit_id == Unit.id)
        .where(Bed.active, Unit.active).group_by(Unit.establishment_id)
    ).all())
    rows = session.scalars(select(Establishment).order_by(Establishment.pivot.desc(), Establishment.name))
    return [_establishment_public(e, unit_counts.get(e.id, 0), bed_counts.get(e.id, 0)) for e in rows]


def get_establishment(session: Session, code: str) -> EstablishmentPublic:
    for e in list_establishments(session):
        if e.code == code:
            return e
    raise EstablishmentNotFound(f"no establishment {code}")


def list_units(session: Session, establishment_code: str) -> list[UnitPublic]:
    est = session.execute(select(Establishment).where(Establishment.code == establishment_code)).scalar_one_or_none()
    if est is None:
        raise EstablishmentNotFound(f"no establishment {establishment_code}")
    room_counts = dict(session.execute(
        select(Room.unit_id, func.count()).where(Room.active).group_by(Room.unit_id)
    ).all())
    bed_counts = dict(session.execute(
        select(Bed.unit_id, func.count()).where(Bed.active).group_by(Bed.unit_id)
    ).all())
    rows = session.execute(
        select(Unit, Department).join(Department, Unit.department_id == Department.id)
        .where(Unit.establishment_id == est.id, Unit.active).order_by(Department.code, Unit.code)
    ).all()
    return [
        UnitPublic(
            id=u.id, code=u.code, name=u.name, kind=u.kind, establishment_code=est.code,
            department_code=d.code, department_name=d.name, building=u.building, floor=u.floor,
            room_count=room_counts.get(u.id, 0), bed_count=bed_counts.get(u.id, 0),
        )
        for u, d in rows
    ]


def get_unit(session: Session, code: str) -> UnitPublic:
    unit = session.execute(select(Unit).where(Unit.code == code)).scalar_one_or_none()
    if unit is None:
        raise UnitNotFound(f"no unit {code}")
    est = session.get(Establishment, unit.establishment_id)
    assert est is not None
    for u in list_units(session, est.code):
        if u.code == code:
            return u
    raise UnitNotFound(f"unit {code} is inactive")


def list_beds(session: Session, unit_code: str) -> list[BedPublic]:
    unit = session.execute(select(Unit).where(Unit.code == unit_code)).scalar_one_or_none()
    if unit is None:
        raise UnitNotFound(f"no unit {unit_code}")
    rows = session.execute(
        select(Bed, Room).join(Room, Bed.room_id == Room.id)
        .where(Bed.unit_id == unit.id, Bed.active).order_by(Room.label, Bed.label)
    ).all()
    return [BedPublic(id=b.id, code=b.code, label=b.label, room=r.label, room_kind=r.kind,
                      unit_code=unit_code) for b, r in rows]


def units_by_ids(session: Session, ids: list[Any]) -> dict[Any, tuple[str, str, str]]:
    """unit id → (unit code, unit name, establishment code), for other domains' listings."""
    if not ids:
        return {}
    rows = session.execute(
        select(Unit.id, Unit.code, Unit.name, Establishment.code)
        .join(Establishment, Unit.establishment_id == Establishment.id).where(Unit.id.in_(ids))
    ).all()
    return {uid: (code, name, est) for uid, code, name, est in rows}


def unit_ids_by_code(session: Session, codes: list[str] | None = None) -> dict[str, Any]:
    query = select(Unit.code, Unit.id, Unit.kind).where(Unit.active)
    if codes is not None:
        query = query.where(Unit.code.in_(codes))
    return {code: uid for code, uid, _kind in session.execute(query)}


def change_rollout(uow: UnitOfWork, actor: Actor, code: str, target: str, reason: str) -> EstablishmentPublic:
    with uow:
        s = uow.session
        now = uow.clock.now()
        est = s.execute(select(Establishment).where(Establishment.code == code)).scalar_one_or_none()
        if est is None:
            raise EstablishmentNotFound(f"no establishment {code}")
        try:
            target_state = RolloutState(target)
            check_rollout_transition(RolloutState(est.rollout_state), target_state, reason)
        except (ValueError, RolloutTransitionError) as exc:
            raise RolloutTransitionRefused(str(exc)) from exc
        before = est.rollout_state
        est.rollout_state = str(target_state)
        est.rollout_changed_at = now
        audit.record(s, actor, AuditTag.ROLLOUT_CHANGED, at=now, target=code, reason=reason or None,
                     details={"from": before, "to": str(target_state)})
        uow.commit()
    with uow:
        return get_establishment(uow.session, code)


def establishment_choices(session: Session) -> list[EstablishmentPublic]:
    """Establishments without counts: cheap enough for every page's switcher."""
    rows = session.scalars(select(Establishment).order_by(Establishment.pivot.desc(), Establishment.name))
    return [_establishment_public(e) for e in rows]


def unit_choices(session: Session, establishment_code: str) -> list[UnitChoice]:
    """Active units of an establishment, by department: cheap enough for every page's switcher."""
    rows = session.execute(
        select(Unit.code, Unit.name, Department.name)
        .join(Department, Unit.department_id == Department.id)
        .join(Establishment, Unit.establishment_id == Establishment.id)
        .where(Establishment.code == establishment_code, Unit.active)
        .order_by(Department.name, Unit.name)
    ).all()
    return [UnitChoice(code=code, name=name, department_name=dep) for code, name, dep in rows]
