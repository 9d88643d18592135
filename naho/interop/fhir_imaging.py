"""The FHIR R4 facade of imaging: read and search ImagingStudy, what the PACS holds of the
patients the caller cares for. Registered before fhir_api's router, whose last routes catch
every other type; the studies come from the image store port through the one door, opened for
care only: images are clinical content, which administrative readers and systems never see.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from naho.interop import fhir
from naho.platform.access import PatientNotFound, Purpose
from naho.platform.deps import ActorDep, ContainerDep
from naho.platform.security.policy import Policy
from naho.platform.security.rules import STAFF_ROLES, Role
from naho.results import imaging_fhir, imaging_service
from naho.results.imaging_ports import PacsUnavailable

router = APIRouter(prefix=fhir.BASE_PATH, tags=["fhir"], dependencies=[Depends(fhir.negotiate)])
READERS = Policy("staff-or-interface", STAFF_ROLES | {Role.INTERFACE})

_P = fhir.SearchParam
IMAGING_STUDY = fhir.ResourceSupport(
    "ImagingStudy", "Studies the PACS holds for the patients the caller cares for (id: the Study Instance UID), "
    "newest first, with their series and the DICOMweb endpoint of the PACS.",
    (_P("patient", "reference", "Patient/id (required)"),))
SUPPORTED = {IMAGING_STUDY.type: IMAGING_STUDY}


class PacsDown(fhir.FhirError):
    """The PACS did not answer: a 503 OperationOutcome, the client may try again."""

    status = 503
    issue = "transient"


def _parts(container: ContainerDep):  # type: ignore[no-untyped-def]
    return container.ports["care"], container.ports["images"], container.ports["imaging_settings"]


@router.get("/ImagingStudy/{resource_id}", dependencies=[Depends(READERS)])
def read_imaging_study(resource_id: str, request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    pretty = fhir.read_options(request)
    care, store, settings = _parts(container)
    try:
        patient_id, study, series = imaging_service.study_for_fhir(
            container.uow(), actor, resource_id, care, store, settings, Purpose.CARE)
    except (imaging_service.ImagingStudyNotFound, PatientNotFound):
        raise fhir.ResourceNotFound(f"ImagingStudy/{resource_id} is not known") from None
    except PacsUnavailable as exc:
        raise PacsDown("the PACS does not answer") from exc
    return fhir.resource_response(imaging_fhir.imaging_study_resource(patient_id, study, series, store.dicomweb_base),
                                  pretty=pretty)


@router.get("/ImagingStudy", dependencies=[Depends(READERS)])
def search_imaging_study(request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    search = fhir.parse_search(request, IMAGING_STUDY)
    patient = search.get("patient")
    if not patient:
        raise fhir.InvalidRequest("an ImagingStudy search needs patient=Patient/id")
    try:
        pid = uuid.UUID(fhir.parse_reference(patient, "Patient", "patient"))
    except ValueError:
        return fhir.searchset_response(request, search, [], has_next=False, total=0)
    care, store, settings = _parts(container)
    try:
        found = imaging_service.studies_for_fhir(container.uow(), actor, pid, care, store, settings,
                                                 Purpose.CARE)
    except PatientNotFound:
        found = []  # a patient one may not open: no match, as for any search
    except PacsUnavailable as exc:
        raise PacsDown("the PACS does not answer") from exc
    resources = [imaging_fhir.imaging_study_resource(pid, st, se, store.dicomweb_base) for st, se in found]
    shown, more = fhir.page(resources, search)
    return fhir.searchset_response(request, search, shown, has_next=more, total=len(resources))
