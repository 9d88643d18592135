"""Inbound PAM FR pre-admission (A05) and its cancel (A38), arrival of a planned stay (A01 naming
it), class changes (A06/A07) and their cancels, through the listener into the test's database."""

from __future__ import annotations

from datetime import UTC, datetime

import hl7
import pytest

from naho.interop.hl7_listener import AdtListener
from naho.platform.deps import Container
from naho.platform.inbox import REFUSED
from naho.record.schemas import EncounterPublic
from tests.interop.test_hl7_listener import inbound, patient_ipp, stays

BED = "LENS-MED-MIN-521-1"


def message(trigger: str, control: str, *, ipp: str = "", foreign: str = "", name: str = "MARTIN^LUC^LUC",
            patient_class: str = "I", location: str = "LENS-MED-MIN^521^1", at: str = "", expected: str = "",
            action: str = "INSERT", visit: str = "", account: str = "", mrg: str = "",
            structure: str = "ADT_A01") -> str:
    """A PAM FR message from the admission system GAM of Lens (times are Paris time)."""
    ids = "~".join(x for x in (f"{foreign}^^^GAM^PI" if foreign else "", f"{ipp}^^^NAHO^PI" if ipp else "") if x)
    pid = ["PID", "1", "", ids, "", f"{name}^^^^L", "", "19700101", "M", "", "", "^^^^^FRA^BDL^^62498",
           *[""] * 6, account]
    segments = [
        f"MSH|^~\\&|GAM|LENS|NAHO|GHT-ARTOIS|20261125100000||ADT^{trigger}^{structure}|{control}|P|2.5^FRA^2.11"
        "|||||FRA|UNICODE UTF-8",
        "EVN||20261125100000",
        "|".join(pid).rstrip("|"),
    ]
    if mrg:
        segments.append(f"MRG|{mrg}")
    if trigger not in ("A28", "A31", "A40", "A47"):
        segments.append("|".join(["PV1", "1", patient_class, location, *[""] * 15, visit]).rstrip("|"))
        if expected:
            segments.append("|".join(["PV2", *[""] * 7, expected]))
        segments.append(f"ZBE|{control}^GAM|{at}||{action}|N")
    return "\r".join(segments) + "\r"


def answer(ack: bytes) -> tuple[str, str, str, str]:
    """(MSA-1, MSA-2, ERR-5 rule, ERR-8 reason) of an acknowledgement."""
    parsed = hl7.parse(ack.decode())
    try:
        err = parsed.segment("ERR")
        rule, reason = str(err(5)), str(err(8))
    except KeyError:
        rule = reason = ""
    return str(parsed["MSA.F1"]), str(parsed["MSA.F2"]), rule, reason


@pytest.fixture
def container(app) -> Container:  # type: ignore[no-untyped-def]
    return app.state.container  # type: ignore[no-any-return]


@pytest.fixture
def gam(container: Container) -> AdtListener:
    """naho's listener, fed directly (the MLLP framing is tested in test_hl7_listener.py)."""
    return AdtListener(container)


def send(gam: AdtListener, text: str) -> tuple[str, str, str, str]:
    return answer(gam.receive(text.encode()))


def the_stay(container: Container, ipp: str) -> EncounterPublic:
    [stay] = stays(container, ipp)
    return stay


def test_a_pre_admission_then_its_arrival_naming_our_nda_keep_one_stay(container: Container,
                                                                       gam: AdtListener) -> None:
    assert send(gam, message("A05", "P1", foreign="G1", expected="20261127080000", at="20261125100000"))[0] == "AA"
    ipp = patient_ipp(container, "MARTIN")
    planned = the_stay(container, ipp)
    assert planned.status == "planned" and planned.bed_code is None
    assert planned.started_at == datetime(2026, 11, 27, 7, 0, tzinfo=UTC)  # PV2-8, Paris time
    assert [(m.trigger, m.bed_code) for m in planned.movements] == [("A05", BED)]
    arrival = message("A01", "P2", ipp=ipp, at="202611251000", visit=f"{planned.nda}^^^NAHO^AN")
    assert send(gam, arrival) == ("AA", "P2", "", "")
    stay = the_stay(container, ipp)
    assert stay.id == planned.id and stay.nda == planned.nda and stay.status == "in_progress"
    assert [m.trigger for m in stay.movements] == ["A05", "A01"] and stay.bed_code == BED
    again = send(gam, message("A01", "P3", ipp=ipp, at="202611251005", visit=f"{planned.nda}^^^NAHO^AN"))
    assert again[:3] == ("AE", "P3", "StayAlreadyStarted")


def test_a_pre_admission_without_a_planned_date_is_refused_and_kept(container: Container, gam: AdtListener) -> None:
    refused = send(gam, message("A05", "P9", foreign="G9"))
    assert refused[:3] == ("AE", "P9", "PlannedDateRequired") and "PV2-8" in refused[3]
    [row] = inbound(container)
    assert row.status == REFUSED and row.error and "PlannedDateRequired" in row.error
    emergency = send(gam, message("A05", "P10", foreign="G9", patient_class="E", expected="20261127080000"))
    assert emergency[:3] == ("AE", "P10", "EmergencyIsNeverPlanned")


def test_a38_cancels_the_only_planned_stay(container: Container, gam: AdtListener) -> None:
    assert send(gam, message("A05", "Q1", foreign="G2", expected="20261128090000"))[0] == "AA"
    ipp = patient_ipp(container, "MARTIN")
    assert send(gam, message("A38", "Q2", ipp=ipp, action="CANCEL")) == ("AA", "Q2", "", "")
    stay = the_stay(container, ipp)
    assert stay.status == "cancelled" and [(m.trigger, m.cancelled) for m in stay.movements] == [("A05", True)]
    # Nothing planned any more: said with the reason.
    nothing = send(gam, message("A38", "Q3", ipp=ipp, action="CANCEL"))
    assert nothing[:2] == ("AE", "Q3") and "no planned stay" in nothing[3]
    wrong = send(gam, message("A38", "Q4", ipp=ipp, action="INSERT"))
    assert wrong[:3] == ("AE", "Q4", "MovementActionMismatch")


def test_an_emergency_visit_becomes_a_hospitalisation_and_the_change_is_cancelled_by_a07(
        container: Container, gam: AdtListener) -> None:
    assert send(gam, message("A04", "E1", foreign="G3", patient_class="E", location="LENS-MED-MIN",
                             at="202611250800"))[0] == "AA"
    ipp = patient_ipp(container, "MARTIN")
    # E → O is an A07 (lighter care), not an A06: refused with the rule.
    wrong = send(gam, message("A06", "E2", ipp=ipp, patient_class="O", at="202611250830"))
    assert wrong[:3] == ("AE", "E2", "ClassChangeDirection")
    assert send(gam, message("A06", "E3", ipp=ipp, patient_class="I", at="202611250900")) == ("AA", "E3", "", "")
    stay = the_stay(container, ipp)
    assert stay.encounter_class == "inpatient" and stay.bed_code == BED  # into the bed of PV1-3
    assert [m.trigger for m in stay.movements] == ["A04", "A06"]
    # The cancel of an A06 is an A07 with ZBE-4 = CANCEL (§5.3.5).
    assert send(gam, message("A07", "E4", ipp=ipp, patient_class="E", action="CANCEL"))[0] == "AA"
    stay = the_stay(container, ipp)
    assert stay.encounter_class == "emergency" and stay.bed_code is None
    assert [(m.trigger, m.cancelled) for m in stay.movements] == [("A04", False), ("A06", True)]
    # And an A07 INSERT is a change towards lighter care.
    assert send(gam, message("A07", "E5", ipp=ipp, patient_class="O", location="LENS-MED-MIN",
                             at="202611250930"))[0] == "AA"
    assert the_stay(container, ipp).encounter_class == "outpatient"
