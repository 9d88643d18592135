"""Benchmark `fhir_ingest`: FHIR transaction bundles through a naho server (goal ≥ 2,000 resources/s,
≤ 3× raw inserts of the same rows) and Patient search at 1,000,000 patients (goal p95 < 50 ms).

1. A real `naho serve` (subprocess, loopback HTTP) receives transaction bundles from a system
   holding a bearer token (INTERFACE role): each bundle is 100 legacy patients, each with two
   conditions, one allergy and four vital signs (800 resources); they are posted one after the
   other and `resources_per_s` is resources / wall time of all the posts (client included).
2. The rows naho wrote (patients, blocking keys, identity events, the legacy IPPs, conditions,
   allergies, observations, one audit event per bundle) are read back and inserted again into a fresh
   migrated database with SQLAlchemy Core executemany, one transaction per bundle:
   `ratio_to_raw` = naho's time / that raw time.
3. `patients` synthetic identities are added to the index with Core executemany (the raw, fast
   way: no duplicate search, no blocking keys), the tables analysed, then the server answers
   Patient searches over HTTP as a system would send them: family + birthdate, IPP identifier,
   family prefix (3 to 5 letters); `patient_search_p95_ms` is the p95 over all of them.

    uv run python bench/fhir_ingest.py [--quick] [--database-url URL] [--patients N]
"""

from __future__ import annotations

import json
import random
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import (
    Server,
    common_params,
    fresh_database,
    install_sigterm_handler,
    latency_summary,
    load_average,
    naho_env,
    package_versions,
    parser,
    postgres_version,
    print_table,
    scratch_directory,
    write_results,
)

PATIENTS_PER_BUNDLE = 100
IPP_SYSTEM = "https://naho.ght-artois.fr/fhir/sid/ipp"
#: Common French surnames (INSEE), most frequent first, and first names; the population's long
#: tail is made of syllables so that a prefix search meets realistic numbers of homonyms.
def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


SURNAMES = _words(
    "MARTIN BERNARD THOMAS PETIT ROBERT RICHARD DURAND DUBOIS MOREAU LAURENT SIMON MICHEL LEFEBVRE LEROY ROUX DAVID "
    "BERTRAND MOREL FOURNIER GIRARD BONNET DUPONT LAMBERT FONTAINE ROUSSEAU VINCENT MULLER LEFEVRE FAURE ANDRE "
    "MERCIER BLANC GUERIN BOYER GARNIER CHEVALIER FRANCOIS LEGRAND GAUTHIER GARCIA PERRIN ROBIN CLEMENT MORIN "
    "NICOLAS HENRY ROUSSEL MATHIEU GAUTIER MASSON MARCHAND DUVAL DENIS DUMONT MARIE LEMAIRE NOEL MEYER DUFOUR "
    "MEUNIER BRUN BLANCHARD GIRAUD JOLY RIVIERE LUCAS BRUNET GAILLARD BARBIER ARNAUD MARTINEZ GERARD ROCHE RENARD "
    "SCHMITT ROY LEROUX COLIN VIDAL CARON PICARD ROGER FABRE AUBERT LEMOINE RENAUD DUMAS LACROIX OLIVIER PHILIPPE "
    "BOURGEOIS PIERRE BENOIT REY LECLERC PAYET ROLLAND LECLERCQ GUILLAUME LECOMTE LOPEZ JEAN DUPUY GUILLOT HUBERT"
)
FIRST_NAMES = {
    "M": _words("JEAN PIERRE MICHEL ANDRE PHILIPPE LOUIS ALAIN NICOLAS THOMAS LUCAS HUGO LEO GABRIEL ARTHUR PAUL"),
    "F": _words("MARIE JEANNE FRANCOISE MONIQUE CATHERINE NATHALIE ISABELLE SYLVIE EMMA JADE LOUISE ALICE CHLOE LINA"),
}
_SYLLABLES = _words("BA BE BO BU CA CO DA DE DI DO FA FE GA GO LA LE LI LO MA ME MI MO NA NE NI PA PE PO RA RE RI RO "
                    "SA SE SI TA TE TI VA VE VI")


def _surname(rng: random.Random) -> str:
    if rng.random() < 0.45:  # Zipf-like head: MARTIN is far more frequent than HUBERT
        return SURNAMES[min(int(rng.paretovariate(1.1)) - 1, len(SURNAMES) - 1)]
    return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))) + rng.choice(("", "T", "RD", "UX"))


def _birth(rng: random.Random) -> date:
    return date(1930, 1, 1) + timedelta(days=rng.randrange(95 * 365))


# --- 1. bundles through naho -------------------------------------------------------------------------

def legacy_bundle(rng: random.Random, serial: int) -> dict[str, Any]:
    entries: list[dict[str, Any]] = []

    def add(resource: dict[str, Any], full_url: str | None = None) -> None:
        entry: dict[str, Any] = {"resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}}
        if full_url:
            entry["fullUrl"] = full_url
        entries.append(entry)

    for n in range(PATIENTS_PER_BUNDLE):
        sex = rng.choice("MF")
        url = f"urn:uuid:00000000-0000-4000-8000-{serial:06d}{n:06d}"
        add({"resourceType": "Patient", "identifier": [{"system": "https://dpi-ancien.example/ipp",
                                                         "value": f"{serial}-{n}"}],
             "name": [{"use": "official", "family": _surname(rng), "given": [rng.choice(FIRST_NAMES[sex])]}],
             "gender": "male" if sex == "M" else "female", "birthDate": _birth(rng).isoformat(),
             "telecom": [{"system": "phone", "value": f"03210{rng.randrange(100000):05d}"}]}, url)
        subject = {"reference": url}
        for code, display in rng.sample([("I10", "Hypertension essentielle"), ("E11.9", "Diabète de type 2"),
                                         ("J44.9", "BPCO"), ("I48.9", "Fibrillation auriculaire")], 2):
            add({"resourceType": "Condition", "subject": subject,
                 "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                                "code": "active"}]},
                 "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": code, "display": display}]},
                 "onsetDateTime": "2015-06-01"})
        add({"resourceType": "AllergyIntolerance", "patient": subject, "type": "allergy", "criticality": "high",
             "code": {"coding": [{"system": "http://www.whocc.no/atc", "code": "J01C", "display": "Pénicillines"}]}})
        for loinc, unit, low, high in (("8867-4", "/min", 55, 110), ("8310-5", "Cel", 36, 39),
                                       ("8480-6", "mm[Hg]", 100, 170), ("59408-5", "%", 90, 100)):
            add({"resourceType": "Observation", "status": "final", "subject": subject,
                 "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
                 "effectiveDateTime": "2024-03-02T10:00:00+01:00",
                 "valueQuantity": {"value": round(rng.uniform(low, high), 1), "unit": unit,
                                   "system": "http://unitsofmeasure.org", "code": unit}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def post_bundles(base_url: str, token: str, bodies: list[bytes], clients: int) -> tuple[float, list[float]]:
    """Post the bundles from `clients` concurrent clients (each its own connection); wall time."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    headers = {"authorization": f"Bearer {token}", "content-type": "application/fhir+json",
               "accept": "application/fhir+json"}
    each: list[float] = []
    pool = [httpx.Client(base_url=base_url, headers=headers, timeout=300) for _ in range(clients)]
    for client in pool:  # connection and first-request costs out of the timing
        for _ in range(3):
            warm = client.get("/fhir/R4/metadata")
            assert warm.status_code == 200, warm.text

    def post(client: httpx.Client, share: list[bytes]) -> None:
        for body in share:
            t0 = time.perf_counter()
            response = client.post("/fhir/R4", content=body)
            each.append(time.perf_counter() - t0)
            if response.status_code != 200:
                raise SystemExit(f"bundle refused: {response.status_code} {response.text[:500]}")
            statuses = {e["response"]["status"] for e in response.json()["entry"]}
            if statuses != {"201 Created"}:
                raise SystemExit(f"unexpected entry statuses {statuses}")

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as executor:
        for done in [executor.submit(post, client, bodies[n::clients]) for n, client in enumerate(pool)]:
            done.result()
    elapsed = time.perf_counter() - started
    for client in pool:
        client.close()
    return elapsed, each


# --- 2. the same rows, raw -------------------------------------------------------------------------------

RAW_TABLES = ("patient", "identity_blocking_key", "identity_event", "foreign_identifier", "condition", "allergy",
              "observation", "audit_event")


def rows_written(url: str) -> dict[str, list[dict[str, Any]]]:
    """What naho wrote for the bundles (the seed's own audit events left out)."""
    from sqlalchemy import MetaData, select

    from naho.platform.db import Base, make_engine

    engine = make_engine(url)
    metadata: MetaData = Base.metadata
    out: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        for name in RAW_TABLES:
            table = metadata.tables[name]
            query = select(table)
            if name == "audit_event":
                query = query.where(table.c.action == "patient:record:import").order_by(table.c.seq)
            out[name] = [dict(r) for r in conn.execute(query).mappings()]
    engine.dispose()
    return out


def raw_insert(url: str, rows: dict[str, list[dict[str, Any]]], bundles: int) -> float:
    """Insert the same rows with Core executemany, one transaction per bundle's share."""
    from sqlalchemy import insert

    from naho.migrations import upgrade
    from naho.platform.db import Base, make_engine

    upgrade(url)
    engine = make_engine(url)
    tables = Base.metadata.tables
    by_patient = {name: {} for name in RAW_TABLES}  # type: dict[str, dict[Any, list[dict[str, Any]]]]
    for name in RAW_TABLES[1:-1]:
        for row in rows[name]:
            by_patient[name].setdefault(row["patient_id"], []).append(row)
    patients = rows["patient"]
    chunks = []
    for b in range(bundles):
        share = patients[b * PATIENTS_PER_BUNDLE:(b + 1) * PATIENTS_PER_BUNDLE]
        chunk = {"patient": share}
        for name in RAW_TABLES[1:-1]:
            chunk[name] = [r for p in share for r in by_patient[name].get(p["id"], [])]
        chunk["audit_event"] = rows["audit_event"][b:b + 1]
        chunks.append(chunk)
    started = time.perf_counter()
    for chunk in chunks:
        with engine.begin() as conn:
            for name in RAW_TABLES:
                if chunk[name]:
                    conn.execute(insert(tables[name]), chunk[name])
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


# --- 3. a large index, searched over HTTP ------------------------------------------------------------------

def populate(url: str, count: int, seed: int) -> tuple[float, list[tuple[str, str, date]]]:
    """`count` identities inserted raw (Core executemany, 20,000 a transaction); returns the time
    and a sample (birth name, IPP, birth date) of them to search for."""
    import uuid

    from sqlalchemy import insert, text

    from naho.identity.models import Patient
    from naho.platform.db import make_engine

    rng = random.Random(seed)
    engine = make_engine(url)
    now = datetime.now(UTC)
    sample: list[tuple[str, str, date]] = []
    started = time.perf_counter()
    batch: list[dict[str, Any]] = []
    for n in range(count):
        sex = rng.choice("MF")
        name, born, ipp = _surname(rng), _birth(rng), f"{50_000_000 + n:08d}"
        married = rng.choice(SURNAMES) if sex == "F" and rng.random() < 0.3 else None
        batch.append({"id": uuid.UUID(int=rng.getrandbits(128) | (4 << 76)), "ipp": ipp, "birth_name": name,
                      "used_name": married, "first_names": " ".join(rng.sample(FIRST_NAMES[sex], 2)),
                      "used_first_name": None, "sex": sex, "birth_date": born, "birth_place": None, "ins": None,
                      "ins_oid": None, "status": "provisional", "homonym": False, "doubtful": False,
                      "fictitious": False, "phone": None, "email": None, "address": None, "postcode": None,
                      "city": None, "merged_into_id": None, "created_at": now, "updated_at": now})
        if rng.random() < 2000 / count:
            sample.append((name, ipp, born))
        if len(batch) == 20_000 or n == count - 1:
            with engine.begin() as conn:
                conn.execute(insert(Patient), batch)
            batch = []
    with engine.begin() as conn:  # statistics, as autovacuum / `naho` maintenance would keep them
        conn.execute(text("ANALYZE"))
    engine.dispose()
    return time.perf_counter() - started, sample


def search(base_url: str, token: str, sample: list[tuple[str, str, date]], requests: int,
           seed: int) -> dict[str, list[float]]:
    import httpx

    rng = random.Random(seed)
    headers = {"authorization": f"Bearer {token}", "accept": "application/fhir+json"}
    timings: dict[str, list[float]] = {"family_birthdate": [], "identifier": [], "family_prefix": []}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
        for i in range(requests + 15):
            name, ipp, born = rng.choice(sample)
            kind = ("family_birthdate", "identifier", "family_prefix")[i % 3]
            params = {"family_birthdate": {"family": name, "birthdate": born.isoformat()},
                      "identifier": {"identifier": f"{IPP_SYSTEM}|{ipp}"},
                      "family_prefix": {"family": name[:rng.randint(3, 5)]}}[kind]
            t0 = time.perf_counter()
            response = client.get("/fhir/R4/Patient", params=params)
            elapsed = (time.perf_counter() - t0) * 1000
            body = response.json()
            if response.status_code != 200 or not body.get("entry"):
                raise SystemExit(f"search {params} answered {response.status_code}: {json.dumps(body)[:300]}")
            if i >= 15:  # the first ones warm the caches and the connection
                timings[kind].append(elapsed)
    return timings


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--patients", type=int, default=None, help="size of the searched index (full: 1,000,000)")
    p.add_argument("--bundles", type=int, default=None, help="transaction bundles posted (800 resources each)")
    p.add_argument("--clients", type=int, default=1, help="clients posting bundles at the same time")
    p.add_argument("--processes", type=int, default=1, help="web processes of `naho serve`")
    args = p.parse_args()
    install_sigterm_handler()
    bundles = args.bundles or (4 if args.quick else 25)
    patients = args.patients or (20_000 if args.quick else 1_000_000)
    requests = 90 if args.quick else 600

    from naho.config import Settings
    from naho.migrations import upgrade
    from naho.platform.clock import SystemClock
    from naho.platform.db import make_engine, make_session_factory
    from naho.platform.events import EventBus
    from naho.platform.security.actor import SYSTEM_ACTOR
    from naho.platform.security.rules import Role
    from naho.platform.security.service import create_account, create_api_token
    from naho.platform.uow import UnitOfWork
    from naho.sandbox.seed import seed

    params = {**common_params(args.quick), "bundles": bundles, "patients_per_bundle": PATIENTS_PER_BUNDLE,
              "resources_per_bundle": PATIENTS_PER_BUNDLE * 8, "patients": patients, "search_requests": requests,
              "clients": args.clients, "serve_processes": args.processes}
    rng = random.Random(20261125)
    bodies = [json.dumps(legacy_bundle(rng, b)).encode() for b in range(bundles)]
    resources = bundles * PATIENTS_PER_BUNDLE * 8
    with scratch_directory() as scratch, fresh_database(args.database_url, scratch) as (url, backend), \
            fresh_database(args.database_url, scratch) as (raw_url, _):
        params["backend"] = backend
        params["postgres"] = postgres_version(url)
        upgrade(url)
        engine = make_engine(url)
        uow = UnitOfWork(make_session_factory(engine), SystemClock(), EventBus())
        seed(uow, Settings(mode="development", database_url=url, demo_patients=0, workers=False))
        with uow:
            create_account(uow.session, username="reprise-dpi", display_name="Reprise DPI", roles={Role.INTERFACE},
                           password=None, now_=uow.clock.now())
            uow.commit()
        token = create_api_token(uow, SYSTEM_ACTOR, username="reprise-dpi", name="bench")
        engine.dispose()
        print(f"{backend}: {bundles} bundles of {PATIENTS_PER_BUNDLE * 8} resources", flush=True)
        with Server(["serve", "--processes", str(args.processes)], naho_env(url, NAHO_WORKERS="false"),
                    scratch / "serve.log") as server:
            server.wait_ready("/connexion", timeout=90)
            naho_s, each = post_bundles(server.base_url, token, bodies, args.clients)
            print(f"  naho: {resources} resources in {naho_s:.2f} s ({resources / naho_s:.0f}/s)", flush=True)
            rows = rows_written(url)
            raw_s = raw_insert(raw_url, rows, bundles)
            row_count = sum(len(v) for v in rows.values())
            print(f"  raw: the same {row_count} rows in {raw_s:.2f} s", flush=True)
            populate_s, sample = populate(url, patients, seed=7)
            print(f"  {patients} patients inserted raw in {populate_s:.1f} s; searching", flush=True)
            timings = search(server.base_url, token, sample, requests, seed=11)
    every = [t for kind in timings.values() for t in kind]
    summary = latency_summary(every)
    figures: dict[str, float | int] = {
        "resources_per_s": resources / naho_s, "ratio_to_raw": naho_s / raw_s,
        "patient_search_p95_ms": summary["p95"], "patient_search_p50_ms": summary["p50"],
        "naho_s": naho_s, "raw_s": raw_s, "bundle_p50_s": latency_summary(each)["p50"],
        "rows_written": row_count, "populate_s": populate_s,
    }
    for kind, values in timings.items():
        figures[f"search_{kind}_p95_ms"] = latency_summary(values)["p95"]
    units = {k: ("ms" if k.endswith("_ms") else "s" if k.endswith("_s") else "") for k in figures}
    units.update({"resources_per_s": "resources/s", "ratio_to_raw": "×", "rows_written": "rows"})
    params.update({"loadavg_end": load_average(),
                   "versions": package_versions("fastapi", "sqlalchemy", "fhir.resources", "uvicorn")})
    print_table(f"fhir_ingest — {'quick' if args.quick else 'full'}, {backend}, {patients:,} patients", figures, units,
                {"resources_per_s": "≥ 2,000", "ratio_to_raw": "≤ 3", "patient_search_p95_ms": "< 50"})
    if not args.no_write:
        print(f"\nwritten {write_results('fhir_ingest', figures, units, params)}")


if __name__ == "__main__":
    main()
