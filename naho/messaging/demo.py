"""Secure messaging for the demo and the benchmark: the sample directory, and certificates from
the local test authority for the group's mailbox and every professional with a mailbox.

Never for production: there the certificates come from IGC-Santé and the national directory.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from naho.messaging import directory, rules
from naho.messaging.pki import PkiFiles, create_demo_pki
from naho.messaging.sink import SinkProcess
from naho.platform.uow import UnitOfWork

GROUP_MAILBOX = "secretariat@ght-artois.mssante.fr"
PATIENT_SERVICE = ("operateur@patient.mssante.fr", "patient.mssante.fr")


def prepare(session: Session, pki_directory: Path, now: datetime, *,
            extract: Path = directory.SAMPLE_EXTRACT) -> PkiFiles:
    """Load the extract and give its professionals certificates (caller's transaction); return
    the files of the group's mailbox, to be named in the messaging settings."""
    with extract.open(encoding="utf-8") as stream:
        entries = rules.parse_extract(stream).entries
    with extract.open(encoding="utf-8") as stream:
        directory.store_extract(session, stream, now=now)
    mailboxes = {e.mss_address: f"{e.first_name} {e.last_name}" for e in entries if e.mss_address}
    files = create_demo_pki(pki_directory, now, organisation="GHT de l'Artois (démonstration)",
                            group_email=GROUP_MAILBOX, professionals=mailboxes, patient_service=PATIENT_SERVICE)
    for entry in entries:
        if entry.mss_address:
            # One authority, no intermediate: each certificate file holds the holder's certificate only.
            directory.set_certificate(session, entry.rpps, files[entry.mss_address].certificate.read_bytes(),
                                      now=now)
    return files[GROUP_MAILBOX]


@dataclass
class DemoMail:
    """The demo's secure messaging: settings to export, and the local relay that keeps letters."""

    environment: dict[str, str]
    received: Path
    sink: SinkProcess

    def stop(self) -> None:
        self.sink.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_demo_mail(uow: UnitOfWork, base: Path) -> DemoMail:
    """Secure messaging for `naho demo`, with no outside service: the local authority's
    certificates (made once, under `base/pki`, the directory's professionals given theirs) and an
    SMTP relay on loopback that keeps every letter under `base/received` (one .eml per letter).
    Returns the NAHO_MESSAGING_* settings to export before the app starts."""
    pki = base / "pki"
    if not (pki / "group.crt").exists():
        with uow:
            prepare(uow.session, pki, uow.clock.now())
            uow.commit()
    port = _free_port()
    sink = SinkProcess(port, base / "received")
    sink.start()
    environment = {
        "NAHO_MESSAGING_SMTP_HOST": "127.0.0.1", "NAHO_MESSAGING_SMTP_PORT": str(port),
        "NAHO_MESSAGING_CERTIFICATE": str(pki / "group.crt"), "NAHO_MESSAGING_PRIVATE_KEY": str(pki / "group.key"),
        "NAHO_MESSAGING_TRUST_ANCHORS": str(pki / "ca.crt"),
        "NAHO_MESSAGING_PATIENT_DOMAIN": PATIENT_SERVICE[1],
        "NAHO_MESSAGING_PATIENT_CERTIFICATE": str(pki / "patients.crt"),
    }
    return DemoMail(environment, base / "received", sink)
