"""The ports of imaging (STYLE.md R4): where the images are (the PACS) and where orders go (the
RIS). `app.py` picks the adapters from settings: `orthanc.OrthancStore` when NAHO_ORTHANC_URL is
set, else `dicom_store.LocalDicomStore` (the demo's files on disk); orders go nowhere yet
(`NoRis`) until an HL7 ORM/OMI sender plugs in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from naho.platform.errors import DomainError
from naho.platform.outbox import Envelope, Handler
from naho.results.imaging_rules import InstanceRef, SeriesSummary, StudySummary, WindowPreset


class PacsUnavailable(DomainError):
    """The PACS did not answer (down, timeout, 5xx): the list says so, other pages answer 503."""

    status = 503
    title = "Service unavailable"


class ImageStore(Protocol):
    """What naho asks of a PACS: find studies (QIDO-RS), list series and instances, render a frame
    (WADO-RS rendered). UIDs are checked by the caller (imaging_rules.require_uid)."""

    #: The DICOMweb base a FHIR ImagingStudy's Endpoint names ('' when there is none).
    dicomweb_base: str

    def find_studies(self, patient_ids: Sequence[str]) -> list[StudySummary]:
        """Studies whose PatientID is one of `patient_ids`, newest first."""
        ...

    def get_study(self, study_uid: str) -> StudySummary | None: ...

    def list_series(self, study_uid: str) -> list[SeriesSummary]: ...

    def list_instances(self, study_uid: str, series_uid: str) -> list[InstanceRef]: ...

    def render(self, study_uid: str, series_uid: str, instance_uid: str, frame: int, *,
               window: WindowPreset | None, size: int | None) -> bytes:
        """The frame as a JPEG (fitting in size × size when given, else at its own size);
        LookupError when the PACS has no such frame."""
        ...


@dataclass(frozen=True)
class OrderToSend:
    """What a RIS needs of an imaging order (an HL7 OMI^O23 or ORM^O01 carries the same)."""

    accession_number: str
    patient_ipp: str
    visit_nda: str | None
    modality: str
    body_part: str
    question: str
    urgency: str
    ordered_by: str


class RisPort(Protocol):
    """Where an imaging order goes once committed (through the outbox, at least once)."""

    def send(self, order: OrderToSend) -> None: ...


class NoRis:
    """No RIS connected: orders stay in naho; the radiology department reads them on its page."""

    def send(self, order: OrderToSend) -> None:
        return None


def order_handler(ris: RisPort) -> Handler:
    """The outbox handler of topic imaging.order: hands each committed order to the RIS port."""
    def handle(envelope: Envelope) -> None:
        p = envelope.payload
        ris.send(OrderToSend(accession_number=p["accession_number"], patient_ipp=p["patient_ipp"],
                             visit_nda=p.get("visit_nda"), modality=p["modality"], body_part=p["body_part"],
                             question=p["question"], urgency=p["urgency"], ordered_by=p["ordered_by"]))
    return handle
