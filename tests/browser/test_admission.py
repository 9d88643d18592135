"""Admission → transfer → discharge in a real browser, as an admission clerk does it."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.personas import CLERK, PASSWORD

pytestmark = pytest.mark.browser


def _sign_in(page, username: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(page.base + "/connexion")
    page.get_by_label("Identifiant").fill(username)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(re.compile(r"/accueil$"))


def test_register_admit_transfer_and_discharge_a_patient(page) -> None:  # type: ignore[no-untyped-def]
    _sign_in(page, CLERK)
    page.get_by_role("link", name="Patients").first.click()
    page.get_by_role("link", name="Nouveau patient").click()
    page.get_by_label("Nom de naissance").fill("Delcourt")
    page.get_by_label("Prénoms de naissance").fill("Odile Jeanne")
    page.get_by_label("Sexe").select_option("F")
    page.get_by_label("Date de naissance").fill("1939-05-17")
    page.get_by_label("Lieu de naissance (code INSEE)").fill("62498")
    page.get_by_role("button", name="Créer le dossier").click()
    page.wait_for_url(re.compile(r"/patients/[0-9a-f-]{36}$"))
    assert "DELCOURT Odile" in page.locator("h1").inner_text()
    assert "Identité provisoire" in page.locator("#identity-status").inner_text()

    # Admission into cardiology, bed 201-1.
    page.get_by_label("Établissement", exact=True).nth(1).select_option("LENS")
    page.locator("#admit-unit").select_option("LENS-MED-CARDIO")
    page.locator("#admit-bed").fill("LENS-MED-CARDIO-101-1")
    page.get_by_role("button", name="Admettre", exact=True).click()
    page.wait_for_selector("#location")
    assert "Cardiologie" in page.locator("#location").inner_text()

    # Transfer to another bed of the unit, then discharge.
    page.locator("#transfer-bed").fill("LENS-MED-CARDIO-102-1")
    page.get_by_role("button", name="Mutation").click()
    page.wait_for_function("document.querySelector('#location').innerText.includes('102-1')")
    page.get_by_role("button", name="Sortie").click()
    page.wait_for_selector("#location", state="detached")
    stays = page.locator("#stays").inner_text()
    assert "Terminé" in stays and "A01" in stays and "A02" in stays and "A03" in stays
    assert page.console_errors == []


def test_a_taken_bed_is_explained(page) -> None:  # type: ignore[no-untyped-def]
    _sign_in(page, CLERK)
    for name in ("Vandamme", "Wallart"):
        page.goto(page.base + "/patients/nouveau")
        page.get_by_label("Nom de naissance").fill(name)
        page.get_by_label("Prénoms de naissance").fill("Henri")
        page.get_by_label("Sexe").select_option("M")
        page.get_by_label("Date de naissance").fill("1960-01-02")
        page.get_by_role("button", name="Créer le dossier").click()
        page.wait_for_url(re.compile(r"/patients/[0-9a-f-]{36}$"))
        page.locator("#admit-unit").select_option("LENS-MED-CARDIO")
        page.locator("#admit-bed").fill("LENS-MED-CARDIO-103-1")
        page.get_by_role("button", name="Admettre", exact=True).click()
        page.wait_for_load_state()
    assert "Ce lit est déjà occupé" in page.get_by_role("alert").inner_text()


def test_pre_admit_then_record_the_arrival_and_change_the_kind_of_stay(page) -> None:  # type: ignore[no-untyped-def]
    _sign_in(page, CLERK)
    page.goto(page.base + "/patients/nouveau")
    page.get_by_label("Nom de naissance").fill("Lemaire")
    page.get_by_label("Prénoms de naissance").fill("Armand")
    page.get_by_label("Sexe").select_option("M")
    page.get_by_label("Date de naissance").fill("1952-09-30")
    page.get_by_role("button", name="Créer le dossier").click()
    page.wait_for_url(re.compile(r"/patients/[0-9a-f-]{36}$"))

    # Planned for tomorrow morning in cardiology: the stay has its NDA, no bed is taken yet.
    tomorrow = (datetime.now(ZoneInfo("Europe/Paris")) + timedelta(days=1)).strftime("%Y-%m-%dT09:30")
    page.locator("#pre-establishment").select_option("LENS")
    page.locator("#pre-unit").select_option("LENS-MED-CARDIO")
    page.locator("#pre-at").fill(tomorrow)
    page.get_by_role("button", name="Pré-admettre").click()
    page.wait_for_selector("#planned-stays")
    planned = page.locator("#planned-stays").inner_text()
    assert "NDA" in planned and "09:30" in planned

    # The patient comes in: the arrival turns the pre-admission into the admission, same NDA.
    page.locator("#planned-stays input[name=bed]").fill("LENS-MED-CARDIO-104-1")
    page.get_by_role("button", name="Enregistrer l'arrivée").click()
    page.wait_for_selector("#location")
    assert "Cardiologie" in page.locator("#location").inner_text()
    assert page.locator("#planned-stays").count() == 0

    # Seen in the morning, he goes home and comes back as an outpatient: an A07.
    page.get_by_text("Changer le type de séjour").first.click()
    page.locator("#class-new").select_option("outpatient")
    page.get_by_role("button", name="Changer le type de séjour").click()
    page.wait_for_load_state()
    stays = page.locator("#stays").inner_text()
    assert "A05" in stays and "A01" in stays and "A07" in stays
    assert page.console_errors == []
