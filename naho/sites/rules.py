"""Pure rules of the group's structure: identifiers, room and bed generation, rollout states."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class RolloutState(StrEnum):
    """Where an establishment stands in the site-by-site go-live."""

    NOT_STARTED = "not_started"
    SANDBOX = "sandbox"
    LIVE = "live"


#: Allowed moves. Going back from live to sandbox is a go-live rollback: allowed, reason required.
ROLLOUT_TRANSITIONS: dict[RolloutState, frozenset[RolloutState]] = {
    RolloutState.NOT_STARTED: frozenset({RolloutState.SANDBOX}),
    RolloutState.SANDBOX: frozenset({RolloutState.NOT_STARTED, RolloutState.LIVE}),
    RolloutState.LIVE: frozenset({RolloutState.SANDBOX}),
}

UNIT_KINDS = frozenset({
    "emergency", "icu", "continuing_care", "operating_rooms", "recovery", "medicine", "surgery",
    "maternity", "neonatology", "paediatrics", "psychiatry", "geriatrics", "rehabilitation",
    "oncology", "outpatient", "pharmacy", "laboratory", "imaging",
})
ROOM_KINDS = frozenset({
    "ward", "single", "double", "box", "icu_box", "operating_theatre", "recovery_bay",
    "delivery_room", "consultation", "technical",
})

_CODE = re.compile(r"^[A-Z0-9][A-Z0-9-]*$")
# Department part of a FINESS number: 01-95, Corsica 2A/2B, overseas 97x/98x (then 6 digits).
_FINESS = re.compile(r"^(?:0[1-9]|[1-8]\d|9[0-5]|2[AB])\d{7}$|^9[78]\d{7}$")


class InvalidReferenceError(ValueError):
    """The reference file breaks a rule; the message says where."""


class RolloutTransitionError(ValueError):
    """The requested rollout move is not allowed from the current state."""


def finess_is_well_formed(value: str) -> bool:
    """Nine characters: a département code (2A/2B for Corsica) then digits (FINESS format)."""
    return bool(_FINESS.match(value))


def check_rollout_transition(current: RolloutState, target: RolloutState, reason: str) -> None:
    if target not in ROLLOUT_TRANSITIONS[current]:
        raise RolloutTransitionError(f"cannot go from {current} to {target}")
    if current is RolloutState.LIVE and not reason.strip():
        raise RolloutTransitionError("a reason is required to take a live establishment back")


@dataclass(frozen=True)
class BedSpec:
    code: str
    label: str


@dataclass(frozen=True)
class RoomSpec:
    label: str
    kind: str
    beds: tuple[BedSpec, ...]


@dataclass(frozen=True)
class UnitSpec:
    code: str
    name: str
    kind: str
    building: str
    floor: int
    rooms: tuple[RoomSpec, ...]

    @property
    def bed_count(self) -> int:
        return sum(len(r.beds) for r in self.rooms)


@dataclass(frozen=True)
class DepartmentSpec:
    code: str
    name: str
    units: tuple[UnitSpec, ...]


@dataclass(frozen=True)
class EstablishmentSpec:
    code: str
    name: str
    short_name: str
    finess: str
    city: str
    postcode: str
    address: str
    pivot: bool
    rollout: RolloutState
    departments: tuple[DepartmentSpec, ...]

    @property
    def units(self) -> list[UnitSpec]:
        return [u for d in self.departments for u in d.units]

    @property
    def bed_count(self) -> int:
        return sum(u.bed_count for u in self.units)


@dataclass(frozen=True)
class GroupSpec:
    code: str
    name: str
    establishments: tuple[EstablishmentSpec, ...] = field(default_factory=tuple)


def bed_labels(count: int) -> list[str]:
    """Beds of a room: "1" for a single room, "1", "2"... otherwise (door side first)."""
    return [str(i) for i in range(1, count + 1)]


def expand_rooms(unit_code: str, blocks: list[dict[str, Any]]) -> tuple[RoomSpec, ...]:
    rooms: list[RoomSpec] = []
    for block in blocks:
        prefix = str(block.get("prefix", ""))
        start, count = int(block["number_from"]), int(block["count"])
        per_room = int(block.get("beds_per_room", 1))
        kind = str(block.get("kind", "ward"))
        if kind not in ROOM_KINDS:
            raise InvalidReferenceError(f"{unit_code}: unknown room kind {kind!r}")
        if count < 0 or per_room < 0:
            raise InvalidReferenceError(f"{unit_code}: negative room or bed count")
        for number in range(start, start + count):
            label = f"{prefix}{number}"
            beds = tuple(BedSpec(f"{unit_code}-{label}-{b}", b) for b in bed_labels(per_room))
            rooms.append(RoomSpec(label, kind, beds))
    labels = [r.label for r in rooms]
    if len(labels) != len(set(labels)):
        raise InvalidReferenceError(f"{unit_code}: two rooms have the same label")
    return tuple(rooms)


def _code(value: Any, where: str) -> str:
    code = str(value or "")
    if not _CODE.match(code):
        raise InvalidReferenceError(f"{where}: code {code!r} must be uppercase letters, digits and dashes")
    return code


def parse_reference(data: dict[str, Any]) -> GroupSpec:
    """Check and expand the reference file's content (see naho/sites/data/ght.yaml)."""
    if data.get("version") != 1:
        raise InvalidReferenceError("unsupported reference version (expected 1)")
    group = data.get("group") or {}
    seen: set[str] = set()

    def unique(code: str, where: str) -> str:
        if code in seen:
            raise InvalidReferenceError(f"{where}: code {code} is used twice")
        seen.add(code)
        return code

    establishments: list[EstablishmentSpec] = []
    finesses: set[str] = set()
    for e in data.get("establishments") or []:
        code = unique(_code(e.get("code"), "establishment"), "establishment")
        finess = str(e.get("finess", ""))
        if not finess_is_well_formed(finess):
            raise InvalidReferenceError(f"{code}: FINESS {finess!r} is not well formed")
        if finess in finesses:
            raise InvalidReferenceError(f"{code}: FINESS {finess} is used twice")
        finesses.add(finess)
        try:
            rollout = RolloutState(e.get("rollout", "not_started"))
        except ValueError as exc:
            raise InvalidReferenceError(f"{code}: unknown rollout state {e.get('rollout')!r}") from exc
        departments: list[DepartmentSpec] = []
        for d in e.get("departments") or []:
            dcode = unique(_code(d.get("code"), code), code)
            units: list[UnitSpec] = []
            for u in d.get("units") or []:
                ucode = unique(_code(u.get("code"), dcode), dcode)
                kind = str(u.get("kind", ""))
                if kind not in UNIT_KINDS:
                    raise InvalidReferenceError(f"{ucode}: unknown unit kind {kind!r}")
                units.append(UnitSpec(
                    code=ucode, name=str(u["name"]), kind=kind, building=str(u.get("building", "")),
                    floor=int(u.get("floor", 0)), rooms=expand_rooms(ucode, u.get("rooms") or []),
                ))
            departments.append(DepartmentSpec(dcode, str(d["name"]), tuple(units)))
        establishments.append(EstablishmentSpec(
            code=code, name=str(e["name"]), short_name=str(e.get("short_name") or e["name"]),
            finess=finess, city=str(e.get("city", "")), postcode=str(e.get("postcode", "")),
            address=str(e.get("address", "")), pivot=bool(e.get("pivot", False)), rollout=rollout,
            departments=tuple(departments),
        ))
    if sum(e.pivot for e in establishments) > 1:
        raise InvalidReferenceError("only one establishment can be the pivot")
    return GroupSpec(_code(group.get("code"), "group"), str(group.get("name", "")), tuple(establishments))
