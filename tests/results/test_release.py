"""Results reach the patient's portal by the release rules: a normal result once final, an
abnormal one once a physician saw it, a sensitive one (HIV serology) once the physician told the
patient; nothing held back shows on the portal; one mail with no health data says a result is
available. And the rules file itself refuses what would release too early."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from naho.app import create_app
from naho.config import Settings
from naho.platform.clock import FixedClock
from naho.platform.outbox import OutboxMessage
from naho.portal import mail
from naho.results import release, release_rules
from naho.results.models import LabReport
from naho.results.release_models import ReportRelease
from naho.results.release_rules import ReleasePolicy, ReleaseRulesInvalid, ReportFacts, Waiting
from tests.interop.test_mllp import ServerThread
from tests.personas import CLERK, NURSE, PHYSICIAN, csrf_from, login
from tests.results.conftest import Inpatient, admit_inpatient, answer, obx, oru
from tests.scheduling.world import PATIENT_PASSWORD

SODIUM, POTASSIUM, HIV_COMBO = "2951-2", "2823-3", "56888-1"
T0 = datetime.fromisoformat("2026-11-25T08:00:00+00:00")
RULES = release.load_release_rules()


# --- the rules ---------------------------------------------------------------------------------------

def _facts(**changes: object) -> ReportFacts:
    values: dict[str, object] = dict(kind="laboratory", validated_at=T0, withdrawn=False, abnormal=False,
                                     codes=frozenset({SODIUM}), service_code="BIOCHIMIE")
    values.update(changes)
    return ReportFacts(**values)  # type: ignore[arg-type]


def test_a_normal_final_report_is_released_at_validation_and_a_preliminary_one_never() -> None:
    decision = release_rules.decide(_facts(), RULES, T0)
    assert (decision.policy, decision.released_at, decision.waiting) == (ReleasePolicy.AT_VALIDATION, T0, None)
    held = release_rules.decide(_facts(validated_at=None), RULES, T0 + timedelta(days=30))
    assert (held.released_at, held.waiting) == (None, Waiting.NOT_FINAL)
    withdrawn = release_rules.decide(_facts(withdrawn=True), RULES, T0)
    assert (withdrawn.released_at, withdrawn.waiting) == (None, Waiting.WITHDRAWN)


def test_an_abnormal_report_waits_for_a_physician_and_a_sensitive_one_for_the_patient_to_be_told() -> None:
    abnormal = release_rules.decide(_facts(abnormal=True), RULES, T0 + timedelta(days=365))
    assert (abnormal.released_at, abnormal.waiting) == (None, Waiting.PHYSICIAN_SEEN)
    seen = T0 + timedelta(hours=2)
    assert release_rules.decide(_facts(abnormal=True, seen_at=seen), RULES, seen).released_at == seen

    for sensitive in (_facts(codes=frozenset({HIV_COMBO})), _facts(service_code="genetique")):
        held = release_rules.decide(sensitive, RULES, T0)
        assert (held.sensitive, held.released_at, held.waiting) == (True, None, Waiting.PATIENT_TOLD)
        # Seen is not enough for a sensitive result, even a normal one.
        still = release_rules.decide(ReportFacts(**{**sensitive.__dict__, "seen_at": seen}), RULES, seen)
        assert still.released_at is None
        told = release_rules.decide(ReportFacts(**{**sensitive.__dict__, "told_at": seen}), RULES, seen)
        assert told.released_at == seen


def test_a_delayed_report_waits_its_days_unless_its_author_releases_it_sooner() -> None:
    facts = _facts(kind="imaging")
    assert release_rules.decide(facts, RULES, T0 + timedelta(days=6)).waiting is Waiting.DELAY
    assert release_rules.decide(facts, RULES, T0 + timedelta(days=7)).released_at == T0 + timedelta(days=7)
    early = T0 + timedelta(days=1)
    assert release_rules.decide(_facts(kind="imaging", author_released_at=early), RULES, early).released_at == early


@pytest.mark.parametrize(("data", "message"), [
    ({"laboratory": {"normal": "whenever"}}, "not a release policy"),
    ({"laboratory": {"sensitive": "at_validation"}}, "cannot be released at validation"),
    ({"laboratory": {"sensitive_loinc": ["HIV"]}}, "not LOINC codes"),
    ({"laboratory": {"normal": "after_days"}}, "after_days needs days"),
    ({"laboratory": {"days": -1}}, "whole number of days"),
    ({"laboratory": {"surprise": 1}}, "unknown keys"),
    ({}, "no kind of result"),
])
def test_the_rules_file_refuses_what_it_cannot_apply(data: dict[str, object], message: str) -> None:
    with pytest.raises(ReleaseRulesInvalid, match=message):
        release_rules.parse_release_rules(data)


def test_an_unknown_kind_of_result_is_refused_rather_than_released() -> None:
    with pytest.raises(ReleaseRulesInvalid, match="no release rules"):
        release_rules.decide(_facts(kind="dermatology"), RULES, T0)


# --- through the laboratory interface, the pages and the portal --------------------------------------

@pytest.fixture(name="app")
def mailing_app(db_url: str, clock: FixedClock) -> Iterator[FastAPI]:
    """The app with the patients' mail topics handled (so that a release tells the patient)."""
    application = create_app(Settings(mode="test", database_url=db_url, workers=False), clock=clock,
                             outbox_handlers={"mail.result": print, "mail.portal": print})  # type: ignore[dict-item]
    yield application
    application.state.container.engine.dispose()


def _report(app: FastAPI, patient: Inpatient, placer: str) -> uuid.UUID:
    with app.state.container.uow() as uow:
        return uow.session.scalars(select(LabReport.id).where(
            LabReport.patient_id == patient.id, LabReport.placer_number == placer)).one()


def _state(app: FastAPI, report: uuid.UUID) -> ReportRelease:
    with app.state.container.uow() as uow:
        row = uow.session.scalars(select(ReportRelease).where(ReportRelease.report_id == report)).one()
        uow.session.expunge(row)
        return row


def _mails(app: FastAPI) -> list[dict[str, str]]:
    with app.state.container.uow() as uow:
        rows = uow.session.scalars(select(OutboxMessage).where(OutboxMessage.topic == "mail.result"))
        return [m.payload for m in rows]


def _portal(app: FastAPI, patient: Inpatient, clock: FixedClock) -> TestClient:
    """The patient's own portal session (code handed at the desk, then activated)."""
    staff = login(TestClient(app), CLERK)
    page = staff.get(f"/patients/{patient.id}/portail")
    issued = staff.post(f"/patients/{patient.id}/portail/code", data={"csrf_token": csrf_from(page.text)})
    code = re.search(r'id="code-value">([A-Z0-9-]+)<', issued.text)
    assert code, issued.text
    phone = TestClient(app)
    form = phone.get("/portail/activation")
    born = clock.now().date().replace(year=1962).isoformat()
    activated = phone.post("/portail/activation", data={
        "code": code.group(1), "birth_date": born, "email": f"{patient.ipp}@example.org", "password": PATIENT_PASSWORD,
        "csrf_token": csrf_from(form.text)}, follow_redirects=False)
    assert activated.status_code == 303, activated.text
    return phone


def test_results_reach_the_portal_by_their_rules(app: FastAPI, lab: ServerThread, clock: FixedClock) -> None:
    patient = admit_inpatient(app.state.container)
    phone = _portal(app, patient, clock)
    assert 'id="no-results"' in phone.get("/portail/resultats").text

    # Normal and final: on the portal at once, and one mail that names no result.
    assert answer(lab.send(oru("R1", [obx(1, SODIUM, "Sodium", "140", "mmol/L", "135-145", "N")], ipp=patient.ipp,
                               placer="CMD-R1", filler="LAB-R1")))[:2] == ("AA", "R1")
    normal = _report(app, patient, "CMD-R1")
    assert _state(app, normal).released_at == clock.now()
    page = phone.get("/portail/resultats").text
    assert "Sodium" in page and "140" in page.split('id="results"')[1]
    (payload,) = _mails(app)
    assert payload == {"kind": "result_available", "patient_id": str(patient.id)}
    sent = mail.compose(payload, ["x@example.org"], "naho@example.org", "https://naho.example", clock.now(),
                        uuid.uuid4()).as_string()
    assert "Sodium" not in sent and "140" not in sent and "/portail/resultats" in sent

    # Abnormal: held until a physician marks it seen; a nurse cannot.
    lab.send(oru("R2", [obx(1, POTASSIUM, "Potassium", "5.9", "mmol/L", "3.5-5.0", "H")], ipp=patient.ipp,
                 placer="CMD-R2", filler="LAB-R2"))
    abnormal = _report(app, patient, "CMD-R2")
    assert (_state(app, abnormal).released_at, _state(app, abnormal).waiting) == (None, "physician_seen")
    assert "Potassium" not in phone.get("/portail/resultats").text
    nurse = login(TestClient(app), NURSE)
    token = csrf_from(nurse.get(f"/patients/{patient.id}/resultats").text)
    refused = nurse.post(f"/patients/{patient.id}/resultats/{abnormal}/vu", data={"csrf_token": token})
    assert refused.status_code == 403
    physician = login(TestClient(app), PHYSICIAN)
    staff_page = physician.get(f"/patients/{patient.id}/resultats").text
    assert f'id="report-{abnormal}"' in staff_page and 'data-waiting="physician_seen"' in staff_page
    seen = physician.post(f"/patients/{patient.id}/resultats/{abnormal}/vu",
                          data={"csrf_token": csrf_from(staff_page)}, follow_redirects=False)
    assert seen.status_code == 303
    assert _state(app, abnormal).released_at is not None and _state(app, abnormal).seen_by
    assert "Potassium" in phone.get("/portail/resultats").text
    assert len(_mails(app)) == 2

    # Sensitive (HIV serology): seen is not enough; told is.
    lab.send(oru("R3", [obx(1, HIV_COMBO, "VIH 1+2 Ac et Ag p24", "Négatif", value_type="ST")], ipp=patient.ipp,
                 placer="CMD-R3", filler="LAB-R3"))
    sensitive = _report(app, patient, "CMD-R3")
    page = physician.get(f"/patients/{patient.id}/resultats").text
    physician.post(f"/patients/{patient.id}/resultats/{sensitive}/vu", data={"csrf_token": csrf_from(page)})
    held = _state(app, sensitive)
    assert (held.sensitive, held.released_at, held.waiting) == (True, None, "patient_told")
    assert "VIH" not in phone.get("/portail/resultats").text
    page = physician.get(f"/patients/{patient.id}/resultats").text
    physician.post(f"/patients/{patient.id}/resultats/{sensitive}/annonce", data={"csrf_token": csrf_from(page)})
    assert _state(app, sensitive).released_at is not None
    assert "VIH" in phone.get("/portail/resultats").text


def test_a_preliminary_result_waits_for_the_final_one(app: FastAPI, lab: ServerThread, clock: FixedClock) -> None:
    patient = admit_inpatient(app.state.container)
    lab.send(oru("P1", [obx(1, SODIUM, "Sodium", "139", "mmol/L", "135-145", "N", status="P")], ipp=patient.ipp,
                 placer="CMD-P", filler="LAB-P", report_status="P"))
    report = _report(app, patient, "CMD-P")
    assert (_state(app, report).released_at, _state(app, report).waiting) == (None, "not_final")
    clock.advance(hours=1)
    lab.send(oru("P2", [obx(1, SODIUM, "Sodium", "141", "mmol/L", "135-145", "N")], ipp=patient.ipp,
                 placer="CMD-P", filler="LAB-P"))
    assert _state(app, report).released_at == clock.now()
    assert _mails(app) == [{"kind": "result_available", "patient_id": str(patient.id)}]


def test_a_physician_outside_the_care_team_cannot_release_and_the_portal_shows_only_ones_own(
        app: FastAPI, lab: ServerThread, clock: FixedClock) -> None:
    patient = admit_inpatient(app.state.container)
    other = admit_inpatient(app.state.container, "MARTIN")
    lab.send(oru("O1", [obx(1, POTASSIUM, "Potassium", "6.1", "mmol/L", "3.5-5.0", "H")], ipp=other.ipp,
                 placer="CMD-O", filler="LAB-O"))
    report = _report(app, other, "CMD-O")
    with app.state.container.uow() as uow:
        from naho.staff import service as staff
        people, _ = staff.list_staff(uow.session, unit_code="LENS-MED-CARDIO")
    outsider = login(TestClient(app), next(p.username for p in people if p.profession == "physician"))
    token = csrf_from(outsider.get("/accueil").text)
    assert outsider.post(f"/patients/{other.id}/resultats/{report}/vu", data={"csrf_token": token}).status_code == 404
    assert _state(app, report).seen_at is None
    # Released for the other patient (seen by their physician), still not on this patient's portal.
    physician = login(TestClient(app), PHYSICIAN)
    page = physician.get(f"/patients/{other.id}/resultats").text
    physician.post(f"/patients/{other.id}/resultats/{report}/vu", data={"csrf_token": csrf_from(page)})
    assert _state(app, report).released_at is not None
    phone = _portal(app, patient, clock)
    assert "Potassium" not in phone.get(f"/portail/resultats?pour={other.id}").text


def test_the_delay_sweep_releases_what_has_waited_long_enough(app: FastAPI, lab: ServerThread,
                                                              clock: FixedClock) -> None:
    patient = admit_inpatient(app.state.container)
    lab.send(oru("D1", [obx(1, SODIUM, "Sodium", "140", "mmol/L", "135-145", "N")], ipp=patient.ipp,
                 placer="CMD-D", filler="LAB-D"))
    report = _report(app, patient, "CMD-D")
    delayed = release_rules.parse_release_rules({"laboratory": {"normal": "after_days", "days": 2}})
    with app.state.container.uow() as uow:  # as if the rules had said so from the start
        row = uow.session.scalars(select(ReportRelease).where(ReportRelease.report_id == report)).one()
        row.released_at = None
        release.refresh(uow.session, [report], delayed, clock.now(), notify=True)
        uow.commit()
    assert _state(app, report).waiting == "delay"
    clock.advance(days=1)
    assert release.release_due(app.state.container.uow(), delayed, notify=True) == 0
    clock.advance(days=1, minutes=1)
    assert release.release_due(app.state.container.uow(), delayed, notify=True) == 1
    assert _state(app, report).released_at == clock.now()


def test_a_released_report_whose_correction_turns_abnormal_leaves_the_portal_until_seen_again(
        app: FastAPI, lab: ServerThread, clock: FixedClock) -> None:
    patient = admit_inpatient(app.state.container)
    lab.send(oru("C1", [obx(1, POTASSIUM, "Potassium", "4.1", "mmol/L", "3.5-5.0", "N")], ipp=patient.ipp,
                 placer="CMD-C", filler="LAB-C"))
    report = _report(app, patient, "CMD-C")
    assert _state(app, report).released_at is not None
    clock.advance(hours=1)
    lab.send(oru("C2", [obx(1, POTASSIUM, "Potassium", "6.3", "mmol/L", "3.5-5.0", "H", status="C")],
                 ipp=patient.ipp, placer="CMD-C", filler="LAB-C"))
    withheld = _state(app, report)
    assert (withheld.released_at, withheld.waiting) == (None, "physician_seen")
    phone = _portal(app, patient, clock)
    assert "Potassium" not in phone.get("/portail/resultats").text
    physician = login(TestClient(app), PHYSICIAN)
    page = physician.get(f"/patients/{patient.id}/resultats").text
    physician.post(f"/patients/{patient.id}/resultats/{report}/vu", data={"csrf_token": csrf_from(page)})
    shown = phone.get("/portail/resultats").text
    listed = shown.split('id="results"')[1]
    assert "6.3" in listed and "4.1" not in listed.split("Potassium")[1].split("</li>")[0]


def test_results_and_their_release_follow_a_merged_patient_and_come_back_on_undo(
        app: FastAPI, lab: ServerThread, clock: FixedClock) -> None:
    from naho.identity import service as identity
    from naho.platform.security.actor import Actor
    from naho.platform.security.rules import Role
    from naho.results import service as results

    container = app.state.container
    merged, survivor = admit_inpatient(container), admit_inpatient(container, "DURANT")
    lab.send(oru("M1", [obx(1, POTASSIUM, "Potassium", "6.4", "mmol/L", "3.5-5.0", "HH")], ipp=merged.ipp,
                 placer="CMD-M", filler="LAB-M"))
    report = _report(app, merged, "CMD-M")
    vigilance = Actor(uuid.uuid4(), "iv", "Identitovigilance", frozenset({Role.IDENTITY_VIGILANCE}))
    merge_id = identity.merge_patients(container.uow(), vigilance, survivor.id, merged.id, "same person, typed twice",
                                       container.ports["care"], container.ports["patient_movers"])
    with container.uow() as uow:
        view = results.read_results(uow.session, survivor.id)
        assert [r.id for r in view.reports] == [report] and [r.loinc for r in view.rows] == [POTASSIUM]
        assert [a.patient_id for a in results._open_alerts(uow.session, survivor.id)] == [survivor.id]
    assert _state(app, report).patient_id == survivor.id
    identity.undo_merge(container.uow(), vigilance, merge_id, container.ports["care"],
                        container.ports["patient_movers"])
    with container.uow() as uow:
        assert results.read_results(uow.session, survivor.id).reports == []
        assert [r.id for r in results.read_results(uow.session, merged.id).reports] == [report]
    assert _state(app, report).patient_id == merged.id
