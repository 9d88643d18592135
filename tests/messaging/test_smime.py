import base64
import datetime as dt
import email
import email.policy
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from naho.messaging import smime
from naho.messaging.errors import (
    MessageMalformed,
    MessageNotEncrypted,
    MessageNotForUs,
    MessageNotSigned,
    MessagingError,
    SignatureInvalid,
    SignerAddressMismatch,
    SignerNotTrusted,
)
from tests.conftest import service_missing
from tests.messaging.conftest import NOW

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
PDF = b"%PDF-1.4\n% lettre de liaison\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"
ZIP = b"PK\x03\x04" + b"\x00\xff" * 300


def content():
    return smime.build_content(
        "Bonjour,\nveuillez trouver la lettre de liaison de votre patient.\n",
        [
            smime.Attachment("IHE_XDM.ZIP", "application/zip", ZIP),
            smime.Attachment("lettre.pdf", "application/pdf", PDF),
        ],
    )


def seal(pki, *, sender=None, to=None, letter_id="letter-42"):
    recipient = to or pki.alice
    return smime.seal_message(
        letter_id=letter_id,
        domain="ght-test.mssante.fr",
        sender=sender or pki.group,
        to=[recipient.email],
        recipient_certificates=[recipient.certificate],
        subject="Lettre de liaison",
        content=content(),
        date=NOW,
        mss_headers=[("X-MSS-CODECDA", "11490-0")],
    )


def open_as(pki, raw, identity=None, anchors=None, now=NOW):
    return smime.open_message(
        raw, recipient=identity or pki.alice, trust_anchors=anchors or [pki.ca.certificate], now=now
    )


def envelope(entity: bytes, certificate, headers: str) -> bytes:
    """Encrypt any entity for a recipient, to forge inbound messages naho would not produce."""
    body = pkcs7.PKCS7EnvelopeBuilder().set_data(entity).add_recipient(certificate).encrypt(
        serialization.Encoding.SMIME, []
    )
    return headers.encode() + body


def decrypted_entity(pki, raw: bytes) -> bytes:
    return pkcs7.pkcs7_decrypt_smime(raw, pki.alice.certificate, pki.alice.private_key, [])


# --- acceptance -------------------------------------------------------------------------


def test_a_sealed_message_opens_with_its_body_and_attachments(pki):
    message = seal(pki)
    opened = open_as(pki, message.as_bytes())
    assert opened.sender == "secretariat@ght-test.mssante.fr"
    assert opened.signer == pki.group.certificate
    assert opened.message_id == smime.message_id("letter-42", "ght-test.mssante.fr")
    assert "lettre de liaison de votre patient" in opened.body_text()
    assert [(a.filename, a.content_type, a.data) for a in opened.attachments()] == [
        ("IHE_XDM.ZIP", "application/zip", ZIP),
        ("lettre.pdf", "application/pdf", PDF),
    ]
    assert opened.headers["X-MSS-CODECDA"] == "11490-0"


def test_the_outer_message_shows_no_clinical_content(pki):
    raw = seal(pki).as_bytes()
    assert b"lettre de liaison de votre patient" not in raw
    assert b"%PDF" not in raw and b"lettre.pdf" not in raw
    assert b"application/pkcs7-mime" in raw and b"enveloped-data" in raw


def test_the_sender_can_read_its_own_sent_copy(pki):
    opened = open_as(pki, seal(pki).as_bytes(), identity=pki.group)
    assert [a.data for a in opened.attachments()] == [ZIP, PDF]


def test_a_message_rewritten_with_bare_lf_by_a_mail_store_still_opens(pki):
    raw = seal(pki).as_bytes().replace(b"\r\n", b"\n")
    assert open_as(pki, raw).attachments()[1].data == PDF


def test_message_id_is_stable_for_a_letter_and_differs_between_letters(pki):
    first, retry = seal(pki), seal(pki)
    assert first["Message-ID"] == retry["Message-ID"] == smime.message_id("letter-42", "ght-test.mssante.fr")
    assert first["Date"] == retry["Date"]
    assert seal(pki, letter_id="letter-43")["Message-ID"] != first["Message-ID"]
    assert first["Message-ID"].startswith("<") and first["Message-ID"].endswith("@ght-test.mssante.fr>")


@pytest.mark.parametrize(("letter_id", "domain"), [("", "ght.fr"), ("x", "not a domain"), ("x", "a@b.fr")])
def test_message_id_refuses_an_empty_letter_or_a_bad_domain(letter_id, domain):
    with pytest.raises(ValueError):
        smime.message_id(letter_id, domain)


def test_naive_date_is_refused(pki):
    with pytest.raises(ValueError, match="timezone"):
        smime.seal_message(
            letter_id="l", domain="ght.fr", sender=pki.group, to=[pki.alice.email],
            recipient_certificates=[pki.alice.certificate], subject="s", content=content(),
            date=NOW.replace(tzinfo=None),
        )


# --- interoperability with OpenSSL ----------------------------------------------------------


def write_pki(pki, tmp_path):
    pki.ca.write(tmp_path, "alice", pki.alice)
    pki.ca.write(tmp_path, "group", pki.group)
    return tmp_path


def openssl(*args, cwd):
    if not shutil.which(OPENSSL):
        service_missing("the OpenSSL command line is not installed (apt-get install openssl)")
    return subprocess.run([OPENSSL, *args], cwd=cwd, capture_output=True, check=False)


def test_openssl_decrypts_and_verifies_what_naho_sends(pki, tmp_path):
    write_pki(pki, tmp_path)
    (tmp_path / "mail.eml").write_bytes(seal(pki).as_bytes())
    decrypt = openssl("smime", "-decrypt", "-in", "mail.eml", "-recip", "alice.crt", "-inkey", "alice.key",
                      "-out", "signed.eml", cwd=tmp_path)
    assert decrypt.returncode == 0, decrypt.stderr
    verify = openssl("smime", "-verify", "-in", "signed.eml", "-CAfile", "ca.crt", "-purpose", "smimesign",
                     "-attime", str(int(NOW.timestamp())), "-out", "content.eml", cwd=tmp_path)
    assert verify.returncode == 0, verify.stderr
    assert b"Verification successful" in verify.stderr
    inner = email.message_from_bytes((tmp_path / "content.eml").read_bytes(), policy=email.policy.default)
    assert [p.get_payload(decode=True) for p in inner.iter_attachments()] == [ZIP, PDF]


def test_openssl_refuses_naho_mail_against_another_authority(pki, tmp_path):
    write_pki(pki, tmp_path)
    (tmp_path / "rogue.crt").write_bytes(pki.rogue_ca.certificate.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "mail.eml").write_bytes(seal(pki).as_bytes())
    openssl("smime", "-decrypt", "-in", "mail.eml", "-recip", "alice.crt", "-inkey", "alice.key",
            "-out", "signed.eml", cwd=tmp_path)
    verify = openssl("smime", "-verify", "-in", "signed.eml", "-CAfile", "rogue.crt",
                     "-attime", str(int(NOW.timestamp())), "-out", "content.eml", cwd=tmp_path)
    assert verify.returncode != 0


def test_naho_opens_mail_signed_and_encrypted_by_openssl(pki, tmp_path):
    write_pki(pki, tmp_path)
    (tmp_path / "content.eml").write_bytes(content().as_bytes(policy=email.policy.SMTP))
    sign = openssl("smime", "-sign", "-in", "content.eml", "-signer", "group.crt", "-inkey", "group.key",
                   "-out", "signed.eml", cwd=tmp_path)
    assert sign.returncode == 0, sign.stderr
    encrypt = openssl("smime", "-encrypt", "-aes256", "-in", "signed.eml", "-from", pki.group.email,
                      "-to", pki.alice.email, "-subject", "Lettre", "-out", "mail.eml", "alice.crt", cwd=tmp_path)
    assert encrypt.returncode == 0, encrypt.stderr
    opened = open_as(pki, (tmp_path / "mail.eml").read_bytes())
    assert opened.sender == pki.group.email
    assert [a.data for a in opened.attachments()] == [ZIP, PDF]


# --- refusals -------------------------------------------------------------------------------


def test_a_tampered_signed_body_is_refused(pki):
    entity = decrypted_entity(pki, seal(pki).as_bytes())
    assert entity.count(b"veuillez") == 1
    forged = envelope(entity.replace(b"veuillez", b"VEUILLEZ"), pki.alice.certificate,
                      f"From: {pki.group.email}\r\n")
    with pytest.raises(SignatureInvalid, match="altered"):
        open_as(pki, forged)


def test_a_tampered_attachment_is_refused(pki):
    entity = decrypted_entity(pki, seal(pki).as_bytes())
    pdf_b64 = base64.encodebytes(PDF).split(b"\n")[3]
    assert pdf_b64 in entity
    altered = pdf_b64[:-4] + (b"AAAA" if pdf_b64[-4:] != b"AAAA" else b"BBBB")
    forged = envelope(entity.replace(pdf_b64, altered), pki.alice.certificate, f"From: {pki.group.email}\r\n")
    with pytest.raises(SignatureInvalid):
        open_as(pki, forged)


def test_an_untouched_reenveloped_entity_is_accepted(pki):
    # The control for the two tests above: re-enveloping alone does not break anything.
    entity = decrypted_entity(pki, seal(pki).as_bytes())
    assert open_as(pki, envelope(entity, pki.alice.certificate, f"From: {pki.group.email}\r\n")).attachments()


def test_a_corrupted_envelope_is_refused(pki):
    raw = seal(pki).as_bytes()
    head, _, body = raw.partition(b"\r\n\r\n")
    der = bytearray(base64.b64decode(body))
    der[-40] ^= 0xFF  # inside the encrypted content
    forged = head + b"\r\n\r\n" + base64.encodebytes(bytes(der))
    with pytest.raises(MessagingError):
        open_as(pki, forged)


def test_a_signature_by_an_untrusted_authority_is_refused(pki):
    message = seal(pki, sender=pki.impostor)
    with pytest.raises(SignerNotTrusted):
        open_as(pki, message.as_bytes())


def test_the_trusted_signer_is_refused_when_we_trust_another_authority(pki):
    with pytest.raises(SignerNotTrusted):
        open_as(pki, seal(pki).as_bytes(), anchors=[pki.rogue_ca.certificate])


def test_an_expired_signer_certificate_is_refused(pki):
    with pytest.raises(SignerNotTrusted):
        open_as(pki, seal(pki).as_bytes(), now=NOW + dt.timedelta(days=900))


def test_a_signer_who_is_not_the_from_address_is_refused(pki):
    message = seal(pki, sender=pki.bob)  # Bob signs...
    message.replace_header("From", pki.group.email)  # ...but claims to be the group's mailbox
    with pytest.raises(SignerAddressMismatch):
        open_as(pki, message.as_bytes())


def test_an_encrypted_but_unsigned_message_is_refused(pki):
    entity = content().as_bytes(policy=email.policy.SMTP)
    forged = envelope(entity, pki.alice.certificate, f"From: {pki.group.email}\r\n")
    with pytest.raises(MessageNotSigned):
        open_as(pki, forged)


def test_a_signed_but_unencrypted_message_is_refused(pki):
    signed = (
        pkcs7.PKCS7SignatureBuilder().set_data(content().as_bytes(policy=email.policy.SMTP))
        .add_signer(pki.group.certificate, pki.group.private_key, hashes.SHA256())
        .sign(serialization.Encoding.SMIME, [pkcs7.PKCS7Options.DetachedSignature])
    )
    with pytest.raises(MessageNotEncrypted):
        open_as(pki, f"From: {pki.group.email}\r\n".encode() + signed)


def test_a_plain_message_is_refused(pki):
    plain = content()
    plain["From"] = pki.group.email
    with pytest.raises(MessageNotEncrypted):
        open_as(pki, plain.as_bytes())


def test_a_message_for_another_recipient_is_refused(pki):
    with pytest.raises(MessageNotForUs):
        open_as(pki, seal(pki, to=pki.bob).as_bytes(), identity=pki.alice)


def test_a_signature_part_that_is_not_pkcs7_is_refused(pki):
    entity = decrypted_entity(pki, seal(pki).as_bytes())
    forged_entity = entity.replace(b"Content-Type: application/x-pkcs7-signature", b"Content-Type: text/plain", 1)
    forged_entity = forged_entity.replace(b"Content-Type: application/pkcs7-signature", b"Content-Type: text/plain", 1)
    assert forged_entity != entity
    with pytest.raises(MessageNotSigned):
        open_as(pki, envelope(forged_entity, pki.alice.certificate, f"From: {pki.group.email}\r\n"))


def test_garbage_inside_the_envelope_is_refused(pki):
    forged = envelope(b"Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; "
                      b"boundary=\"b\"\r\n\r\n--b\r\nhello\r\n--b--\r\n", pki.alice.certificate,
                      f"From: {pki.group.email}\r\n")
    with pytest.raises(MessageMalformed):
        open_as(pki, forged)


def test_every_refusal_is_a_messaging_error():
    for error in (MessageMalformed, MessageNotEncrypted, MessageNotForUs, MessageNotSigned, SignatureInvalid,
                  SignerAddressMismatch, SignerNotTrusted):
        assert issubclass(error, MessagingError)


def test_recipients_of_lists_to_and_cc(pki):
    message = seal(pki)
    message["Cc"] = "Bob <bob.durand@medecin.mssante.fr>"
    assert smime.recipients_of(message) == [pki.alice.email, pki.bob.email]


def test_mssante_headers_are_carried_and_nothing_else(pki):
    def sealed(headers):  # type: ignore[no-untyped-def]
        return smime.seal_message(
            letter_id="l", domain="ght.fr", sender=pki.group, to=[pki.alice.email],
            recipient_certificates=[pki.alice.certificate], subject="s", content=content(), date=NOW,
            mss_headers=headers)
    message = sealed([("X-MSS-CODECDA", "11490-0"), ("X-MSS-CODECDA", "11502-2")])
    assert message.get_all("X-MSS-CODECDA") == ["11490-0", "11502-2"]  # multi-valued: one per document
    for refused in ([("X-Mailer", "naho")], [("X-MSS-CODECDA", "11490-0\r\nBcc: eve@example.org")]):
        with pytest.raises(ValueError):
            sealed(refused)


def test_a_message_with_two_from_addresses_is_refused(pki):
    raw = f"From: {pki.bob.email}\r\n".encode() + seal(pki).as_bytes()  # a second From header
    with pytest.raises(MessageMalformed, match="From"):
        open_as(pki, raw)
    message = seal(pki)
    message.replace_header("From", f"{pki.group.email}, {pki.bob.email}")
    with pytest.raises(MessageMalformed, match="From"):
        open_as(pki, message.as_bytes())


def test_a_header_injection_through_the_subject_is_impossible(pki):
    with pytest.raises(ValueError):
        smime.seal_message(
            letter_id="l", domain="ght.fr", sender=pki.group, to=[pki.alice.email],
            recipient_certificates=[pki.alice.certificate], subject="Lettre\r\nBcc: eve@example.org",
            content=content(), date=NOW,
        )


def openssl_signed_for_alice(pki, tmp_path, *sign_args, command="smime"):
    """Sign with openssl using extra options, envelope for Alice, and return the raw message."""
    write_pki(pki, tmp_path)
    pki.ca.write(tmp_path, "bob", pki.bob)
    (tmp_path / "content.eml").write_bytes(content().as_bytes(policy=email.policy.SMTP))
    sign = openssl(command, "-sign", "-in", "content.eml", "-signer", "group.crt", "-inkey", "group.key",
                   *sign_args, "-out", "signed.eml", cwd=tmp_path)
    assert sign.returncode == 0, sign.stderr
    assert (tmp_path / "signed.eml").exists(), sign.stderr
    encrypt = openssl("smime", "-encrypt", "-aes256", "-in", "signed.eml", "-from", pki.group.email,
                      "-to", pki.alice.email, "-out", "mail.eml", "alice.crt", cwd=tmp_path)
    assert encrypt.returncode == 0, encrypt.stderr
    return (tmp_path / "mail.eml").read_bytes()


def test_a_sha1_signature_is_refused(pki, tmp_path):
    raw = openssl_signed_for_alice(pki, tmp_path, "-md", "sha1")
    with pytest.raises(SignatureInvalid, match="sha1"):
        open_as(pki, raw)


def test_opaque_signed_data_is_refused(pki, tmp_path):
    raw = openssl_signed_for_alice(pki, tmp_path, "-nodetach")
    with pytest.raises(MessageNotSigned, match="opaque"):
        open_as(pki, raw)


def test_two_signers_are_refused(pki, tmp_path):
    raw = openssl_signed_for_alice(pki, tmp_path, "-signer", "bob.crt", "-inkey", "bob.key")
    with pytest.raises(MessageMalformed, match="one signer"):
        open_as(pki, raw)


def test_a_certificate_of_our_authority_not_meant_for_email_is_refused(pki):
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    from naho.messaging.pki import Identity

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "web server")]))
        .issuer_name(pki.ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(hours=1))
        .not_valid_after(NOW + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(pki.alice.certificate.extensions.get_extension_for_class(x509.KeyUsage).value, critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(pki.group.email)]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(pki.ca.key.public_key()), critical=False)
        .sign(pki.ca.key, hashes.SHA256())
    )
    web = Identity(certificate, key)
    with pytest.raises(SignerNotTrusted, match="e-mail protection"):
        open_as(pki, seal(pki, sender=web).as_bytes())


def test_a_certificate_of_someone_not_addressed_is_refused_when_sealing(pki):
    with pytest.raises(ValueError, match="none of the addressees"):
        smime.seal_message(
            letter_id="l", domain="ght.fr", sender=pki.group, to=[pki.alice.email],
            recipient_certificates=[pki.alice.certificate, pki.bob.certificate], subject="s",
            content=content(), date=NOW,
        )


def test_an_addressee_without_a_certificate_is_refused_when_sealing(pki):
    with pytest.raises(ValueError, match="no certificate"):
        smime.seal_message(
            letter_id="l", domain="ght.fr", sender=pki.group, to=[pki.alice.email, pki.bob.email],
            recipient_certificates=[pki.alice.certificate], subject="s", content=content(), date=NOW,
        )


def test_several_addressees_each_open_the_same_message(pki):
    message = smime.seal_message(
        letter_id="l", domain="ght.fr", sender=pki.group, to=[f"Alice <{pki.alice.email.upper()}>", pki.bob.email],
        recipient_certificates=[pki.alice.certificate, pki.bob.certificate], subject="s", content=content(), date=NOW,
    )
    for identity in (pki.alice, pki.bob):
        assert open_as(pki, message.as_bytes(), identity=identity).attachments()[1].data == PDF


def test_a_signature_without_the_signers_certificate_is_refused(pki, tmp_path):
    raw = openssl_signed_for_alice(pki, tmp_path, "-nocerts")
    with pytest.raises(MessageNotSigned, match="certificate is not included"):
        open_as(pki, raw)


def test_an_rsa_pss_signature_is_refused_for_now(pki, tmp_path):
    raw = openssl_signed_for_alice(pki, tmp_path, "-keyopt", "rsa_padding_mode:pss", command="cms")
    with pytest.raises(SignatureInvalid, match="not accepted"):
        open_as(pki, raw)


def test_a_plain_openssl_cms_signature_is_accepted(pki, tmp_path):
    # The control for the PSS refusal: the same command without PSS passes every check.
    raw = openssl_signed_for_alice(pki, tmp_path, command="cms")
    assert [a.data for a in open_as(pki, raw).attachments()] == [ZIP, PDF]


def test_a_signer_under_an_intermediate_authority_is_trusted_through_the_root(pki, tmp_path):
    message = smime.seal_message(
        letter_id="l", domain="medecin.mssante.fr", sender=pki.carol, to=[pki.alice.email],
        recipient_certificates=[pki.alice.certificate], subject="s", content=content(), date=NOW,
    )
    opened = open_as(pki, message.as_bytes(), anchors=[pki.root.certificate])
    assert opened.sender == pki.carol.email
    with pytest.raises(SignerNotTrusted):
        open_as(pki, message.as_bytes(), anchors=[pki.ca.certificate])
    # OpenSSL builds the same path from the certificates the signature carries.
    write_pki(pki, tmp_path)
    (tmp_path / "root.crt").write_bytes(pki.root.certificate.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "mail.eml").write_bytes(message.as_bytes())
    openssl("smime", "-decrypt", "-in", "mail.eml", "-recip", "alice.crt", "-inkey", "alice.key",
            "-out", "signed.eml", cwd=tmp_path)
    verify = openssl("smime", "-verify", "-in", "signed.eml", "-CAfile", "root.crt", "-purpose", "smimesign",
                     "-attime", str(int(NOW.timestamp())), "-out", "content.eml", cwd=tmp_path)
    assert verify.returncode == 0, verify.stderr


def test_a_non_ascii_multipart_boundary_is_refused(pki):
    entity = decrypted_entity(pki, seal(pki).as_bytes())
    boundary = email.message_from_bytes(entity, policy=email.policy.SMTP).get_boundary()
    forged = entity.replace(boundary.encode(), "é".encode() + boundary.encode()[1:])
    with pytest.raises(MessageMalformed, match="boundary"):
        open_as(pki, envelope(forged, pki.alice.certificate, f"From: {pki.group.email}\r\n"))
