"""The sender's own identifiers (foreign IPP, visit and account numbers) are learnt and then
find our patients and stays; a foreign identifier never silently names someone else."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from naho.identity import service as identity
from naho.identity.schemas import PatientCreate
from naho.interop.hl7_listener import AdtListener
from naho.platform.deps import Container
from naho.platform.security.actor import Actor
from naho.platform.security.rules import Role
from naho.record import service as record
from naho.record.models import ForeignIdentifier
from tests.interop.test_hl7_listener import patient_ipp, stays
from tests.interop.test_hl7_pam_movements import message, send
from tests.personas import CLERK, NURSE, login

BED = "LENS-MED-MIN-521-1"
VIGILANCE = Actor(uuid.uuid4(), "iv", "Identitovigilance", frozenset({Role.IDENTITY_VIGILANCE}))


@pytest.fixture
def container(app) -> Container:  # type: ignore[no-untyped-def]
    return app.state.container  # type: ignore[no-any-return]


@pytest.fixture
def gam(container: Container) -> AdtListener:
    return AdtListener(container)


def _rows(container: Container) -> list[tuple[str, str, str, bool, bool]]:
    with container.session_factory() as s:
        return sorted((r.authority, r.kind, r.value, r.patient_id is not None, r.encounter_id is not None)
                      for r in s.scalars(select(ForeignIdentifier)))


def test_a_patient_created_with_a_foreign_ipp_is_found_by_it_afterwards(container: Container,
                                                                        gam: AdtListener) -> None:
    assert send(gam, message("A28", "X1", foreign="G100"))[0] == "AA"
    assert _rows(container) == [("GAM", "PI", "G100", True, False)]
    ipp = patient_ipp(container, "MARTIN")
    # An A31 naming the patient by the sender's IPP only: found (it was refused before 0006).
    renamed = message("A31", "X2", foreign="G100", name="MARTIN^LUC^LUC")
    assert send(gam, renamed) == ("AA", "X2", "", "")
    # A stay opened by the sender's numbers only, then moved and closed by them.
    opened = message("A01", "X3", foreign="G100", at="202611250800", visit="V100^^^GAM^VN",
                     account="A100^^^GAM^AN")
    assert send(gam, opened)[0] == "AA"
    moved = message("A02", "X4", foreign="G100", at="202611250900", visit="V100^^^GAM^VN",
                    location="LENS-MED-CARDIO^101^1")
    assert send(gam, moved) == ("AA", "X4", "", "")
    closed = message("A03", "X5", foreign="G100", at="202611251000", account="A100^^^GAM^AN",
                     location="LENS-MED-CARDIO^101^1")
    assert send(gam, closed)[0] == "AA"
    [stay] = stays(container, ipp)
    assert stay.status == "finished" and [m.trigger for m in stay.movements] == ["A01", "A02", "A03"]
    assert _rows(container) == [("GAM", "AN", "A100", False, True), ("GAM", "PI", "G100", True, False),
                                ("GAM", "VN", "V100", False, True)]
    # A second A28 for the same foreign IPP is the same patient (no duplicate created).
    assert send(gam, message("A28", "X6", foreign="G100"))[0] == "AA"
    assert patient_ipp(container, "MARTIN") == ipp


def test_the_arrival_of_a_pre_admission_is_found_by_the_senders_visit_number(container: Container,
                                                                             gam: AdtListener) -> None:
    planned = message("A05", "Y1", foreign="G200", expected="20261127080000", visit="V200^^^GAM^VN")
    assert send(gam, planned)[0] == "AA"
    ipp = patient_ipp(container, "MARTIN")
    arrival = message("A01", "Y2", foreign="G200", at="202611251000", visit="V200^^^GAM^VN")
    assert send(gam, arrival) == ("AA", "Y2", "", "")
    [stay] = stays(container, ipp)
    assert [m.trigger for m in stay.movements] == ["A05", "A01"] and stay.status == "in_progress"
    # Another visit number opens another stay: nothing planned is guessed.
    other = message("A38", "Y3", foreign="G200", visit="V999^^^GAM^VN", action="CANCEL")
    refused = send(gam, other)
    assert refused[:2] == ("AE", "Y3") and "no planned stay" in refused[3]


def test_a_foreign_ipp_naming_another_patient_is_refused_and_nothing_moves(container: Container,
                                                                           gam: AdtListener) -> None:
    assert send(gam, message("A28", "Z1", foreign="G300", name="MARTIN^LUC^LUC"))[0] == "AA"
    assert send(gam, message("A28", "Z2", foreign="G301", name="PETIT^ANNE^ANNE"))[0] == "AA"
    anne = patient_ipp(container, "PETIT")
    # Our IPP of Anne beside the sender's IPP of Luc: the two systems disagree; a person decides.
    confused = message("A01", "Z3", ipp=anne, foreign="G300", name="PETIT^ANNE^ANNE", at="202611250800")
    refused = send(gam, confused)
    assert refused[:3] == ("AE", "Z3", "ForeignIdentifierConflict") and "G300" in refused[3]
    assert stays(container, anne) == []  # the admission was not kept either
    # A visit number of Luc's stay, sent for Anne: refused too.
    assert send(gam, message("A01", "Z4", foreign="G300", at="202611250800", visit="V300^^^GAM^VN"))[0] == "AA"
    theirs = message("A03", "Z5", foreign="G301", name="PETIT^ANNE^ANNE", at="202611250900",
                     visit="V300^^^GAM^VN")
    wrong = send(gam, theirs)
    assert wrong[:2] == ("AE", "Z5") and "another patient" in wrong[3]


def test_after_a_merge_the_senders_ipp_of_the_merged_record_leads_to_the_survivor(container: Container,
                                                                                  gam: AdtListener) -> None:
    assert send(gam, message("A28", "M1", foreign="G400", name="LAMBERT^ALICE^ALICE"))[0] == "AA"
    with container.uow() as uow:
        lambert = identity.id_by_ipp(uow.session, patient_ipp(container, "LAMBERT ALICE"))
    assert lambert is not None
    merged = identity.register_patient(container.uow(), VIGILANCE, PatientCreate(
        birth_name="LAMBERT", first_names="ALICE", sex="F", birth_date=date(1980, 5, 5)))
    identity.merge_patients(container.uow(), VIGILANCE, merged.id, lambert, "same person, typed twice",
                            record.CARE, [record.MOVER])
    assert send(gam, message("A01", "M2", foreign="G400", name="LAMBERT^ALICE^ALICE", at="202611250800"))[0] == "AA"
    assert len(stays(container, merged.ipp)) == 1
    # Naming the survivor by our IPP beside the sender's IPP of the merged record is consistent.
    both = message("A31", "M3", ipp=merged.ipp, foreign="G400", name="LAMBERT^ALICE^ALICE")
    assert send(gam, both)[0] == "AA"


# --- A40 and A47 in ----------------------------------------------------------------------------------

def test_an_a40_merges_two_records_known_by_the_senders_ipps(container: Container, gam: AdtListener) -> None:
    assert send(gam, message("A28", "F1", foreign="G500", name="MARTIN^LUC^LUC"))[0] == "AA"
    assert send(gam, message("A01", "F2", foreign="G500", at="202611250800"))[0] == "AA"
    # The same man registered again under another IPP by the sender (a typing error on the name).
    duplicate = message("A28", "F3", foreign="G501", name="MARTINN^LUC^LUC")
    assert send(gam, duplicate)[2] == "PossibleDuplicates"  # waits for identity vigilance...
    identity.register_patient(container.uow(), VIGILANCE, PatientCreate(
        birth_name="MARTINN", first_names="LUC", sex="M", birth_date=date(1970, 1, 1)),
        confirm_reason="typed at the front desk")
    with container.session_factory() as s:
        martinn = identity.search_patients(container.uow(), VIGILANCE, "MARTINN", record.CARE)[0]
        s.add(ForeignIdentifier(authority="GAM", kind="PI", value="G501", patient_id=martinn.id,
                                recorded_at=martinn.created_at, source="test"))
        s.commit()
    merge = message("A40", "F4", foreign="G500", name="MARTIN^LUC^LUC", mrg="G501^^^GAM^PI",
                    structure="ADT_A39")
    assert send(gam, merge) == ("AA", "F4", "", "")
    survivor = patient_ipp(container, "MARTIN LUC")
    assert identity.search_patients(container.uow(), VIGILANCE, "MARTINN", record.CARE) == []  # redirects now
    with container.session_factory() as s:
        assert identity.merges(s)[0][2] is not None and identity.merges(s)[0][0].reason.startswith("A40 from GAM")
    # The sender's IPP of the merged record now leads to the survivor; an A40 sent twice is harmless.
    assert send(gam, message("A31", "F5", foreign="G501", name="MARTIN^LUC^LUC"))[0] == "AA"
    assert send(gam, message("A40", "F6", foreign="G500", name="MARTIN^LUC^LUC", mrg="G501^^^GAM^PI"))[0] == "AA"
    assert len(stays(container, survivor)) == 1
    unknown = send(gam, message("A40", "F7", foreign="G500", mrg="G999^^^GAM^PI"))
    assert unknown[:3] == ("AE", "F7", "UnknownPatient") and "MRG-1" in unknown[3]
    missing = send(gam, message("A40", "F8", foreign="G500"))
    assert missing[:3] == ("AE", "F8", "PriorIdentifierMissing")


def test_an_a40_of_suspected_twins_waits_for_identity_vigilance(container: Container, gam: AdtListener) -> None:
    assert send(gam, message("A28", "T1", foreign="G700", name="MARTIN^LUC^LUC"))[0] == "AA"
    # His twin brother: same birth name, date and place, another first name.
    brother = identity.register_patient(container.uow(), VIGILANCE, PatientCreate(
        birth_name="MARTIN", first_names="PAUL", sex="M", birth_date=date(1970, 1, 1)),
        confirm_reason="jumeau de Luc, vu à l'accueil")
    with container.session_factory() as s:
        s.add(ForeignIdentifier(authority="GAM", kind="PI", value="G701", patient_id=brother.id,
                                recorded_at=brother.created_at, source="test"))
        s.commit()
    refused = send(gam, message("A40", "T2", foreign="G700", name="MARTIN^LUC^LUC", mrg="G701^^^GAM^PI",
                                structure="ADT_A39"))
    assert refused[:3] == ("AE", "T2", "TwinsSuspected")
    with container.session_factory() as s:
        assert identity.merges(s) == []  # both records stay


def test_an_a47_renames_the_senders_ipp_and_never_ours_nor_an_ins(container: Container, gam: AdtListener) -> None:
    assert send(gam, message("A28", "H1", foreign="G600"))[0] == "AA"
    ipp = patient_ipp(container, "MARTIN")
    renamed = message("A47", "H2", foreign="G601", mrg="G600^^^GAM^PI", structure="ADT_A30")
    assert send(gam, renamed) == ("AA", "H2", "", "")
    assert ("GAM", "PI", "G601", True, False) in _rows(container)
    assert ("GAM", "PI", "G600", True, False) not in _rows(container)
    assert send(gam, message("A01", "H3", foreign="G601", at="202611250800"))[0] == "AA"
    assert len(stays(container, ipp)) == 1
    ours = send(gam, message("A47", "H4", foreign="G601", mrg=f"{ipp}^^^NAHO^PI"))
    assert ours[:3] == ("AE", "H4", "IppNotChangedByMessage")
    ins = send(gam, message("A47", "H5", foreign="G601",
                            mrg="260058815400233^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS"))
    assert ins[:3] == ("AE", "H5", "InsManagedByInsi")
    assert send(gam, message("A28", "H6", foreign="G700", name="PETIT^ANNE^ANNE"))[0] == "AA"
    taken = send(gam, message("A47", "H7", foreign="G700", mrg="G601^^^GAM^PI", name="PETIT^ANNE^ANNE"))
    assert taken[:3] == ("AE", "H7", "ForeignIdentifierConflict")


def test_an_a44_moves_the_stay_named_by_the_senders_account_to_the_right_patient(
        container: Container, gam: AdtListener) -> None:
    assert send(gam, message("A28", "K1", foreign="G800", name="MARTIN^LUC^LUC"))[0] == "AA"
    assert send(gam, message("A28", "K2", foreign="G801", name="PETIT^ANNE^ANNE"))[0] == "AA"
    luc, anne = patient_ipp(container, "MARTIN"), patient_ipp(container, "PETIT")
    # Anne's stay opened on Luc by mistake, under the sender's account A800.
    assert send(gam, message("A01", "K3", foreign="G800", at="202611250800", account="A800^^^GAM^AN"))[0] == "AA"
    move = message("A44", "K4", foreign="G801", name="PETIT^ANNE^ANNE", mrg="G800^^^GAM^PI||A800^^^GAM^AN",
                   structure="ADT_A43")
    assert send(gam, move) == ("AA", "K4", "", "")
    assert stays(container, luc) == [] and len(stays(container, anne)) == 1
    # Her later movements name the account and find the stay, now hers.
    assert send(gam, message("A03", "K5", foreign="G801", name="PETIT^ANNE^ANNE", at="202611250900",
                             account="A800^^^GAM^AN"))[0] == "AA"
    assert stays(container, anne)[0].status == "finished"
    again = send(gam, message("A44", "K6", foreign="G801", name="PETIT^ANNE^ANNE", mrg="G800^^^GAM^PI||A800^^^GAM^AN"))
    assert again[:2] == ("AE", "K6") and "another patient" in again[3]  # not Luc's stay any more
    missing = send(gam, message("A44", "K7", foreign="G801", name="PETIT^ANNE^ANNE", mrg="G800^^^GAM^PI"))
    assert missing[:3] == ("AE", "K7", "AccountMissing")


def test_the_patient_page_shows_the_senders_ipp_to_admissions_only(container: Container, gam: AdtListener,
                                                                    client, app) -> None:  # type: ignore[no-untyped-def]
    assert send(gam, message("A28", "S1", foreign="G900"))[0] == "AA"
    patient_id = identity.search_patients(container.uow(), VIGILANCE, "MARTIN", record.CARE)[0].id
    login(client, CLERK)
    page = client.get(f"/patients/{patient_id}").text
    assert 'id="foreign-identifiers"' in page and "G900" in page
    assert send(gam, message("A01", "S2", foreign="G900", at="202611250800"))[0] == "AA"
    with TestClient(app) as nurse:
        login(nurse, NURSE)
        shown = nurse.get(f"/patients/{patient_id}")
        assert shown.status_code == 200 and "G900" not in shown.text


def test_an_identifier_learnt_by_another_connection_meanwhile_is_taken_not_fatal(
        container: Container, monkeypatch: pytest.MonkeyPatch) -> None:
    """The unique constraint speaks when another transaction committed the same identifier
    between our lookup and our insert: the savepoint keeps our transaction, the row is read."""
    from naho.record import crossref

    patient = identity.register_patient(container.uow(), VIGILANCE, PatientCreate(
        birth_name="ROUX", first_names="EMMA", sex="F", birth_date=date(1990, 1, 1)))
    now = patient.created_at
    with container.uow() as uow:
        crossref.remember_patient(uow.session, "GAM", "G1000", patient.id, now=now, source="first")
        uow.commit()
    real_row = crossref._row
    calls: list[int] = []

    def blind_once(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return None if len(calls) == 1 else real_row(*args, **kwargs)

    monkeypatch.setattr(crossref, "_row", blind_once)
    with container.uow() as uow:
        assert crossref.remember_patient(uow.session, "GAM", "G1000", patient.id, now=now, source="second") is False
        uow.commit()
    other = identity.register_patient(container.uow(), VIGILANCE, PatientCreate(
        birth_name="BLANC", first_names="HUGO", sex="M", birth_date=date(1980, 1, 1)))
    calls.clear()
    with container.uow() as uow, pytest.raises(crossref.ForeignIdentifierConflict):
        crossref.remember_patient(uow.session, "GAM", "G1000", other.id, now=now, source="third")
    assert _rows(container) == [("GAM", "PI", "G1000", True, False)]
