"""naho's identity changes go out as PAM FR ITI-30 through the outbox: A28 on registration, A31
on traits or status, A47 when the INS receivers hold stops being the patient's, A40 on merge;
none when an interface made the change or no receiver is configured."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import hl7
import pytest
from sqlalchemy import select

from naho.app import create_app
from naho.config import Settings
from naho.identity import service as identity
from naho.identity.schemas import PatientCreate, TraitsUpdate
from naho.platform.clock import FixedClock
from naho.platform.deps import Container
from naho.platform.outbox import OutboxMessage
from naho.platform.security.actor import Actor
from naho.platform.security.rules import Role
from naho.record import hl7 as adt
from naho.record import service as record
from naho.record.schemas import AdmissionCreate, TransferCreate

VIGILANCE = Actor(uuid.uuid4(), "iv", "Identitovigilance", frozenset({Role.IDENTITY_VIGILANCE}))


@pytest.fixture
def container(db_url: str, clock: FixedClock) -> Iterator[Container]:
    """A naho with a receiver configured: messages are enqueued (nobody delivers them here)."""
    app = create_app(Settings(mode="test", database_url=db_url, workers=False,
                              hl7_adt_destination="127.0.0.1:9"), clock=clock)
    yield app.state.container
    app.state.container.engine.dispose()


def _register(container: Container, name: str = "MARTIN", first: str = "CLAIRE", **more: Any) -> uuid.UUID:
    return identity.register_patient(container.uow(), VIGILANCE, PatientCreate(
        birth_name=name, first_names=first, sex="F", birth_date=date(1980, 2, 2), birth_place="62498", **more)).id


def _sent(container: Container) -> list[OutboxMessage]:
    with container.session_factory() as s:
        return list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.created_at, OutboxMessage.ordering_seq)))


def _wire(message: OutboxMessage) -> Any:
    text = adt.build_adt(message.payload, control_id="C1", sending_application="NAHO", sending_facility="GHT",
                         now=datetime(2026, 11, 25, 10, 0, tzinfo=UTC))
    return hl7.parse(text.strip())


def test_registration_traits_and_qualification_send_a28_then_a31(container: Container) -> None:
    patient_id = _register(container)
    identity.update_traits(container.uow(), VIGILANCE, patient_id, TraitsUpdate(
        reason="married", used_name="DURAND"), record.CARE)
    identity.retrieve_ins(container.uow(), VIGILANCE, patient_id, container.ports["insi"], record.CARE)
    qualified = identity.validate_identity(container.uow(), VIGILANCE, patient_id, "passport", record.CARE)
    assert qualified.status == "qualified" and qualified.ins
    sent = _sent(container)
    assert [m.payload["trigger"] for m in sent] == ["A28", "A31", "A31", "A31"]
    assert {m.ordering_key for m in sent} == {f"hl7.adt:{patient_id}"}
    a28, renamed, retrieved, last = (_wire(m) for m in sent)
    assert str(a28.segment("MSH")(9)) == "ADT^A28^ADT_A05" and str(a28.segment("PV1")(2)) == "N"
    assert adt.parse_adt(str(a28).replace("\n", "\r"), zone=UTC).patient.birth_name == "MARTIN"
    assert "DURAND" in str(renamed.segment("PID")(5))
    assert str(retrieved.segment("PID")(32)) == "PROV"  # retrieved, not yet qualified: no INS shared
    assert "^INS" not in str(retrieved.segment("PID")(3))
    pid = last.segment("PID")
    assert str(pid(3)(2)(1)) == qualified.ins and str(pid(32)) == "VALI"  # a new identifier: A31 (§4.1)


def _zfd(message: Any, field: int) -> str:
    """ZFD-n as sent; trailing empty fields are not written."""
    zfd = message.segment("ZFD")
    return str(zfd[field]) if field < len(zfd) else ""


def test_zfd_says_how_the_identity_was_established(container: Container, clock: FixedClock) -> None:
    # PAM FR §6.18: ZFD-5 INSI and ZFD-6 the teleservice's date once the INS is retrieved, else SM;
    # ZFD-7 the document checked, only while the status rests on it.
    patient_id = _register(container)
    identity.retrieve_ins(container.uow(), VIGILANCE, patient_id, container.ports["insi"], record.CARE)
    asked_insi = clock.now()
    identity.validate_identity(container.uow(), VIGILANCE, patient_id, "passport", record.CARE)
    identity.mark_doubtful(container.uow(), VIGILANCE, patient_id, "patient confus à l'accueil", record.CARE)
    a28, retrieved, qualified, doubtful = (_wire(m) for m in _sent(container))
    assert _zfd(a28, 5) == "SM" and _zfd(a28, 6) == "" and _zfd(a28, 7) == ""
    assert _zfd(retrieved, 5) == "INSI"
    assert _zfd(retrieved, 6) == asked_insi.strftime("%Y%m%d%H%M%S+0000")
    assert _zfd(retrieved, 7) == ""  # no document checked yet
    assert _zfd(qualified, 5) == "INSI" and _zfd(qualified, 7) == "PA"
    # Doubt brings the identity back to provisional: the INS and the proof no longer hold.
    assert str(doubtful.segment("MSH")(9)).startswith("ADT^A47")
    assert not [s for s in doubtful if str(s[0]) == "ZFD"]  # A47 carries no ZFD


def test_an_admission_carries_zfd_and_a_transfer_does_not(container: Container) -> None:
    patient_id = _register(container)
    identity.validate_identity(container.uow(), VIGILANCE, patient_id, "national_id_card", record.CARE)
    clerk = Actor(uuid.uuid4(), "accueil", "Accueil", frozenset({Role.ADMISSION_CLERK}))
    stay = record.admit_patient(container.uow(), clerk, AdmissionCreate(
        patient_id=patient_id, establishment_code="LENS", unit_code="LENS-MED-MIN", encounter_class="inpatient"))
    record.transfer_patient(container.uow(), clerk, stay.id, TransferCreate(unit_code="LENS-MED-CARDIO"))
    admitted, transferred = (_wire(m) for m in _sent(container) if m.payload.get("message") != "identity")
    assert _zfd(admitted, 5) == "SM" and _zfd(admitted, 7) == "CN"  # validated on an identity card, INS not retrieved
    assert not [s for s in transferred if str(s[0]) == "ZFD"]


def test_a_qualified_identity_put_in_doubt_sends_a47_to_drop_its_ins(container: Container) -> None:
    patient_id = _register(container)
    identity.retrieve_ins(container.uow(), VIGILANCE, patient_id, container.ports["insi"], record.CARE)
    qualified = identity.validate_identity(container.uow(), VIGILANCE, patient_id, "passport", record.CARE)
    identity.mark_doubtful(container.uow(), VIGILANCE, patient_id, "patient confus à l'accueil", record.CARE)
    last = _sent(container)[-1]
    assert last.payload["trigger"] == "A47"
    message = _wire(last)
    assert str(message.segment("MSH")(9)) == "ADT^A47^ADT_A30"
    mrg = message.segment("MRG")
    assert str(mrg(1)(1)(1)) == qualified.ins and str(mrg(1)(1)(5)) == "INS"  # MRG-1: the INS to drop
    pid = message.segment("PID")
    assert str(pid(3)(2)(1)) == '""' and str(pid(3)(2)(5)) == "INS"  # PID-3: "" under the INS authority
    assert [str(r) for r in pid(32)] == ["PROV", "DOUT"]


def test_a_merge_sends_a40_naming_the_merged_ipp_in_mrg(container: Container) -> None:
    survivor = _register(container)
    merged = identity.register_patient(container.uow(), VIGILANCE, PatientCreate(
        birth_name="MARTINN", first_names="CLAIRE", sex="F", birth_date=date(1980, 2, 2)),
        confirm_reason="typed at the front desk")
    identity.merge_patients(container.uow(), VIGILANCE, survivor, merged.id, "same person, typing error",
                            record.CARE, [record.MOVER])
    last = _sent(container)[-1]
    assert last.payload["trigger"] == "A40" and last.ordering_key == f"hl7.adt:{survivor}"
    message = _wire(last)
    assert str(message.segment("MSH")(9)) == "ADT^A40^ADT_A39"
    assert str(message.segment("MRG")(1)) == f"{merged.ipp}^^^NAHO^PI"
    assert str(message.segment("PID")(5)(1)(1)) == "MARTIN"


def test_nothing_goes_out_for_an_interface_or_without_a_receiver(container: Container, app) -> None:  # type: ignore[no-untyped-def]
    interface = adt.interface_actor("GAM/LENS")
    identity.register_patient(container.uow(), interface, PatientCreate(
        birth_name="ROUX", first_names="EMMA", sex="F", birth_date=date(1990, 1, 1)))
    assert _sent(container) == []
    plain = app.state.container  # the `app` fixture has no receiver configured
    _register(plain, "BLANC", "HUGO")
    assert _sent(plain) == []
