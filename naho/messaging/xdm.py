"""IHE XDM (ITI-32) packages: the IHE_XDM.ZIP attached to an MSSanté message.

Layout (IHE ITI TF-2b §3.32, and the ANS DMP/MSSanté kits):
    README.TXT                      who made the package, with which software
    INDEX.HTM                       a human-readable list of the contents
    IHE_XDM/SUBSET01/METADATA.XML   ebRIM SubmitObjectsRequest: submission set, document entries
    IHE_XDM/SUBSET01/DOC0001.PDF    the documents, named by the entries' URI slot

`pack` builds a package that is byte-identical for identical inputs (deterministic ids and zip
timestamps), so a retried letter carries the same attachment. `unpack` validates everything it
reads from outside: entry paths (no zip slip), sizes and compression ratios (no zip bomb), XML
without DOCTYPE (no entity expansion), each document's SHA-1 and size against its entry.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import io
import re
import uuid
import xml.etree.ElementTree as ET
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from naho.identity.rules import ins_is_valid
from naho.messaging.errors import XdmDocumentMismatch, XdmPackageInvalid, XdmTooLarge, XdmUnsafePath

LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
ET.register_namespace("lcm", LCM)
ET.register_namespace("rim", RIM)

# ebXML / XDS identifiers (IHE ITI TF-3 §4.2.5)
DOCUMENT_ENTRY_OBJECT_TYPE = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
SUBMISSION_SET_NODE = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
DE_AUTHOR = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"
DE_CLASS_CODE = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
DE_CONFIDENTIALITY_CODE = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
DE_FORMAT_CODE = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"
DE_FACILITY_TYPE_CODE = "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1"
DE_PRACTICE_SETTING_CODE = "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead"
DE_TYPE_CODE = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
DE_PATIENT_ID = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
DE_UNIQUE_ID = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
SS_AUTHOR = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d"
SS_CONTENT_TYPE_CODE = "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500"
SS_PATIENT_ID = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
SS_SOURCE_ID = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832"
SS_UNIQUE_ID = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"
HAS_MEMBER = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
CLASSIFICATION_OBJECT_TYPE = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Classification"
EXTERNAL_ID_OBJECT_TYPE = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:ExternalIdentifier"
ASSOCIATION_OBJECT_TYPE = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Association"

INS_OID = "1.2.250.1.213.1.4.8"  # INS-NIR, the qualified national health identifier
LOINC = "2.16.840.1.113883.6.1"
_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_UUID_NAMESPACE = uuid.UUID("0b8e5a52-7d0c-4a43-9f43-6c1a0e6f5a7e")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Code:
    code: str
    scheme: str
    display: str


# French value sets (ANS JDV): class "Compte rendu", LOINC type "Lettre de sortie", CI-SIS formats.
CLASS_REPORT = Code("10", "1.2.250.1.213.1.1.4.1", "Compte rendu")
TYPE_DISCHARGE_LETTER = Code("11490-0", LOINC, "Lettre de liaison à la sortie d'un établissement de soins")
TYPE_LAB_REPORT = Code("11502-2", LOINC, "CR d'examens biologiques")
TYPE_IMAGING_REPORT = Code("18748-4", LOINC, "CR d'imagerie médicale")
TYPE_EPISODE_SUMMARY = Code("34133-9", LOINC, "Synthèse d'épisode de soins")
FORMAT_PDF = Code("urn:ihe:iti:xds-sd:pdf:2008", "1.3.6.1.4.1.19376.1.2.3", "Document à corps non structuré en PDF")
FORMAT_CDA = Code("urn:asip:ci-sis:2010", "1.2.250.1.213.1.1.4.2.2", "Document à corps structuré")
CONFIDENTIALITY_NORMAL = Code("N", "2.16.840.1.113883.5.25", "Normal")
FACILITY_PUBLIC = Code("SA01", "1.2.250.1.71.4.2.4", "Etablissement public de santé")
PRACTICE_HOSPITAL = Code("ETABLISSEMENT", "1.2.250.1.213.1.1.4.9", "Etablissement de santé")


def patient_identifier(*, ins: str | None, ipp: str, ipp_oid: str) -> str:
    """The CX patient id: the INS under its OID when qualified, else the IPP under the group's OID."""
    if ins:
        if not ins_is_valid(ins):
            raise ValueError("an INS (NIR) has 13 characters (2A/2B for Corsica) and a matching 2-digit key")
        return f"{ins}^^^&{INS_OID}&ISO^NH"
    if not ipp or "^" in ipp or "&" in ipp or not _OID.match(ipp_oid):
        raise ValueError("an IPP and a valid OID are needed when the INS is not qualified")
    return f"{ipp}^^^&{ipp_oid}&ISO^PI"


@dataclass(frozen=True)
class Author:
    """The author, as XCN/XON strings (e.g. `10001234567^MARTIN^Alice^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^RPPS`)."""

    person: str
    institution: str


@dataclass(frozen=True)
class Document:
    data: bytes
    mime_type: str
    title: str
    type_code: Code
    format_code: Code
    created_at: dt.datetime
    class_code: Code = CLASS_REPORT
    confidentiality: Code = CONFIDENTIALITY_NORMAL


@dataclass(frozen=True)
class Submission:
    """What goes into one package. Ids are `<uid_root>.<number>` (set) and `.<number>.<n>` (documents)."""

    uid_root: str
    number: int
    patient_id: str
    author: Author
    title: str
    submitted_at: dt.datetime
    documents: Sequence[Document]
    content_type: Code = TYPE_DISCHARGE_LETTER
    software: str = "naho"

    @property
    def unique_id(self) -> str:
        return f"{self.uid_root}.{self.number}"


@dataclass(frozen=True)
class Limits:
    """Zip bomb guards for inbound packages (sizes are uncompressed bytes)."""

    max_archive: int = 50 * 1024 * 1024
    max_entries: int = 64
    max_entry: int = 30 * 1024 * 1024
    max_total: int = 60 * 1024 * 1024
    max_ratio: int = 200
    max_metadata: int = 1024 * 1024


@dataclass(frozen=True)
class UnpackedDocument:
    uri: str
    mime_type: str
    unique_id: str
    title: str
    type_code: str
    class_code: str
    created_at: str
    data: bytes


@dataclass(frozen=True)
class UnpackedSubmission:
    subset: str
    unique_id: str
    patient_id: str
    source_id: str
    documents: list[UnpackedDocument] = field(default_factory=list)


# --- pack ---------------------------------------------------------------------------------


_EXTENSIONS = {"application/pdf": "PDF", "text/xml": "XML", "application/xml": "XML", "application/fhir+json": "JSON"}


def pack(submission: Submission) -> bytes:
    """Build the IHE_XDM.ZIP for a submission; identical inputs give identical bytes."""
    if not _OID.match(submission.uid_root) or submission.number < 0:
        raise ValueError("uid_root must be an OID and number a non-negative integer")
    if not submission.documents:
        raise ValueError("a package needs at least one document")
    if len(submission.unique_id) + 1 + len(str(len(submission.documents))) > 64:
        raise ValueError("unique ids would exceed the 64 characters allowed for an OID")
    names = [
        f"DOC{i:04d}.{_EXTENSIONS.get(doc.mime_type, 'BIN')}" for i, doc in enumerate(submission.documents, 1)
    ]
    metadata = _metadata_xml(submission, names)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        _write(archive, "README.TXT", _readme(submission).encode("utf-8"))
        _write(archive, "INDEX.HTM", _index(submission, names).encode("utf-8"))
        _write(archive, "IHE_XDM/SUBSET01/METADATA.XML", metadata)
        for name, document in zip(names, submission.documents, strict=True):
            _write(archive, f"IHE_XDM/SUBSET01/{name}", document.data)
    return buffer.getvalue()


def _write(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)


def _ts(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return moment.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S")


def _entry_uuid(*parts: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_UUID_NAMESPACE, '|'.join(parts))}"


def _metadata_xml(submission: Submission, names: Sequence[str]) -> bytes:
    root = ET.Element(f"{{{LCM}}}SubmitObjectsRequest")
    objects = ET.SubElement(root, f"{{{RIM}}}RegistryObjectList")
    set_id = _entry_uuid(submission.unique_id, "set")
    entries = []
    for index, (name, document) in enumerate(zip(names, submission.documents, strict=True), 1):
        unique_id = f"{submission.unique_id}.{index}"
        entry_id = _entry_uuid(unique_id)
        entries.append(entry_id)
        entry = ET.SubElement(
            objects,
            f"{{{RIM}}}ExtrinsicObject",
            id=entry_id,
            mimeType=document.mime_type,
            objectType=DOCUMENT_ENTRY_OBJECT_TYPE,
        )
        _slot(entry, "creationTime", _ts(document.created_at))
        _slot(entry, "hash", hashlib.sha1(document.data).hexdigest())  # noqa: S324 - SHA-1 is what XDS metadata specifies
        _slot(entry, "languageCode", "fr-FR")
        _slot(entry, "size", str(len(document.data)))
        _slot(entry, "sourcePatientId", submission.patient_id)
        _slot(entry, "URI", name)
        _name(entry, document.title)
        _classification(entry, DE_AUTHOR, entry_id, "", None, submission.author)
        _classification(entry, DE_CLASS_CODE, entry_id, f"{unique_id}.c", document.class_code)
        _classification(entry, DE_CONFIDENTIALITY_CODE, entry_id, f"{unique_id}.n", document.confidentiality)
        _classification(entry, DE_FORMAT_CODE, entry_id, f"{unique_id}.f", document.format_code)
        _classification(entry, DE_FACILITY_TYPE_CODE, entry_id, f"{unique_id}.h", FACILITY_PUBLIC)
        _classification(entry, DE_PRACTICE_SETTING_CODE, entry_id, f"{unique_id}.p", PRACTICE_HOSPITAL)
        _classification(entry, DE_TYPE_CODE, entry_id, f"{unique_id}.t", document.type_code)
        _external_id(entry, DE_PATIENT_ID, entry_id, submission.patient_id, "XDSDocumentEntry.patientId")
        _external_id(entry, DE_UNIQUE_ID, entry_id, unique_id, "XDSDocumentEntry.uniqueId")
    package = ET.SubElement(objects, f"{{{RIM}}}RegistryPackage", id=set_id)
    _slot(package, "submissionTime", _ts(submission.submitted_at))
    _name(package, submission.title)
    _classification(package, SS_AUTHOR, set_id, "", None, submission.author)
    _classification(package, SS_CONTENT_TYPE_CODE, set_id, f"{submission.unique_id}.ct", submission.content_type)
    ET.SubElement(
        package,
        f"{{{RIM}}}Classification",
        id=_entry_uuid(submission.unique_id, "node"),
        classifiedObject=set_id,
        classificationNode=SUBMISSION_SET_NODE,
        objectType=CLASSIFICATION_OBJECT_TYPE,
    )
    _external_id(package, SS_UNIQUE_ID, set_id, submission.unique_id, "XDSSubmissionSet.uniqueId")
    _external_id(package, SS_SOURCE_ID, set_id, submission.uid_root, "XDSSubmissionSet.sourceId")
    _external_id(package, SS_PATIENT_ID, set_id, submission.patient_id, "XDSSubmissionSet.patientId")
    for entry_id in entries:
        association = ET.SubElement(
            objects,
            f"{{{RIM}}}Association",
            id=_entry_uuid(entry_id, "member"),
            associationType=HAS_MEMBER,
            sourceObject=set_id,
            targetObject=entry_id,
            objectType=ASSOCIATION_OBJECT_TYPE,
        )
        _slot(association, "SubmissionSetStatus", "Original")
    xml: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return xml


def _slot(parent: ET.Element, name: str, *values: str) -> None:
    slot = ET.SubElement(parent, f"{{{RIM}}}Slot", name=name)
    value_list = ET.SubElement(slot, f"{{{RIM}}}ValueList")
    for value in values:
        ET.SubElement(value_list, f"{{{RIM}}}Value").text = value


def _name(parent: ET.Element, text: str) -> None:
    name = ET.SubElement(parent, f"{{{RIM}}}Name")
    ET.SubElement(name, f"{{{RIM}}}LocalizedString", value=text, charset="UTF-8")


def _classification(
    parent: ET.Element, scheme: str, classified: str, seed: str, code: Code | None, author: Author | None = None
) -> None:
    element = ET.SubElement(
        parent,
        f"{{{RIM}}}Classification",
        id=_entry_uuid(classified, scheme, seed),
        classificationScheme=scheme,
        classifiedObject=classified,
        nodeRepresentation=code.code if code else "",
        objectType=CLASSIFICATION_OBJECT_TYPE,
    )
    if author is not None:
        _slot(element, "authorPerson", author.person)
        _slot(element, "authorInstitution", author.institution)
    if code is not None:
        _slot(element, "codingScheme", code.scheme)
        _name(element, code.display)


def _external_id(parent: ET.Element, scheme: str, registry_object: str, value: str, label: str) -> None:
    element = ET.SubElement(
        parent,
        f"{{{RIM}}}ExternalIdentifier",
        id=_entry_uuid(registry_object, scheme),
        identificationScheme=scheme,
        registryObject=registry_object,
        value=value,
        objectType=EXTERNAL_ID_OBJECT_TYPE,
    )
    _name(element, label)


def _readme(submission: Submission) -> str:
    return (
        "IHE XDM package (ITI-32)\r\n"
        f"Produced by: {submission.software}\r\n"
        f"Author institution: {submission.author.institution.split('^', 1)[0]}\r\n"
        f"Submission: {submission.unique_id}\r\n"
        "Contents: see INDEX.HTM; metadata in IHE_XDM/SUBSET01/METADATA.XML\r\n"
    )


def _index(submission: Submission, names: Sequence[str]) -> str:
    items = "".join(
        f'<li><a href="IHE_XDM/SUBSET01/{name}">{html.escape(doc.title)}</a> ({html.escape(doc.mime_type)})</li>'
        for name, doc in zip(names, submission.documents, strict=True)
    )
    return (
        '<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8">'
        f"<title>{html.escape(submission.title)}</title></head><body>"
        f"<h1>{html.escape(submission.title)}</h1><ul>{items}</ul></body></html>"
    )


# --- unpack -------------------------------------------------------------------------------


def unpack(data: bytes, limits: Limits = Limits()) -> list[UnpackedSubmission]:
    """Validate and read an XDM zip; every subset is returned with its checked documents."""
    if len(data) > limits.max_archive:
        raise XdmTooLarge("the package exceeds the maximum archive size")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError) as exc:
        raise XdmPackageInvalid("not a zip archive") from exc
    with archive:
        entries = _checked_entries(archive, limits)
        metadata_paths = sorted(
            name for name in entries if len(PurePosixPath(name).parts) == 3
            and name.startswith("IHE_XDM/") and PurePosixPath(name).name.upper() == "METADATA.XML"
        )
        if not metadata_paths:
            raise XdmPackageInvalid("no IHE_XDM/<subset>/METADATA.XML in the package")
        return [_read_subset(archive, entries, path, limits) for path in metadata_paths]


def _checked_entries(archive: zipfile.ZipFile, limits: Limits) -> dict[str, zipfile.ZipInfo]:
    infos = archive.infolist()
    if len(infos) > limits.max_entries:
        raise XdmTooLarge("the package has too many entries")
    entries: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in infos:
        name = info.filename
        path = PurePosixPath(name)
        if (
            not name
            or "\\" in name
            or "\x00" in name
            or name.startswith("/")
            or re.match(r"^[A-Za-z]:", name)
            or any(part in ("", ".", "..") for part in name.rstrip("/").split("/"))
        ):
            raise XdmUnsafePath(f"unsafe entry path: {name!r}")
        if info.is_dir():
            continue
        if info.flag_bits & 0x1:
            raise XdmPackageInvalid(f"encrypted entry: {name}")
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise XdmUnsafePath(f"symbolic link entry: {name}")
        key = str(path).upper()
        if key in {k.upper() for k in entries}:
            raise XdmPackageInvalid(f"duplicate entry: {name}")
        if info.file_size > limits.max_entry:
            raise XdmTooLarge(f"entry too large: {name}")
        if info.file_size > 1024 * 1024 and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise XdmTooLarge(f"suspicious compression ratio: {name}")
        total += info.file_size
        if total > limits.max_total:
            raise XdmTooLarge("the package's uncompressed size exceeds the limit")
        entries[name] = info
    return entries


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes:
    """Read at most the declared size (and never above `cap`), whatever the entry really holds."""
    limit = min(info.file_size, cap)
    try:
        with archive.open(info) as stream:
            data = stream.read(limit + 1)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error, NotImplementedError, RuntimeError) as exc:
        raise XdmPackageInvalid(f"corrupt entry {info.filename}: {exc}") from exc
    if len(data) > limit:
        raise XdmTooLarge(f"entry larger than declared or allowed: {info.filename}")
    return data


def _parse_xml(raw: bytes) -> ET.Element:
    # UTF-8 only: a DOCTYPE hidden in UTF-16 would slip past the byte search below.
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise XdmPackageInvalid("METADATA.XML must be UTF-8") from exc
    declared = re.match(r"""^\ufeff?<\?xml[^>]*encoding\s*=\s*["']([^"']+)""", text)
    if declared and declared.group(1).lower().replace("-", "") != "utf8":
        raise XdmPackageInvalid("METADATA.XML must be UTF-8")
    if "<!DOCTYPE" in text.upper() or "<!ENTITY" in text.upper():
        raise XdmPackageInvalid("METADATA.XML must not declare a DOCTYPE or entities")
    try:
        return ET.fromstring(raw)  # noqa: S314 - DOCTYPE refused above, size bounded by Limits
    except ET.ParseError as exc:
        raise XdmPackageInvalid(f"METADATA.XML is not well-formed: {exc}") from exc


def _slots(element: ET.Element) -> dict[str, list[str]]:
    return {
        slot.get("name", ""): [value.text or "" for value in slot.iterfind(f"{{{RIM}}}ValueList/{{{RIM}}}Value")]
        for slot in element.iterfind(f"{{{RIM}}}Slot")
    }


def _external_ids(element: ET.Element) -> dict[str, str]:
    return {
        ext.get("identificationScheme", ""): ext.get("value", "")
        for ext in element.iterfind(f"{{{RIM}}}ExternalIdentifier")
    }


def _code(element: ET.Element, scheme: str) -> str:
    for classification in element.iterfind(f"{{{RIM}}}Classification"):
        if classification.get("classificationScheme") == scheme:
            return classification.get("nodeRepresentation", "")
    return ""


def _single(slots: dict[str, list[str]], name: str, where: str) -> str:
    values = slots.get(name, [])
    if len(values) != 1 or not values[0]:
        raise XdmPackageInvalid(f"{where}: slot {name} must hold exactly one value")
    return values[0]


def _read_subset(
    archive: zipfile.ZipFile, entries: dict[str, zipfile.ZipInfo], metadata_path: str, limits: Limits
) -> UnpackedSubmission:
    subset_dir = PurePosixPath(metadata_path).parent
    root = _parse_xml(_read(archive, entries[metadata_path], limits.max_metadata))
    if root.tag != f"{{{LCM}}}SubmitObjectsRequest":
        raise XdmPackageInvalid("METADATA.XML is not an ebRIM SubmitObjectsRequest")
    packages = [
        package
        for package in root.iter(f"{{{RIM}}}RegistryPackage")
        if any(c.get("classificationNode") == SUBMISSION_SET_NODE for c in package.iterfind(f"{{{RIM}}}Classification"))
    ]
    if len(packages) != 1:
        raise XdmPackageInvalid("METADATA.XML must hold exactly one submission set")
    set_ids = _external_ids(packages[0])
    patient_id = set_ids.get(SS_PATIENT_ID, "")
    unique_id = set_ids.get(SS_UNIQUE_ID, "")
    if not patient_id or not unique_id:
        raise XdmPackageInvalid("the submission set lacks its patient id or unique id")
    submission = UnpackedSubmission(subset_dir.name, unique_id, patient_id, set_ids.get(SS_SOURCE_ID, ""))
    seen: set[str] = set()
    for entry in root.iter(f"{{{RIM}}}ExtrinsicObject"):
        where = f"document entry {entry.get('id', '?')}"
        slots, ids = _slots(entry), _external_ids(entry)
        uri = _single(slots, "URI", where)
        if not _SAFE_NAME.match(uri) or ".." in uri:
            raise XdmUnsafePath(f"{where}: unsafe URI {uri!r}")
        if uri.upper() in seen:
            raise XdmPackageInvalid(f"{where}: URI {uri} listed twice")
        seen.add(uri.upper())
        if ids.get(DE_PATIENT_ID) != patient_id:
            raise XdmPackageInvalid(f"{where}: patient id differs from the submission set's")
        if not ids.get(DE_UNIQUE_ID):
            raise XdmPackageInvalid(f"{where}: no unique id")
        path = str(subset_dir / uri)
        matches = [info for name, info in entries.items() if name.upper() == path.upper()]
        if not matches:
            raise XdmDocumentMismatch(f"{where}: {uri} is missing from the package")
        expected_size = _single(slots, "size", where)
        expected_hash = _single(slots, "hash", where).lower()
        if not expected_size.isdigit() or int(expected_size) != matches[0].file_size:
            raise XdmDocumentMismatch(f"{where}: size of {uri} differs from its metadata")
        data = _read(archive, matches[0], limits.max_entry)
        if len(data) != int(expected_size):
            raise XdmDocumentMismatch(f"{where}: size of {uri} differs from its metadata")
        if hashlib.sha1(data).hexdigest() != expected_hash:  # noqa: S324 - SHA-1 is what XDS metadata specifies
            raise XdmDocumentMismatch(f"{where}: SHA-1 of {uri} differs from its metadata")
        names = entry.find(f"{{{RIM}}}Name/{{{RIM}}}LocalizedString")
        submission.documents.append(
            UnpackedDocument(
                uri=uri,
                mime_type=entry.get("mimeType", ""),
                unique_id=ids[DE_UNIQUE_ID],
                title="" if names is None else names.get("value", ""),
                type_code=_code(entry, DE_TYPE_CODE),
                class_code=_code(entry, DE_CLASS_CODE),
                created_at=_single(slots, "creationTime", where),
                data=data,
            )
        )
    if not submission.documents:
        raise XdmPackageInvalid("the submission set holds no document")
    return submission
