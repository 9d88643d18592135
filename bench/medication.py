"""Benchmark `medication`: signing an order for a patient with 30 active orders (goal p95 < 50 ms),
and the nurses' unit plan of care with 30 occupied beds (goal p95 < 200 ms).

The order check: an 80-year-old of 64 kg with a penicillin allergy is in internal medicine with
30 active orders of 30 different substances (every alert they raise answered by a reason, as a
prescriber would); the physician then signs paracetamol 1 g three times a day, again and again
(each one stopped afterwards so that 30 stay active). The figure is the whole signature through
the app in-process: routing, the door and its audit, the patient's context (identity, weight,
allergies, the 30 orders), the checks against them, the writes. The pure checks alone
(`rules.check_order` with the same 30 orders) are given beside it.

The unit plan of care: 30 patients in beds of one unit with 8 orders each (scheduled, if needed,
an infusion), some doses already given; the unit's nurse opens the timeline page.

    uv run python bench/medication.py [--quick] [--database-url URL]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import (
    DEFAULT_PASSWORD,
    common_params,
    fresh_database,
    latency_summary,
    load_average,
    parser,
    print_table,
    scratch_directory,
    write_results,
)

UNIT = "LENS-MED-MIN"
SIGNED = {"product_code": "PARA1GCP", "dose_value": 1, "dose_unit": "g", "route": "PO",
          "frequency": "times_per_day", "times_per_day": 3}
#: The 30 beds of internal medicine (12 single rooms, 9 double) and each patient's 8 orders.
BEDS = ([f"{UNIT}-{room}-1" for room in range(521, 533)]
        + [f"{UNIT}-{room}-{bed}" for room in range(533, 542) for bed in (1, 2)])
WARD_ORDERS = [
    {"product_code": "PARA1GCP", "dose_value": 1, "dose_unit": "g", "route": "PO", "frequency": "times_per_day",
     "times_per_day": 3},
    {"product_code": "ENOX4000", "dose_value": 4000, "dose_unit": "UI", "route": "SC", "frequency": "times_per_day",
     "times_per_day": 1},
    {"product_code": "ESOM20CP", "dose_value": 20, "dose_unit": "mg", "route": "PO", "frequency": "times_per_day",
     "times_per_day": 1},
    {"product_code": "AMLO5GEL", "dose_value": 5, "dose_unit": "mg", "route": "PO", "frequency": "times_per_day",
     "times_per_day": 1},
    {"product_code": "BISO5CP", "dose_value": 5, "dose_unit": "mg", "route": "PO", "frequency": "times_per_day",
     "times_per_day": 1},
    {"product_code": "FURO40CP", "dose_value": 40, "dose_unit": "mg", "route": "PO", "frequency": "times_per_day",
     "times_per_day": 2},
    {"product_code": "AMOX1GCP", "dose_value": 1, "dose_unit": "g", "route": "PO", "frequency": "every_hours",
     "every_hours": 8},
    {"product_code": "TRAM50GEL", "dose_value": 50, "dose_unit": "mg", "route": "PO", "frequency": "if_needed",
     "max_per_24h": 4, "every_hours": 6, "indication": "Douleur EVA > 4"},
]


def _login(client: Any, username: str) -> str:
    page = client.get("/connexion").text
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    response = client.post("/connexion", data={"username": username, "password": DEFAULT_PASSWORD,
                                               "csrf_token": token, "suivant": "/accueil"}, follow_redirects=False)
    assert response.status_code == 303, response.text
    home = client.get("/accueil").text
    return home.split('name="csrf_token" value="')[1].split('"')[0]


NAMES = ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau",
         "Simon", "Laurent", "Lefebvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier",
         "Morel", "Girard", "Andre", "Mercier", "Dupont", "Lambert", "Bonnet", "Francois", "Martinez", "Legrand"]
FIRST_NAMES = ["Marcel", "Odette", "Lucien", "Germaine", "Roger", "Simone", "Andre", "Yvette", "Rene", "Paulette"]


def _admit(client: Any, token: str, n: int, bed: str | None) -> tuple[str, str]:
    """(patient id, IPP) of the n-th patient, admitted in a bed of the unit."""
    patient = client.post("/api/patients", headers={"x-csrf-token": token}, json={
        "birth_name": NAMES[n], "first_names": FIRST_NAMES[n % len(FIRST_NAMES)], "sex": "MF"[n % 2],
        "birth_date": f"19{30 + n}-0{1 + n % 9}-1{n % 10}"})
    assert patient.status_code == 201, patient.text
    stay = client.post("/api/encounters", headers={"x-csrf-token": token}, json={
        "patient_id": patient.json()["id"], "establishment_code": "LENS", "encounter_class": "inpatient",
        "unit_code": UNIT, "bed_code": bed})
    assert stay.status_code == 201, stay.text
    return str(patient.json()["id"]), str(patient.json()["ipp"])


def _thirty_orders(catalogue: Any) -> list[dict[str, Any]]:
    """One tablet of 30 oral products of 30 different substances (no paracetamol: the signed
    order would be a duplicate of it), once a day."""
    orders, seen = [], set()
    for product in sorted(catalogue.products.values(), key=lambda p: p.code):
        substance = product.components[0].substance
        if (len(product.components) != 1 or product.routes != frozenset({"PO"}) or substance in seen
                or substance == "paracetamol" or product.form not in ("comprimé", "gélule")):
            continue
        seen.add(substance)
        orders.append({"product_code": product.code, "dose_value": 1, "dose_unit": "pres", "route": "PO",
                       "frequency": "times_per_day", "times_per_day": 1,
                       "override_reason": "Patient polymédiqué, traitement habituel poursuivi"})
    return orders


def _unit_page(clerk: Any, nurse: Any, physician: Any, *, requests: int) -> list[float]:
    """Fill the unit's other beds (8 orders each, one 'if needed' dose given), then time the
    nurse's plan-of-care page of the unit."""
    clerk_token, physician_token = _login(clerk, "admission"), _login(physician, "medecin")
    nurse_token = _login(nurse, "infirmier")
    for n, bed in enumerate(BEDS[1:], 1):
        patient, ipp = _admit(clerk, clerk_token, n, bed)
        assert nurse.post(f"/patients/{patient}/constantes", data={"weight": "70", "height": "170",
                                                                   "csrf_token": nurse_token},
                          follow_redirects=False).status_code == 303
        for body in WARD_ORDERS:
            signed = physician.post(f"/api/patients/{patient}/medication-orders",
                                    headers={"x-csrf-token": physician_token},
                                    json={**body, "override_reason": "Traitement habituel"})
            assert signed.status_code == 201, signed.text
        given = nurse.post("/api/medication-administrations", headers={"x-csrf-token": nurse_token}, json={
            "order_id": signed.json()["id"], "patient_scan": f"P{ipp}", "dose_scan": "MTRAM50GEL",
            "reason": "Douleur EVA 6"})
        assert given.status_code == 201, given.text
    timings = []
    for n in range(requests + 5):
        t0 = time.perf_counter()
        page = nurse.get(f"/services/{UNIT}/plan-de-soins")
        elapsed = (time.perf_counter() - t0) * 1000
        assert page.status_code == 200 and page.text.count('class="emar-patient"') == len(BEDS), page.text[:300]
        if n >= 5:
            timings.append(elapsed)
    return timings


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    signatures = 60 if args.quick else 300
    import uuid

    from fastapi.testclient import TestClient
    from sqlalchemy import select

    from naho.app import create_app
    from naho.config import Settings
    from naho.medication import rules
    from naho.medication import service as medication
    from naho.medication.models import MedicationOrder
    from naho.migrations import upgrade
    from naho.platform.clock import SystemClock
    from naho.platform.db import make_engine, make_session_factory
    from naho.platform.events import EventBus
    from naho.platform.uow import UnitOfWork
    from naho.sandbox.seed import seed

    with scratch_directory() as scratch, fresh_database(args.database_url, scratch) as (url, backend):
        upgrade(url)
        settings = Settings(mode="development", database_url=url, demo_patients=0, workers=False)
        engine = make_engine(url)
        uow = UnitOfWork(make_session_factory(engine), SystemClock(), EventBus())
        seed(uow, settings)
        with uow:
            catalogue = medication.catalogue(uow.session)
        engine.dispose()

        # as `naho serve` runs (test mode turns the start-up freeze off)
        app = create_app(Settings(mode="test", database_url=url, workers=False, freeze_startup_objects=True))
        sign_ms: list[float] = []
        with TestClient(app) as clerk, TestClient(app) as nurse, TestClient(app) as physician:
            token = _login(clerk, "admission")
            patient, _ipp = _admit(clerk, token, 0, BEDS[0])
            token = _login(nurse, "infirmier")
            for path, data in ((f"/patients/{patient}/constantes", {"weight": "64", "height": "168"}),
                               (f"/patients/{patient}/allergies", {"substance_label": "Pénicillines",
                                                                    "substance_code": "ATC:J01C",
                                                                    "criticality": "high"})):
                assert nurse.post(path, data={**data, "csrf_token": token},
                                  follow_redirects=False).status_code == 303
            token = _login(physician, "medecin")
            active = 0
            for body in _thirty_orders(catalogue):
                response = physician.post(f"/api/patients/{patient}/medication-orders",
                                          headers={"x-csrf-token": token}, json=body)
                active += response.status_code == 201
                if active == 30:
                    break
            assert active == 30, f"only {active} orders could be signed"
            for n in range(signatures + 5):
                t0 = time.perf_counter()
                signed = physician.post(f"/api/patients/{patient}/medication-orders",
                                        headers={"x-csrf-token": token}, json=SIGNED)
                elapsed = (time.perf_counter() - t0) * 1000
                assert signed.status_code == 201, signed.text
                if n >= 5:  # warm-up
                    sign_ms.append(elapsed)
                stopped = physician.post(f"/api/medication-orders/{signed.json()['id']}/stop",
                                         headers={"x-csrf-token": token}, json={"reason": "bench"})
                assert stopped.status_code == 200, stopped.text
            emar_ms = _unit_page(clerk, nurse, physician, requests=signatures)
            with app.state.container.uow() as session_uow:
                rows = session_uow.session.scalars(select(MedicationOrder).where(
                    MedicationOrder.patient_id == uuid.UUID(patient), MedicationOrder.status == "active"))
                orders = [rules.Order(r.product_code, rules.Quantity(r.dose_value, r.dose_unit), r.route,
                                      rules.Frequency(rules.FrequencyKind(r.frequency), r.times_per_day))
                          for r in rows]
        app.state.container.engine.dispose()

    context = rules.PatientContext(age_years=80, weight_kg=64, height_cm=168, allergies=frozenset({"ATC:J01C"}),
                                   active_orders=tuple(orders))
    proposed = rules.Order("PARA1GCP", rules.Quantity(1, "g"), "PO", rules.Frequency.times_a_day(3))
    pure_ms = []
    for _ in range(signatures * 10):
        t0 = time.perf_counter()
        rules.check_order(proposed, context, catalogue)
        pure_ms.append((time.perf_counter() - t0) * 1000)

    sign, pure, emar = latency_summary(sign_ms), latency_summary(pure_ms), latency_summary(emar_ms)
    figures = {"order_check_p95_ms": sign["p95"], "order_check_p50_ms": sign["p50"],
               "order_rules_p95_ms": pure["p95"], "order_rules_p50_ms": pure["p50"], "active_orders": len(orders),
               "emar_unit_page_p95_ms": emar["p95"], "emar_unit_page_p50_ms": emar["p50"], "beds": len(BEDS)}
    units = {k: "ms" for k in figures} | {"active_orders": "orders", "beds": "beds"}
    params = {**common_params(args.quick), "signatures": signatures, "backend": backend,
              "loadavg_end": load_average()}
    print_table(f"medication — {'quick' if args.quick else 'full'}, {backend}", figures, units,
                {"order_check_p95_ms": "< 50", "emar_unit_page_p95_ms": "< 200"})
    if not args.no_write:
        print(f"\nwritten {write_results('medication', figures, units, params)}")


if __name__ == "__main__":
    main()
