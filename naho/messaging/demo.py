"""Secure messaging for the demo and the benchmark: the sample directory, and certificates from
the local test authority for the group's mailbox and every professional with a mailbox.

Never for production: there the certificates come from IGC-Santé and the national directory.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from naho.messaging import directory, rules
from naho.messaging.pki import PkiFiles, create_demo_pki

GROUP_MAILBOX = "secretariat@ght-artois.mssante.fr"


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
                            group_email=GROUP_MAILBOX, professionals=mailboxes)
    for entry in entries:
        if entry.mss_address:
            # One authority, no intermediate: each certificate file holds the holder's certificate only.
            directory.set_certificate(session, entry.rpps, files[entry.mss_address].certificate.read_bytes(),
                                      now=now)
    return files[GROUP_MAILBOX]
