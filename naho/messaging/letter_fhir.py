"""The signed discharge letter's structured twin: a FHIR R4 document Bundle (ADR 0013).

The Bundle (type `document`) opens with a Composition typed LOINC 11490-0, whose sections carry
the letter's text as narrative and a LOINC code each (letter_rules.SECTION_LOINC); the patient,
the signing physician and the stay follow, and every diagnosis as a Condition coded in ICD-10,
referenced from its section. It is validated with fhir.resources (R4B models) before it is kept.
"""

from __future__ import annotations

import datetime as dt
import html
import uuid
from collections.abc import Sequence
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from naho.identity.fhir import patient_resource
from naho.identity.schemas import PatientPublic
from naho.messaging.letter_rules import LOINC_DISCHARGE_LETTER, SECTION_LOINC, LetterContent, Section

LOINC = "http://loinc.org"
ICD10_SYSTEM = "http://hl7.org/fhir/sid/icd-10"  # as naho.record.fhir sends conditions
RPPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"  # idNatPs: "8" + RPPS (as sending.IDNATPS_OID)
MEDIA_TYPE = "application/fhir+json"
_NS = uuid.UUID("8f1c5d0e-57a8-4f0b-9a51-2b6de0c1a0d3")


def _urn(*parts: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_NS, '|'.join(parts))}"


def _div(lines: Sequence[str]) -> str:
    body = "".join(f"<p>{html.escape(line)}</p>" for line in lines) or "<p>-</p>"
    return f'<div xmlns="http://www.w3.org/1999/xhtml">{body}</div>'


def bundle(*, letter_id: uuid.UUID, content: LetterContent, sections: Sequence[Section], title: str,
           patient: PatientPublic, signer_name: str, signer_rpps: str | None, signed_at: dt.datetime,
           encounter_id: uuid.UUID, institution: str) -> bytes:
    """The document Bundle as JSON bytes, validated; identical inputs give identical bytes."""
    letter = str(letter_id)
    patient_url, author_url, stay_url = _urn(letter, "patient"), _urn(letter, "author"), _urn(letter, "stay")
    when = signed_at.astimezone(dt.UTC).isoformat()
    practitioner: dict[str, Any] = {"resourceType": "Practitioner", "name": [{"text": signer_name}]}
    if signer_rpps:
        practitioner["identifier"] = [{"system": RPPS_SYSTEM, "value": f"8{signer_rpps}"}]
    stay: dict[str, Any] = {
        "resourceType": "Encounter", "status": "finished" if content.discharged_at else "in-progress",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "identifier": [{"value": content.nda}], "subject": {"reference": patient_url},
        "period": {"start": content.admitted_at.astimezone(dt.UTC).isoformat(),
                   **({"end": content.discharged_at.astimezone(dt.UTC).isoformat()} if content.discharged_at else {})},
        "serviceProvider": {"display": institution}}
    conditions = [(_urn(letter, "condition", str(n)), {
        "resourceType": "Condition",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                       "code": "active" if d.status == "active" else "resolved"}]},
        "code": {"coding": [{"system": ICD10_SYSTEM, "code": d.icd10, "display": d.label}], "text": d.label},
        "subject": {"reference": patient_url}, "encounter": {"reference": stay_url}})
        for n, d in enumerate(content.diagnoses)]
    composition_sections = []
    for section in sections:
        code, display = SECTION_LOINC[section.key]
        entry: dict[str, Any] = {"title": section.title, "code": {"coding": [
            {"system": LOINC, "code": code, "display": display}]},
            "text": {"status": "generated", "div": _div(section.lines)}}
        if section.key == "diagnoses" and conditions:
            entry["entry"] = [{"reference": url} for url, _ in conditions]
        composition_sections.append(entry)
    composition = {
        "resourceType": "Composition", "status": "final",
        "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{letter}"},
        "type": {"coding": [{"system": LOINC, "code": LOINC_DISCHARGE_LETTER,
                             "display": "Physician Discharge summary"}]},
        "subject": {"reference": patient_url}, "encounter": {"reference": stay_url}, "date": when,
        "author": [{"reference": author_url}], "title": title, "language": "fr-FR",
        "attester": [{"mode": "legal", "time": when, "party": {"reference": author_url}}],
        "custodian": {"display": institution}, "section": composition_sections}
    patient_json = patient_resource(patient).model_dump(mode="json", exclude_none=True)
    entries = [
        {"fullUrl": _urn(letter, "composition"), "resource": composition},
        {"fullUrl": patient_url, "resource": patient_json},
        {"fullUrl": author_url, "resource": practitioner},
        {"fullUrl": stay_url, "resource": stay},
        *({"fullUrl": url, "resource": resource} for url, resource in conditions),
    ]
    document = {"resourceType": "Bundle", "type": "document", "timestamp": when,
                "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid.uuid5(_NS, letter)}"},
                "entry": entries}
    validated = Bundle.model_validate(document)
    return validated.model_dump_json(exclude_none=True).encode("utf-8")
