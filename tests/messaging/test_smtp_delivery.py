"""Letters through a real SMTP server on loopback (aiosmtpd): what arrives is read by OpenSSL and
unpacks to the chart's document; a relay that is down gets every letter once it is back; a
refusing relay fails the letter for good; STARTTLS is used when offered, demanded when required."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from fastapi.testclient import TestClient
from sqlalchemy import select

from naho.messaging import sink, xdm
from naho.messaging.pki import private_key_pem
from naho.platform.clock import FixedClock
from naho.platform.outbox import OutboxMessage
from tests.messaging.test_sending import (
    GP,
    OTHER_GP,
    PDF,
    Setup,
    admit,
    attach,
    configured,
    file_document,
    letters,
    setup_fixture,  # noqa: F401 - the fixtures "setup" and "web"
    web_fixture,  # noqa: F401
)
from tests.messaging.test_smime import openssl
from tests.personas import PHYSICIAN, form_token, login

aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller")


class Server:
    """An aiosmtpd sink in this process, started and stopped at will on a fixed port."""

    def __init__(self, port: int, directory: Path, **options: object) -> None:
        self.port, self.directory, self.options = port, directory, options
        self.handler = sink.SinkHandler(directory, refuse=options.pop("refuse", None))  # type: ignore[arg-type]
        self.controller: object | None = None

    def start(self) -> None:
        controller = aiosmtpd_controller.Controller(self.handler, hostname="127.0.0.1", port=self.port,
                                                   **self.options)
        controller.start()
        self.controller = controller

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()  # type: ignore[attr-defined]
            self.controller = None


@pytest.fixture
def server(setup: Setup, tmp_path: Path) -> Iterator[Server]:
    relay = Server(setup.smtp_port, tmp_path / "received")
    yield relay
    relay.stop()


def queue_letters(web: TestClient, setup: Setup, count: int) -> list[str]:
    """`count` letters of one patient to the GP, through the JSON API; their ids."""
    patient = admit(web)
    login(web, PHYSICIAN)
    document = file_document(web, patient)
    attach(web, patient, setup.ids[GP])
    token = form_token(web)
    ids = []
    for _ in range(count):
        response = web.post(f"/api/patients/{patient}/letters", headers={"x-csrf-token": token},
                            json={"document_id": document, "professional_ids": [str(setup.ids[GP])]})
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    return ids


def test_the_gp_receives_a_letter_openssl_verifies_and_its_xdm_holds_the_pdf(
        web: TestClient, setup: Setup, server: Server, tmp_path: Path) -> None:
    server.start()
    queue_letters(web, setup, 1)
    assert setup.worker().run_once() == 1
    (letter,) = letters(setup.uow)
    assert letter.status == "sent" and letter.sent_at == setup.clock.now()
    received = sink.stored(server.directory)
    assert list(received) == [letter.message_id]
    assert setup.worker().run_once() == 0 and sink.deliveries(server.directory) == [letter.message_id]

    # The GP's mail client: OpenSSL decrypts with the GP's key and verifies against the authority.
    (tmp_path / "mail.eml").write_bytes(received[letter.message_id])
    gp_files = setup.pki.files
    decrypt = openssl("smime", "-decrypt", "-in", "mail.eml", "-recip", str(gp_files / f"pro-{GP}.crt"),
                      "-inkey", str(gp_files / f"pro-{GP}.key"), "-out", "signed.eml", cwd=tmp_path)
    assert decrypt.returncode == 0, decrypt.stderr
    verify = openssl("smime", "-verify", "-in", "signed.eml", "-CAfile", str(gp_files / "ca.crt"), "-purpose",
                     "smimesign", "-attime", str(int(setup.clock.now().timestamp())), "-out", "content.eml",
                     cwd=tmp_path)
    assert verify.returncode == 0 and b"Verification successful" in verify.stderr, verify.stderr
    inner = email.message_from_bytes((tmp_path / "content.eml").read_bytes(), policy=email.policy.default)
    attachments = {part.get_filename(): part.get_payload(decode=True) for part in inner.iter_attachments()}
    assert attachments["document.pdf"] == PDF
    (package,) = xdm.unpack(attachments["IHE_XDM.ZIP"])
    assert package.documents[0].data == PDF and package.documents[0].mime_type == "application/pdf"
    page = web.get(f"/patients/{letter.patient_id}/correspondants").text.split('id="letters"')[1]
    assert 'data-status="sent"' in page


def test_a_relay_down_for_a_while_gets_every_letter_once_when_it_comes_back(
        web: TestClient, setup: Setup, server: Server) -> None:
    queue_letters(web, setup, 4)
    worker = setup.worker(backoff_seconds=10)
    assert worker.run_once() == 0  # connection refused: each letter waits for its backoff
    assert worker.run_once() == 0  # not due yet: nothing tried
    setup.clock.advance(seconds=11)
    assert worker.run_once() == 0  # still down: the second attempt fails, backoff doubles
    with setup.uow() as uow:
        attempts = {m.attempts for m in uow.session.scalars(select(OutboxMessage))}
        errors = {m.last_error.split(":")[0] for m in uow.session.scalars(select(OutboxMessage)) if m.last_error}
    assert attempts == {2} and errors == {"ConnectionRefusedError"}
    assert {letter.status for letter in letters(setup.uow)} == {"queued"}

    server.start()
    setup.clock.advance(seconds=21)
    assert worker.run_once() == 4
    sent = letters(setup.uow)
    assert {letter.status for letter in sent} == {"sent"}
    assert sorted(sink.deliveries(server.directory)) == sorted(letter.message_id for letter in sent)


def test_a_permanent_refusal_fails_the_letter_without_retrying(
        web: TestClient, setup: Setup, server: Server) -> None:
    address = f"{setup.pki.professionals[GP].email}"
    server.handler.refuse = {address: "550 5.1.1 mailbox unknown"}
    server.start()
    queue_letters(web, setup, 1)
    assert setup.worker().run_once() == 1  # handled: the relay answered for good
    (letter,) = letters(setup.uow)
    assert letter.status == "failed" and "550" in (letter.status_detail or "")
    assert sink.deliveries(server.directory) == []


def test_content_refused_for_good_fails_the_letter_and_a_temporary_refusal_retries(
        web: TestClient, setup: Setup, server: Server) -> None:
    server.handler.reject_data = "451 4.3.0 try again later"
    server.start()
    first, second = queue_letters(web, setup, 2)
    assert setup.worker(backoff_seconds=5).run_once() == 0
    assert {letter.status for letter in letters(setup.uow)} == {"queued"}
    server.handler.reject_data = "554 5.6.0 content refused"
    setup.clock.advance(seconds=6)
    assert setup.worker().run_once() == 2
    refused = letters(setup.uow)
    assert {letter.status for letter in refused} == {"failed"} and "554" in (refused[0].status_detail or "")
    assert {str(letter.id) for letter in refused} == {first, second}
    assert sink.deliveries(server.directory) == []


# --- STARTTLS ----------------------------------------------------------------------------------------

def tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A local authority and a server certificate for 127.0.0.1: (ca, certificate, key)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "naho test relay authority")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
          .not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    certificate = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    paths = directory / "relay-ca.crt", directory / "relay.crt", directory / "relay.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(private_key_pem(key))
    return paths


@pytest.fixture
def tls_setup(db_url: str, clock: FixedClock, tmp_path: Path) -> Iterator[tuple[Setup, Path, Path, Path]]:
    ca, certificate, key = tls_files(tmp_path / "tls")
    for made in configured(db_url, clock, tmp_path, messaging_smtp_starttls="required", messaging_smtp_ca_file=ca):
        yield made, ca, certificate, key


def test_starttls_is_used_when_required_and_a_relay_without_it_is_refused(
        tls_setup: tuple[Setup, Path, Path, Path], tmp_path: Path) -> None:
    setup, _ca, certificate, key = tls_setup
    with TestClient(setup.app, base_url="http://testserver") as web:
        plain = Server(setup.smtp_port, tmp_path / "plain")
        plain.start()
        try:
            queue_letters(web, setup, 1)
            assert setup.worker(backoff_seconds=1).run_once() == 0
        finally:
            plain.stop()
        with setup.uow() as uow:
            (message,) = uow.session.scalars(select(OutboxMessage)).all()
            assert "RelayRefusedTls" in (message.last_error or "")
        assert sink.deliveries(plain.directory) == []

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certificate, key)
        secure = Server(setup.smtp_port, tmp_path / "secure", tls_context=context, require_starttls=True)
        secure.start()
        try:
            setup.clock.advance(seconds=5)
            assert setup.worker().run_once() == 1
        finally:
            secure.stop()
    (letter,) = letters(setup.uow)
    assert letter.status == "sent" and list(sink.stored(secure.directory)) == [letter.message_id]
    assert secure.handler.tls_sessions == 1


def test_a_letter_to_two_correspondents_is_one_message_for_both(
        web: TestClient, setup: Setup, server: Server) -> None:
    server.start()
    patient = admit(web)
    login(web, PHYSICIAN)
    document = file_document(web, patient)
    attach(web, patient, setup.ids[GP])
    attach(web, patient, setup.ids[OTHER_GP], role="other")
    response = web.post(f"/api/patients/{patient}/letters", headers={"x-csrf-token": form_token(web)},
                        json={"document_id": document,
                              "professional_ids": [str(setup.ids[GP]), str(setup.ids[OTHER_GP])]})
    assert response.status_code == 202, response.text
    assert setup.worker().run_once() == 1
    (letter,) = letters(setup.uow)
    assert [r["status"] for r in letter.recipients] == ["sent", "sent"]
    assert sink.deliveries(server.directory) == [letter.message_id]
