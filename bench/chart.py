"""Benchmark `chart`: the chart page of a patient with ten years of history (goal p95 < 150 ms).

The patient has a stay every few months over ten years, vital signs every four hours of each
stay, two notes a day, and is now in a bed of internal medicine; the demo nurse of that unit
opens `/patients/<id>` repeatedly through the app (in-process, no network): the figure is
server time — routing, the access door and its audit event, the queries, the template.

    uv run python bench/chart.py [--quick] [--database-url URL]
"""

from __future__ import annotations

import random
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import (
    common_params,
    fresh_database,
    latency_summary,
    load_average,
    parser,
    print_table,
    scratch_directory,
    write_results,
)


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    requests = 60 if args.quick else 300
    years = 10
    from fastapi.testclient import TestClient

    from naho.app import create_app
    from naho.config import Settings
    from naho.identity import rules as identity_rules
    from naho.identity import service as identity
    from naho.migrations import upgrade
    from naho.platform.clock import SystemClock
    from naho.platform.db import make_engine, make_session_factory
    from naho.platform.events import EventBus
    from naho.platform.uow import UnitOfWork
    from naho.record import chart, service
    from naho.sandbox.seed import seed

    with scratch_directory() as scratch, fresh_database(args.database_url, scratch) as (url, backend):
        started = time.perf_counter()
        upgrade(url)
        settings = Settings(mode="development", database_url=url, demo_patients=0, workers=False)
        engine = make_engine(url)
        uow = UnitOfWork(make_session_factory(engine), SystemClock(), EventBus())
        seed(uow, settings)
        rng = random.Random(10)
        observations = notes = stays = 0
        with uow:
            s = uow.session
            now = uow.clock.now()
            traits = identity_rules.Traits("DUMONT", None, ("GERARD",), "M",
                                           (now - timedelta(days=365 * 78)).date(), "62498")
            patient = identity.import_identity(s, traits, status=identity_rules.IdentityStatus.QUALIFIED,
                                               now=now, actor_label="bench")
            day = now - timedelta(days=365 * years)
            beds = [f"LENS-MED-CARDIO-{room}-1" for room in range(101, 115)]
            while day < now - timedelta(days=20):
                length = rng.randint(2, 12)
                start, end = day, day + timedelta(days=length)
                service.import_stay(s, patient, establishment_code="LENS", encounter_class="inpatient",
                                    unit_code="LENS-MED-CARDIO", bed_code=rng.choice(beds), admitted_at=start,
                                    discharged_at=end, now=now, actor_label="bench")
                stays += 1
                points = []
                at = start
                while at < end:
                    points += [("heart_rate", rng.uniform(55, 110), at), ("systolic_bp", rng.uniform(95, 170), at),
                               ("diastolic_bp", rng.uniform(50, 100), at), ("spo2", rng.uniform(89, 100), at),
                               ("temperature", rng.uniform(36, 39.5), at)]
                    at += timedelta(hours=4)
                texts = [("nursing" if i % 2 else "medical", f"Note {i} du séjour : évolution stable.",
                          start + timedelta(hours=12 * i)) for i in range(length * 2)]
                chart.import_history(s, patient, observations=points, notes=texts, author="bench", now=now)
                observations += len(points)
                notes += len(texts)
                day = end + timedelta(days=rng.randint(40, 120))
            service.import_stay(s, patient, establishment_code="LENS", encounter_class="inpatient",
                                unit_code="LENS-MED-MIN", bed_code="LENS-MED-MIN-525-1",
                                admitted_at=now - timedelta(days=3), now=now, actor_label="bench")
            recent = [(key, value, now - timedelta(hours=h)) for h in range(0, 72, 4)
                      for key, value in (("heart_rate", 80.0), ("spo2", 96.0), ("temperature", 37.2))]
            chart.import_history(s, patient, observations=recent, notes=[], author="bench", now=now)
            uow.commit()
        engine.dispose()
        build_s = time.perf_counter() - started

        app = create_app(Settings(mode="test", database_url=url, workers=False))
        timings: list[float] = []
        with TestClient(app) as client:
            page = client.get("/connexion").text
            token = page.split('name="csrf_token" value="')[1].split('"')[0]
            client.post("/connexion", data={"username": "infirmier", "password": "demo-naho-2026",
                                            "csrf_token": token, "suivant": "/accueil"})
            for _ in range(5):  # warm-up
                assert client.get(f"/patients/{patient}").status_code == 200
            for _ in range(requests):
                t0 = time.perf_counter()
                response = client.get(f"/patients/{patient}")
                timings.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200 and 'id="vitals"' in response.text
        app.state.container.engine.dispose()

    summary = latency_summary(timings)
    figures = {"chart_page_p95_ms": summary["p95"], "chart_page_p50_ms": summary["p50"],
               "chart_page_p99_ms": summary["p99"], "observations": observations, "notes": notes,
               "stays": stays + 1, "build_s": build_s}
    units = {"chart_page_p95_ms": "ms", "chart_page_p50_ms": "ms", "chart_page_p99_ms": "ms",
             "observations": "rows", "notes": "rows", "stays": "stays", "build_s": "s"}
    params = {**common_params(args.quick), "requests": requests, "years": years, "backend": backend,
              "loadavg_end": load_average()}
    print_table(f"chart — {'quick' if args.quick else 'full'}, {backend}", figures, units,
                {"chart_page_p95_ms": "< 150"})
    if not args.no_write:
        print(f"\nwritten {write_results('chart', figures, units, params)}")


if __name__ == "__main__":
    main()
