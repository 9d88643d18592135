"""S/MIME for MSSanté: sign then encrypt outgoing mail; decrypt then verify incoming mail.

Outgoing: the content (text + attachments) is signed as multipart/signed with a detached
SHA-256 CMS signature (RFC 8551), and the whole signed entity is enveloped (AES-256-CBC, RSA
key transport) for every recipient. Incoming mail goes through the checks in the opposite
order and each refusal is a typed error from naho.messaging.errors. cryptography has no
public CMS verification API, so the SignedData is read with asn1crypto and its signature
checked with cryptography; the chain is validated by cryptography.x509.verification.
See docs/adr/0007-messaging-smime-xdm.md.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import hmac
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.utils import format_datetime, getaddresses

from asn1crypto import cms  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import ExtensionPolicy, PolicyBuilder, Store, VerificationError

from naho.messaging.errors import (
    MessageMalformed,
    MessageNotEncrypted,
    MessageNotForUs,
    MessageNotSigned,
    SignatureInvalid,
    SignerAddressMismatch,
    SignerNotTrusted,
)
from naho.messaging.pki import Identity, certificate_emails, covers

# MSSanté headers (ANS "Référentiel socle MSSanté #2, clients de messageries", ECO.2.4.x):
# X-MSS-CODECDA (the code of each CDA document carried in an IHE_XDM archive), X-MSS-INS,
# X-MSS-NIL… Their values are set by the service that composes a letter (it knows the documents
# and the patient's identity); this module only carries them, signed-and-sealed mail being
# otherwise opaque, and reads them back. Names outside this family are refused.
MSS_HEADER_PREFIX = "X-MSS-"
_HEADER_NAME = re.compile(r"^X-MSS-[A-Z0-9-]{1,40}$")

_MESSAGE_ID_NAMESPACE = uuid.UUID("5b1f8a3e-2f57-4c1e-9a57-2d8f1e6c0a11")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$", re.IGNORECASE)
_ACCEPTED_DIGESTS: dict[str, hashes.HashAlgorithm] = {
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}
# What asn1crypto and cryptography raise on malformed input (found by fuzzing, see test_robustness).
_PARSE_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, UnsupportedAlgorithm, x509.InvalidVersion)
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,./:=? -]{0,69}[0-9A-Za-z'()+_,./:=?-]")  # RFC 2046 §5.1.1
_PKCS7_MIME = {"application/pkcs7-mime", "application/x-pkcs7-mime"}
_PKCS7_SIGNATURE = {"application/pkcs7-signature", "application/x-pkcs7-signature"}


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class OpenedMessage:
    """An inbound message that passed every check."""

    message_id: str
    sender: str
    signer: x509.Certificate
    content: EmailMessage
    headers: dict[str, str]

    def attachments(self) -> list[Attachment]:
        found = []
        for part in self.content.iter_attachments():
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                found.append(Attachment(part.get_filename() or "", part.get_content_type(), payload))
        return found

    def body_text(self) -> str:
        body = self.content.get_body(preferencelist=("plain",))
        return "" if body is None else str(body.get_content())


def message_id(letter_id: str, domain: str) -> str:
    """A Message-ID derived from the letter id, so that a retried send is the same letter."""
    if not letter_id or not _DOMAIN.match(domain):
        raise ValueError("a Message-ID needs a letter id and a valid domain")
    return f"<{uuid.uuid5(_MESSAGE_ID_NAMESPACE, letter_id)}@{domain.lower()}>"


def build_content(body_text: str, attachments: Sequence[Attachment]) -> EmailMessage:
    """The inner MIME entity: a text body and the attachments (e.g. the IHE_XDM.ZIP and the PDF)."""
    content = EmailMessage(policy=email.policy.SMTP)
    content.set_content(body_text, cte="quoted-printable")
    for attachment in attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        content.add_attachment(attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename)
    return content


def seal_message(
    *,
    letter_id: str,
    domain: str,
    sender: Identity,
    to: Sequence[str],
    recipient_certificates: Sequence[x509.Certificate],
    subject: str,
    content: EmailMessage,
    date: dt.datetime,
    mss_headers: Sequence[tuple[str, str]] = (),
) -> EmailMessage:
    """Sign `content` with the sender's key, then encrypt it for the recipients and the sender.

    `mss_headers`: the MSSanté `X-MSS-...` headers of the letter, as (name, value) pairs (a name
    may repeat: a multi-valued header); other names, and values with line breaks, are refused.

    The sender is always a recipient of the envelope, so that the sent copy stays readable.
    """
    if not to or not recipient_certificates:
        raise ValueError("a message needs recipients and their certificates")
    # Each addressee must be able to read the letter, and nobody else may: a certificate that
    # belongs to no addressee (a directory mix-up) would disclose the letter to its holder.
    # A mail service's certificate (a dNSName) covers the mailboxes of its domain.
    addressed = {address.lower() for _, address in getaddresses(list(to))}
    if any(not any(covers(certificate, address) for address in addressed) for certificate in recipient_certificates):
        raise ValueError("a recipient certificate belongs to none of the addressees")
    if any(not any(covers(certificate, address) for certificate in recipient_certificates) for address in addressed):
        raise ValueError("an addressee has no certificate")
    if date.tzinfo is None:
        raise ValueError("date must be timezone-aware")
    for name, value in mss_headers:
        if not _HEADER_NAME.match(name.upper()) or "\r" in value or "\n" in value:
            raise ValueError(f"{name!r} is not an MSSanté X-MSS- header with a one-line value")
    inner = _canonical(content.as_bytes(policy=email.policy.SMTP))
    signer = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(inner)
        .add_signer(sender.certificate, sender.private_key, hashes.SHA256())
    )
    for intermediate in sender.chain:  # so that receivers can build the path to their root
        signer = signer.add_certificate(intermediate)
    signed = signer.sign(serialization.Encoding.SMIME, [pkcs7.PKCS7Options.DetachedSignature])
    envelope = pkcs7.PKCS7EnvelopeBuilder().set_data(_canonical(signed))
    envelope = envelope.set_content_encryption_algorithm(algorithms.AES256)
    seen: set[bytes] = set()
    for certificate in (*recipient_certificates, sender.certificate):
        fingerprint = certificate.fingerprint(hashes.SHA256())
        if fingerprint not in seen:
            seen.add(fingerprint)
            envelope = envelope.add_recipient(certificate)
    enveloped = envelope.encrypt(serialization.Encoding.SMIME, [])
    message = email.message_from_bytes(enveloped, _class=EmailMessage, policy=email.policy.SMTP)
    assert isinstance(message, EmailMessage)
    message["From"] = sender.email
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Date"] = format_datetime(date.astimezone(dt.UTC))
    message["Message-ID"] = message_id(letter_id, domain)
    for name, value in mss_headers:
        message[name.upper()] = value
    return message


def open_message(
    raw: bytes, *, recipient: Identity, trust_anchors: Sequence[x509.Certificate], now: dt.datetime
) -> OpenedMessage:
    """Decrypt with our key, verify signature, chain and sender address; refuse anything else."""
    outer = email.message_from_bytes(raw, policy=email.policy.SMTP)
    enveloped_der = _enveloped_der(outer)
    decrypted = _decrypt(enveloped_der, recipient)
    signed_content, signature_der = _split_multipart_signed(_canonical(decrypted))
    signer, chain = _verify_signature(signed_content, signature_der)
    _verify_trust(signer, chain, trust_anchors, now)
    sender = _single_sender(outer)
    if sender not in certificate_emails(signer):
        raise SignerAddressMismatch("the signer's certificate is not that of the From address")
    content = email.message_from_bytes(signed_content, _class=EmailMessage, policy=email.policy.SMTP)
    assert isinstance(content, EmailMessage)
    headers = {key: str(value) for key, value in outer.items() if key.upper().startswith(MSS_HEADER_PREFIX)}
    return OpenedMessage(str(outer.get("Message-ID", "")), sender, signer, content, headers)


def _single_sender(outer: Message) -> str:
    """Exactly one From header holding exactly one address: no ambiguity on who signed."""
    values = outer.get_all("From", [])
    addresses = getaddresses([str(value) for value in values])
    if len(values) != 1 or len(addresses) != 1 or "@" not in addresses[0][1]:
        raise MessageMalformed("the message must have exactly one From address")
    return addresses[0][1].lower()


def recipients_of(message: Message) -> list[str]:
    """Every address of To and Cc, as the SMTP envelope needs them."""
    fields = [str(value) for name in ("To", "Cc") for value in message.get_all(name, [])]
    return [address for _, address in getaddresses(fields) if address]


def _canonical(data: bytes) -> bytes:
    """MIME canonical form: every line ends with CRLF (mail stores often rewrite to LF)."""
    return re.sub(rb"\r?\n", b"\r\n", data)


def _enveloped_der(outer: Message) -> bytes:
    if outer.get_content_type() not in _PKCS7_MIME:
        raise MessageNotEncrypted("the message is not S/MIME encrypted")
    smime_type = str(outer.get_param("smime-type", "enveloped-data")).lower()
    if smime_type != "enveloped-data":
        raise MessageNotEncrypted(f"the message is S/MIME {smime_type}, not enveloped-data")
    payload = outer.get_payload(decode=True)
    if not isinstance(payload, bytes) or not payload:
        raise MessageMalformed("empty S/MIME envelope")
    return payload


def _decrypt(der: bytes, recipient: Identity) -> bytes:
    try:
        info = cms.ContentInfo.load(der)
        if info["content_type"].native != "enveloped_data":
            raise MessageNotEncrypted("the CMS content is not enveloped-data")
        recipient_infos = list(info["content"]["recipient_infos"])
        ours = False
        for choice in recipient_infos:
            if choice.name != "ktri":
                continue
            rid = choice.chosen["rid"]
            if rid.name == "issuer_and_serial_number":
                ours = ours or _is_issuer_and_serial(rid.chosen, recipient.certificate)
            elif rid.name == "subject_key_identifier":
                ours = ours or rid.chosen.native == _subject_key_identifier(recipient.certificate)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise MessageMalformed(f"unreadable S/MIME envelope: {exc}") from exc
    if not ours:
        raise MessageNotForUs("the message is not encrypted for our certificate")
    try:
        return pkcs7.pkcs7_decrypt_der(der, recipient.certificate, recipient.private_key, [])
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise MessageMalformed(f"the envelope cannot be decrypted: {exc}") from exc


def _split_multipart_signed(entity: bytes) -> tuple[bytes, bytes]:
    """Return the exact signed bytes of the first part and the DER signature of the second.

    The first part must be taken byte for byte as transmitted: re-serialising it through the
    email package could change it and break (or, worse, alter the meaning of) the signature.
    """
    head, separator, body = entity.partition(b"\r\n\r\n")
    if not separator:
        raise MessageMalformed("the decrypted entity has no header/body separator")
    headers = email.message_from_bytes(head + b"\r\n\r\n", policy=email.policy.SMTP)
    content_type = headers.get_content_type()
    if content_type in _PKCS7_MIME and str(headers.get_param("smime-type", "")).lower() == "signed-data":
        raise MessageNotSigned("opaque signed-data is not accepted; multipart/signed is expected")
    if content_type != "multipart/signed":
        raise MessageNotSigned(f"the decrypted content is {content_type}, not multipart/signed")
    protocol = str(headers.get_param("protocol", "")).lower()
    boundary = headers.get_boundary()
    if protocol not in _PKCS7_SIGNATURE or not boundary:
        raise MessageNotSigned("multipart/signed without a PKCS#7 protocol or boundary")
    if not _BOUNDARY.fullmatch(boundary):
        raise MessageMalformed("invalid multipart boundary")
    delimiter = b"\r\n--" + boundary.encode("ascii")
    segments = (b"\r\n" + body).split(delimiter)
    # segments: preamble, part 1, part 2, close delimiter ("--" + epilogue)
    if len(segments) != 4 or not segments[3].startswith(b"--"):
        raise MessageMalformed("multipart/signed must hold exactly two parts")
    parts = []
    for segment in segments[1:3]:
        padding_, crlf, part = segment.partition(b"\r\n")
        if not crlf or padding_.strip(b" \t"):
            raise MessageMalformed("malformed multipart/signed delimiter")
        parts.append(part)
    signature_part = email.message_from_bytes(parts[1], policy=email.policy.SMTP)
    if signature_part.get_content_type() not in _PKCS7_SIGNATURE:
        raise MessageNotSigned("the second part of multipart/signed is not a PKCS#7 signature")
    signature_der = signature_part.get_payload(decode=True)
    if not isinstance(signature_der, bytes) or not signature_der:
        raise MessageMalformed("the signature part is empty")
    return parts[0], signature_der


@dataclass(frozen=True)
class _SignerView:
    """What the checks need from a CMS SignedData, read once so that parse errors surface here."""

    signer: x509.Certificate
    others: list[x509.Certificate]
    public_key: object
    encapsulated_type: str
    listed_digests: list[str]
    digest_name: str
    signature_algorithm: str
    signature: bytes
    signed_attrs_der: bytes | None
    message_digests: list[bytes]
    content_types: list[str]


def _read_signed_data(signature_der: bytes) -> _SignerView:
    try:
        info = cms.ContentInfo.load(signature_der)
        if info["content_type"].native != "signed_data":
            raise MessageNotSigned("the signature part is not CMS signed-data")
        info.native  # noqa: B018 - asn1crypto parses lazily: force the whole structure now
        signed_data = info["content"]
        if signed_data["encap_content_info"]["content"].native is not None:
            raise MessageMalformed("a detached signature must not carry the content")
        signer_infos = list(signed_data["signer_infos"])
        if len(signer_infos) != 1:
            raise MessageMalformed("exactly one signer is expected")
        signer_info = signer_infos[0]
        certificates = [
            x509.load_der_x509_certificate(choice.chosen.dump())
            for choice in signed_data["certificates"]
            if choice.name == "certificate"
        ]
        signer = _find_signer(signer_info["sid"], certificates)
        signed_attrs = signer_info["signed_attrs"]
        attributes = {attr["type"].native: attr["values"] for attr in signed_attrs}
        return _SignerView(
            signer=signer,
            others=[c for c in certificates if c != signer],
            public_key=signer.public_key(),
            encapsulated_type=signed_data["encap_content_info"]["content_type"].native,
            listed_digests=[algorithm["algorithm"].native for algorithm in signed_data["digest_algorithms"]],
            digest_name=signer_info["digest_algorithm"]["algorithm"].native,
            signature_algorithm=signer_info["signature_algorithm"]["algorithm"].native,
            signature=signer_info["signature"].native,
            signed_attrs_der=b"\x31" + signed_attrs.dump()[1:] if len(signed_attrs) else None,
            message_digests=[value.native for value in attributes.get("message_digest", [])],
            content_types=[value.native for value in attributes.get("content_type", [])],
        )
    except _PARSE_ERRORS as exc:
        raise MessageMalformed(f"unreadable CMS signature: {exc}") from exc


def _verify_signature(content: bytes, signature_der: bytes) -> tuple[x509.Certificate, list[x509.Certificate]]:
    """Check the CMS SignedData over `content` (RFC 5652 §5.4, §11); return signer and other certificates."""
    view = _read_signed_data(signature_der)
    if view.encapsulated_type != "data":
        raise SignatureInvalid("the signed content type is not data")
    algorithm = _ACCEPTED_DIGESTS.get(view.digest_name)
    if algorithm is None:
        raise SignatureInvalid(f"digest algorithm {view.digest_name} is not accepted")
    if view.digest_name not in view.listed_digests:
        raise SignatureInvalid("the signer's digest algorithm is not listed in the signed data")
    digest = hashes.Hash(algorithm)
    digest.update(content)
    content_digest = digest.finalize()
    if view.signed_attrs_der is None:
        signed_bytes = content  # no signed attributes: the signature covers the content itself
    else:
        if len(view.message_digests) != 1 or len(view.content_types) != 1:
            raise SignatureInvalid("signed attributes lack the message digest or content type")
        if view.content_types[0] != view.encapsulated_type:
            raise SignatureInvalid("the signed content type differs from the encapsulated one")
        if not hmac.compare_digest(view.message_digests[0], content_digest):
            raise SignatureInvalid("the content does not match its signature (altered message)")
        signed_bytes = view.signed_attrs_der
    # rsaEncryption, or the RSA PKCS#1 v1.5 combination with the signer's own digest.
    if view.signature_algorithm not in ("rsassa_pkcs1v15", f"{view.digest_name}_rsa"):
        raise SignatureInvalid(f"signature algorithm {view.signature_algorithm} is not accepted")
    if not isinstance(view.public_key, rsa.RSAPublicKey):
        raise SignatureInvalid("the signer's key is not RSA")
    try:
        view.public_key.verify(view.signature, signed_bytes, padding.PKCS1v15(), algorithm)
    except InvalidSignature as exc:
        raise SignatureInvalid("the signature does not verify (altered message or forged signer)") from exc
    return view.signer, view.others


def _find_signer(sid: object, certificates: list[x509.Certificate]) -> x509.Certificate:
    kind, value = sid.name, sid.chosen  # type: ignore[attr-defined]
    for certificate in certificates:
        if kind == "issuer_and_serial_number" and _is_issuer_and_serial(value, certificate):
            return certificate
        if kind == "subject_key_identifier" and value.native == _subject_key_identifier(certificate):
            return certificate
    raise MessageNotSigned("the signer's certificate is not included in the signature")


def _is_issuer_and_serial(value: object, certificate: x509.Certificate) -> bool:
    issuer_der = value["issuer"].dump()  # type: ignore[index]
    serial = value["serial_number"].native  # type: ignore[index]
    return bool(serial == certificate.serial_number and issuer_der == certificate.issuer.public_bytes())


def _subject_key_identifier(certificate: x509.Certificate) -> bytes | None:
    try:
        return certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return None


def _verify_trust(
    signer: x509.Certificate,
    intermediates: list[x509.Certificate],
    trust_anchors: Sequence[x509.Certificate],
    now: dt.datetime,
) -> None:
    """The signer must chain to a trusted authority, be valid now and fit for e-mail signing."""
    if not trust_anchors:
        raise SignerNotTrusted("no trusted authority configured")
    # The Web PKI end-entity profile demands clientAuth/serverAuth; S/MIME certificates carry
    # emailProtection instead, so the end-entity extensions are checked below by hand.
    verifier = (
        PolicyBuilder()
        .store(Store(list(trust_anchors)))
        .time(now)
        .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ExtensionPolicy.permit_all())
        .build_client_verifier()
    )
    try:
        verifier.verify(signer, intermediates)
    except (VerificationError, ValueError, UnsupportedAlgorithm) as exc:
        raise SignerNotTrusted(f"the signer's certificate is not trusted: {exc}") from exc
    try:
        usages = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        key_usage = signer.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound as exc:
        raise SignerNotTrusted("the signer's certificate lacks key usage or extended key usage") from exc
    if ExtendedKeyUsageOID.EMAIL_PROTECTION not in usages:
        raise SignerNotTrusted("the signer's certificate is not for e-mail protection")
    if not (key_usage.digital_signature or key_usage.content_commitment):
        raise SignerNotTrusted("the signer's certificate is not for signing")
