"""Mutated input never escapes as anything but a typed refusal, and never passes altered."""

import base64
import re

from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from naho.messaging import smime, xdm
from naho.messaging.errors import MessagingError, XdmPackageInvalid
from tests.messaging.conftest import NOW
from tests.messaging.test_smime import PDF as LETTER_PDF
from tests.messaging.test_smime import ZIP, decrypted_entity, envelope, seal
from tests.messaging.test_xdm import CDA, PDF, submission

PACKAGE = xdm.pack(submission())
flips = st.lists(st.tuples(st.integers(min_value=0), st.integers(min_value=1, max_value=255)), min_size=1, max_size=3)


def mutate(data: bytes, changes) -> bytes:
    mutated = bytearray(data)
    for position, mask in changes:
        mutated[position % len(mutated)] ^= mask
    return bytes(mutated)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(flips)
def test_a_mutated_package_is_refused_or_yields_the_original_documents(changes):
    try:
        (unpacked,) = xdm.unpack(mutate(PACKAGE, changes))
    except XdmPackageInvalid:
        return
    assert [d.data for d in unpacked.documents] == [PDF, CDA]


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=flips)
def test_a_mutated_signature_is_refused_or_changes_nothing_that_is_signed(pki, changes):
    entity = decrypted_entity(pki, seal(pki).as_bytes())
    found = re.search(rb"smime\.p7s\"?\r\n\r\n([A-Za-z0-9+/=\r\n]+)", entity)
    assert found
    der = base64.b64decode(found.group(1))
    mutated = mutate(der, changes)
    if mutated == der:  # two flips of the same byte cancelled out
        return
    forged_entity = (
        entity[: found.start(1)] + base64.encodebytes(mutated).replace(b"\n", b"\r\n") + entity[found.end(1) :]
    )
    forged = envelope(forged_entity, pki.alice.certificate, f"From: {pki.group.email}\r\n")
    try:
        opened = smime.open_message(forged, recipient=pki.alice, trust_anchors=[pki.ca.certificate], now=NOW)
    except MessagingError:
        return
    # Unsigned fields (e.g. the SignedData version, or the unused-bits octet of the certificate's
    # signature BIT STRING) may change without harm; the signed identity and content may not.
    assert opened.signer.tbs_certificate_bytes == pki.group.certificate.tbs_certificate_bytes
    assert opened.signer.signature == pki.group.certificate.signature
    assert [a.data for a in opened.attachments()] == [ZIP, LETTER_PDF]


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=flips)
def test_a_mutated_signed_entity_is_refused_or_changes_nothing_that_is_signed(pki, changes):
    entity = decrypted_entity(pki, seal(pki).as_bytes())
    forged = envelope(mutate(entity, changes), pki.alice.certificate, f"From: {pki.group.email}\r\n")
    try:
        opened = smime.open_message(forged, recipient=pki.alice, trust_anchors=[pki.ca.certificate], now=NOW)
    except MessagingError:
        return
    assert opened.signer.tbs_certificate_bytes == pki.group.certificate.tbs_certificate_bytes
    assert [a.data for a in opened.attachments()] == [ZIP, LETTER_PDF]


def test_the_unused_bits_octet_of_the_signers_certificate_changes_no_signed_identity(pki):
    # Found by the test above (random run): flipping the BIT STRING's unused-bits octet of the
    # certificate's signature leaves the TBS certificate and the signature value as they were.
    entity = decrypted_entity(pki, seal(pki).as_bytes())
    found = re.search(rb"smime\.p7s\"?\r\n\r\n([A-Za-z0-9+/=\r\n]+)", entity)
    assert found
    der = base64.b64decode(found.group(1))
    certificate = pki.group.certificate.public_bytes(Encoding.DER)
    tail = certificate.rindex(bytes.fromhex("0382010100"))  # BIT STRING, 257 octets, 0 unused bits
    position = der.index(certificate) + tail + 4
    forged_entity = (entity[: found.start(1)] + base64.encodebytes(mutate(der, [(position, 1)])).replace(b"\n", b"\r\n")
                     + entity[found.end(1):])
    forged = envelope(forged_entity, pki.alice.certificate, f"From: {pki.group.email}\r\n")
    try:
        opened = smime.open_message(forged, recipient=pki.alice, trust_anchors=[pki.ca.certificate], now=NOW)
    except MessagingError:
        return  # refusing is fine too
    assert opened.signer.tbs_certificate_bytes == pki.group.certificate.tbs_certificate_bytes
    assert [a.data for a in opened.attachments()] == [ZIP, LETTER_PDF]
