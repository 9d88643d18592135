import datetime as dt
import hashlib
import io
import xml.etree.ElementTree as ET
import zipfile

import pytest

from naho.messaging import xdm
from naho.messaging.errors import XdmDocumentMismatch, XdmPackageInvalid, XdmTooLarge, XdmUnsafePath

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 4 + b"\n%%EOF\n"
CDA = b'<?xml version="1.0" encoding="UTF-8"?><ClinicalDocument xmlns="urn:hl7-org:v3"/>'
INS = "180017512345660"
RIM = "{urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0}"


def submission(**changes):
    values = dict(
        uid_root="1.2.250.1.999.42.7",
        number=1234,
        patient_id=xdm.patient_identifier(ins=INS, ipp="123456", ipp_oid="1.2.250.1.999.42.1"),
        author=xdm.Author(
            "10001234567^MARTIN^Alice^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^RPPS", "GHT Test^^^^^^^^^123456789"
        ),
        title="Lettre de liaison",
        submitted_at=NOW,
        documents=[
            xdm.Document(PDF, "application/pdf", "Lettre de liaison", xdm.TYPE_DISCHARGE_LETTER, xdm.FORMAT_PDF, NOW),
            xdm.Document(CDA, "text/xml", "Lettre de liaison (CDA)", xdm.TYPE_DISCHARGE_LETTER, xdm.FORMAT_CDA, NOW),
        ],
    )
    values.update(changes)
    return xdm.Submission(**values)


def rezip(package: bytes, replace: dict[str, bytes] | None = None, add: dict[str, bytes] | None = None,
          drop: tuple[str, ...] = ()) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(package))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            if info.filename in drop:
                continue
            target.writestr(info.filename, (replace or {}).get(info.filename, source.read(info)))
        for name, data in (add or {}).items():
            target.writestr(name, data)
    return out.getvalue()


def metadata(package: bytes) -> bytes:
    return zipfile.ZipFile(io.BytesIO(package)).read("IHE_XDM/SUBSET01/METADATA.XML")


# --- acceptance -------------------------------------------------------------------------


def test_the_package_has_the_xdm_layout():
    names = zipfile.ZipFile(io.BytesIO(xdm.pack(submission()))).namelist()
    assert names == [
        "README.TXT", "INDEX.HTM", "IHE_XDM/SUBSET01/METADATA.XML",
        "IHE_XDM/SUBSET01/DOC0001.PDF", "IHE_XDM/SUBSET01/DOC0002.XML",
    ]


def test_metadata_is_a_submit_objects_request_with_entries_and_a_submission_set():
    root = ET.fromstring(metadata(xdm.pack(submission())))
    assert root.tag == "{urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0}SubmitObjectsRequest"
    entries = list(root.iter(f"{RIM}ExtrinsicObject"))
    assert [e.get("objectType") for e in entries] == [xdm.DOCUMENT_ENTRY_OBJECT_TYPE] * 2
    first = entries[0]
    slots = {s.get("name"): [v.text for v in s.iter(f"{RIM}Value")] for s in first.findall(f"{RIM}Slot")}
    assert slots["hash"] == [hashlib.sha1(PDF).hexdigest()]
    assert slots["size"] == [str(len(PDF))]
    assert slots["creationTime"] == ["20261125120000"]
    assert slots["URI"] == ["DOC0001.PDF"]
    ids = {x.get("identificationScheme"): x.get("value") for x in first.findall(f"{RIM}ExternalIdentifier")}
    assert ids[xdm.DE_PATIENT_ID] == f"{INS}^^^&1.2.250.1.213.1.4.8&ISO^NH"
    assert ids[xdm.DE_UNIQUE_ID] == "1.2.250.1.999.42.7.1234.1"
    type_code = [c for c in first.findall(f"{RIM}Classification") if c.get("classificationScheme") == xdm.DE_TYPE_CODE]
    assert type_code[0].get("nodeRepresentation") == "11490-0"
    author = next(c for c in first.findall(f"{RIM}Classification") if c.get("classificationScheme") == xdm.DE_AUTHOR)
    assert "MARTIN" in ET.tostring(author, encoding="unicode")
    (package,) = root.iter(f"{RIM}RegistryPackage")
    set_ids = {x.get("identificationScheme"): x.get("value") for x in package.findall(f"{RIM}ExternalIdentifier")}
    assert set_ids[xdm.SS_UNIQUE_ID] == "1.2.250.1.999.42.7.1234"
    assert len(list(root.iter(f"{RIM}Association"))) == 2


def test_a_package_round_trips_with_its_documents():
    (unpacked,) = xdm.unpack(xdm.pack(submission()))
    assert unpacked.subset == "SUBSET01"
    assert unpacked.unique_id == "1.2.250.1.999.42.7.1234"
    assert unpacked.patient_id.startswith(INS)
    assert [(d.uri, d.mime_type, d.data) for d in unpacked.documents] == [
        ("DOC0001.PDF", "application/pdf", PDF), ("DOC0002.XML", "text/xml", CDA),
    ]
    assert unpacked.documents[0].type_code == "11490-0"
    assert unpacked.documents[0].class_code == "10"
    assert unpacked.documents[1].title == "Lettre de liaison (CDA)"


def test_the_same_submission_packs_to_the_same_bytes():
    assert xdm.pack(submission()) == xdm.pack(submission())
    assert xdm.pack(submission()) != xdm.pack(submission(number=1235))


def test_without_a_qualified_ins_the_ipp_under_the_groups_oid_is_used():
    assert xdm.patient_identifier(ins=None, ipp="123456", ipp_oid="1.2.250.1.999.42.1") == (
        "123456^^^&1.2.250.1.999.42.1&ISO^PI"
    )
    with pytest.raises(ValueError):
        xdm.patient_identifier(ins="12345", ipp="1", ipp_oid="1.2")
    with pytest.raises(ValueError):
        xdm.patient_identifier(ins=None, ipp="1^2", ipp_oid="1.2")
    with pytest.raises(ValueError):
        xdm.patient_identifier(ins=None, ipp="1", ipp_oid="not.an.oid")


def test_bad_submission_inputs_are_refused():
    with pytest.raises(ValueError):
        xdm.pack(submission(uid_root="1.2.03"))
    with pytest.raises(ValueError):
        xdm.pack(submission(documents=[]))
    with pytest.raises(ValueError):
        xdm.pack(submission(submitted_at=NOW.replace(tzinfo=None)))


def test_index_escapes_titles():
    package = xdm.pack(submission(title="<script>alert(1)</script>"))
    index = zipfile.ZipFile(io.BytesIO(package)).read("INDEX.HTM")
    assert b"<script>" not in index and b"&lt;script&gt;" in index


# --- refusals -------------------------------------------------------------------------------


def test_a_document_whose_hash_differs_is_refused():
    package = xdm.pack(submission())
    altered = PDF.replace(b"1.4", b"1.5")
    assert len(altered) == len(PDF)
    with pytest.raises(XdmDocumentMismatch, match="SHA-1"):
        xdm.unpack(rezip(package, replace={"IHE_XDM/SUBSET01/DOC0001.PDF": altered}))


def test_a_document_whose_size_differs_is_refused():
    package = xdm.pack(submission())
    with pytest.raises(XdmDocumentMismatch, match="size"):
        xdm.unpack(rezip(package, replace={"IHE_XDM/SUBSET01/DOC0001.PDF": PDF + b" "}))


def test_a_listed_document_missing_from_the_zip_is_refused():
    package = xdm.pack(submission())
    with pytest.raises(XdmDocumentMismatch, match="missing"):
        xdm.unpack(rezip(package, drop=("IHE_XDM/SUBSET01/DOC0002.XML",)))


@pytest.mark.parametrize(
    "name",
    ["../evil.sh", "IHE_XDM/SUBSET01/../../evil", "/etc/passwd", "C:/evil", "IHE_XDM\\SUBSET01\\x", "a//b"],
)
def test_zip_slip_paths_are_refused(name):
    with pytest.raises(XdmUnsafePath):
        xdm.unpack(rezip(xdm.pack(submission()), add={name: b"x"}))


def test_an_entry_uri_leaving_the_subset_is_refused():
    package = xdm.pack(submission())
    forged = metadata(package).replace(b">DOC0001.PDF<", b">../../README.TXT<")
    with pytest.raises(XdmUnsafePath):
        xdm.unpack(rezip(package, replace={"IHE_XDM/SUBSET01/METADATA.XML": forged}))


def test_an_oversized_entry_is_refused():
    package = xdm.pack(submission())
    with pytest.raises(XdmTooLarge):
        xdm.unpack(package, xdm.Limits(max_entry=len(PDF) - 1))


def test_a_zip_bomb_is_refused_before_it_is_inflated():
    bomb = rezip(xdm.pack(submission()), add={"IHE_XDM/SUBSET01/ZEROS.BIN": bytes(20 * 1024 * 1024)})
    assert len(bomb) < 100 * 1024
    with pytest.raises(XdmTooLarge, match="ratio"):
        xdm.unpack(bomb)


def test_too_many_entries_or_too_large_in_total_are_refused():
    package = xdm.pack(submission())
    with pytest.raises(XdmTooLarge):
        xdm.unpack(package, xdm.Limits(max_entries=3))
    with pytest.raises(XdmTooLarge):
        xdm.unpack(package, xdm.Limits(max_total=len(PDF)))
    with pytest.raises(XdmTooLarge):
        xdm.unpack(package, xdm.Limits(max_archive=100))


def test_metadata_with_a_doctype_is_refused():
    package = xdm.pack(submission())
    forged = metadata(package).replace(
        b"?>", b'?><!DOCTYPE lolz [<!ENTITY lol "lol">]>', 1
    )
    with pytest.raises(XdmPackageInvalid, match="DOCTYPE"):
        xdm.unpack(rezip(package, replace={"IHE_XDM/SUBSET01/METADATA.XML": forged}))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not a zip", "not a zip"),
        (None, "METADATA.XML"),
    ],
)
def test_malformed_packages_are_refused(data, message):
    if data is None:
        data = rezip(xdm.pack(submission()), drop=("IHE_XDM/SUBSET01/METADATA.XML",))
    with pytest.raises(XdmPackageInvalid, match=message):
        xdm.unpack(data)


def test_metadata_that_is_not_xml_or_not_ebrim_is_refused():
    package = xdm.pack(submission())
    with pytest.raises(XdmPackageInvalid, match="well-formed"):
        xdm.unpack(rezip(package, replace={"IHE_XDM/SUBSET01/METADATA.XML": b"<a>"}))
    with pytest.raises(XdmPackageInvalid, match="SubmitObjectsRequest"):
        xdm.unpack(rezip(package, replace={"IHE_XDM/SUBSET01/METADATA.XML": b"<a/>"}))


def test_an_entry_for_another_patient_is_refused():
    package = xdm.pack(submission())
    raw = metadata(package)
    entry_patient = f'value="{INS}^^^&amp;1.2.250.1.213.1.4.8&amp;ISO^NH"'.encode()
    assert raw.count(entry_patient) == 3  # two entries and the submission set
    forged = raw.replace(entry_patient, entry_patient.replace(INS.encode(), b"299999999999999"), 1)
    with pytest.raises(XdmPackageInvalid, match="patient id"):
        xdm.unpack(rezip(package, replace={"IHE_XDM/SUBSET01/METADATA.XML": forged}))


def test_duplicate_entries_are_refused():
    package = xdm.pack(submission())
    with pytest.raises(XdmPackageInvalid, match="duplicate"):
        xdm.unpack(rezip(package, add={"readme.txt": b"again"}))


def test_metadata_not_in_utf8_is_refused():
    package = xdm.pack(submission())
    as_utf16 = metadata(package).decode("utf-8").replace("utf-8", "utf-16").encode("utf-16")
    with pytest.raises(XdmPackageInvalid, match="UTF-8"):
        xdm.unpack(rezip(package, replace={"IHE_XDM/SUBSET01/METADATA.XML": as_utf16}))
    declared_latin1 = metadata(package).replace(b"encoding='utf-8'", b"encoding='iso-8859-1'")
    assert declared_latin1 != metadata(package)
    with pytest.raises(XdmPackageInvalid, match="UTF-8"):
        xdm.unpack(rezip(package, replace={"IHE_XDM/SUBSET01/METADATA.XML": declared_latin1}))
