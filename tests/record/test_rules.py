from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from naho.record.rules import (
    FUTURE_TOLERANCE,
    AlreadyOnLeave,
    BedOutsideUnit,
    ClassUnchanged,
    EmergencyIsNeverPlanned,
    EncounterClass,
    EncounterStatus,
    Movement,
    MovementBeforePrevious,
    MovementIdAlreadyUsed,
    MovementInTheFuture,
    MovementKind,
    NothingToCancel,
    NotOnLeave,
    Occupancy,
    OnlyLastMovementCanBeCancelled,
    PatientOnLeave,
    SameKindAtSameTime,
    Stay,
    StayAlreadyFinished,
    StayAlreadyStarted,
    StayCancelled,
    StayNotStarted,
    StayRuleError,
    TimeNotAware,
    TransferLeavesEstablishment,
    TransferToSameLocation,
    TransferWithinEstablishment,
    UnitRequired,
    admit,
    admit_planned,
    bed_conflicts,
    cancel_last,
    cancel_trigger,
    change_class,
    current_location,
    discharge,
    end_leave,
    occupancies,
    pre_admit,
    pv1_class,
    rebuild_stay,
    start_leave,
    transfer,
    transfer_to_establishment,
    trigger_event,
)

C = EncounterClass
K = MovementKind
S = EncounterStatus
T0 = datetime(2025, 3, 10, 8, 0, tzinfo=UTC)
BEDS: dict[str, frozenset[str]] = {
    "MED": frozenset({"MED-101-1", "MED-101-2"}),
    "CHIR": frozenset({"CHIR-201-1"}),
    "URG": frozenset(),
}


def t(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def admitted(encounter_class: EncounterClass = C.INPATIENT, unit: str = "MED", bed: str | None = "MED-101-1",
             stay_id: str = "S1") -> Stay:
    return admit(stay_id, "LENS", encounter_class, movement_id="M1", at=t(0), unit_code=unit, bed_code=bed,
                 unit_beds=BEDS[unit], now=t(0))


def move(stay: Stay, unit: str, bed: str | None, minute: float, movement_id: str, **extra: Any) -> Stay:
    return transfer(stay, movement_id=movement_id, at=t(minute), unit_code=unit, bed_code=bed,
                    unit_beds=BEDS[unit], now=t(minute), **extra)


# --- vocabulary ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("encounter_class", "letter"), [
    (C.EMERGENCY, "E"), (C.INPATIENT, "I"), (C.DAY_HOSPITAL, "I"), (C.SESSION, "R"), (C.OUTPATIENT, "O"),
])
def test_each_class_has_its_pam_patient_class(encounter_class: EncounterClass, letter: str) -> None:
    assert pv1_class(encounter_class) == letter


@pytest.mark.parametrize(("kind", "insert", "cancel"), [
    (K.PRE_ADMISSION, "A05", "A38"), (K.ADMISSION, "A01", "A11"), (K.REGISTRATION, "A04", "A11"),
    (K.TRANSFER, "A02", "A12"), (K.CLASS_TO_INPATIENT, "A06", "A07"), (K.CLASS_TO_OUTPATIENT, "A07", "A06"),
    (K.LEAVE_START, "A21", "A52"), (K.LEAVE_END, "A22", "A53"), (K.DISCHARGE, "A03", "A13"),
])
def test_each_kind_has_its_insert_and_cancel_trigger(kind: MovementKind, insert: str, cancel: str) -> None:
    assert (trigger_event(kind), cancel_trigger(kind)) == (insert, cancel)


# --- arrivals ------------------------------------------------------------------------------------


def test_an_inpatient_is_admitted_with_a01_into_a_bed() -> None:
    stay = admitted()
    assert stay.status is S.IN_PROGRESS
    assert stay.movements[0].kind is K.ADMISSION
    assert trigger_event(stay.movements[0].kind) == "A01"
    assert current_location(stay) == ("MED", "MED-101-1")


@pytest.mark.parametrize("encounter_class", [C.EMERGENCY, C.OUTPATIENT])
def test_emergency_and_outpatient_arrivals_are_registered_with_a04(encounter_class: EncounterClass) -> None:
    stay = admitted(encounter_class, unit="URG", bed=None)
    assert stay.movements[0].kind is K.REGISTRATION
    assert current_location(stay) == ("URG", None)


def test_a_pre_admission_is_planned_days_ahead_and_holds_no_bed() -> None:
    stay = pre_admit("S1", "LENS", C.INPATIENT, movement_id="M1", at=t(3 * 24 * 60), unit_code="CHIR",
                     bed_code="CHIR-201-1", unit_beds=BEDS["CHIR"], now=t(0))
    assert stay.status is S.PLANNED
    assert current_location(stay) is None
    assert occupancies(stay) == []


def test_a_pre_admitted_patient_may_arrive_before_the_planned_date() -> None:
    planned = pre_admit("S1", "LENS", C.INPATIENT, movement_id="M1", at=t(3 * 24 * 60), unit_code="CHIR", now=t(0))
    stay = admit_planned(planned, movement_id="M2", at=t(60), unit_code="CHIR", bed_code="CHIR-201-1",
                         unit_beds=BEDS["CHIR"], now=t(60))
    assert (stay.id, stay.status, stay.movements[-1].kind) == ("S1", S.IN_PROGRESS, K.ADMISSION)
    assert occupancies(stay) == [Occupancy("CHIR-201-1", "S1", t(60), None)]


def test_an_emergency_visit_is_never_pre_admitted_but_a_consultation_is() -> None:
    with pytest.raises(EmergencyIsNeverPlanned):
        pre_admit("S1", "LENS", C.EMERGENCY, movement_id="M1", at=t(60), unit_code="URG", now=t(0))
    planned = pre_admit("S1", "LENS", C.OUTPATIENT, movement_id="M1", at=t(60), unit_code="URG", now=t(0))
    assert admit_planned(planned, movement_id="M2", at=t(60), unit_code="URG", now=t(60)).movements[-1].kind \
        is K.REGISTRATION


def test_an_admitted_stay_cannot_be_admitted_again() -> None:
    with pytest.raises(StayAlreadyStarted):
        admit_planned(admitted(), movement_id="M2", at=t(1), unit_code="MED", now=t(1))
    away = start_leave(admitted(), movement_id="M2", at=t(1), now=t(1))
    with pytest.raises(StayAlreadyStarted):
        admit_planned(away, movement_id="M3", at=t(2), unit_code="MED", now=t(2))


# --- time ----------------------------------------------------------------------------------------


def test_naive_times_are_refused_and_other_zones_are_stored_in_utc() -> None:
    with pytest.raises(TimeNotAware):
        admit("S1", "LENS", C.INPATIENT, movement_id="M1", at=datetime(2025, 3, 10, 9), unit_code="MED", now=t(0))
    paris = timezone(timedelta(hours=1))
    stay = admit("S1", "LENS", C.INPATIENT, movement_id="M1", at=datetime(2025, 3, 10, 9, tzinfo=paris),
                 unit_code="MED", now=t(0))
    assert stay.movements[0].at == T0
    assert stay.movements[0].at.tzinfo is UTC


def test_a_movement_more_than_the_tolerance_ahead_of_now_is_refused() -> None:
    stay = admitted()
    with pytest.raises(MovementInTheFuture):
        transfer(stay, movement_id="M2", at=t(10) + FUTURE_TOLERANCE + timedelta(seconds=1), unit_code="CHIR",
                 now=t(10))
    moved = transfer(stay, movement_id="M2", at=t(10) + FUTURE_TOLERANCE, unit_code="CHIR", now=t(10))
    assert current_location(moved) == ("CHIR", None)


def test_a_movement_dated_before_the_previous_one_is_refused() -> None:
    stay = move(admitted(), "CHIR", None, 30, "M2")
    with pytest.raises(MovementBeforePrevious):
        discharge(stay, movement_id="M3", at=t(29), now=t(40))


def test_a_movement_exactly_at_the_previous_ones_time_is_allowed() -> None:
    stay = move(admitted(), "MED", "MED-101-2", 0, "M2")  # bed given right at arrival
    assert current_location(stay) == ("MED", "MED-101-2")
    assert occupancies(stay) == [Occupancy("MED-101-2", "S1", t(0), None)]


def test_two_movements_of_the_same_kind_at_the_same_instant_are_refused() -> None:
    stay = move(admitted(), "CHIR", None, 30, "M2")
    with pytest.raises(SameKindAtSameTime):
        move(stay, "MED", None, 30, "M3")
    assert start_leave(stay, movement_id="M3", at=t(30), now=t(30)).status is S.ON_LEAVE
    assert current_location(move(stay, "MED", None, 31, "M3")) == ("MED", None)


def test_a_movement_id_is_never_reused_even_once_cancelled() -> None:
    stay = cancel_last(move(admitted(), "CHIR", None, 30, "M2"), K.TRANSFER, now=t(31))
    with pytest.raises(MovementIdAlreadyUsed):
        move(stay, "CHIR", None, 32, "M2")
    assert move(stay, "CHIR", None, 32, "M3").movements[-1].id == "M3"


# --- locations -----------------------------------------------------------------------------------


def test_a_movement_needs_a_unit() -> None:
    with pytest.raises(UnitRequired):
        admit("S1", "LENS", C.INPATIENT, movement_id="M1", at=t(0), unit_code=" ", now=t(0))
    with pytest.raises(UnitRequired):
        transfer(admitted(), movement_id="M2", at=t(1), unit_code="", now=t(1))


def test_a_bed_must_belong_to_the_unit() -> None:
    with pytest.raises(BedOutsideUnit):
        transfer(admitted(), movement_id="M2", at=t(1), unit_code="CHIR", bed_code="MED-101-2",
                 unit_beds=BEDS["CHIR"], now=t(1))
    with pytest.raises(BedOutsideUnit):  # beds are checked against a list, never guessed from codes
        transfer(admitted(), movement_id="M2", at=t(1), unit_code="CHIR", bed_code="CHIR-201-1", now=t(1))
    stay = move(admitted(), "CHIR", "CHIR-201-1", 1, "M2")
    assert current_location(stay) == ("CHIR", "CHIR-201-1")


def test_a_transfer_to_the_same_unit_and_bed_is_refused() -> None:
    with pytest.raises(TransferToSameLocation):
        move(admitted(), "MED", "MED-101-1", 1, "M2")
    with pytest.raises(TransferToSameLocation):
        move(admitted(unit="URG", bed=None), "URG", None, 1, "M2")


def test_a_transfer_to_another_bed_of_the_same_unit_is_allowed() -> None:
    stay = move(admitted(), "MED", "MED-101-2", 60, "M2")
    assert current_location(stay) == ("MED", "MED-101-2")
    assert occupancies(stay) == [Occupancy("MED-101-1", "S1", t(0), t(60)), Occupancy("MED-101-2", "S1", t(60), None)]


def test_a_mutation_stays_in_its_establishment() -> None:
    with pytest.raises(TransferLeavesEstablishment):
        move(admitted(), "CHIR", None, 1, "M2", establishment_code="BETHUNE")
    assert move(admitted(), "CHIR", None, 1, "M2", establishment_code="LENS").status is S.IN_PROGRESS


def test_a_transfer_to_another_establishment_closes_the_stay_and_opens_a_new_one() -> None:
    closed, opened = transfer_to_establishment(
        admitted(), new_stay_id="S2", establishment_code="BETHUNE", discharge_movement_id="M2",
        admission_movement_id="M3", at=t(120), unit_code="CHIR", bed_code="CHIR-201-1", unit_beds=BEDS["CHIR"],
        now=t(120))
    assert (closed.id, closed.establishment_code, closed.status) == ("S1", "LENS", S.FINISHED)
    assert closed.movements[-1].kind is K.DISCHARGE
    assert (opened.id, opened.establishment_code, opened.status) == ("S2", "BETHUNE", S.IN_PROGRESS)
    assert opened.encounter_class is C.INPATIENT
    assert [m.kind for m in opened.movements] == [K.ADMISSION]
    assert occupancies(closed)[-1].end == occupancies(opened)[0].start == t(120)


def test_a_transfer_to_another_establishment_must_leave_the_current_one() -> None:
    with pytest.raises(TransferWithinEstablishment):
        transfer_to_establishment(admitted(), new_stay_id="S2", establishment_code="LENS", discharge_movement_id="M2",
                                  admission_movement_id="M3", at=t(1), unit_code="CHIR", now=t(1))


# --- leave ---------------------------------------------------------------------------------------


def test_a_leave_starts_when_present_and_ends_when_absent() -> None:
    stay = admitted()
    with pytest.raises(NotOnLeave):
        end_leave(stay, movement_id="M2", at=t(1), now=t(1))
    away = start_leave(stay, movement_id="M2", at=t(60), now=t(60))
    assert away.status is S.ON_LEAVE
    assert current_location(away) == ("MED", "MED-101-1")
    with pytest.raises(AlreadyOnLeave):
        start_leave(away, movement_id="M3", at=t(61), now=t(61))
    back = end_leave(away, movement_id="M3", at=t(300), now=t(300))
    assert (back.status, current_location(back)) == (S.IN_PROGRESS, ("MED", "MED-101-1"))


def test_a_patient_on_leave_is_not_moved_until_back() -> None:
    away = start_leave(admitted(), movement_id="M2", at=t(60), now=t(60))
    with pytest.raises(PatientOnLeave):
        move(away, "CHIR", None, 61, "M3")
    with pytest.raises(PatientOnLeave):
        change_class(away, C.OUTPATIENT, movement_id="M3", at=t(61), now=t(61))
    back = end_leave(away, movement_id="M3", at=t(120), now=t(120))
    assert current_location(move(back, "CHIR", None, 121, "M4")) == ("CHIR", None)


def test_a_patient_on_leave_can_be_discharged() -> None:
    away = start_leave(admitted(), movement_id="M2", at=t(60), now=t(60))
    stay = discharge(away, movement_id="M3", at=t(600), now=t(600))
    assert stay.status is S.FINISHED
    assert occupancies(stay) == [Occupancy("MED-101-1", "S1", t(0), t(600))]


def test_a_leave_keeps_the_bed_unless_told_otherwise() -> None:
    stay = admitted()
    stay = start_leave(stay, movement_id="M2", at=t(60), now=t(60))
    stay = end_leave(stay, movement_id="M3", at=t(300), now=t(300))
    stay = discharge(stay, movement_id="M4", at=t(600), now=t(600))
    assert occupancies(stay) == [Occupancy("MED-101-1", "S1", t(0), t(600))]
    assert occupancies(stay, keep_bed_on_leave=False) == [
        Occupancy("MED-101-1", "S1", t(0), t(60)), Occupancy("MED-101-1", "S1", t(300), t(600))]


# --- status --------------------------------------------------------------------------------------


def test_a_finished_stay_takes_no_movement_until_its_discharge_is_cancelled() -> None:
    done = discharge(move(admitted(), "CHIR", "CHIR-201-1", 30, "M2"), movement_id="M3", at=t(90), now=t(90))
    assert current_location(done) is None
    with pytest.raises(StayAlreadyFinished):
        move(done, "MED", None, 100, "M4")
    with pytest.raises(StayAlreadyFinished):
        start_leave(done, movement_id="M4", at=t(100), now=t(100))
    reopened = cancel_last(done, K.DISCHARGE, now=t(100))
    assert (reopened.status, current_location(reopened)) == (S.IN_PROGRESS, ("CHIR", "CHIR-201-1"))
    assert occupancies(reopened)[-1] == Occupancy("CHIR-201-1", "S1", t(30), None)
    assert move(reopened, "MED", None, 100, "M4").status is S.IN_PROGRESS


def test_a_pre_admitted_stay_must_be_admitted_before_anything_else() -> None:
    planned = pre_admit("S1", "LENS", C.INPATIENT, movement_id="M1", at=t(60), unit_code="MED", now=t(0))
    refusals: list[Callable[[], Stay]] = [
        lambda: move(planned, "CHIR", None, 1, "M2"),
        lambda: start_leave(planned, movement_id="M2", at=t(1), now=t(1)),
        lambda: discharge(planned, movement_id="M2", at=t(1), now=t(1)),
        lambda: change_class(planned, C.OUTPATIENT, movement_id="M2", at=t(1), now=t(1)),
    ]
    for refused in refusals:
        with pytest.raises(StayNotStarted):
            refused()
    stay = admit_planned(planned, movement_id="M2", at=t(1), unit_code="MED", now=t(1))
    assert current_location(move(stay, "CHIR", None, 2, "M3")) == ("CHIR", None)


def test_cancelling_a_direct_admission_cancels_the_stay() -> None:
    stay = cancel_last(admitted(), K.ADMISSION, now=t(5))
    assert stay.status is S.CANCELLED
    assert stay.movements[0].cancelled
    assert (current_location(stay), occupancies(stay)) == (None, [])
    with pytest.raises(StayCancelled):
        move(stay, "CHIR", None, 10, "M2")
    with pytest.raises(StayCancelled):
        admit_planned(stay, movement_id="M2", at=t(10), unit_code="MED", now=t(10))
    with pytest.raises(NothingToCancel):
        cancel_last(stay, K.ADMISSION, now=t(10))


def test_cancelling_the_admission_of_a_pre_admitted_stay_leaves_it_pre_admitted() -> None:
    planned = pre_admit("S1", "LENS", C.INPATIENT, movement_id="M1", at=t(60), unit_code="MED", now=t(0))
    stay = admit_planned(planned, movement_id="M2", at=t(60), unit_code="MED", now=t(60))
    back = cancel_last(stay, K.ADMISSION, now=t(70))
    assert back.status is S.PLANNED
    assert cancel_last(back, K.PRE_ADMISSION, now=t(70)).status is S.CANCELLED


# --- class changes -------------------------------------------------------------------------------


# PAM FR §5.3.5: the matrix reads by destination: A06 towards I or R, A07 towards E or O.
@pytest.mark.parametrize(("source", "target", "trigger"), [
    (C.EMERGENCY, C.INPATIENT, "A06"), (C.EMERGENCY, C.SESSION, "A06"), (C.EMERGENCY, C.OUTPATIENT, "A07"),
    (C.INPATIENT, C.EMERGENCY, "A07"), (C.INPATIENT, C.SESSION, "A06"), (C.INPATIENT, C.OUTPATIENT, "A07"),
    (C.SESSION, C.EMERGENCY, "A07"), (C.SESSION, C.INPATIENT, "A06"), (C.SESSION, C.OUTPATIENT, "A07"),
    (C.OUTPATIENT, C.EMERGENCY, "A07"), (C.OUTPATIENT, C.INPATIENT, "A06"), (C.OUTPATIENT, C.SESSION, "A06"),
    (C.DAY_HOSPITAL, C.OUTPATIENT, "A07"), (C.DAY_HOSPITAL, C.SESSION, "A06"),
])
def test_a_class_change_follows_the_pam_matrix(source: EncounterClass, target: EncounterClass, trigger: str) -> None:
    stay = change_class(admitted(source, unit="URG", bed=None), target, movement_id="M2", at=t(30), now=t(30))
    assert stay.encounter_class is target
    assert trigger_event(stay.movements[-1].kind) == trigger
    assert cancel_trigger(stay.movements[-1].kind) == ("A07" if trigger == "A06" else "A06")


def test_an_emergency_patient_hospitalised_moves_into_a_ward_bed() -> None:
    stay = change_class(admitted(C.EMERGENCY, unit="URG", bed=None), C.INPATIENT, movement_id="M2", at=t(240),
                        unit_code="MED", bed_code="MED-101-2", unit_beds=BEDS["MED"], now=t(240))
    assert current_location(stay) == ("MED", "MED-101-2")
    restored = cancel_last(stay, K.CLASS_TO_INPATIENT, now=t(250))
    assert (restored.encounter_class, current_location(restored)) == (C.EMERGENCY, ("URG", None))


def test_a_class_change_must_change_the_patient_class() -> None:
    with pytest.raises(ClassUnchanged):
        change_class(admitted(), C.INPATIENT, movement_id="M2", at=t(1), now=t(1))
    with pytest.raises(ClassUnchanged, match="keeps patient class I"):
        change_class(admitted(), C.DAY_HOSPITAL, movement_id="M2", at=t(1), now=t(1))


# --- cancellation --------------------------------------------------------------------------------


def test_only_the_last_active_movement_can_be_cancelled() -> None:
    stay = start_leave(move(admitted(), "CHIR", None, 30, "M2"), movement_id="M3", at=t(60), now=t(60))
    with pytest.raises(OnlyLastMovementCanBeCancelled):
        cancel_last(stay, K.TRANSFER, now=t(70))
    with pytest.raises(OnlyLastMovementCanBeCancelled):
        cancel_last(stay, K.LEAVE_START, now=t(70), movement_id="M2")
    stay = cancel_last(stay, K.LEAVE_START, now=t(70), movement_id="M3")
    stay = cancel_last(stay, K.TRANSFER, now=t(70))  # reverse order, as PAM FR §5.3.5 asks
    assert current_location(stay) == ("MED", "MED-101-1")
    assert [m.cancelled for m in stay.movements] == [False, True, True]


def test_a_cancelled_movement_no_longer_orders_the_next_ones() -> None:
    stay = cancel_last(move(admitted(), "CHIR", None, 30, "M2"), K.TRANSFER, now=t(31))
    assert current_location(move(stay, "CHIR", None, 10, "M3")) == ("CHIR", None)


# --- values --------------------------------------------------------------------------------------


def test_a_stay_must_agree_with_its_movements() -> None:
    arrival = Movement("M1", K.ADMISSION, T0, "MED", None, False, C.INPATIENT)
    assert Stay("S1", "LENS", C.INPATIENT, S.IN_PROGRESS, (arrival,)) == rebuild_stay("S1", "LENS", [arrival])
    with pytest.raises(ValueError, match="derived"):
        Stay("S1", "LENS", C.INPATIENT, S.FINISHED, (arrival,))
    with pytest.raises(ValueError, match="derived"):
        Stay("S1", "LENS", C.OUTPATIENT, S.IN_PROGRESS, (arrival,))
    with pytest.raises(ValueError, match="starts with a movement"):
        rebuild_stay("S1", "LENS", [])


def test_an_occupancy_cannot_end_before_it_starts() -> None:
    with pytest.raises(ValueError, match="end before"):
        Occupancy("B", "S1", t(10), t(9))


# --- bed conflicts -------------------------------------------------------------------------------


def test_a_bed_freed_at_ten_can_be_taken_at_ten() -> None:
    leaving = Occupancy("MED-101-1", "S1", t(0), t(120))
    arriving = Occupancy("MED-101-1", "S2", t(120), t(300))
    assert bed_conflicts(arriving, [leaving]) == []
    assert bed_conflicts(leaving, [arriving]) == []
    assert bed_conflicts(Occupancy("MED-101-1", "S2", t(119), None), [leaving]) == [leaving]


def test_an_ongoing_occupancy_conflicts_with_anything_later_in_its_bed_only() -> None:
    ongoing = Occupancy("MED-101-1", "S1", t(0), None)
    other_bed = Occupancy("MED-101-2", "S3", t(0), None)
    candidate = Occupancy("MED-101-1", "S2", t(10_000), t(10_060))
    assert bed_conflicts(candidate, [ongoing, other_bed]) == [ongoing]


def test_a_stay_does_not_conflict_with_itself() -> None:
    assert bed_conflicts(Occupancy("MED-101-1", "S1", t(0), None), [Occupancy("MED-101-1", "S1", t(0), None)]) == []


def test_an_empty_period_conflicts_with_nothing() -> None:
    assert bed_conflicts(Occupancy("B", "S2", t(5), t(5)), [Occupancy("B", "S1", t(0), None)]) == []
    assert bed_conflicts(Occupancy("B", "S1", t(0), None), [Occupancy("B", "S2", t(5), t(5))]) == []


def _minutes(o: Occupancy, horizon: int) -> set[int]:
    end = horizon if o.end is None else int((o.end - T0) / timedelta(minutes=1))
    return set(range(int((o.start - T0) / timedelta(minutes=1)), end))


# Small numbers, so that touching and nested periods come up often.
periods = st.tuples(st.integers(0, 12), st.one_of(st.none(), st.integers(0, 12))).map(
    lambda p: (p[0], None if p[1] is None else p[0] + p[1]))


@given(periods, periods, st.sampled_from(["B1", "B2"]), st.sampled_from(["S1", "S2"]))
def test_conflicts_are_exactly_shared_minutes_of_one_bed_between_two_stays(
        a: tuple[int, int | None], b: tuple[int, int | None], bed: str, stay_id: str) -> None:
    first = Occupancy("B1", "S1", t(a[0]), None if a[1] is None else t(a[1]))
    second = Occupancy(bed, stay_id, t(b[0]), None if b[1] is None else t(b[1]))
    shared = bool(_minutes(first, 200) & _minutes(second, 200))
    expected = [second] if shared and bed == "B1" and stay_id != "S1" else []
    assert bed_conflicts(first, [second]) == expected
    assert bed_conflicts(second, [first]) == ([first] if expected else [])


# --- properties over movement sequences ----------------------------------------------------------

LOCATIONS = [("MED", "MED-101-1"), ("MED", "MED-101-2"), ("MED", None), ("CHIR", "CHIR-201-1"), ("URG", None)]
Observed = tuple[Any, ...]


def observe(stay: Stay | None) -> Observed:
    """What a reader of the stay can see, apart from the cancelled movements kept for history."""
    if stay is None or stay.status is S.CANCELLED:
        return (S.CANCELLED, None, None, (), [], [])
    return (stay.status, stay.encounter_class, current_location(stay), stay.active_movements,
            occupancies(stay), occupancies(stay, keep_bed_on_leave=False))


def step(stay: Stay, op: str, at: datetime, location: tuple[str, str | None], target: EncounterClass,
         movement_id: str) -> Stay:
    unit, bed = location
    now = at
    actions: dict[str, Callable[[], Stay]] = {
        "admit_planned": lambda: admit_planned(stay, movement_id=movement_id, at=at, unit_code=unit, bed_code=bed,
                                               unit_beds=BEDS[unit], now=now),
        "transfer": lambda: transfer(stay, movement_id=movement_id, at=at, unit_code=unit, bed_code=bed,
                                     unit_beds=BEDS[unit], now=now),
        "start_leave": lambda: start_leave(stay, movement_id=movement_id, at=at, now=now),
        "end_leave": lambda: end_leave(stay, movement_id=movement_id, at=at, now=now),
        "discharge": lambda: discharge(stay, movement_id=movement_id, at=at, now=now),
        "change_class": lambda: change_class(stay, target, movement_id=movement_id, at=at, now=now),
        "move_class": lambda: change_class(stay, target, movement_id=movement_id, at=at, unit_code=unit,
                                           bed_code=bed, unit_beds=BEDS[unit], now=now),
        "cancel": lambda: cancel_last(stay, stay.active_movements[-1].kind if stay.active_movements else K.ADMISSION,
                                      now=now),
    }
    return actions[op]()


# Operations that make sense in each status, weighted so that stays live long enough to mix
# transfers, leaves, class changes and cancellations; one step in ten tries anything, to hit refusals.
NEXT_OPS: dict[EncounterStatus, list[str]] = {
    S.PLANNED: ["admit_planned", "admit_planned", "admit_planned", "cancel"],
    S.IN_PROGRESS: ["transfer", "transfer", "transfer", "start_leave", "discharge", "change_class", "move_class",
                    "cancel"],
    S.ON_LEAVE: ["end_leave", "end_leave", "discharge", "cancel"],
    S.FINISHED: ["cancel"],
}
ALL_OPS = sorted({op for ops in NEXT_OPS.values() for op in ops})
Trace = list[tuple[str, Stay | None, Stay]]


@st.composite
def journeys(draw: st.DrawFn) -> Trace:
    """A stay driven through the operations the rules accept: (operation, before, after) for each."""
    planned, encounter_class = draw(st.booleans()), draw(st.sampled_from(list(C)))
    unit, bed = draw(st.sampled_from(LOCATIONS))
    if planned and encounter_class is not C.EMERGENCY:
        stay = pre_admit("S1", "LENS", encounter_class, movement_id="M0", at=t(600), unit_code=unit, bed_code=bed,
                         unit_beds=BEDS[unit], now=t(0))
    else:
        stay = admit("S1", "LENS", encounter_class, movement_id="M0", at=t(0), unit_code=unit, bed_code=bed,
                     unit_beds=BEDS[unit], now=t(0))
    trace: Trace = [("open", None, stay)]
    clock = t(0)
    for number in range(1, draw(st.integers(0, 30)) + 1):
        if stay.status is S.CANCELLED:
            break
        anything = draw(st.integers(0, 9)) == 0
        op = draw(st.sampled_from(ALL_OPS if anything else NEXT_OPS[stay.status]))
        clock += timedelta(minutes=draw(st.integers(0, 240)))
        location, target = draw(st.sampled_from(LOCATIONS)), draw(st.sampled_from(list(C)))
        try:
            after = step(stay, op, clock, location, target, f"M{number}")
        except StayRuleError:
            continue
        trace.append((op, stay, after))
        stay = after
    return trace


@given(journeys())
def test_a_stay_never_holds_two_beds_or_one_bed_twice_at_once(trace: Trace) -> None:
    for _, _, stay in trace:
        for keep in (True, False):
            held = occupancies(stay, keep_bed_on_leave=keep)
            assert all(o.end is None or o.start < o.end for o in held)
            for earlier, later in pairwise(held):
                assert earlier.end is not None and earlier.end <= later.start
            assert all(bed_conflicts(o, held) == [] for o in held)
            assert all(o.bed_code in BEDS["MED"] | BEDS["CHIR"] for o in held)


@given(journeys())
def test_active_movements_stay_in_time_order(trace: Trace) -> None:
    for _, _, stay in trace:
        dated = [m.at for m in stay.active_movements if m.kind is not K.PRE_ADMISSION]
        assert dated == sorted(dated)


@given(journeys())
def test_cancelling_the_last_movement_restores_the_state_before_it(trace: Trace) -> None:
    undo: list[Observed] = []
    for op, before, after in trace:
        if op == "cancel":
            assert observe(after) == undo.pop()
        else:
            undo.append(observe(before))
            last = after.active_movements[-1]
            assert observe(cancel_last(after, last.kind, now=last.at, movement_id=last.id)) == undo[-1]


@given(journeys())
def test_cancelling_every_movement_in_reverse_order_cancels_the_stay(trace: Trace) -> None:
    stay = trace[-1][2]
    while stay.active_movements:
        stay = cancel_last(stay, stay.active_movements[-1].kind, now=t(100_000))
    assert observe(stay) == observe(None)
    assert stay.status is S.CANCELLED
