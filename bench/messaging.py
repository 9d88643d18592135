"""Benchmark `messaging`: discharge letters packaged (IHE XDM), signed and encrypted (S/MIME),
queued in the outbox and sent by SMTP to a loopback relay; then the relay killed mid-queue.

A physician of the care team sends the same PDF to the patient's GP through the JSON API (the
door, the consent check, XDM, S/MIME, the letter and its outbox message in one transaction),
then the outbox worker hands the letters to an aiosmtpd sink running in its own process. Peer
in the same run: the same sealed bytes sent by a bare smtplib loop (no database, no outbox),
so `ratio_to_raw_smtp` shows what the bookkeeping costs. Kill phase: the sink is killed with
SIGKILL while the worker sends a queue, then restarted; the sink counts by Message-ID:
`lost_after_kill` letters it never got, `sent_twice_after_kill` letters it got twice (SMTP's own
window: stored, then killed before its 250 reached naho; same Message-ID, kept once).

    uv run python bench/messaging.py [--quick] [--database-url URL]
"""

from __future__ import annotations

import smtplib
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import (
    DEFAULT_PASSWORD,
    common_params,
    free_port,
    fresh_database,
    load_average,
    parser,
    print_table,
    scratch_directory,
    write_results,
)

PDF = b"%PDF-1.4\n% lettre de liaison (benchmark)\n" + bytes(range(256)) * 200 + b"\n%%EOF\n"  # ~50 KB
GP_RPPS = "19990000001"


def _login(client, username: str) -> str:  # type: ignore[no-untyped-def]
    page = client.get("/connexion").text
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    client.post("/connexion", data={"username": username, "password": DEFAULT_PASSWORD, "csrf_token": token,
                                    "suivant": "/accueil"})
    return str(client.get("/accueil").text.split('name="csrf_token" value="')[1].split('"')[0])


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    letters = 60 if args.quick else 300
    kill_letters = 40 if args.quick else 150
    from fastapi.testclient import TestClient
    from sqlalchemy import select

    from naho.app import create_app
    from naho.config import Settings
    from naho.messaging import demo, directory, sink
    from naho.messaging.models import Letter
    from naho.migrations import upgrade
    from naho.platform.clock import SystemClock
    from naho.platform.db import make_engine, make_session_factory
    from naho.platform.events import EventBus
    from naho.platform.outbox import OutboxWorker
    from naho.platform.uow import UnitOfWork
    from naho.sandbox.seed import seed

    with scratch_directory() as scratch, fresh_database(args.database_url, scratch) as (url, backend):
        upgrade(url)
        engine = make_engine(url)
        uow = UnitOfWork(make_session_factory(engine), SystemClock(), EventBus())
        seed(uow, Settings(mode="development", database_url=url, demo_patients=0, workers=False))
        with uow:
            group = demo.prepare(uow.session, scratch / "pki", uow.clock.now())
            gp = directory.search(uow.session, GP_RPPS)[0].id
            uow.commit()
        engine.dispose()
        port = free_port()
        settings = Settings(mode="test", database_url=url, workers=False, messaging_smtp_host="127.0.0.1",
                            messaging_smtp_port=port, messaging_certificate=group.certificate,
                            messaging_private_key=group.private_key,
                            messaging_trust_anchors=",".join(str(p) for p in group.trust_anchors))
        app = create_app(settings)
        container = app.state.container

        def worker(**options: float) -> OutboxWorker:
            return OutboxWorker(container.session_factory, container.clock, container.ports["outbox_handlers"],
                                **options)  # type: ignore[arg-type]

        with TestClient(app) as client:
            token = _login(client, "admission")
            patient = client.post("/api/patients", headers={"x-csrf-token": token}, json={
                "birth_name": "Bench", "first_names": "Lucien", "sex": "M", "birth_date": "1940-01-01"}).json()["id"]
            client.post("/api/encounters", headers={"x-csrf-token": token}, json={
                "patient_id": patient, "establishment_code": "LENS", "encounter_class": "inpatient",
                "unit_code": "LENS-MED-MIN"})
            token = _login(client, "medecin")
            client.post(f"/patients/{patient}/documents", data={"title": "Lettre de liaison", "csrf_token": token},
                        files={"file": ("lettre.pdf", PDF, "application/pdf")})
            document = client.get(f"/patients/{patient}").text.split('href="/documents/')[1].split('"')[0]
            client.post(f"/patients/{patient}/correspondants", data={"professional_id": str(gp), "role": "gp",
                                                                       "csrf_token": token})

            def queue(count: int) -> float:
                started = time.perf_counter()
                for _ in range(count):
                    response = client.post(f"/api/patients/{patient}/letters", headers={"x-csrf-token": token},
                                           json={"document_id": document, "professional_ids": [str(gp)]})
                    assert response.status_code == 202, response.text
                return time.perf_counter() - started

            # 1. Throughput: queue (package, sign, encrypt, write), then send through the outbox.
            queue_s = queue(letters)
            received = scratch / "received"
            relay = sink.SinkProcess(port, received)
            relay.start()
            started = time.perf_counter()
            sent = worker().run_once(max_batches=10_000)
            send_s = time.perf_counter() - started
            assert sent == letters, sent
            with container.session_factory() as s:
                raws = [(r.raw, r.sender, [x["address"] for x in r.recipients])
                        for r in s.scalars(select(Letter).limit(letters))]
            # Peer: the same sealed bytes through a bare smtplib loop, one connection per letter.
            started = time.perf_counter()
            for raw, sender, to in raws:
                with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
                    smtp.sendmail(sender, to, raw)
            raw_s = time.perf_counter() - started
            relay.stop()

            # 2. Kill: the relay dies mid-queue, comes back; count by Message-ID at the receiver.
            queue(kill_letters)
            killed = scratch / "killed"
            relay = sink.SinkProcess(port, killed)
            kill_worker = worker(backoff_seconds=0.05, max_attempts=100, batch=10)
            relay.start()
            expected: set[str] = set()
            with sink.repeating(kill_worker.run_once):
                while len(sink.deliveries(killed)) < kill_letters // 3:
                    time.sleep(0.01)
                relay.kill()
                time.sleep(1.0)
                relay.start()
                deadline = time.monotonic() + 300
                while time.monotonic() < deadline:
                    with container.session_factory() as s:
                        rows = s.execute(select(Letter.message_id, Letter.status)
                                         .order_by(Letter.number).offset(letters)).all()
                    expected = {m for m, _ in rows}
                    if rows and all(status == "sent" for _, status in rows):
                        break
                    time.sleep(0.1)
            relay.stop()
            per_id = Counter(sink.deliveries(killed))
            kept = set(sink.stored(killed))
            lost = len(expected - kept)
            twice = sum(1 for n in per_id.values() if n > 1)
        container.engine.dispose()

    end_to_end_s = queue_s + send_s
    figures = {"letters_per_s": letters / end_to_end_s, "letters_queued_per_s": letters / queue_s,
               "letters_sent_per_s": letters / send_s, "raw_smtp_per_s": letters / raw_s,
               "ratio_to_raw_smtp": send_s / raw_s, "lost_after_kill": lost, "sent_twice_after_kill": twice,
               "received_distinct_after_kill": len(kept & expected), "letters_after_kill": len(expected),
               "letter_bytes": len(raws[0][0])}
    units = {"letters_per_s": "letters/s", "letters_queued_per_s": "letters/s", "letters_sent_per_s": "letters/s",
             "raw_smtp_per_s": "letters/s", "ratio_to_raw_smtp": "×", "lost_after_kill": "letters",
             "sent_twice_after_kill": "letters", "received_distinct_after_kill": "letters",
             "letters_after_kill": "letters", "letter_bytes": "bytes"}
    params = {**common_params(args.quick), "letters": letters, "kill_letters": kill_letters, "backend": backend,
              "pdf_bytes": len(PDF), "loadavg_end": load_average()}
    print_table(f"messaging — {'quick' if args.quick else 'full'}, {backend}", figures, units,
                {"lost_after_kill": "0", "sent_twice_after_kill": "0"})
    if not args.no_write:
        print(f"\nwritten {write_results('messaging', figures, units, params)}")


if __name__ == "__main__":
    main()
