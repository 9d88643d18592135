"""Certificates and keys for MSSanté S/MIME: a local authority for demo and tests, PEM loading.

In production the certificates come from the ANS authority (IGC-Santé) and are named in
configuration; the local authority only mirrors their shape (RSA 2048, SHA-256, e-mail address
in subjectAltName, emailProtection EKU) so that demo and tests exercise the same code paths.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from naho.messaging.errors import PkiConfigurationInvalid

KEY_SIZE = 2048


@dataclass(frozen=True)
class Identity:
    """A certificate with its private key: what signs outgoing and decrypts incoming mail."""

    certificate: x509.Certificate
    private_key: rsa.RSAPrivateKey
    # Intermediate authorities up to (not including) the root, sent along with signatures.
    chain: tuple[x509.Certificate, ...] = ()

    @property
    def email(self) -> str:
        return certificate_emails(self.certificate)[0]


@dataclass(frozen=True)
class PkiFiles:
    """PEM files named in configuration: our mailbox identity and the trusted authorities."""

    certificate: Path
    private_key: Path
    trust_anchors: tuple[Path, ...]
    private_key_password: bytes | None = field(default=None, repr=False)


def certificate_emails(certificate: x509.Certificate) -> list[str]:
    """The rfc822Name entries of the certificate's subjectAltName, lower-cased."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [name.lower() for name in san.get_values_for_type(x509.RFC822Name)]


def certificate_domains(certificate: x509.Certificate) -> list[str]:
    """The dNSName entries of the certificate's subjectAltName, lower-cased: a mail service that
    holds the mailboxes of a whole domain (the patients' one) is named by its domain."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [name.lower() for name in san.get_values_for_type(x509.DNSName)]


def covers(certificate: x509.Certificate, address: str) -> bool:
    """May a letter to `address` be sealed for this certificate: its own mailbox, or a mailbox of
    the domain its mail service holds?"""
    address = address.lower()
    return (address in certificate_emails(certificate)
            or address.rpartition("@")[2] in certificate_domains(certificate))


def load_identity(files: PkiFiles) -> Identity:
    """Load our certificate and key, refusing a key that does not belong to the certificate."""
    try:
        # The certificate file holds our certificate first, then its intermediate authorities.
        certificate, *chain = x509.load_pem_x509_certificates(files.certificate.read_bytes())
        key = serialization.load_pem_private_key(files.private_key.read_bytes(), files.private_key_password)
    except (OSError, ValueError, TypeError) as exc:
        raise PkiConfigurationInvalid(f"cannot load the messaging certificate or key: {exc}") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise PkiConfigurationInvalid("the messaging key must be an RSA key")
    if key.public_key().public_numbers() != certificate.public_key().public_numbers():  # type: ignore[union-attr]
        raise PkiConfigurationInvalid("the messaging key does not match its certificate")
    if not certificate_emails(certificate):
        raise PkiConfigurationInvalid("the messaging certificate has no e-mail address in subjectAltName")
    return Identity(certificate, key, tuple(chain))


def load_trust_anchors(files: PkiFiles) -> list[x509.Certificate]:
    """Load every certificate of the configured authority files (a file may hold several)."""
    anchors: list[x509.Certificate] = []
    for path in files.trust_anchors:
        try:
            anchors.extend(x509.load_pem_x509_certificates(path.read_bytes()))
        except (OSError, ValueError) as exc:
            raise PkiConfigurationInvalid(f"cannot load trusted authority {path.name}: {exc}") from exc
    if not anchors:
        raise PkiConfigurationInvalid("no trusted authority configured for messaging")
    return anchors


def certificate_pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def private_key_pem(key: rsa.RSAPrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM: for the demo and tests only, the file's permissions protect it."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class TestAuthority:
    """A local certificate authority issuing MSSanté-shaped certificates, for demo and tests.

    `now` is injected (rules of the house: no clock inside); certificates are valid from an hour
    before it, to tolerate small clock skews between the issuer and the verifier.
    """

    __test__ = False  # not a pytest test class despite its name
    certificate: x509.Certificate
    key: rsa.RSAPrivateKey

    def __init__(
        self, name: str, now: dt.datetime, *, days: int = 3650, parent: TestAuthority | None = None
    ) -> None:
        """A root authority, or an intermediate one under `parent` (as IGC-Santé's are)."""
        self.now = now
        self.parent = parent
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
        subject = x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{name} test authority"),
        ])
        public_key = self.key.public_key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(parent.certificate.subject if parent else subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0 if parent else 1), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        )
        if parent:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(parent.key.public_key()), critical=False
            )
        self.certificate = builder.sign(parent.key if parent else self.key, hashes.SHA256())

    @property
    def root(self) -> TestAuthority:
        return self.parent.root if self.parent else self

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """This authority and its parents, except the root."""
        return (self.certificate, *self.parent.chain) if self.parent else ()

    def issue_organisation(self, email: str, organisation: str, *, days: int = 825,
                           domains: Sequence[str] = ()) -> Identity:
        """The certificate of an organisational mailbox (e.g. the group's MSSanté mailbox); with
        `domains`, of a mail service holding every mailbox of those domains (the patients')."""
        return self._issue(email, organisation, organisation, days=days, domains=domains)

    def issue_professional(
        self, email: str, full_name: str, organisation: str, *, rpps: str | None = None, days: int = 825
    ) -> Identity:
        """A professional's certificate; the RPPS number, when given, goes in the serialNumber."""
        return self._issue(email, full_name, organisation, rpps=rpps, days=days)

    def _issue(
        self, email: str, common_name: str, organisation: str, *, rpps: str | None = None, days: int,
        domains: Sequence[str] = (),
    ) -> Identity:
        key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
        attributes = [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
        if rpps:
            attributes.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, rpps))
        public_key = key.public_key()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attributes))
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now - dt.timedelta(hours=1))
            .not_valid_after(self.now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.SubjectAlternativeName(
                [x509.RFC822Name(email), *(x509.DNSName(domain) for domain in domains)]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        return Identity(certificate, key, self.chain)

    def write(self, directory: Path, name: str, identity: Identity | None = None) -> PkiFiles:
        """Write an identity (or the authority itself) as PEM files, for configuration."""
        directory.mkdir(parents=True, exist_ok=True)
        certificates, key = (
            ((identity.certificate, *identity.chain), identity.private_key)
            if identity
            else ((self.certificate, *(self.parent.chain if self.parent else ())), self.key)
        )
        cert_path, key_path, ca_path = directory / f"{name}.crt", directory / f"{name}.key", directory / "ca.crt"
        cert_path.write_bytes(b"".join(certificate_pem(certificate) for certificate in certificates))
        descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as stream:
            os.fchmod(stream.fileno(), 0o600)  # also when the file already existed
            stream.write(private_key_pem(key))
        ca_path.write_bytes(certificate_pem(self.root.certificate))
        return PkiFiles(certificate=cert_path, private_key=key_path, trust_anchors=(ca_path,))


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=not cert_sign,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def create_demo_pki(
    directory: Path,
    now: dt.datetime,
    *,
    organisation: str,
    group_email: str,
    professionals: dict[str, str],
    patient_service: tuple[str, str] | None = None,
) -> dict[str, PkiFiles]:
    """Write a demo authority, the group's mailbox and professionals' identities as PEM files.

    `professionals` maps e-mail addresses to full names; `patient_service`, (e-mail, domain) of
    the patients' mail service, whose certificate covers the domain. Returns the files by e-mail
    address, ready to be named in configuration; every identity trusts the same `ca.crt`.
    """
    authority = TestAuthority(organisation, now)
    files = {group_email: authority.write(directory, "group", authority.issue_organisation(group_email, organisation))}
    if patient_service:
        email, domain = patient_service
        files[email] = authority.write(directory, "patients", authority.issue_organisation(
            email, "Messagerie des patients (démonstration)", domains=[domain]))
    for index, (email, full_name) in enumerate(sorted(professionals.items()), 1):
        identity = authority.issue_professional(email, full_name, organisation)
        files[email] = authority.write(directory, f"professional-{index}", identity)
    return files
