"""Laboratory orders go out as OML^O21 through the outbox to a real MLLP laboratory peer on
loopback: the fields the laboratory reads, the acknowledgement read back into the order (AA
accepts; AE / AR put it in error, retried then dead), a peer down then up gets the message once,
a cancellation follows its order."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import hl7
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from naho.app import create_app
from naho.config import Settings
from naho.interop.hl7_sender import control_id_of
from naho.platform import i18n
from naho.platform.clock import FixedClock
from naho.platform.outbox import DEAD, DELIVERED, PENDING, OutboxMessage, OutboxWorker
from naho.results.hl7_orders import build_oml
from naho.results.models import LabOrder
from tests.conftest import free_port
from tests.interop import test_mllp
from tests.interop.test_hl7_outbound import Receiver, _container
from tests.personas import NURSE, PHYSICIAN, form_token, login
from tests.results.conftest import Inpatient, admit_inpatient

PARIS = ZoneInfo("Europe/Paris")


def f(message: hl7.Message, segment: str, field: int) -> str:
    """A field as sent (components and escapes kept)."""
    return str(message.segment(segment)[field])


def _app(db_url: str, clock: FixedClock, port: int):  # type: ignore[no-untyped-def]
    return create_app(Settings(mode="test", database_url=db_url, workers=False,
                               hl7_lab_destination=f"127.0.0.1:{port}", hl7_lab_receiving_application="SIL",
                               hl7_lab_receiving_facility="LABO"), clock=clock)


@pytest.fixture
def laboratory() -> Iterator[Receiver]:
    peer = Receiver()
    yield peer
    peer.server.close()


@pytest.fixture
def ward(db_url: str, clock: FixedClock, laboratory: Receiver) -> Iterator[TestClient]:
    app = _app(db_url, clock, laboratory.server.port)
    with TestClient(app, base_url="http://testserver") as client:
        yield client
    app.state.container.engine.dispose()


def _worker(client: TestClient, max_attempts: int = 8) -> OutboxWorker:
    c = _container(client)
    return OutboxWorker(c.session_factory, c.clock, c.ports["outbox_handlers"], max_attempts=max_attempts,
                        backoff_seconds=60)


def _page(patient: Inpatient) -> str:
    return f"/patients/{patient.id}/examens-biologiques"


def _order(client: TestClient, patient: Inpatient, tests: list[str], urgency: str = "stat") -> None:
    login(client, PHYSICIAN)
    response = client.post(_page(patient), data={"examens": tests, "urgence": urgency, "renseignements": "Sepsis?",
                                                 "csrf_token": form_token(client, _page(patient))},
                           follow_redirects=False)
    assert response.status_code == 303, response.text


def _post(client: TestClient, path: str, **data: str) -> None:
    assert client.post(path, data={**data, "csrf_token": form_token(client)},
                       follow_redirects=False).status_code == 303


def _orders(client: TestClient) -> list[LabOrder]:
    with _container(client).session_factory() as s:
        return list(s.scalars(select(LabOrder).order_by(LabOrder.placer_number)))


def _outbox(client: TestClient) -> list[OutboxMessage]:
    with _container(client).session_factory() as s:
        return list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.created_at, OutboxMessage.ordering_seq)))


def test_an_order_reaches_the_laboratory_which_accepts_it(ward: TestClient, laboratory: Receiver) -> None:
    patient = admit_inpatient(_container(ward))
    _order(ward, patient, ["IONO"])
    [order] = _orders(ward)
    assert order.transmission == "pending"
    [queued] = _outbox(ward)
    assert queued.topic == "hl7.lab-order" and queued.status == PENDING
    assert _worker(ward).run_once() == 1

    [text] = laboratory.messages
    message = hl7.parse(text.strip())
    assert f(message, "MSH", 9) == "OML^O21^OML_O21" and f(message, "MSH", 10) == control_id_of(queued.id)
    assert (f(message, "MSH", 5), f(message, "MSH", 6)) == ("SIL", "LABO")
    assert f(message, "PID", 3) == f"{patient.ipp}^^^NAHO^PI"
    assert f(message, "PV1", 19) == f"{patient.nda}^^^NAHO^AN"
    assert f(message, "ORC", 1) == "NW" and f(message, "ORC", 2) == f"{order.placer_number}^NAHO"
    assert f(message, "ORC", 4) == f"{order.group_number}^NAHO"
    assert f(message, "TQ1", 9) == "S"
    assert f(message, "OBR", 2) == f"{order.placer_number}^NAHO"
    assert f(message, "OBR", 4) == "IONO^Ionogramme sanguin^L^24326-1^Ionogramme sanguin^LN"
    assert f(message, "OBR", 13) == "Sepsis?"
    assert f(message, "SPM", 2) == f"{order.specimen_number}&NAHO"
    assert f(message, "SPM", 4) == "PLAS^Plasma^HL70487"

    [order] = _orders(ward)
    assert (order.transmission, order.status, order.accepted_at is not None) == ("accepted", "ordered", True)
    assert [m.status for m in _outbox(ward)] == [DELIVERED]
    # Collected after the laboratory accepted the order: the laboratory has it.
    login(ward, NURSE)
    _post(ward, f"{_page(patient)}/prelevement", etiquette=order.specimen_number)
    assert _orders(ward)[0].status == "received"
    assert i18n._("accepted by the laboratory") in ward.get(_page(patient)).text


def test_a_cancellation_follows_its_order(ward: TestClient, laboratory: Receiver) -> None:
    patient = admit_inpatient(_container(ward))
    _order(ward, patient, ["CRP"], "routine")
    [order] = _orders(ward)
    _post(ward, f"{_page(patient)}/{order.id}/annulation", motif="Erreur")
    assert _worker(ward).run_once() == 2
    new, cancel = (hl7.parse(m.strip()) for m in laboratory.messages)
    assert [f(m, "ORC", 1) for m in (new, cancel)] == ["NW", "CA"]
    assert f(cancel, "ORC", 2) == f(new, "ORC", 2) and f(new, "TQ1", 9) == "R"
    assert f(new, "MSH", 10) != f(cancel, "MSH", 10)
    [order] = _orders(ward)
    assert (order.status, order.transmission) == ("cancelled", "accepted")


@pytest.mark.parametrize("code", ["AE", "AR"])
def test_a_refusal_puts_the_order_in_error_then_the_message_dies(ward: TestClient, laboratory: Receiver,
                                                                  clock: FixedClock, code: str) -> None:
    laboratory.codes = [code, code]
    patient = admit_inpatient(_container(ward))
    _order(ward, patient, ["TROPO"])
    worker = _worker(ward, max_attempts=2)
    assert worker.run_once() == 0
    [order] = _orders(ward)
    assert order.transmission == "error" and order.transmission_error == f"{code}: no such IPP"
    [message] = _outbox(ward)
    assert message.status == PENDING and message.attempts == 1 and f"{code}: no such IPP" in (message.last_error or "")
    login(ward, PHYSICIAN)
    page = ward.get(_page(patient)).text
    assert 'data-transmission="error"' in page and i18n._("refused by the laboratory") in page
    clock.advance(minutes=2)
    assert worker.run_once() == 0
    assert _outbox(ward)[0].status == DEAD  # after max_attempts, as every outbox message
    assert len(laboratory.messages) == 2 and len({f(hl7.parse(m.strip()), "MSH", 10) for m in
                                                  laboratory.messages}) == 1  # a retry is recognisable
    assert _orders(ward)[0].transmission == "error"


def test_a_refusal_then_an_acceptance_clears_the_error(ward: TestClient, laboratory: Receiver,
                                                       clock: FixedClock) -> None:
    laboratory.codes = ["AE"]
    patient = admit_inpatient(_container(ward))
    _order(ward, patient, ["NFS"])
    worker = _worker(ward)
    assert worker.run_once() == 0 and _orders(ward)[0].transmission == "error"
    clock.advance(minutes=2)
    assert worker.run_once() == 1
    [order] = _orders(ward)
    assert (order.transmission, order.transmission_error) == ("accepted", None)


def test_a_laboratory_down_then_up_gets_the_order_once(db_url: str, clock: FixedClock,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    app = _app(db_url, clock, port)
    peer: Receiver | None = None
    try:
        with TestClient(app, base_url="http://testserver") as client:
            patient = admit_inpatient(_container(client))
            _order(client, patient, ["HEMOC"])
            worker = _worker(client)
            assert worker.run_once() == 0  # connection refused: nothing answered
            [message] = _outbox(client)
            assert message.status == PENDING and message.last_error
            assert _orders(client)[0].transmission == "pending"
            monkeypatch.setattr(test_mllp, "free_port", lambda: port)
            peer = Receiver()  # the laboratory is back, on its port
            assert worker.run_once() == 0  # still waiting for its backoff
            clock.advance(minutes=2)
            assert worker.run_once() == 1
            assert worker.run_once() == 0  # nothing more to send
            assert len(peer.messages) == 1 and _outbox(client)[0].status == DELIVERED
            assert _orders(client)[0].transmission == "accepted"
    finally:
        if peer is not None:
            peer.server.close()
        app.state.container.engine.dispose()


def test_build_oml_is_pure_and_escapes_separators() -> None:
    snapshot = {
        "action": "NW", "order_id": "x", "placer_number": "O0000000001", "group_number": "G0000000001",
        "specimen_number": "S0000000001", "test_code": "CRP", "test_label": "Protéine C réactive", "loinc": "1988-5",
        "specimen_type": "PLAS", "container_label": "Tube héparine", "urgency": "urgent",
        "clinical_info": "Fièvre | frissons ^ 39 °C", "ordered_at": "2026-11-25T09:30:00+00:00",
        "ordered_by": "Dr Martin", "collected_at": None, "nda": "2600001", "unit_code": "LENS-MED-MIN",
        "encounter_class": "inpatient",
        "patient": {"ipp": "00000042", "birth_name": "DURAND", "used_name": None, "first_names": "MARIE",
                    "used_first_name": None, "sex": "F", "birth_date": "1962-03-14", "birth_place": None,
                    "ins": None, "ins_oid": None},
    }
    text = build_oml(snapshot, control_id="C1", sending_application="NAHO", sending_facility="GHT",
                     now=datetime(2026, 11, 25, 9, 31, tzinfo=UTC), zone=PARIS)
    assert text == build_oml(snapshot, control_id="C1", sending_application="NAHO", sending_facility="GHT",
                             now=datetime(2026, 11, 25, 9, 31, tzinfo=UTC), zone=PARIS)
    message = hl7.parse(text.strip())
    assert [str(s[0]) for s in message] == ["MSH", "PID", "PV1", "ORC", "TQ1", "OBR", "SPM"]
    assert f(message, "OBR", 13) == "Fièvre \\F\\ frissons \\S\\ 39 °C"
    assert f(message, "TQ1", 9) == "A" and f(message, "ORC", 9) == "20261125103000+0100"
    assert f(message, "OBR", 7) == "" and f(message, "SPM", 17) == ""
    collected = build_oml({**snapshot, "collected_at": "2026-11-25T10:00:00+00:00"}, control_id="C2",
                          sending_application="NAHO", sending_facility="GHT",
                          now=datetime(2026, 11, 25, 10, 1, tzinfo=UTC), zone=PARIS)
    assert f(hl7.parse(collected.strip()), "SPM", 17) == "20261125110000+0100"
