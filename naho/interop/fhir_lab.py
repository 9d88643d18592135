"""The FHIR R4 facade of laboratory orders: read and search ServiceRequest (one per order) and
Specimen (one per specimen label) of a patient, through the door and audited as the pages.
Registered before fhir_api's router, whose last routes catch every other type.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from fastapi import APIRouter, Depends, Request
from fhir.resources.R4B.resource import Resource
from sqlalchemy.orm import Session
from starlette.responses import Response

from naho.interop import fhir
from naho.interop.fhir_api import READERS, _codes, _open_chart, _patients, _read_id, _subject
from naho.platform.access import PatientNotFound
from naho.platform.deps import ActorDep, ContainerDep
from naho.platform.security.actor import Actor
from naho.results import fhir as lab_fhir
from naho.results import orders

router = APIRouter(prefix=fhir.BASE_PATH, tags=["fhir"], dependencies=[Depends(fhir.negotiate)])

_P = fhir.SearchParam
_SUBJECT = (_P("patient", "reference", "Patient/id (required, or subject)"),
            _P("subject", "reference", "Patient/id"))
SERVICE_REQUEST = fhir.ResourceSupport("ServiceRequest", "Laboratory orders of the patients the caller cares for "
                                       "(placer order number as identifier, LOINC code), newest first.", (
    *_SUBJECT,
    _P("status", "token", "active | completed | revoked; comma: or"),
), includes=("ServiceRequest:patient", "ServiceRequest:subject"))
SPECIMEN = fhir.ResourceSupport("Specimen", "Specimens of the laboratory orders (id: the number on the label), of "
                                "the patients the caller cares for, newest first.", _SUBJECT,
                                includes=("Specimen:patient", "Specimen:subject"))
SUPPORTED = {r.type: r for r in (SERVICE_REQUEST, SPECIMEN)}
SPECIMEN_VIEWED = "patient:specimen:view"


def _read(request: Request, container: ContainerDep, actor: Actor, resource_type: str, resource_id: str,
          patient_of: Callable[[Session], uuid.UUID | None], read: Callable[[Session], Resource],
          action: str) -> Response:
    pretty = fhir.read_options(request)
    uow = container.uow()
    with uow:
        s = uow.session
        try:
            patient_id = patient_of(s)
            if patient_id is None:
                raise PatientNotFound("no such row")
            _open_chart(s, actor, patient_id, container.ports["care"], uow.clock.now(), action=action,
                        target=resource_id[:60])
        except PatientNotFound:
            # One answer for a resource that does not exist and one whose patient is not the caller's.
            raise fhir.ResourceNotFound(f"{resource_type}/{resource_id} is not known") from None
        resource = read(s)
        uow.commit()
    return fhir.resource_response(resource, pretty=pretty)


def _search(request: Request, container: ContainerDep, actor: Actor, support: fhir.ResourceSupport,
            find: Callable[[Session, uuid.UUID, fhir.Search], tuple[list[Resource], int]], action: str) -> Response:
    search = fhir.parse_search(request, support)
    patient_id = _subject(search)
    uow = container.uow()
    with uow:
        s = uow.session
        try:
            _open_chart(s, actor, patient_id, container.ports["care"], uow.clock.now(), action=action)
        except PatientNotFound:
            # The refusal is audited; a search shows only what the caller may see: nothing.
            return fhir.searchset_response(request, search, [], has_next=False, total=0)
        found, total = find(s, patient_id, search)
        included = _patients(s, [patient_id]) if search.includes and found else []
        uow.commit()
    return fhir.searchset_response(request, search, found, has_next=search.offset + len(found) < total,
                                   total=total, included=included)


@router.get("/ServiceRequest/{resource_id}", dependencies=[Depends(READERS)])
def read_service_request(resource_id: str, request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    order_id = _read_id(resource_id, "ServiceRequest")
    return _read(request, container, actor, "ServiceRequest", resource_id,
                 lambda s: lab_fhir.request_patient(s, order_id), lambda s: lab_fhir.read_request(s, order_id),
                 orders.VIEWED)


@router.get("/ServiceRequest", dependencies=[Depends(READERS)])
def search_service_request(request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    def find(s: Session, patient_id: uuid.UUID, search: fhir.Search) -> tuple[list[Resource], int]:
        statuses = _codes(search, "status", lab_fhir.REQUEST_STATUSES)
        found, total = lab_fhir.find_requests(s, patient_id, statuses, offset=search.offset, count=search.count)
        return list(found), total
    return _search(request, container, actor, SERVICE_REQUEST, find, orders.VIEWED)


@router.get("/Specimen/{resource_id}", dependencies=[Depends(READERS)])
def read_specimen(resource_id: str, request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    return _read(request, container, actor, "Specimen", resource_id,
                 lambda s: lab_fhir.specimen_patient(s, resource_id), lambda s: lab_fhir.read_specimen(s, resource_id),
                 SPECIMEN_VIEWED)


@router.get("/Specimen", dependencies=[Depends(READERS)])
def search_specimen(request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    def find(s: Session, patient_id: uuid.UUID, search: fhir.Search) -> tuple[list[Resource], int]:
        found, total = lab_fhir.find_specimens(s, patient_id, offset=search.offset, count=search.count)
        return list(found), total
    return _search(request, container, actor, SPECIMEN, find, SPECIMEN_VIEWED)
