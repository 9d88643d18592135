"""The pharmacist's review through the real database: the queue of each establishment's pharmacy,
the decision (validated, refused with SFPC codes) moving `review_status` once, the prescriber's
answer, the door and the trail; each refusal beside its legitimate twin."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from naho.medication import review
from naho.medication import review_rules as rules
from naho.medication.models import MedicationOrder, PharmacistReview
from naho.platform import i18n
from naho.platform.audit import AuditEvent
from naho.platform.clock import FixedClock
from naho.platform.security.actor import Actor
from naho.platform.security.models import Account
from naho.platform.security.rules import Role
from naho.platform.uow import UnitOfWork
from naho.record.service import CARE
from naho.sites import service as sites
from naho.staff.models import StaffAssignment, StaffMember
from tests.personas import CLERK, NURSE, PHARMACIST, PHYSICIAN, form_token, login

UowFactory = Callable[[], UnitOfWork]
TECHNICIAN = "preparateur"
#: Legitimate orders for an adult of 72 kg (weight and height stated by the prescriber).
MEASURED = {"weight_kg": 72, "height_cm": 175}
PARACETAMOL = {"product_code": "PARA1GCP", "dose_value": 1, "dose_unit": "g", "route": "PO",
               "frequency": "times_per_day", "times_per_day": 3, **MEASURED}
MORPHINE_ONCE = {"product_code": "MORP10INJ", "dose_value": 5, "dose_unit": "mg", "route": "SC",
                 "frequency": "once", **MEASURED}
REFUSAL = {"decision": "refused", "problem_code": "1.4", "intervention_code": "2.7",
           "comment": "Dose trop forte pour ce patient : proposer 500 mg x 3."}


def _post(client: TestClient, path: str, body: dict[str, Any]):  # type: ignore[no-untyped-def]
    return client.post(path, headers={"x-csrf-token": form_token(client)}, json=body)


def _admit(client: TestClient, establishment: str, unit: str, name: str) -> str:
    login(client, CLERK)
    token = form_token(client)
    patient = client.post("/api/patients", headers={"x-csrf-token": token}, json={
        "birth_name": name, "first_names": "Lucien", "sex": "M", "birth_date": "1957-11-08"}).json()["id"]
    stay = client.post("/api/encounters", headers={"x-csrf-token": token}, json={
        "patient_id": patient, "establishment_code": establishment, "encounter_class": "inpatient",
        "unit_code": unit, "bed_code": None})
    assert stay.status_code == 201, stay.text
    return str(patient)


def _prescribe(client: TestClient, patient: str, body: dict[str, Any]) -> str:
    login(client, PHYSICIAN)
    response = _post(client, f"/api/patients/{patient}/medication-orders", body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _decide(client: TestClient, order: str, body: dict[str, Any], who: str = PHARMACIST):  # type: ignore[no-untyped-def]
    login(client, who)
    return _post(client, f"/api/medication-orders/{order}/review", body)


def _queue(client: TestClient, establishment: str | None = None) -> dict[str, Any]:
    login(client, PHARMACIST)
    params = {"establishment": establishment} if establishment else {}
    response = client.get("/api/pharmacy/review-queue", params=params)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _queued(client: TestClient, establishment: str | None = None) -> list[str]:
    return [line["order"]["id"] for line in _queue(client, establishment)["lines"]]


def _order(uow_factory: UowFactory, order: str) -> MedicationOrder:
    with uow_factory() as uow:
        row = uow.session.get(MedicationOrder, uuid.UUID(order))
        assert row is not None
        uow.session.expunge(row)
        return row


def _events(uow_factory: UowFactory, action: str) -> list[AuditEvent]:
    with uow_factory() as uow:
        rows = list(uow.session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)))
        uow.session.expunge_all()
        return rows


def _assign(uow_factory: UowFactory, username: str, unit_code: str) -> None:
    """Give a professional a second workplace (a pharmacist covering two pharmacies)."""
    with uow_factory() as uow:
        s = uow.session
        member = s.execute(select(StaffMember).join(Account, StaffMember.account_id == Account.id)
                           .where(Account.username == username)).scalar_one()
        s.add(StaffAssignment(staff_id=member.id, unit_id=sites.unit_ids_by_code(s)[unit_code], primary=False))
        uow.commit()


@pytest.fixture
def lens(client: TestClient) -> str:
    """A man of 69 in internal medicine at Lens."""
    return _admit(client, "LENS", "LENS-MED-MIN", "Deprez")


@pytest.fixture
def bethune(client: TestClient) -> str:
    """A man of 69 in internal medicine at Béthune (the demo physician works there too)."""
    return _admit(client, "BETHUNE", "BETHUNE-MED-MIN", "Vasseur")


def test_the_queue_lists_the_pending_orders_of_the_establishment_oldest_first_with_their_signs(
        client: TestClient, lens: str, bethune: str, clock: FixedClock, uow_factory: UowFactory) -> None:
    first = _prescribe(client, lens, PARACETAMOL)
    clock.advance(minutes=5)
    elsewhere = _prescribe(client, bethune, PARACETAMOL)
    clock.advance(minutes=5)
    once = _prescribe(client, lens, MORPHINE_ONCE)
    clock.advance(minutes=5)
    overridden = _prescribe(client, lens, {"product_code": "PARA1GINJ", "dose_value": 1, "dose_unit": "g",
                                           "route": "IV", "frequency": "times_per_day", "times_per_day": 1,
                                           "override_reason": "relais IV le temps du jeûne", **MEASURED})
    queue = _queue(client)
    assert queue["establishment_code"] == "LENS" and [c for c, _n in queue["establishments"]] == ["LENS"]
    assert [line["order"]["id"] for line in queue["lines"]] == [first, once, overridden]  # not Béthune's
    by_id = {line["order"]["id"]: line for line in queue["lines"]}
    assert by_id[first]["signs"] == []
    assert by_id[once]["signs"] == ["once", "narcotic"]
    assert by_id[overridden]["signs"] == ["overridden_alert"]
    line = by_id[first]
    assert line["patient_name"].upper().startswith("DEPREZ") and line["age"] == 69
    assert line["unit_code"] == "LENS-MED-MIN" and line["order"]["prescriber"].startswith("Claire")
    [viewed] = _events(uow_factory, review.QUEUE_VIEWED)
    assert viewed.target == "LENS" and viewed.details["shown"] == [first, once, overridden]
    assert viewed.details["patients"] == [lens]
    assert elsewhere not in viewed.details["shown"]


def test_a_pharmacist_switches_only_among_the_establishments_of_their_assignments(
        client: TestClient, lens: str, bethune: str, uow_factory: UowFactory) -> None:
    in_lens, in_bethune = _prescribe(client, lens, PARACETAMOL), _prescribe(client, bethune, PARACETAMOL)
    login(client, PHARMACIST)
    refused = client.get("/api/pharmacy/review-queue", params={"establishment": "BETHUNE"})
    assert refused.status_code == 403
    [trace] = _events(uow_factory, review.ROLE_REFUSED)
    assert trace.target == "BETHUNE" and trace.details["action"] == review.QUEUE_VIEWED
    _assign(uow_factory, PHARMACIST, "BETHUNE-PUI-PHARMA")
    queue = _queue(client, "BETHUNE")
    assert [c for c, _n in queue["establishments"]] == ["LENS", "BETHUNE"]
    assert [line["order"]["id"] for line in queue["lines"]] == [in_bethune]
    assert _queued(client, "LENS") == [in_lens]
    page = client.get("/pharmacie/analyse", params={"etablissement": "BETHUNE"}).text
    assert 'id="pharmacy-switch"' in page and '<option value="BETHUNE" selected>' in page
    assert f"/pharmacie/analyse/{in_bethune}" in page and f"/pharmacie/analyse/{in_lens}" not in page


def test_the_pharmacist_validates_and_the_order_leaves_the_queue(
        client: TestClient, lens: str, uow_factory: UowFactory) -> None:
    order = _prescribe(client, lens, PARACETAMOL)
    assert _queued(client) == [order]
    done = _decide(client, order, {"decision": "validated", "comment": "RAS"})
    assert done.status_code == 201, done.text
    body = done.json()
    assert body["decision"] == "validated" and body["comment"] == "RAS" and body["problem_code"] is None
    assert body["pharmacist"].startswith("Nadia")
    assert _order(uow_factory, order).review_status == "validated"
    assert _queued(client) == []
    login(client, NURSE)  # the ward sees the order is analysed
    [listed] = client.get(f"/api/patients/{lens}/medication-orders").json()
    assert listed["review_status"] == "validated"
    [validated] = _events(uow_factory, "medication:review:validated")
    assert validated.target == order and validated.patient_id == uuid.UUID(lens)
    [asked] = _events(uow_factory, review.ACCESS_DECIDE)
    assert asked.details["purpose"] == "care" and asked.details["basis"] == "care_team"


def test_a_refusal_needs_sfpc_codes_and_a_comment_and_its_coded_twin_is_stored(
        client: TestClient, lens: str, uow_factory: UowFactory) -> None:
    order = _prescribe(client, lens, PARACETAMOL)
    bare = _decide(client, order, {"decision": "refused", "comment": "non"})
    assert bare.status_code == 422 and bare.json()["rule"] == "InterventionRequired"
    unknown = _decide(client, order, {**REFUSAL, "problem_code": "9.9"})
    assert unknown.status_code == 422 and unknown.json()["rule"] == "UnknownProblemCode"
    assert _order(uow_factory, order).review_status == "pending"
    done = _decide(client, order, REFUSAL)
    assert done.status_code == 201, done.text
    body = done.json()
    assert (body["decision"], body["problem_code"], body["intervention_code"]) == ("refused", "1.4", "2.7")
    assert body["problem_label"] == i18n._(rules.PROBLEMS["1.4"])
    assert body["intervention_label"] == i18n._(rules.INTERVENTIONS["2.7"])
    assert _order(uow_factory, order).review_status == "refused"
    with uow_factory() as uow:
        [stored] = uow.session.scalars(select(PharmacistReview)).all()
        assert (stored.order_id, stored.establishment_code, stored.comment) == (
            uuid.UUID(order), "LENS", REFUSAL["comment"])
        assert review.latest_reviews(uow.session, [uuid.UUID(order)])[uuid.UUID(order)].comment == REFUSAL["comment"]
    [refused] = _events(uow_factory, "medication:review:refused")
    assert refused.details["problem"] == "1.4" and refused.details["intervention"] == "2.7"


def test_a_second_decision_on_the_same_version_gets_409(client: TestClient, lens: str,
                                                        uow_factory: UowFactory) -> None:
    order = _prescribe(client, lens, PARACETAMOL)
    assert _decide(client, order, {"decision": "validated"}).status_code == 201
    again = _decide(client, order, REFUSAL)
    assert again.status_code == 409 and again.json()["rule"] == "ReviewNotPending"
    assert _order(uow_factory, order).review_status == "validated"
    with uow_factory() as uow:
        assert len(uow.session.scalars(select(PharmacistReview)).all()) == 1


def test_two_decisions_at_once_on_one_version_give_one_review_and_one_409(
        client: TestClient, lens: str, uow_factory: UowFactory) -> None:
    order = uuid.UUID(_prescribe(client, lens, PARACETAMOL))
    with uow_factory() as uow:
        account = uow.session.execute(select(Account.id).where(Account.username == PHARMACIST)).scalar_one()
    pharmacist = Actor(account_id=account, username=PHARMACIST, display_name="Nadia Benali",
                       roles=frozenset({Role.PHARMACIST}))
    start, outcomes = threading.Barrier(2), []

    def attempt(body: dict[str, str]) -> None:
        start.wait()
        try:
            review.review_order(uow_factory(), pharmacist, order, review.ReviewCreate(**body), CARE)
            outcomes.append(body["decision"])
        except review.ReviewNotPending:
            outcomes.append("409")

    threads = [threading.Thread(target=attempt, args=(body,)) for body in ({"decision": "validated"}, REFUSAL)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) in (["409", "validated"], ["409", "refused"])
    won = next(o for o in outcomes if o != "409")
    assert _order(uow_factory, str(order)).review_status == won
    with uow_factory() as uow:
        assert [r.decision for r in uow.session.scalars(select(PharmacistReview))] == [won]


def test_a_modified_order_is_pending_again_and_its_replaced_version_cannot_be_decided(
        client: TestClient, lens: str, uow_factory: UowFactory) -> None:
    order = _prescribe(client, lens, PARACETAMOL)
    assert _decide(client, order, REFUSAL).status_code == 201
    login(client, PHYSICIAN)
    modified = _post(client, f"/api/medication-orders/{order}/modify", {**PARACETAMOL, "dose_value": 500,
                                                                          "dose_unit": "mg"})
    assert modified.status_code == 201, modified.text
    new = modified.json()["id"]
    assert modified.json()["review_status"] == "pending"
    assert _queued(client) == [new]
    late = _decide(client, order, {"decision": "validated"})
    assert late.status_code == 409 and late.json()["rule"] == "OrderNotReviewable"
    # the pharmacist sees the analysis of the earlier version beside the new one
    login(client, PHARMACIST)
    page = client.get(f"/pharmacie/analyse/{new}")
    assert page.status_code == 200 and "earlier-reviews" in page.text and REFUSAL["comment"].split(":")[0] in page.text
    assert _decide(client, new, {"decision": "validated"}).status_code == 201


def test_a_stopped_order_cannot_be_decided(client: TestClient, lens: str) -> None:
    order = _prescribe(client, lens, PARACETAMOL)
    login(client, PHYSICIAN)
    assert _post(client, f"/api/medication-orders/{order}/stop", {"reason": "erreur"}).status_code == 200
    assert _queued(client) == []
    stopped = _decide(client, order, {"decision": "validated"})
    assert stopped.status_code == 409 and stopped.json()["rule"] == "OrderNotReviewable"


@pytest.mark.parametrize("who", [PHYSICIAN, NURSE, TECHNICIAN])
def test_only_a_pharmacist_decides_and_refused_attempts_are_traced(
        client: TestClient, lens: str, uow_factory: UowFactory, who: str) -> None:
    order = _prescribe(client, lens, PARACETAMOL)
    refused = _decide(client, order, {"decision": "validated"}, who=who)
    assert refused.status_code == 403
    assert _order(uow_factory, order).review_status == "pending"
    [trace] = _events(uow_factory, review.ROLE_REFUSED)
    assert trace.target == order and trace.patient_id == uuid.UUID(lens) and trace.actor_label.endswith(f"({who})")
    login(client, who)
    assert client.get("/api/pharmacy/review-queue").status_code == 403
    assert _decide(client, order, {"decision": "validated"}).status_code == 201  # the pharmacist's twin


def test_the_pharmacist_of_another_establishment_is_kept_out_by_the_door(
        client: TestClient, bethune: str, uow_factory: UowFactory) -> None:
    order = _prescribe(client, bethune, PARACETAMOL)
    outside = _decide(client, order, {"decision": "validated"})
    assert outside.status_code == 404
    [denied] = _events(uow_factory, "patient:record:denied")
    assert denied.patient_id == uuid.UUID(bethune) and denied.details["action"] == review.ACCESS_DECIDE
    login(client, PHARMACIST)
    assert client.get(f"/pharmacie/analyse/{order}").status_code == 404
    _assign(uow_factory, PHARMACIST, "BETHUNE-PUI-PHARMA")
    assert _decide(client, order, {"decision": "validated"}).status_code == 201


def test_the_prescriber_answers_the_intervention_once(client: TestClient, lens: str,
                                                      uow_factory: UowFactory) -> None:
    order = _prescribe(client, lens, PARACETAMOL)
    path = f"/api/medication-orders/{order}/review/response"
    login(client, PHYSICIAN)
    assert _post(client, path, {"response": "accepted"}).status_code == 404  # nothing analysed yet
    assert _decide(client, order, REFUSAL).status_code == 201
    login(client, NURSE)
    assert _post(client, path, {"response": "accepted"}).status_code == 403
    login(client, PHYSICIAN)
    assert _post(client, path, {"response": "perhaps"}).json()["rule"] == "UnknownResponse"
    answered = _post(client, path, {"response": "accepted", "comment": "Je modifie la prescription."})
    assert answered.status_code == 200, answered.text
    assert answered.json()["prescriber_response"] == "accepted"
    again = _post(client, path, {"response": "declined"})
    assert again.status_code == 409 and again.json()["rule"] == "AlreadyAnswered"
    [trace] = _events(uow_factory, review.ANSWERED)
    assert trace.details["response"] == "accepted" and trace.reason == "Je modifie la prescription."
    with uow_factory() as uow:
        stored = uow.session.scalars(select(PharmacistReview)).one()
        assert (stored.response, stored.responded_by) == ("accepted", trace.actor_label)


def test_a_plain_validation_has_no_intervention_to_answer(client: TestClient, lens: str) -> None:
    order = _prescribe(client, lens, PARACETAMOL)
    assert _decide(client, order, {"decision": "validated"}).status_code == 201
    login(client, PHYSICIAN)
    plain = _post(client, f"/api/medication-orders/{order}/review/response", {"response": "accepted"})
    assert plain.status_code == 422 and plain.json()["rule"] == "NoInterventionToAnswer"


def test_pending_orders_are_counted_per_unit_for_the_wards(client: TestClient, lens: str, bethune: str,
                                                           uow_factory: UowFactory) -> None:
    _prescribe(client, lens, PARACETAMOL)
    decided = _prescribe(client, lens, MORPHINE_ONCE)
    _prescribe(client, bethune, PARACETAMOL)
    assert _decide(client, decided, {"decision": "validated"}).status_code == 201
    with uow_factory() as uow:
        assert review.pending_count_by_unit(uow.session, "LENS") == {"LENS-MED-MIN": 1}
        assert review.pending_count_by_unit(uow.session, "BETHUNE") == {"BETHUNE-MED-MIN": 1}


def test_reviews_follow_a_merged_patient_and_come_back(client: TestClient, lens: str,
                                                       uow_factory: UowFactory) -> None:
    order = _prescribe(client, lens, PARACETAMOL)
    assert _decide(client, order, {"decision": "validated"}).status_code == 201
    survivor = uuid.uuid4()
    with uow_factory() as uow:
        moved = review.MOVER.move(uow.session, uuid.UUID(lens), survivor)
        assert uow.session.scalars(select(PharmacistReview.patient_id)).one() == survivor
        review.MOVER.move_back(uow.session, moved, uuid.UUID(lens))
        assert uow.session.scalars(select(PharmacistReview.patient_id)).one() == uuid.UUID(lens)


def _form(client: TestClient, path: str, **data: str):  # type: ignore[no-untyped-def]
    return client.post(path, data={**data, "csrf_token": form_token(client)}, follow_redirects=False)


def test_the_pages_carry_the_queue_the_context_and_the_decision_form(client: TestClient, lens: str) -> None:
    other = _prescribe(client, lens, PARACETAMOL)
    order = _prescribe(client, lens, MORPHINE_ONCE)
    login(client, PHARMACIST)
    queue = client.get("/pharmacie/analyse")
    assert queue.status_code == 200 and f"/pharmacie/analyse/{order}" in queue.text
    assert 'href="/pharmacie/analyse" aria-current="page"' in queue.text  # the shell's menu
    page = client.get(f"/pharmacie/analyse/{order}")
    assert page.status_code == 200
    assert 'id="decision-form"' in page.text and 'name="csrf_token"' in page.text
    assert "72" in page.text and "IPP" in page.text and "Paracétamol 1 g comprimé" in page.text  # other orders
    assert f"/pharmacie/analyse/{other}" in page.text

    bare = _form(client, f"/pharmacie/analyse/{order}/decision", decision="refused", comment="non")
    assert bare.status_code == 303 and bare.headers["location"].endswith("?erreur=InterventionRequired")
    shown = client.get(bare.headers["location"])
    assert i18n._(rules.PROBLEMS["1.4"]) in shown.text and 'role="alert"' in shown.text
    done = _form(client, f"/pharmacie/analyse/{order}/decision", **REFUSAL)
    assert done.status_code == 303 and done.headers["location"] == "/pharmacie/analyse?fait=refused"
    assert f"/pharmacie/analyse/{order}" not in client.get(done.headers["location"]).text
    again = _form(client, f"/pharmacie/analyse/{order}/decision", decision="validated")
    assert again.headers["location"].endswith("?erreur=ReviewNotPending")

    login(client, PHYSICIAN)  # the prescriber reads the intervention and answers it
    seen = client.get(f"/pharmacie/analyse/{order}")
    assert seen.status_code == 200 and "Dose trop forte pour ce patient" in seen.text
    assert 'id="answer-form"' in seen.text and 'id="decision-form"' not in seen.text
    answered = _form(client, f"/pharmacie/analyse/{order}/reponse", response="declined", comment="Douleur intense")
    assert answered.status_code == 303 and "erreur" not in answered.headers["location"]
    after = client.get(f"/pharmacie/analyse/{order}").text
    assert 'class="prescriber-response"' in after and 'id="answer-form"' not in after


def test_the_queue_page_is_the_pharmacists(client: TestClient) -> None:
    for who in (NURSE, PHYSICIAN):
        login(client, who)
        assert client.get("/pharmacie/analyse").status_code == 403
        assert 'href="/pharmacie/analyse"' not in client.get("/accueil").text
