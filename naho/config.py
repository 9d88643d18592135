"""Settings: one class, read from the environment (prefix NAHO_).

Secrets may also come from files (``NAHO_SECRET_KEY_FILE``), as container secrets do. Outside
development mode, a missing or well-known secret refuses to start (STYLE.md R12).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The fixed key the demo uses so its sessions survive a restart. Never valid in production.
DEVELOPMENT_SECRET_KEY = "naho-development-only-secret-key-do-not-use-in-production"  # noqa: S105
#: The password every demo account gets, printed by `naho demo`. Development mode only.
DEVELOPMENT_PASSWORD = "demo-naho-2026"  # noqa: S105  (development mode only)

DEFAULT_DATABASE_URL = "sqlite:///naho.sqlite3"


class InsecureSettingsError(RuntimeError):
    """Production mode was asked to start with a default or missing secret."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NAHO_", extra="ignore")

    mode: Literal["development", "production", "test"] = "development"
    database_url: str = DEFAULT_DATABASE_URL
    secret_key: str = ""
    secret_key_file: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    #: Public origin of the site (used for OIDC redirects and secure cookies).
    public_url: str = ""
    timezone: str = "Europe/Paris"
    locale: str = "fr"
    sites_file: Path = Path(__file__).parent / "sites" / "data" / "ght.yaml"
    seed: int = 2026
    #: Synthetic patient records `naho seed` adds to an empty index (0: none).
    demo_patients: int = 2000

    # Authentication
    session_hours: float = 10.0
    session_idle_minutes: float = 60.0
    login_max_failures: int = 5
    login_window_minutes: float = 15.0
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    oidc_client_secret_file: Path | None = None
    oidc_label: str = "Pro Santé Connect"
    oidc_username_claim: str = "preferred_username"

    # HL7 v2 over MLLP (IHE PAM France): 0 disables the listener.
    mllp_host: str = "127.0.0.1"
    mllp_port: int = 0
    #: MSH-3 / MSH-4 of the messages naho sends.
    hl7_application: str = "NAHO"
    hl7_facility: str = "GHT-ARTOIS"
    #: Where naho's own ADT messages go (host:port of the receiving system), empty: not sent.
    hl7_adt_destination: str = ""
    #: MSH-5 / MSH-6 of the messages naho sends: the receiving application and facility, as the
    #: receiver expects them (many interface engines route on them); empty: left empty.
    hl7_receiving_application: str = ""
    hl7_receiving_facility: str = ""
    #: Where laboratory orders go (host:port of the laboratory system, OML^O21), empty: not sent;
    #: MSH-5 / MSH-6 as the laboratory expects them.
    hl7_lab_destination: str = ""
    hl7_lab_receiving_application: str = ""
    hl7_lab_receiving_facility: str = ""
    #: Critical values of laboratory results (thresholds, escalation delay, senior physicians).
    critical_values_file: Path = Path(__file__).parent / "results" / "data" / "critical_values.yaml"
    #: When results reach the patient portal, per kind of result (naho/results/release_rules.py).
    release_rules_file: Path = Path(__file__).parent / "results" / "data" / "release_rules.yaml"

    # Imaging: the PACS (Orthanc) reached by DICOMweb; empty URL: the local DICOM store below.
    orthanc_url: str = ""
    orthanc_username: str = ""
    orthanc_password: str = ""
    orthanc_password_file: Path | None = None
    #: Seconds for one request to Orthanc (connect, read): a page waits at most this.
    orthanc_timeout: float = 10.0
    #: DICOM files served when no Orthanc is configured (the demo writes its studies there).
    imaging_store_dir: Path = Path("naho-dicom")

    # Secure health messaging (MSSanté): SMTP relay, empty host: letters are not sent.
    messaging_smtp_host: str = ""
    messaging_smtp_port: int = 25
    #: "auto": STARTTLS when the relay offers it; "required": refuse a relay without it; "never".
    messaging_smtp_starttls: Literal["auto", "required", "never"] = "auto"
    #: PEM file of authorities trusted for the relay's TLS certificate (empty: the system's).
    messaging_smtp_ca_file: Path | None = None
    messaging_smtp_timeout: float = 30.0
    #: The group's mailbox certificate (then its intermediates) and key, PEM; trusted authorities.
    messaging_certificate: Path | None = None
    messaging_private_key: Path | None = None
    messaging_trust_anchors: str = ""
    #: OIDs of the XDM packages: unique ids are <root>.<letter number>; the IPP's assigning authority.
    messaging_oid_root: str = "2.25.164096397395423478917011962893563158705"
    messaging_ipp_oid: str = "2.25.164096397395423478917011962893563158705.1"
    messaging_institution: str = "GHT de l'Artois"
    #: The patients' own secure mailboxes (Mon espace santé): "<matricule INS>@<domain>", open
    #: only to a qualified INS; letters to them are sealed for the certificate of that mail
    #: service (PEM). Without the certificate nothing is sent to patients.
    messaging_patient_domain: str = "patient.mssante.fr"
    messaging_patient_certificate: Path | None = None
    #: The group mailbox's inbound side (naho.messaging.mailbox): "imap", "maildir" (a directory
    #: of .eml files) or "" (nothing received); polled by the background worker.
    messaging_mailbox: Literal["", "imap", "maildir"] = ""
    messaging_mailbox_poll_seconds: float = 60.0
    messaging_imap_host: str = ""
    messaging_imap_port: int = 993
    messaging_imap_user: str = ""
    messaging_imap_password: str = ""
    messaging_imap_password_file: Path | None = None
    messaging_imap_folder: str = "INBOX"
    #: "ssl" (IMAPS, port 993), "starttls" (port 143), "never" (loopback tests only).
    messaging_imap_tls: Literal["ssl", "starttls", "never"] = "ssl"
    messaging_imap_ca_file: Path | None = None
    messaging_maildir: Path | None = None

    # Patient mails (portal account links, appointment reminders): SMTP relay, empty host: not sent.
    portal_smtp_host: str = ""
    portal_smtp_port: int = 25
    portal_mail_sender: str = "ne-pas-repondre@ght-artois.fr"

    # Teleconsultation (WebRTC): the ICE servers given to the browsers. Empty: host candidates
    # only, enough when both ends reach each other directly (one network, loopback in tests).
    #: STUN URLs, comma-separated ("stun:turn.ght-artois.fr:3478").
    telehealth_stun_urls: str = ""
    #: TURN URLs, comma-separated ("turn:turn.ght-artois.fr:3478?transport=udp,turns:turn.ght-artois.fr:5349").
    telehealth_turn_urls: str = ""
    #: The TURN server's shared secret (coturn `use-auth-secret`): each participant gets
    #: credentials of its own, valid until the room closes.
    telehealth_turn_secret: str = ""
    telehealth_turn_secret_file: Path | None = None

    #: After start-up, move what it built (modules, models, caches) out of the cyclic garbage
    #: collector's way (`gc.freeze`): a full collection then scans only what requests create.
    #: Unset: on, except in test mode (the tests build an app per test in one process).
    freeze_startup_objects: bool | None = None

    # Background workers
    workers: bool = True
    outbox_poll_seconds: float = 1.0
    outbox_max_attempts: int = 8
    outbox_backoff_seconds: float = 2.0

    @model_validator(mode="after")
    def _resolve_secrets(self) -> Settings:
        if self.secret_key_file and not self.secret_key:
            self.secret_key = self.secret_key_file.read_text().strip()
        if self.oidc_client_secret_file and not self.oidc_client_secret:
            self.oidc_client_secret = self.oidc_client_secret_file.read_text().strip()
        if self.orthanc_password_file and not self.orthanc_password:
            self.orthanc_password = self.orthanc_password_file.read_text().strip()
        if self.telehealth_turn_secret_file and not self.telehealth_turn_secret:
            self.telehealth_turn_secret = self.telehealth_turn_secret_file.read_text().strip()
        if self.messaging_imap_password_file and not self.messaging_imap_password:
            self.messaging_imap_password = self.messaging_imap_password_file.read_text().strip()
        if self.mode == "production":
            if not self.secret_key or self.secret_key == DEVELOPMENT_SECRET_KEY:
                raise InsecureSettingsError(
                    "NAHO_SECRET_KEY (or NAHO_SECRET_KEY_FILE) must be set to a random value "
                    "of at least 32 characters in production mode"
                )
            if len(self.secret_key) < 32:
                raise InsecureSettingsError("NAHO_SECRET_KEY must be at least 32 characters")
        elif not self.secret_key:
            # development keeps sessions across restarts; tests get a fresh key each time
            self.secret_key = (
                DEVELOPMENT_SECRET_KEY if self.mode == "development" else secrets.token_urlsafe(32)
            )
        return self

    @property
    def development(self) -> bool:
        return self.mode == "development"

    @property
    def production(self) -> bool:
        return self.mode == "production"

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
