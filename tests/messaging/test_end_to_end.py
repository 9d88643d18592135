"""A discharge letter as it will travel: XDM zip + PDF, signed and encrypted, read back by OpenSSL."""

import email
import email.policy

from naho.messaging import smime, xdm
from tests.messaging.conftest import NOW
from tests.messaging.test_smime import openssl, write_pki
from tests.messaging.test_xdm import PDF, submission


def test_openssl_reads_the_letter_and_its_xdm_unpacks_to_the_same_pdf(pki, tmp_path):
    package = xdm.pack(submission())
    content = smime.build_content(
        "Lettre de liaison en pièce jointe.",
        [
            smime.Attachment("IHE_XDM.ZIP", "application/zip", package),
            smime.Attachment("lettre.pdf", "application/pdf", PDF),
        ],
    )
    message = smime.seal_message(
        letter_id="stay-77/letter-1", domain="ght-test.mssante.fr", sender=pki.group, to=[pki.alice.email],
        recipient_certificates=[pki.alice.certificate], subject="Lettre de liaison", content=content, date=NOW,
    )
    write_pki(pki, tmp_path)
    (tmp_path / "mail.eml").write_bytes(message.as_bytes())
    decrypt = openssl("smime", "-decrypt", "-in", "mail.eml", "-recip", "alice.crt", "-inkey", "alice.key",
                      "-out", "signed.eml", cwd=tmp_path)
    assert decrypt.returncode == 0, decrypt.stderr
    verify = openssl("smime", "-verify", "-in", "signed.eml", "-CAfile", "ca.crt", "-purpose", "smimesign",
                     "-attime", str(int(NOW.timestamp())), "-out", "content.eml", cwd=tmp_path)
    assert verify.returncode == 0, verify.stderr

    inner = email.message_from_bytes((tmp_path / "content.eml").read_bytes(), policy=email.policy.default)
    attachments = {part.get_filename(): part.get_payload(decode=True) for part in inner.iter_attachments()}
    assert attachments["IHE_XDM.ZIP"] == package
    (unpacked,) = xdm.unpack(attachments["IHE_XDM.ZIP"])
    assert unpacked.documents[0].data == PDF == attachments["lettre.pdf"]

    # and naho's own inbound path agrees
    opened = smime.open_message(message.as_bytes(), recipient=pki.alice, trust_anchors=[pki.ca.certificate], now=NOW)
    (again,) = xdm.unpack(next(a.data for a in opened.attachments() if a.filename == "IHE_XDM.ZIP"))
    assert again.documents[0].data == PDF
