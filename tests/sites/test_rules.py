from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from naho.sites.rules import (
    InvalidReferenceError,
    RolloutState,
    RolloutTransitionError,
    check_rollout_transition,
    expand_rooms,
    finess_is_well_formed,
    parse_reference,
)

REFERENCE = Path(__file__).resolve().parents[2] / "naho" / "sites" / "data" / "ght.yaml"


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    return yaml.safe_load(REFERENCE.read_text(encoding="utf-8"))


def test_the_shipped_reference_describes_the_four_establishments(reference: dict[str, Any]) -> None:
    group = parse_reference(reference)
    by_code = {e.code: e for e in group.establishments}
    assert set(by_code) == {"LENS", "BETHUNE", "HENIN", "LABASSEE"}
    assert 760 <= by_code["LENS"].bed_count <= 840
    assert all(by_code[c].bed_count < by_code["LENS"].bed_count for c in ("BETHUNE", "HENIN", "LABASSEE"))
    assert [e.code for e in group.establishments if e.pivot] == ["LENS"]
    kinds = {u.kind for e in group.establishments for u in e.units}
    assert {"emergency", "operating_rooms", "icu", "medicine", "surgery", "maternity", "paediatrics",
            "pharmacy", "laboratory", "imaging"} <= kinds
    assert all(any(u.kind == "pharmacy" for u in e.units) for e in group.establishments)


@pytest.mark.parametrize("value", ["620000017", "2A0000012", "2B1234567", "971234567"])
def test_well_formed_finess(value: str) -> None:
    assert finess_is_well_formed(value)


@pytest.mark.parametrize("value", ["62000001", "6200000170", "00123456789"[:9], "2C0000012", "96ABCDEFG", ""])
def test_malformed_finess(value: str) -> None:
    assert not finess_is_well_formed(value)


def test_rooms_and_beds_are_generated_from_blocks() -> None:
    rooms = expand_rooms("LENS-X", [{"number_from": 201, "count": 3, "beds_per_room": 2, "kind": "double"},
                                    {"prefix": "B", "number_from": 1, "count": 1, "beds_per_room": 0,
                                     "kind": "technical"}])
    assert [r.label for r in rooms] == ["201", "202", "203", "B1"]
    assert [b.code for b in rooms[0].beds] == ["LENS-X-201-1", "LENS-X-201-2"]
    assert rooms[-1].beds == ()


def test_overlapping_room_blocks_are_refused() -> None:
    with pytest.raises(InvalidReferenceError, match="same label"):
        expand_rooms("U", [{"number_from": 1, "count": 3}, {"number_from": 3, "count": 2}])


def test_a_duplicate_code_is_refused(reference: dict[str, Any]) -> None:
    data = copy.deepcopy(reference)
    data["establishments"][1]["departments"][0]["units"][0]["code"] = "LENS-URG-SAU"
    with pytest.raises(InvalidReferenceError, match="used twice"):
        parse_reference(data)


def test_an_unknown_unit_kind_is_refused(reference: dict[str, Any]) -> None:
    data = copy.deepcopy(reference)
    data["establishments"][0]["departments"][0]["units"][0]["kind"] = "spa"
    with pytest.raises(InvalidReferenceError, match="unknown unit kind"):
        parse_reference(data)


def test_a_bad_finess_is_refused(reference: dict[str, Any]) -> None:
    data = copy.deepcopy(reference)
    data["establishments"][0]["finess"] = "12345"
    with pytest.raises(InvalidReferenceError, match="FINESS"):
        parse_reference(data)


def test_two_pivots_are_refused(reference: dict[str, Any]) -> None:
    data = copy.deepcopy(reference)
    data["establishments"][1]["pivot"] = True
    with pytest.raises(InvalidReferenceError, match="pivot"):
        parse_reference(data)


@pytest.mark.parametrize(("current", "target"), [
    (RolloutState.NOT_STARTED, RolloutState.SANDBOX),
    (RolloutState.SANDBOX, RolloutState.LIVE),
    (RolloutState.SANDBOX, RolloutState.NOT_STARTED),
])
def test_allowed_rollout_moves(current: RolloutState, target: RolloutState) -> None:
    check_rollout_transition(current, target, "")


def test_going_live_without_a_sandbox_is_refused() -> None:
    with pytest.raises(RolloutTransitionError):
        check_rollout_transition(RolloutState.NOT_STARTED, RolloutState.LIVE, "pressé")


def test_a_live_establishment_goes_back_only_with_a_reason() -> None:
    with pytest.raises(RolloutTransitionError, match="reason"):
        check_rollout_transition(RolloutState.LIVE, RolloutState.SANDBOX, "  ")
    check_rollout_transition(RolloutState.LIVE, RolloutState.SANDBOX, "incident de bascule")
