"""FHIR R4 ImagingStudy from what the PACS says of a study (STYLE.md R13: standards at the edge).

The resource id is the Study Instance UID (digits and dots, at most 64: a valid FHIR id), so a
study has one id in naho, the PACS and FHIR. Its images are reached through the contained
Endpoint (DICOMweb WADO-RS at the PACS) by a client that may talk to the PACS itself.
"""

from __future__ import annotations

import uuid
from typing import Any

from fhir.resources.R4B.imagingstudy import ImagingStudy

from naho.results import imaging_rules as rules

DICOM_UID_SYSTEM = "urn:dicom:uid"
DCM_SYSTEM = "http://dicom.nema.org/resources/ontology/DCM"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
CONNECTION_TYPES = "http://terminology.hl7.org/CodeSystem/endpoint-connection-type"


def imaging_study_resource(patient_id: uuid.UUID, study: rules.StudySummary, series: list[rules.SeriesSummary],
                           dicomweb_base: str) -> ImagingStudy:
    body: dict[str, Any] = {
        "resourceType": "ImagingStudy", "id": study.uid, "status": "available",
        "subject": {"reference": f"Patient/{patient_id}"},
        "identifier": [{"system": DICOM_UID_SYSTEM, "value": f"urn:oid:{study.uid}"}],
        "modality": [{"system": DCM_SYSTEM, "code": m} for m in study.modalities],
        "numberOfSeries": len(series),
        "numberOfInstances": sum(se.instance_count or 0 for se in series),
        "series": [{k: v for k, v in {
            "uid": se.uid, "number": se.number, "modality": {"system": DCM_SYSTEM, "code": se.modality or "OT"},
            "description": se.description or None, "numberOfInstances": se.instance_count,
            "bodySite": {"display": se.body_part} if se.body_part else None,
        }.items() if v is not None} for se in series],
    }
    if study.accession_number:
        body["identifier"].append({"type": {"coding": [{"system": V2_0203, "code": "ACSN"}]},
                                   "value": study.accession_number})
    if study.performed_at:
        body["started"] = study.performed_at.isoformat()
    if study.description:
        body["description"] = study.description
    if dicomweb_base:
        body["contained"] = [{
            "resourceType": "Endpoint", "id": "dicomweb", "status": "active",
            "connectionType": {"system": CONNECTION_TYPES, "code": "dicom-wado-rs"},
            "payloadType": [{"text": "DICOM"}], "payloadMimeType": ["application/dicom"],
            "address": dicomweb_base,
        }]
        body["endpoint"] = [{"reference": "#dicomweb"}]
    return ImagingStudy.model_validate(body)
