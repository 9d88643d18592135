"""naho's own movements go out as PAM FR ADT through the outbox, to a real MLLP receiver on
loopback: order, fields read back by naho's own parser, retries, no echo, INS only if qualified."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import hl7
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from naho.app import create_app
from naho.config import Settings
from naho.interop.hl7_sender import control_id_of
from naho.interop.mllp import serve_mllp
from naho.platform.clock import FixedClock
from naho.platform.deps import Container
from naho.platform.outbox import DELIVERED, PENDING, OutboxMessage, OutboxWorker
from naho.record import hl7 as adt
from naho.record import service as record
from naho.record.schemas import AdmissionCreate
from tests.interop.test_mllp import ServerThread
from tests.personas import CLERK, form_token, login

UNIT = "LENS-MED-MIN"
BED = "LENS-MED-MIN-521-1"
PARIS = ZoneInfo("Europe/Paris")


class Receiver:
    """The receiving system: records each message and answers with the next code (then AA)."""

    def __init__(self, codes: list[str] | None = None) -> None:
        self.codes = list(codes or [])
        self.messages: list[str] = []
        self.server = ServerThread(lambda port: serve_mllp(self.handle, "127.0.0.1", port))

    async def handle(self, message: bytes, peer: str) -> bytes:
        text = message.decode("utf-8")
        self.messages.append(text)
        control = str(hl7.parse(text.strip())["MSH.F10"])
        code = self.codes.pop(0) if self.codes else "AA"
        err = "\rERR||PID^1^3|204^Unknown key identifier^HL70357|E|UnknownPatient|||no such IPP" if code != "AA" else ""
        return f"MSH|^~\\&|RECV|SITE|NAHO|GHT-ARTOIS|20261125100000||ACK|r1|P|2.5\rMSA|{code}|{control}{err}\r".encode()

    def parsed(self) -> list[adt.AdtCommand]:
        return [adt.parse_adt(m, zone=PARIS) for m in self.messages]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.close()


def _app(db_url: str, clock: FixedClock, port: int | None):  # type: ignore[no-untyped-def]
    return create_app(Settings(mode="test", database_url=db_url, workers=False,
                               hl7_adt_destination=f"127.0.0.1:{port}" if port else ""), clock=clock)


@pytest.fixture
def sending_client(db_url: str, clock: FixedClock, receiver: Receiver) -> Iterator[TestClient]:
    app = _app(db_url, clock, receiver.server.port)
    with TestClient(app, base_url="http://testserver") as client:
        yield client
    app.state.container.engine.dispose()


def _container(client: TestClient) -> Container:
    return client.app.state.container  # type: ignore[attr-defined, no-any-return]


def _worker(client: TestClient) -> OutboxWorker:
    c = _container(client)
    return OutboxWorker(c.session_factory, c.clock, c.ports["outbox_handlers"], backoff_seconds=60)


def _post(client: TestClient, path: str, body: dict):  # type: ignore[no-untyped-def, type-arg]
    return client.post(path, json=body, headers={"x-csrf-token": form_token(client)})


def _patient(client: TestClient, name: str = "Dufour", first: str = "Paul Henri") -> dict:  # type: ignore[type-arg]
    response = _post(client, "/api/patients", {"birth_name": name, "first_names": first, "sex": "M",
                                               "birth_date": "1951-07-02", "birth_place": "62498"})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def _admit(client: TestClient, patient_id: str) -> dict:  # type: ignore[type-arg]
    response = _post(client, "/api/encounters", {"patient_id": patient_id, "establishment_code": "LENS",
                                                 "encounter_class": "inpatient", "unit_code": UNIT, "bed_code": BED})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def _later(client: TestClient, clock: FixedClock, **delta: float) -> None:
    clock.advance(**delta)
    login(client, CLERK)


def _outbox(client: TestClient) -> list[OutboxMessage]:
    with _container(client).session_factory() as s:
        return list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.created_at, OutboxMessage.ordering_seq)))


def test_admission_transfer_discharge_and_cancel_reach_the_receiver_in_order(
        sending_client: TestClient, receiver: Receiver, clock: FixedClock) -> None:
    client = sending_client
    login(client, CLERK)
    patient = _patient(client)
    stay = _admit(client, patient["id"])
    _later(client, clock, hours=2)
    assert _post(client, f"/api/encounters/{stay['id']}/transfer",
                 {"unit_code": UNIT, "bed_code": "LENS-MED-MIN-523-1"}).status_code == 200
    _later(client, clock, days=2)
    assert _post(client, f"/api/encounters/{stay['id']}/discharge", {}).status_code == 200
    _later(client, clock, minutes=10)
    back = _post(client, f"/api/encounters/{stay['id']}/cancel", {"kind": "discharge"})
    assert back.status_code == 200, back.text
    assert _worker(client).run_once() == 5  # the registration's A28 first (ITI-30), then the movements
    assert [m.status for m in _outbox(client)] == [DELIVERED] * 5

    a28, a01, a02, a03, a13 = receiver.parsed()
    assert isinstance(a28, adt.CreateIdentity) and a28.header.structure == "ADT_A05"
    assert [c.header.trigger for c in (a01, a02, a03, a13)] == ["A01", "A02", "A03", "A13"]
    assert [c.header.structure for c in (a01, a02, a03, a13)] == ["ADT_A01", "ADT_A02", "ADT_A03", "ADT_A01"]
    assert isinstance(a01, adt.Admit) and isinstance(a02, adt.Transfer) and isinstance(a03, adt.Discharge)
    assert isinstance(a13, adt.CancelMovement)
    ids = {c.header.control_id for c in (a28, a01, a02, a03, a13)}
    # MSH-10 derives from the outbox id (20 characters, HL7 v2.5 ST): the receiver dedupes on it.
    assert ids == {control_id_of(m.id) for m in _outbox(client)} and {len(i) for i in ids} == {20}
    for command in (a01, a02, a03, a13):
        assert command.header.version == "2.5" and command.header.charset == "UNICODE UTF-8"
        assert command.header.sender == "NAHO/GHT-ARTOIS"
        assert command.patient.identifiers == (adt.Identifier(patient["ipp"], "NAHO", "PI"),)
        assert command.patient.reliability == ("PROV",)  # provisional: no INS, no VALI
        assert command.patient.birth_name == "DUFOUR" and command.patient.first_names == "PAUL HENRI"
        assert command.patient.birth_date == date(1951, 7, 2) and command.patient.birth_place == "62498"
        assert command.visit is not None and command.visit.patient_class == "I"
        assert command.visit.visit_number == adt.Identifier(stay["nda"], "NAHO", "AN")
    moves = {m["trigger"]: m for m in back.json()["movements"]}
    assert a01.visit and a01.visit.location == adt.Location(UNIT, "521", "1")
    assert a01.visit.location.bed_code == BED and a01.visit.action == "INSERT"
    assert a01.visit.movement_id == moves["A01"]["id"]  # ZBE-1: our movement id
    assert a01.visit.at == datetime.fromisoformat(moves["A01"]["at"]).replace(tzinfo=UTC)  # ZBE-2
    assert a02.visit and a02.visit.location and a02.visit.location.bed_code == "LENS-MED-MIN-523-1"
    assert a03.visit and a03.visit.movement_id == moves["A03"]["id"]
    assert a13.visit and a13.visit.action == "CANCEL" and a13.visit.movement_id == moves["A03"]["id"]
    assert a13.visit.location and a13.visit.location.bed_code == "LENS-MED-MIN-523-1"  # back in the bed
    zbe = [hl7.parse(m.strip()).segment("ZBE") for m in receiver.messages[1:]]
    assert [str(z(5)) for z in zbe] == ["N"] * 4
    assert [str(z(6)) for z in zbe] == ["", "", "", "A03"]  # ZBE-6: the cancelled movement's trigger
    assert [str(z(9)) for z in zbe] == ["HMS", "L", "HMS", "HMS"]  # A02 within the unit: a bed change
    assert str(zbe[0](7)(1)(7)) == "UF" and str(zbe[0](7)(1)(10)) == UNIT  # ZBE-7: the unit as UF


def test_a_refused_message_stays_pending_and_a_later_run_delivers_it_with_the_same_id(
        sending_client: TestClient, receiver: Receiver, clock: FixedClock) -> None:
    receiver.codes = ["AE"]
    client = sending_client
    login(client, CLERK)
    _admit(client, _patient(client)["id"])
    worker = _worker(client)
    assert worker.run_once() == 0
    [message, admission] = _outbox(client)  # the A28, then the A01 waiting behind it (FIFO per patient)
    assert message.status == PENDING and message.attempts == 1
    assert message.last_error and "AE" in message.last_error and "no such IPP" in message.last_error
    assert admission.status == PENDING and admission.attempts == 0
    assert worker.run_once() == 0  # waiting for its backoff
    clock.advance(minutes=2)
    assert worker.run_once() == 2
    [message, admission] = _outbox(client)
    assert message.status == DELIVERED and message.last_error is None and admission.status == DELIVERED
    assert [c.header.trigger for c in receiver.parsed()] == ["A28", "A28", "A01"]
    assert [c.header.control_id for c in receiver.parsed()] == [
        control_id_of(message.id), control_id_of(message.id), control_id_of(admission.id)]  # the retry keeps it


def test_an_unreachable_receiver_leaves_the_message_pending(db_url: str, clock: FixedClock) -> None:
    from tests.conftest import free_port

    app = _app(db_url, clock, free_port())
    with TestClient(app, base_url="http://testserver") as client:
        login(client, CLERK)
        _admit(client, _patient(client)["id"])
        assert _worker(client).run_once() == 0
        first, second = _outbox(client)
        assert first.status == PENDING and first.last_error and second.status == PENDING
    app.state.container.engine.dispose()


def test_without_a_receiver_configured_nothing_is_enqueued(client: TestClient) -> None:
    login(client, CLERK)
    stay = _admit(client, _patient(client)["id"])
    assert _post(client, f"/api/encounters/{stay['id']}/discharge", {}).status_code == 200
    assert _outbox(client) == []
    assert "hl7.adt" not in _container(client).uow().channels


def test_a_movement_received_from_an_interface_is_not_echoed_back(sending_client: TestClient) -> None:
    client = sending_client
    login(client, CLERK)
    patient = _patient(client)
    container = _container(client)
    uow = container.uow()
    assert "hl7.adt" in uow.channels
    record.admit_patient(uow, adt.interface_actor("GAM/LENS"), AdmissionCreate(
        patient_id=uuid.UUID(patient["id"]), establishment_code="LENS", encounter_class="inpatient",
        unit_code=UNIT, bed_code=BED))
    with container.session_factory() as s:  # only the clerk's registration (A28) goes out
        assert [m.payload["trigger"] for m in s.scalars(select(OutboxMessage))] == ["A28"]


def test_a_qualified_identity_carries_its_ins_and_vali(sending_client: TestClient, receiver: Receiver) -> None:
    client = sending_client
    login(client, CLERK)
    patient = _patient(client, "Martin", "Claire")
    response = client.post(f"/patients/{patient['id']}/identite/insi", data={"csrf_token": form_token(client)},
                           follow_redirects=False)
    assert response.status_code == 303
    qualified = _post(client, f"/api/patients/{patient['id']}/validation", {"proof": "national_id_card"}).json()
    assert qualified["status"] == "qualified" and qualified["ins"]
    _admit(client, patient["id"])
    assert _worker(client).run_once() == 4
    # A28; A31 when the INS is retrieved (a status change, the INS not shared yet); A31 again
    # once qualified (a new identifier in PID-3, PAM FR §4.1); then the admission.
    triggers = [c.header.trigger for c in receiver.parsed()]
    assert triggers == ["A28", "A31", "A31", "A01"]
    assert receiver.parsed()[1].patient.identifiers == (adt.Identifier(patient["ipp"], "NAHO", "PI"),)
    command = receiver.parsed()[3]
    assert command.patient.identifiers == (adt.Identifier(patient["ipp"], "NAHO", "PI"),
                                           adt.Identifier(qualified["ins"], "ASIP-SANTE-INS-NIR-DEMO", "INS"))
    assert command.patient.reliability == ("VALI",)
    pid = hl7.parse(receiver.messages[3].strip()).segment("PID")
    assert str(pid(3)(2)(4)) == f"ASIP-SANTE-INS-NIR-DEMO&{qualified['ins_oid']}&ISO"


def test_build_adt_is_pure_and_escapes_separators() -> None:
    snapshot = {
        "trigger": "A12", "action": "CANCEL", "original_trigger": "A02", "movement_id": "m-1",
        "movement_at": "2026-11-25T09:30:00+00:00", "movement_kind": "transfer", "encounter_class": "emergency",
        "establishment_code": "LENS", "finess": "620000000", "unit_code": "LENS-URG", "unit_name": "Urgences|adultes",
        "previous_unit_code": None, "room": "", "bed": "", "bed_code": None, "nda": "026000001",
        "patient": {"ipp": "P1", "birth_name": "O'NEIL", "used_name": "DURAND^X", "first_names": "ANNE",
                    "used_first_name": None, "sex": "I", "birth_date": "2001-02-03", "birth_place": None,
                    "status": "provisional", "doubtful": True, "fictitious": False, "ins": None, "ins_oid": None},
    }
    text = adt.build_adt(snapshot, control_id="c1", sending_application="NAHO", sending_facility="GHT",
                         now=datetime(2026, 11, 25, 10, 0, tzinfo=UTC), zone=PARIS)
    assert text == adt.build_adt(snapshot, control_id="c1", sending_application="NAHO", sending_facility="GHT",
                                 now=datetime(2026, 11, 25, 10, 0, tzinfo=UTC), zone=PARIS)
    command = adt.parse_adt(text, zone=PARIS)
    assert isinstance(command, adt.CancelMovement) and command.visit is not None
    assert command.visit.patient_class == "E" and command.visit.location == adt.Location("LENS-URG", "", "")
    assert command.visit.at == datetime(2026, 11, 25, 10, 30, tzinfo=PARIS)
    assert command.patient.used_name == "DURAND^X" and command.patient.sex == "I"  # out as U, back as I
    assert command.patient.reliability == ("PROV", "DOUT")
    assert "MSH|^~\\&|NAHO|GHT|||20261125110000+0100||ADT^A12^ADT_A12|c1|P|2.5^FRA^2.11|||||FRA|UNICODE UTF-8" in text


def test_the_control_id_is_twenty_characters_derived_from_the_envelope() -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    assert control_id_of(first) == control_id_of(uuid.UUID(str(first)))  # a retry sends the same MSH-10
    assert control_id_of(first) != control_id_of(second)
    assert len(control_id_of(first)) == 20 and control_id_of(first).isalnum()


def test_msh_5_and_6_name_the_receiver_from_the_settings(db_url: str, clock: FixedClock,
                                                         receiver: Receiver) -> None:
    app = create_app(Settings(mode="test", database_url=db_url, workers=False,
                              hl7_adt_destination=f"127.0.0.1:{receiver.server.port}",
                              hl7_receiving_application="GAM", hl7_receiving_facility="CH-LENS"), clock=clock)
    with TestClient(app, base_url="http://testserver") as client:
        login(client, CLERK)
        _patient(client)
        assert _worker(client).run_once() == 1
    app.state.container.engine.dispose()
    [a28] = receiver.parsed()
    assert (a28.header.receiving_application, a28.header.receiving_facility) == ("GAM", "CH-LENS")
    assert len(a28.header.control_id) == 20
