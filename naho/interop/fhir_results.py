"""The FHIR R4 facade of laboratory results: read and search DiagnosticReport (each report with
its results as contained Observations and its PDF as presentedForm). Registered before
fhir_api's router, whose last routes catch every other type. Through the door for clinical
content, audited like the results page, as the rest of the chart.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from naho.interop import fhir
from naho.interop.fhir_api import READERS, _binary_base, _codes, _date_bounds, _open_chart, _read_id, _subject
from naho.platform.access import PatientNotFound
from naho.platform.deps import ActorDep, ContainerDep
from naho.results import report_fhir as results_fhir

router = APIRouter(prefix=fhir.BASE_PATH, tags=["fhir"], dependencies=[Depends(fhir.negotiate)])

_P = fhir.SearchParam
DIAGNOSTIC_REPORT = fhir.ResourceSupport(
    "DiagnosticReport", "Laboratory reports of the patients the caller may open: the current results as contained "
    "Observations (LOINC, UCUM, reference range, interpretation), the signed PDF as presentedForm.", (
        _P("patient", "reference", "Patient/id (required, or subject)"),
        _P("subject", "reference", "Patient/id"),
        _P("status", "token", "registered | partial | preliminary | final | corrected | cancelled | entered-in-error"),
        _P("code", "token", "A LOINC code of one of its results, or the battery's code"),
        _P("date", "date", "When the specimen was taken (ge, le, gt, lt, eq)"),
        _P("category", "token", "LAB (the only one here)"),
    ))
SUPPORTED = {DIAGNOSTIC_REPORT.type: DIAGNOSTIC_REPORT}
LISTED, VIEWED = "patient:lab-result:list", "patient:lab-result:view"


@router.get("/DiagnosticReport/{resource_id}", dependencies=[Depends(READERS)])
def read_report(resource_id: str, request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    pretty = fhir.read_options(request)
    report_id = _read_id(resource_id, "DiagnosticReport")
    uow = container.uow()
    with uow:
        s = uow.session
        try:
            patient_id = results_fhir.report_patient(s, report_id)
            if patient_id is None:
                raise PatientNotFound("no such report")
            _open_chart(s, actor, patient_id, container.ports["care"], uow.clock.now(), action=VIEWED,
                        target=str(report_id))
        except PatientNotFound:
            raise fhir.ResourceNotFound(f"DiagnosticReport/{resource_id} is not known") from None
        resource = results_fhir.read_report(s, report_id, _binary_base(request))
        uow.commit()
    assert resource is not None
    return fhir.resource_response(resource, pretty=pretty)


@router.get("/DiagnosticReport", dependencies=[Depends(READERS)])
def search_reports(request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    search = fhir.parse_search(request, DIAGNOSTIC_REPORT)
    patient_id = _subject(search)
    category = _codes(search, "category", frozenset({"LAB"}))
    codes = search.get("code")
    since, before = _date_bounds(search, "date", request)
    criteria = results_fhir.ReportCriteria(
        statuses=_codes(search, "status", results_fhir.REPORT_STATUSES),
        codes=frozenset(fhir.parse_token(v).code for v in fhir.split_or(codes)) if codes else None,
        since=since, before=before)
    uow = container.uow()
    with uow:
        s = uow.session
        try:
            _open_chart(s, actor, patient_id, container.ports["care"], uow.clock.now(), action=LISTED)
        except PatientNotFound:
            return fhir.searchset_response(request, search, [], has_next=False, total=0)
        if category is not None and "LAB" not in category:
            found, total = [], 0
        else:
            found, total = results_fhir.find_reports(s, patient_id, criteria, offset=search.offset,
                                                     count=search.count, binary_base=_binary_base(request))
        uow.commit()
    return fhir.searchset_response(request, search, found, has_next=search.offset + len(found) < total, total=total)
