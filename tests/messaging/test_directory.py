"""The directory of community professionals: the national extract read column by column, bad
lines reported with their number and nothing stored, re-imports idempotent, search by name,
RPPS or city (page and JSON), and the patient's correspondents through the door."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select

from naho.messaging import directory, rules
from naho.messaging.models import Correspondent, Professional
from naho.messaging.pki import TestAuthority, certificate_pem
from naho.platform.audit import AuditEvent
from naho.platform.security.actor import SYSTEM_ACTOR
from naho.platform.uow import UnitOfWork
from tests.messaging.test_sending import admit, post
from tests.personas import ADMIN, CLERK, NURSE, PHYSICIAN, PORTER, csrf_from, login

UowFactory = Callable[[], UnitOfWork]
HEADER = ("Type d'identifiant PP|Identifiant PP|Libellé civilité d'exercice|Nom d'exercice|Prénom d'exercice|"
          "Libellé profession|Libellé savoir-faire|Raison sociale site|Numéro Voie (coord. structure)|"
          "Libellé type de voie (coord. structure)|Libellé Voie (coord. structure)|Code postal (coord. structure)|"
          "Libellé commune (coord. structure)|Adresse BAL|")


def line(rpps: str = "19991234567", last: str = "Martin", first: str = "Alice", postcode: str = "62300",
         city: str = "Lens", mss: str = "alice.martin@demo-naho.mssante.fr", kind: str = "8") -> str:
    return (f"{kind}|{rpps}|Docteur|{last}|{first}|Médecin|Médecine Générale|CABINET MARTIN|12|Rue|"
            f"de la Gare|{postcode}|{city}|{mss}|")


def sample_lines() -> list[str]:
    return directory.SAMPLE_EXTRACT.read_text(encoding="utf-8").splitlines(keepends=True)


@pytest.fixture(autouse=True)
def empty_directory(uow_factory: UowFactory) -> None:
    """The demo seed loads the sample extract; these tests start from an empty directory."""
    with uow_factory() as uow:
        uow.session.execute(delete(Professional))
        uow.commit()


def count(uow_factory: UowFactory) -> int:
    with uow_factory() as uow:
        return uow.session.execute(select(func.count()).select_from(Professional)).scalar_one()


# --- the extract, pure -----------------------------------------------------------------------------

def test_the_sample_extract_holds_48_professionals_and_skips_adeli_lines() -> None:
    parsed = rules.parse_extract(sample_lines())
    assert len(parsed.entries) == 48 and parsed.skipped_not_rpps == 2 and parsed.lines == 51
    fifth = next(e for e in parsed.entries if e.rpps == "19990000005")  # two activity lines, the first kept
    assert fifth.practice_name != "MAISON DE SANTE DES ANNEES 30"
    first = parsed.entries[0]
    assert (first.last_name, first.city, first.mss_address) == ("LECOMTE", "Béthune",
                                                                 "camille.lecomte@demo-naho.mssante.fr")
    assert first.street == "127 Rue de la République" and first.specialty == "Médecine Générale"


def test_every_bad_line_is_reported_with_its_number() -> None:
    lines = [HEADER, line(), line(rpps="1234"), line(rpps="19991234568", mss="alice@gmail.com"),
             line(rpps="19991234569", last=""), line(rpps="19991234560", postcode="6230"), "8|19991234561|too short\n"]
    with pytest.raises(rules.DirectoryExtractInvalid) as refused:
        rules.parse_extract(lines)
    assert [n for n, _ in refused.value.problems] == [3, 4, 5, 6, 7]
    reasons = dict(refused.value.problems)
    assert "11 digits" in reasons[3] and "mssante.fr" in reasons[4] and "required" in reasons[5]
    assert "5 digits" in reasons[6] and "fields" in reasons[7]
    with pytest.raises(rules.DirectoryExtractInvalid, match="missing column"):
        rules.parse_extract(["Nom|Prénom\n", "A|B\n"])
    with pytest.raises(rules.DirectoryExtractInvalid, match="empty"):
        rules.parse_extract([])


def test_search_folds_accents_apostrophes_and_case() -> None:
    assert rules.fold("d'Hondt-Bécourt  é") == "D HONDT BECOURT E"
    assert rules.is_mss_address("a.b@medecin.mssante.fr") and not rules.is_mss_address("a.b@mssante.fr.evil.com")


def test_a_status_only_moves_forward() -> None:
    s = rules.LetterStatus
    assert rules.advance(s.SENT, s.QUEUED) is s.SENT
    assert rules.advance(s.DELIVERED, s.FAILED) is s.FAILED
    assert rules.advance(s.READ, s.FAILED) is s.READ
    assert rules.advance(s.FAILED, s.DELIVERED) is s.FAILED
    assert rules.advance(s.FAILED, s.READ) is s.READ
    assert rules.letter_status([s.READ, s.SENT]) is s.SENT
    assert rules.letter_status([s.READ, s.FAILED]) is s.FAILED
    assert rules.letter_status([]) is s.QUEUED


def test_mssante_headers_name_each_cda_and_nothing_for_a_pdf_letter() -> None:
    assert rules.mss_headers([]) == []
    assert rules.mss_headers(["11490-0", "34112-3"]) == [("X-MSS-CODECDA", "11490-0"), ("X-MSS-CODECDA", "34112-3")]


# --- import ------------------------------------------------------------------------------------------

def test_an_import_is_idempotent_keeps_certificates_and_reports_changes(uow_factory: UowFactory, clock) -> None:  # type: ignore[no-untyped-def]
    first = directory.import_extract(uow_factory(), SYSTEM_ACTOR, sample_lines(), source="sample")
    assert (first.created, first.updated, first.unchanged) == (48, 0, 0)
    authority = TestAuthority("Test", clock.now())
    gp = authority.issue_professional("camille.lecomte@demo-naho.mssante.fr", "Camille Lecomte", "Cabinet")
    with uow_factory() as uow:
        directory.set_certificate(uow.session, "19990000001", certificate_pem(gp.certificate), now=clock.now())
        with pytest.raises(directory.CertificateRefused):  # someone else's certificate
            directory.set_certificate(uow.session, "19990000002", certificate_pem(gp.certificate), now=clock.now())
        uow.commit()
    moved = [text.replace("|Béthune|", "|Beuvry|") if text.startswith("8|19990000001|") else text
             for text in sample_lines()]
    again = directory.import_extract(uow_factory(), SYSTEM_ACTOR, moved, source="sample")
    assert (again.created, again.updated, again.unchanged) == (0, 1, 47)
    assert count(uow_factory) == 48
    with uow_factory() as uow:
        (found,) = directory.search(uow.session, "19990000001")
        events = uow.session.scalars(select(AuditEvent.details).where(
            AuditEvent.action == "messaging:directory:import")).all()
    assert found.city == "Beuvry" and found.has_certificate
    assert [e["created"] for e in events][-2:] == [48, 0]  # after the demo seed's own import


def test_an_extract_with_a_bad_line_stores_nothing(uow_factory: UowFactory) -> None:
    lines = sample_lines()
    lines.append(lines[1].replace("|19990000001|", "|123|"))
    with pytest.raises(directory.DirectoryImportRefused) as refused:
        directory.import_extract(uow_factory(), SYSTEM_ACTOR, lines, source="bad")
    assert refused.value.extra["problems"] == [{"line": 53, "reason": "RPPS '123' is not 11 digits"}]
    assert count(uow_factory) == 0


# --- search: page and JSON ---------------------------------------------------------------------------

def test_staff_search_the_directory_by_name_rpps_or_city(client: TestClient, uow_factory: UowFactory) -> None:
    directory.import_extract(uow_factory(), SYSTEM_ACTOR, sample_lines(), source="sample")
    login(client, NURSE)
    by_name = client.get("/api/annuaire", params={"q": "lecomte cam"}).json()["professionals"]
    assert [p["rpps"] for p in by_name] == ["19990000001"]
    assert client.get("/api/annuaire", params={"q": "19990000002"}).json()["professionals"][0]["last_name"] == "DUPUIS"
    in_city = client.get("/api/annuaire", params={"q": "henin"}).json()["professionals"]
    assert in_city and {p["city"] for p in in_city} == {"Hénin-Beaumont"}
    assert client.get("/api/annuaire", params={"q": "x"}).status_code == 422
    page = client.get("/annuaire", params={"q": "Lecomte"})
    assert page.status_code == 200 and "camille.lecomte@demo-naho.mssante.fr" in page.text
    login(client, PORTER)
    assert client.get("/annuaire", params={"q": "Lecomte"}).status_code == 403


# --- correspondents ----------------------------------------------------------------------------------

def _ids(uow_factory: UowFactory, *rpps: str) -> list[uuid.UUID]:
    with uow_factory() as uow:
        return [directory.search(uow.session, number)[0].id for number in rpps]


def test_the_team_attaches_a_gp_who_replaces_the_previous_one_audited(
        client: TestClient, uow_factory: UowFactory) -> None:
    directory.import_extract(uow_factory(), SYSTEM_ACTOR, sample_lines(), source="sample")
    first, second, other = _ids(uow_factory, "19990000001", "19990000002", "19990000030")
    patient = admit(client)
    login(client, NURSE)
    found = client.get(f"/patients/{patient}/correspondants", params={"q": "lecomte"}).text
    assert 'id="directory-found"' in found and str(first) in found
    for professional, role in ((first, "gp"), (other, "other"), (second, "gp")):
        response = post(client, f"/patients/{patient}/correspondants",
                        {"professional_id": str(professional), "role": role})
        assert "erreur" not in response.headers["location"], response.headers["location"]
    again = post(client, f"/patients/{patient}/correspondants", {"professional_id": str(other), "role": "other"})
    assert again.headers["location"].endswith("erreur=AlreadyCorrespondent")
    bad = post(client, f"/patients/{patient}/correspondants", {"professional_id": str(other), "role": "chef"})
    assert bad.headers["location"].endswith("erreur=UnknownCorrespondentRole")
    with uow_factory() as uow:
        rows = list(uow.session.execute(select(Correspondent.professional_id, Correspondent.role,
                                               Correspondent.ended_at).order_by(Correspondent.since)))
        actions = uow.session.scalars(select(AuditEvent.action).where(
            AuditEvent.patient_id == uuid.UUID(patient), AuditEvent.action.like("patient:correspondent:%"))).all()
    current = {(p, r) for p, r, ended in rows if ended is None}
    assert current == {(second, "gp"), (other, "other")}
    assert actions.count("patient:correspondent:create") == 3
    page = client.get(f"/patients/{patient}/correspondants").text.split('id="correspondents"')[1]
    assert "DUPUIS" in page and "LECOMTE" not in page

    login(client, PHYSICIAN)
    assert f'href="/patients/{patient}/correspondants"' in client.get(f"/patients/{patient}").text


def test_a_clerk_or_porter_cannot_open_the_correspondents_page(client: TestClient) -> None:
    patient = admit(client)
    login(client, CLERK)
    assert client.get(f"/patients/{patient}/correspondants").status_code == 403
    login(client, PORTER)
    assert client.get(f"/patients/{patient}/correspondants").status_code == 403


def test_it_imports_an_extract_from_its_page_and_sees_bad_lines(client: TestClient, uow_factory: UowFactory) -> None:
    login(client, ADMIN)
    page = client.get("/admin/annuaire")
    assert page.status_code == 200
    lines = sample_lines()
    bad = "".join([*lines, lines[1].replace("|19990000001|", "|12|")]).encode()
    refused = client.post("/admin/annuaire", data={"csrf_token": csrf_from(page.text)},
                          files={"file": ("extrait.txt", bad, "text/plain")})
    assert refused.status_code == 422 and "RPPS &#39;12&#39; is not 11 digits" in refused.text
    assert count(uow_factory) == 0
    done = client.post("/admin/annuaire", data={"csrf_token": csrf_from(page.text)},
                       files={"file": ("extrait.txt", "".join(lines).encode(), "text/plain")})
    assert done.status_code == 200 and 'id="import-counts"' in done.text and count(uow_factory) == 48
    login(client, PHYSICIAN)
    assert client.get("/admin/annuaire").status_code == 403
