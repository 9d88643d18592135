"""Benchmark `lab_interface`: ORU^R01 over MLLP into a running naho, ACK after commit (goal ≥ 1,000 messages/s),
and a crash test (lost_after_kill = duplicated_after_kill = 0).

A real `naho serve` subprocess listens for HL7 on a loopback port; `--clients` connections each
send ORU^R01 messages one after the other in original mode (the next one leaves when the ACK of
the previous one came back, as laboratory systems do). A message is a basic metabolic panel
(one OBR, five OBX: sodium, potassium, creatinine, urea, glucose) for one of `--patients`
inpatients, named by our IPP. The figure counts only AA acknowledgements: every one was sent
after its results, chart entry, audit event and inbound row were committed.

Crash test: the same, `--crash-messages` messages; when half are acknowledged the server's whole
process group gets SIGKILL. naho is started again on the same database, and every message that
had no ACK (the one in flight included) is sent again, as a laboratory system does. Then, per
message (MSH-10 = report number): lost if it has no report in the database, duplicated if it
has more than its five results or more than one inbound row.

    uv run python bench/lab_interface.py [--quick] [--database-url URL] [--clients 4]
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import (
    LOOPBACK,
    Server,
    common_params,
    free_port,
    fresh_database,
    load_average,
    naho_env,
    parser,
    print_table,
    scratch_directory,
    write_results,
)

PANEL = (("2951-2", "Sodium", "mmol/L", "136-145", 130, 150),
         ("2823-3", "Potassium", "mmol/L", "3.5-5.1", 3.4, 5.4),
         ("14682-9", "Creatinine", "umol/L", "45-90", 50, 160),
         ("22664-7", "Uree", "mmol/L", "2.5-7.5", 3, 12),
         ("2345-7", "Glucose", "mmol/L", "3.9-5.8", 4, 9))
END = b"\x1c\r"


def message(number: int, ipp: str, prefix: str) -> bytes:
    """ORU^R01 number `number`: MSH-10 and the filler's report number are both unique."""
    control = f"{prefix}{number:07d}"
    day, minute = divmod(number, 1440)
    at = f"202611{1 + day % 28:02d}{minute // 60:02d}{minute % 60:02d}00"
    segments = [f"MSH|^~\\&|SIL|LABO|NAHO|GHT-ARTOIS|{at}||ORU^R01^ORU_R01|{control}|P|2.5|||||FRA|UNICODE UTF-8",
                f"PID|1||{ipp}^^^NAHO^PI||BENCH^PATIENT||19500101|F",
                f"OBR|1|CMD-{control}|{control}|BMP^Ionogramme^L|||{at}" + "|" * 17 + "F"]
    for n, (loinc, label, unit, reference, low, high) in enumerate(PANEL, 1):
        value = low + (number * 7 + n * 13) % 100 / 100 * (high - low)
        segments.append(f"OBX|{n}|NM|{loinc}^{label}^LN||{value:.1f}|{unit}|{reference}||||F|||{at}")
    return ("\r".join(segments) + "\r").encode()


def _ack_code(reply: bytes) -> str:
    for segment in reply.split(b"\r"):
        if segment.startswith(b"MSA"):
            return segment.split(b"|")[1].decode()
    return "?"


class Client(threading.Thread):
    """One laboratory connection sending its share in original mode; remembers what was ACKed."""

    def __init__(self, port: int, messages: list[tuple[int, bytes]], stop_after: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port, self.messages, self.stop_after = port, messages, stop_after
        self.acked: dict[int, str] = {}
        self.error: str | None = None

    def run(self) -> None:
        try:
            with socket.create_connection((LOOPBACK, self.port), timeout=60) as sock:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                for number, payload in self.messages:
                    if self.stop_after.is_set():
                        return
                    sock.sendall(b"\x0b" + payload + END)
                    data = b""
                    while not data.endswith(END):
                        chunk = sock.recv(65536)
                        if not chunk:
                            raise ConnectionError("closed without acknowledgement")
                        data += chunk
                    self.acked[number] = _ack_code(data.strip(b"\x0b\x1c\r"))
        except OSError as exc:
            self.error = f"{type(exc).__name__}: {exc}"


def send_all(port: int, messages: list[tuple[int, bytes]], clients: int,
             kill_when: int | None = None, kill=None) -> dict[int, str]:  # type: ignore[no-untyped-def]
    """Send with `clients` connections; optionally call `kill` once `kill_when` ACKs came back."""
    stop = threading.Event()
    workers = [Client(port, messages[i::clients], stop) for i in range(clients)]
    for w in workers:
        w.start()
    if kill_when is not None:
        while sum(len(w.acked) for w in workers) < kill_when and any(w.is_alive() for w in workers):
            time.sleep(0.002)
        kill()
    for w in workers:
        w.join()
    acked: dict[int, str] = {}
    for w in workers:
        acked.update(w.acked)
    return acked


def prepare(url: str, patients: int) -> list[str]:
    """Migrate, seed the group's structure, admit `patients` inpatients; their IPPs."""
    from naho.config import Settings
    from naho.identity import service as identity
    from naho.identity.rules import IdentityStatus, Traits
    from naho.migrations import upgrade
    from naho.platform.clock import SystemClock
    from naho.platform.db import make_engine, make_session_factory
    from naho.platform.events import EventBus
    from naho.platform.uow import UnitOfWork
    from naho.record import service as record
    from naho.sandbox.seed import seed

    upgrade(url)
    engine = make_engine(url)
    uow = UnitOfWork(make_session_factory(engine), SystemClock(), EventBus())
    seed(uow, Settings(mode="development", database_url=url, demo_patients=0, workers=False))
    ids = []
    with uow:
        now = uow.clock.now()
        for n in range(patients):
            patient = identity.import_identity(
                uow.session, Traits(birth_name=f"BENCH{n:05d}", used_name=None, first_names=("PATIENT",), sex="F",
                                    birth_date=now.date().replace(year=1950), birth_place="62498"),
                status=IdentityStatus.PROVISIONAL, now=now, actor_label="bench")
            record.import_stay(uow.session, patient, establishment_code="LENS", encounter_class="inpatient",
                               unit_code="LENS-MED-MIN", bed_code=None, admitted_at=now - timedelta(days=1),
                               now=now, actor_label="bench")
            ids.append(patient)
        uow.commit()
    with uow:
        ipps = [p.ipp for p in identity.summaries(uow.session, ids).values()]
    engine.dispose()
    return ipps


def stored(url: str, prefix: str) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """Per MSH-10 of this run: inbound rows, reports, results."""
    from sqlalchemy import func, select

    from naho.platform.db import make_engine, make_session_factory
    from naho.platform.inbox import InboundMessage
    from naho.results.models import LabReport, LabResult

    engine = make_engine(url)
    with make_session_factory(engine)() as s:
        inbound = dict(s.execute(select(InboundMessage.control_id, func.count()).where(
            InboundMessage.control_id.like(f"{prefix}%")).group_by(InboundMessage.control_id)).all())
        reports = dict(s.execute(select(LabReport.filler_number, func.count()).where(
            LabReport.filler_number.like(f"{prefix}%")).group_by(LabReport.filler_number)).all())
        results = dict(s.execute(select(LabReport.filler_number, func.count(LabResult.id))
                                 .join(LabResult, LabResult.report_id == LabReport.id)
                                 .where(LabReport.filler_number.like(f"{prefix}%"))
                                 .group_by(LabReport.filler_number)).all())
    engine.dispose()
    return inbound, reports, results


def serve(url: str, scratch: Path, mllp_port: int) -> Server:
    env = naho_env(url, NAHO_MLLP_PORT=str(mllp_port), NAHO_WORKERS="false")
    server = Server(["serve"], env, scratch / "serve.log").start()
    server.wait_ready()
    return server


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=4, help="concurrent laboratory connections")
    p.add_argument("--no-crash", action="store_true", help="skip the crash test")
    args = p.parse_args()
    count = 1500 if args.quick else 10000
    crash_count = 1000 if args.quick else 10000
    patients = 50 if args.quick else 200

    with scratch_directory() as scratch, fresh_database(args.database_url, scratch) as (url, backend):
        ipps = prepare(url, patients)
        mllp_port = free_port()
        server = serve(url, scratch, mllp_port)
        try:
            warm = [(n, message(n, ipps[n % len(ipps)], "W")) for n in range(100)]
            send_all(mllp_port, warm, args.clients)
            batch = [(n, message(n, ipps[n % len(ipps)], "S")) for n in range(count)]
            started = time.perf_counter()
            acked = send_all(mllp_port, batch, args.clients)
            elapsed = time.perf_counter() - started
        finally:
            server.stop()
        inbound, reports, results = stored(url, "S")
        accepted = sum(1 for code in acked.values() if code == "AA")
        figures: dict[str, float | int] = {
            "messages_per_s": accepted / elapsed,
            "results_per_s": accepted * len(PANEL) / elapsed,
            "messages": count, "acknowledged_aa": accepted,
            "stored_inbound": sum(inbound.values()), "stored_reports": len(reports),
            "stored_results": sum(results.values()),
        }

        if not args.no_crash:
            server = serve(url, scratch, mllp_port)
            crash = [(n, message(n, ipps[n % len(ipps)], "K")) for n in range(crash_count)]

            def kill() -> None:
                os.killpg(os.getpgid(server.pid), signal.SIGKILL)  # our own server, by its id

            before = send_all(mllp_port, crash, args.clients, kill_when=crash_count // 2, kill=kill)
            server.stop(grace=1)
            server = serve(url, scratch, mllp_port)
            try:
                resend = [(n, payload) for n, payload in crash if before.get(n) != "AA"]
                after = send_all(mllp_port, resend, args.clients)
            finally:
                server.stop()
            inbound_k, reports_k, results_k = stored(url, "K")
            names = {f"K{n:07d}" for n, _ in crash}
            figures.update({
                "crash_messages": crash_count,
                "acked_before_kill": sum(1 for c in before.values() if c == "AA"),
                "resent_after_restart": len(resend),
                "acked_after_restart": sum(1 for c in after.values() if c == "AA"),
                "lost_after_kill": sum(1 for name in names if reports_k.get(name, 0) == 0),
                "duplicated_after_kill": sum(1 for name in names if reports_k.get(name, 0) > 1
                                             or results_k.get(name, 0) > len(PANEL) or inbound_k.get(name, 0) > 1),
            })

    units = {"messages_per_s": "msg/s", "results_per_s": "OBX/s"}
    goals = {"messages_per_s": "≥ 1,000", "lost_after_kill": "0", "duplicated_after_kill": "0"}
    params = {**common_params(args.quick), "backend": backend, "clients": args.clients, "patients": patients,
              "obx_per_message": len(PANEL), "loadavg_end": load_average()}
    print_table(f"lab_interface ({backend}, {args.clients} connections)", figures, units, goals)
    if not args.no_write:
        path = write_results("lab_interface", figures, units, params)
        print(f"\nwritten: {path}")


if __name__ == "__main__":
    main()
