import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from naho.messaging.errors import PkiConfigurationInvalid
from naho.messaging.pki import PkiFiles, certificate_emails, create_demo_pki, load_identity, load_trust_anchors


def test_professional_certificate_carries_email_and_email_protection(pki):
    cert = pki.alice.certificate
    assert certificate_emails(cert) == ["alice.martin@medecin.mssante.fr"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.EMAIL_PROTECTION]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert cert.issuer == pki.ca.certificate.subject
    assert cert.public_key().key_size >= 2048
    assert cert.signature_hash_algorithm.name == "sha256"
    rpps = cert.subject.get_attributes_for_oid(x509.oid.NameOID.SERIAL_NUMBER)
    assert [a.value for a in rpps] == ["10001234567"]


def test_authority_is_a_ca_that_signed_the_certificates(pki):
    ca = pki.ca.certificate
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    pki.group.certificate.verify_directly_issued_by(ca)
    with pytest.raises(ValueError):
        pki.impostor.certificate.verify_directly_issued_by(ca)


def test_identity_and_anchors_load_from_the_written_pem_files(pki, tmp_path):
    files = pki.ca.write(tmp_path, "group", pki.group)
    identity = load_identity(files)
    assert identity.certificate == pki.group.certificate
    assert identity.email == "secretariat@ght-test.mssante.fr"
    assert load_trust_anchors(files) == [pki.ca.certificate]
    assert (files.private_key.stat().st_mode & 0o077) == 0


def test_a_key_that_is_not_the_certificates_is_refused(pki, tmp_path):
    group = pki.ca.write(tmp_path, "group", pki.group)
    alice = pki.ca.write(tmp_path, "alice", pki.alice)
    mixed = PkiFiles(certificate=group.certificate, private_key=alice.private_key, trust_anchors=group.trust_anchors)
    with pytest.raises(PkiConfigurationInvalid, match="does not match"):
        load_identity(mixed)


def test_missing_or_garbage_files_are_refused(tmp_path):
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"not a certificate")
    files = PkiFiles(certificate=tmp_path / "absent.crt", private_key=garbage, trust_anchors=(garbage,))
    with pytest.raises(PkiConfigurationInvalid):
        load_identity(files)
    with pytest.raises(PkiConfigurationInvalid):
        load_trust_anchors(files)
    with pytest.raises(PkiConfigurationInvalid, match="no trusted authority"):
        load_trust_anchors(PkiFiles(certificate=garbage, private_key=garbage, trust_anchors=()))


def test_a_demo_pki_lets_the_group_write_to_a_professional(tmp_path):
    from naho.messaging import smime
    from tests.messaging.conftest import NOW

    files = create_demo_pki(
        tmp_path, NOW, organisation="GHT Démo", group_email="secretariat@ght-demo.mssante.fr",
        professionals={"alice@medecin.mssante.fr": "Alice Martin"},
    )
    group = load_identity(files["secretariat@ght-demo.mssante.fr"])
    alice = load_identity(files["alice@medecin.mssante.fr"])
    message = smime.seal_message(
        letter_id="demo", domain="ght-demo.mssante.fr", sender=group, to=[alice.email],
        recipient_certificates=[alice.certificate], subject="Démo", content=smime.build_content("Bonjour", []),
        date=NOW,
    )
    opened = smime.open_message(
        message.as_bytes(), recipient=alice, trust_anchors=load_trust_anchors(files[alice.email]), now=NOW
    )
    assert opened.sender == "secretariat@ght-demo.mssante.fr"
    assert opened.body_text().strip() == "Bonjour"


def test_an_existing_key_file_is_narrowed_to_its_owner(pki, tmp_path):
    key = tmp_path / "group.key"
    key.write_bytes(b"old")
    key.chmod(0o644)
    pki.ca.write(tmp_path, "group", pki.group)
    assert (key.stat().st_mode & 0o777) == 0o600


def test_an_intermediate_authority_chains_to_its_root(pki, tmp_path):
    assert pki.carol.chain == (pki.intermediate.certificate,)
    pki.carol.certificate.verify_directly_issued_by(pki.intermediate.certificate)
    pki.intermediate.certificate.verify_directly_issued_by(pki.root.certificate)
    files = pki.intermediate.write(tmp_path, "carol", pki.carol)
    loaded = load_identity(files)
    assert loaded.certificate == pki.carol.certificate
    assert loaded.chain == (pki.intermediate.certificate,)
    assert load_trust_anchors(files) == [pki.root.certificate]
