"""Benchmark `booking`: slot search and booking under 200 concurrent clients (goals: p95 < 200 ms,
double_bookings 0).

A cardiology schedule with two weeks of slots; 200 clients (threads, each with its own database
session, as 200 web workers would have) search the soonest free slots, then all try to book
among the same few slots at once — the race the database must settle. Each call goes through
the service the API calls (the door, its audit event, the conditional UPDATE, the partial
unique index), in process, without HTTP. A loser gets SlotTaken (the API's 409).
`double_bookings` counts slots holding more than one live appointment, and bookings whose slot
is not marked booked. The results file keeps the last run of each backend in `params.runs`.

    uv run python bench/booking.py [--quick] [--database-url URL]
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from datetime import date, timedelta
from datetime import time as wall
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import (
    RESULTS_DIR,
    common_params,
    fresh_database,
    latency_summary,
    load_average,
    parser,
    print_table,
    scratch_directory,
    write_results,
)

CLIENTS = 200


def _run_clients(clients: int, work) -> list[float]:  # type: ignore[no-untyped-def]
    """Start `clients` threads at once (a barrier), each running `work(k)`; their timings in ms."""
    barrier = threading.Barrier(clients)
    timings: list[float] = []
    lock = threading.Lock()

    def client(k: int) -> None:
        barrier.wait()
        mine = work(k)
        with lock:
            timings.extend(mine)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return timings


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    searches_per_client = 2 if args.quick else 5
    attempts_per_client = 1 if args.quick else 3
    contested = 20  # the few slots everybody wants
    from sqlalchemy import func, select

    from naho.app import create_app
    from naho.config import Settings
    from naho.identity import rules as identity_rules
    from naho.identity import service as identity
    from naho.migrations import upgrade
    from naho.platform.clock import SystemClock
    from naho.platform.db import make_engine, make_session_factory
    from naho.platform.events import EventBus
    from naho.platform.security import service as security
    from naho.platform.security.models import Account
    from naho.platform.uow import UnitOfWork
    from naho.sandbox.seed import seed
    from naho.scheduling import rules, service
    from naho.scheduling.models import Appointment, Slot

    with scratch_directory() as scratch, fresh_database(args.database_url, scratch) as (url, backend):
        upgrade(url)
        engine = make_engine(url)
        seed(UnitOfWork(make_session_factory(engine), SystemClock(), EventBus()),
             Settings(mode="development", database_url=url, demo_patients=0, workers=False))
        engine.dispose()
        app = create_app(Settings(mode="test", database_url=url, workers=False))
        container = app.state.container
        with container.uow() as uow:
            account = uow.session.scalars(select(Account).where(Account.username == "admission")).one()
            clerk = security.actor_for(account, via="session")
        today = container.clock.now().date()
        first = today + timedelta(days=2)
        schedule = service.create_schedule(
            container.uow(), clerk, name="Consultation de cardiologie", specialty="cardiology",
            establishment_code="LENS", place="Bâtiment B",
            openings=[rules.Opening(d, wall(8, 0), wall(18, 0), rules.ConsultationType.FIRST_VISIT, 20)
                      for d in range(5)])
        generated = service.generate_slots(container.uow(), clerk, schedule, first, first + timedelta(days=14))
        with container.uow() as uow:
            now = uow.clock.now()
            patients = [identity.import_identity(uow.session, identity_rules.Traits(
                f"BENCH{k:03d}", None, ("ALEX",), "M", date(1970, 1, 1) + timedelta(days=k), "62498"),
                status=identity_rules.IdentityStatus.PROVISIONAL, now=now, actor_label="bench")
                for k in range(CLIENTS)]
            uow.commit()
        care = container.ports["care"]

        def search(_k: int) -> list[float]:
            out = []
            for _ in range(searches_per_client):
                t0 = time.perf_counter()
                with container.uow() as uow:
                    found = service.search_slots(uow.session, now=uow.clock.now(), specialty="cardiology",
                                                 establishment_code="LENS", limit=20)
                out.append((time.perf_counter() - t0) * 1000)
                assert len(found) == 20
            return out

        search_ms = _run_clients(CLIENTS, search)
        with container.uow() as uow:
            targets = [s.id for s in service.search_slots(uow.session, now=uow.clock.now(), limit=contested)]
        outcomes = {"booked": 0, "conflict": 0, "error": 0}
        lock = threading.Lock()
        rng = random.Random(5)
        picks = [[rng.choice(targets) for _ in range(attempts_per_client)] for _ in range(CLIENTS)]

        def book(k: int) -> list[float]:
            out = []
            for slot in picks[k]:
                t0 = time.perf_counter()
                try:
                    service.book(container.uow(), clerk, slot, patients[k], care)
                    result = "booked"
                except service.SlotTaken:
                    result = "conflict"
                except Exception:  # counted, never hidden
                    result = "error"
                out.append((time.perf_counter() - t0) * 1000)
                with lock:
                    outcomes[result] += 1
            return out

        started = time.perf_counter()
        book_ms = _run_clients(CLIENTS, book)
        book_wall_s = time.perf_counter() - started
        with container.uow() as uow:
            s = uow.session
            per_slot = s.execute(select(Appointment.slot_id, func.count()).where(Appointment.status == "booked")
                                 .group_by(Appointment.slot_id)).all()
            doubled = sum(1 for _, n in per_slot if n > 1)
            orphans = s.execute(select(func.count()).select_from(Appointment).join(Slot, Appointment.slot_id == Slot.id)
                                .where(Appointment.status == "booked", Slot.status != "booked")).scalar_one()
            live = sum(n for _, n in per_slot)
        container.engine.dispose()

    searches, bookings = latency_summary(search_ms), latency_summary(book_ms)
    figures = {"double_bookings": doubled + int(orphans), "booking_p95_ms": bookings["p95"],
               "booking_p50_ms": bookings["p50"], "slot_search_p95_ms": searches["p95"],
               "slot_search_p50_ms": searches["p50"], "booked": outcomes["booked"],
               "conflicts_409": outcomes["conflict"], "errors": outcomes["error"],
               "bookings_per_s": (outcomes["booked"] + outcomes["conflict"]) / book_wall_s}
    units = {"double_bookings": "slots", "booking_p95_ms": "ms", "booking_p50_ms": "ms",
             "slot_search_p95_ms": "ms", "slot_search_p50_ms": "ms", "booked": "appointments",
             "conflicts_409": "attempts", "errors": "attempts", "bookings_per_s": "attempts/s"}
    assert live == outcomes["booked"] <= len(targets), (live, outcomes)
    previous: dict[str, object] = {}
    existing = RESULTS_DIR / "booking.json"
    if existing.exists():
        previous = json.loads(existing.read_text()).get("params", {}).get("runs", {})
    params = {**common_params(args.quick), "backend": backend, "clients": CLIENTS,
              "searches_per_client": searches_per_client, "attempts_per_client": attempts_per_client,
              "contested_slots": len(targets), "slots_generated": generated, "loadavg_end": load_average(),
              "runs": {**previous, backend: {**figures, "quick": args.quick}}}
    print_table(f"booking — {'quick' if args.quick else 'full'}, {backend}, {CLIENTS} concurrent clients",
                figures, units, {"double_bookings": "0", "booking_p95_ms": "< 200", "slot_search_p95_ms": "< 200"})
    if not args.no_write:
        print(f"\nwritten {write_results('booking', figures, units, params)}")


if __name__ == "__main__":
    main()
