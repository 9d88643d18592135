"""A nurse signs in, switches establishment and sees its units, in a real browser."""

from __future__ import annotations

import re

import pytest

from naho.app import VENDOR_HTMX_DIR
from tests.personas import ADMIN, NURSE, PASSWORD

pytestmark = pytest.mark.browser


def _sign_in(page, username: str, password: str = PASSWORD) -> None:  # type: ignore[no-untyped-def]
    page.goto(page.base + "/connexion")
    page.get_by_label("Identifiant").fill(username)
    page.get_by_label("Mot de passe").fill(password)
    page.get_by_role("button", name="Se connecter").click()


def test_sign_in_switch_establishment_and_see_the_units(page) -> None:  # type: ignore[no-untyped-def]
    _sign_in(page, NURSE)
    page.wait_for_url(re.compile(r"/accueil$"))
    assert page.locator("h1").inner_text().startswith("Centre hospitalier de Lens")
    lens_units = page.locator("#unit-list tbody tr").count()
    assert lens_units > 30
    # The switcher submits itself on change (our own script, allowed by the CSP).
    page.get_by_label("Établissement", exact=True).select_option("BETHUNE")
    page.wait_for_function("document.querySelector('h1').innerText.includes('Béthune')")
    bethune_units = page.locator("#unit-list tbody tr").count()
    assert 0 < bethune_units < lens_units
    assert "Service d'accueil des urgences" in page.locator("#unit-list").inner_text()
    # The choice sticks for the session.
    page.reload()
    assert "Béthune" in page.locator("h1").inner_text()
    # The nurse works at Lens only: no current unit at Béthune until one is chosen.
    assert page.locator("#current-unit").count() == 0
    page.get_by_label("Unité", exact=True).select_option("BETHUNE-URG-SAU")
    page.wait_for_selector("#current-unit")
    assert "urgences" in page.locator("#current-unit").inner_text()
    assert page.locator("#unit-list tr.current").count() == 1
    assert page.console_errors == []  # no CSP violation, no script error


def test_a_wrong_password_shows_an_error_in_french(page) -> None:  # type: ignore[no-untyped-def]
    _sign_in(page, NURSE, "mauvais-mot-de-passe")
    alert = page.get_by_role("alert")
    assert "Identifiant inconnu" in alert.inner_text() or "mot de passe" in alert.inner_text().lower()
    assert page.url.endswith("/connexion")


def test_the_admin_sees_the_establishments_and_signs_out(page) -> None:  # type: ignore[no-untyped-def]
    _sign_in(page, ADMIN)
    page.goto(page.base + "/admin/etablissements")
    rows = page.locator("#establishments tbody tr")
    assert rows.count() == 4
    assert "La Bassée" in page.locator("#establishments").inner_text()
    page.locator(".user-menu summary").click()
    page.get_by_role("button", name="Se déconnecter").click()
    page.wait_for_url(re.compile(r"/connexion"))
    page.goto(page.base + "/admin")
    assert "/connexion" in page.url


def test_htmx_is_served_locally_when_installed(page) -> None:  # type: ignore[no-untyped-def]
    if not VENDOR_HTMX_DIR.is_dir():
        pytest.skip("htmx is not installed (the setup command runs npm ci)")
    page.goto(page.base + "/connexion")
    assert page.evaluate("typeof window.htmx") == "object"


def test_the_login_page_fits_a_phone(browser, live_server) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 375, "height": 740}, locale="fr-FR")
    page = context.new_page()
    page.goto(live_server + "/connexion")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375
    context.close()
