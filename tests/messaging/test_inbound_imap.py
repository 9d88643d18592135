"""The IMAP poller against a real IMAP server: Dovecot (Debian package dovecot-imapd) started on a
free loopback port for the test, mail appended with imaplib as the operator's relay would deliver
it, then polled by naho.messaging.mailbox.ImapSource."""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import ssl
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from naho.messaging import inbound, mailbox
from tests.conftest import free_port, port_open, service_missing
from tests.messaging.test_inbound import LETTER_PDF, documents_of, inbound_rows, receive, register, sealed_letter
from tests.messaging.test_sending import (
    Setup,
    setup_fixture,  # noqa: F401 - the fixtures "setup" and "web"
    web_fixture,  # noqa: F401
)
from tests.messaging.test_smtp_delivery import tls_files

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USER, PASSWORD = "secretariat", "mot-de-passe-de-test"


@dataclass
class Imap:
    port: int  # IMAP, STARTTLS offered
    imaps_port: int  # IMAP over TLS
    directory: Path
    ca: Path  # the authority of the server's certificate (for 127.0.0.1)

    def deliver(self, raw: bytes) -> None:
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        try:
            client.login(USER, PASSWORD)
            status, _ = client.append("INBOX", None, None, raw)
            assert status == "OK"
        finally:
            client.logout()

    def unseen(self) -> int:
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        try:
            client.login(USER, PASSWORD)
            client.select("INBOX")
            _, data = client.uid("SEARCH", "UNSEEN")
            return len((data[0] or b"").split())
        finally:
            client.logout()


@pytest.fixture
def imap_server() -> Iterator[Imap]:
    if not Path(DOVECOT).exists():
        service_missing("dovecot is not installed (Debian package dovecot-imapd)")
    port, imaps_port = free_port(), free_port()
    # Not under pytest's tmp_path: the mail processes run as another user and must reach the maildir.
    directory = Path(tempfile.mkdtemp(prefix="naho-imap-"))
    directory.chmod(0o755)
    if os.geteuid() == 0:  # root: mail as Dovecot's own user (mail as root is refused)
        mail_user, owner = "dovecot", pwd.getpwnam("dovecot")
        process_users = ""
    else:  # an ordinary user runs everything as itself
        owner = pwd.getpwuid(os.geteuid())
        mail_user = owner.pw_name
        process_users = f"default_internal_user = {mail_user}\ndefault_login_user = {mail_user}\n"
    (directory / "mail").mkdir()
    os.chown(directory / "mail", owner.pw_uid, owner.pw_gid)
    (directory / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
    ca, certificate, key = tls_files(directory / "tls")
    dh = Path("/usr/share/dovecot/dh.pem")
    dh_setting = f"ssl_dh = <{dh}" if dh.exists() else ""
    (directory / "dovecot.conf").write_text(f"""
base_dir = {directory}/run
state_dir = {directory}/state
log_path = {directory}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{certificate}
ssl_key = <{key}
{dh_setting}
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:{directory}/mail/%u
first_valid_uid = 1
{process_users}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {directory}/users
}}
userdb {{
  driver = static
  args = uid={owner.pw_uid} gid={owner.pw_gid} home={directory}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
  }}
}}
service anvil {{
  chroot =
}}
""")
    process = subprocess.Popen([DOVECOT, "-F", "-c", str(directory / "dovecot.conf")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not (port_open("127.0.0.1", port) and port_open("127.0.0.1", imaps_port)):
            if process.poll() is not None or time.monotonic() > deadline:
                log = (directory / "dovecot.log")
                pytest.fail("dovecot did not start: " + (log.read_text()[-2000:] if log.exists() else "no log"))
            time.sleep(0.1)
        yield Imap(port, imaps_port, directory, ca)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(directory, ignore_errors=True)


def test_the_imap_poller_receives_each_unseen_message_once(web: TestClient, setup: Setup, imap_server: Imap) -> None:
    patient, _ = register(web)
    imap_server.deliver(sealed_letter(setup))
    imap_server.deliver(b"From: quelqu.un@ailleurs.fr\r\nMessage-ID: <en-clair@ailleurs.fr>\r\n"
                        b"Subject: bonjour\r\n\r\nun message en clair\r\n")
    source = mailbox.ImapSource("127.0.0.1", imap_server.port, USER, PASSWORD, "INBOX", tls="never")

    def receiver(raw: bytes) -> inbound.InboundResult:
        return receive(setup, raw)

    def failing(raw: bytes) -> inbound.InboundResult:
        raise ConnectionError("database unavailable")

    # A reception that fails leaves the messages unseen, for the next poll.
    assert mailbox.poll_mailbox(source, failing) == 0 and imap_server.unseen() == 2
    assert mailbox.poll_mailbox(source, receiver) == 2
    assert imap_server.unseen() == 0
    assert sorted(r.status for r in inbound_rows(setup)) == ["filed", "refused"]
    assert documents_of(setup, patient) == [LETTER_PDF]
    # Nothing new: nothing received; the same letter delivered again: recorded once.
    assert mailbox.poll_mailbox(source, receiver) == 0
    rows = inbound_rows(setup)
    filed = next(r for r in rows if r.status == "filed")
    imap_server.deliver(filed.raw)
    assert mailbox.poll_mailbox(source, receiver) == 1
    assert len(inbound_rows(setup)) == 2 and documents_of(setup, patient) == [LETTER_PDF]


def test_wrong_imap_credentials_raise_and_nothing_is_recorded(web: TestClient, setup: Setup,
                                                             imap_server: Imap) -> None:
    source = mailbox.ImapSource("127.0.0.1", imap_server.port, USER, "faux-" + uuid.uuid4().hex, tls="never")
    with pytest.raises(imaplib.IMAP4.error):
        mailbox.poll_mailbox(source, lambda raw: receive(setup, raw))
    assert inbound_rows(setup) == []


def test_the_imap_poller_speaks_imaps_and_starttls_and_checks_the_server_certificate(
        web: TestClient, setup: Setup, imap_server: Imap) -> None:
    register(web)
    implicit = mailbox.ImapSource("127.0.0.1", imap_server.imaps_port, USER, PASSWORD, tls="ssl",
                                  ca_file=imap_server.ca)
    upgraded = mailbox.ImapSource("127.0.0.1", imap_server.port, USER, PASSWORD, tls="starttls",
                                  ca_file=imap_server.ca)
    unknown_authority = mailbox.ImapSource("127.0.0.1", imap_server.imaps_port, USER, PASSWORD, tls="ssl")

    def receiver(raw: bytes) -> inbound.InboundResult:
        return receive(setup, raw)

    imap_server.deliver(sealed_letter(setup))
    with pytest.raises(ssl.SSLCertVerificationError):  # the system authorities do not know this server
        mailbox.poll_mailbox(unknown_authority, receiver)
    assert imap_server.unseen() == 1
    assert mailbox.poll_mailbox(implicit, receiver) == 1  # IMAPS
    imap_server.deliver(sealed_letter(setup))
    assert mailbox.poll_mailbox(upgraded, receiver) == 1  # STARTTLS on the plain port
    assert imap_server.unseen() == 0
    assert [r.status for r in inbound_rows(setup)] == ["filed", "filed"]
