"""Synthetic imaging for the demo and the tests: a chest CT (a stack of axial slices) and a
chest radiograph, built with pydicom from pixel data numpy draws — never downloaded.

The pictures are geometric (an elliptic body, two lungs, a spine, a heart) in Hounsfield units,
so the window presets show something different for soft tissue, lung and bone. UIDs derive
from a seed, so the same demo gets the same studies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, DigitalXRayImageStorageForPresentation, ExplicitVRLittleEndian, generate_uid

from naho.config import Settings
from naho.platform.uow import UnitOfWork

MODALITY_ZONE = ZoneInfo("Europe/Paris")
#: The IPP's issuer naho writes in PatientID's Issuer (0010,0021): the HL7 assigning authority.
DEFAULT_ISSUER = "NAHO"


@dataclass(frozen=True)
class SyntheticPatient:
    ipp: str
    family: str
    given: str
    birth_date: str  # YYYYMMDD
    sex: str  # M | F | O


def _uid(*parts: object) -> str:
    return str(generate_uid(entropy_srcs=[str(p) for p in parts]))


def _base(patient: SyntheticPatient, study_uid: str, accession: str, at: datetime, description: str,
          issuer: str) -> Dataset:
    ds = Dataset()
    ds.PatientName = f"{patient.family}^{patient.given}"
    ds.PatientID = patient.ipp
    ds.IssuerOfPatientID = issuer
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = patient.sex
    ds.StudyInstanceUID = study_uid
    local = at.astimezone(MODALITY_ZONE)  # a modality writes its local time, without a zone
    ds.StudyDate = local.strftime("%Y%m%d")
    ds.StudyTime = local.strftime("%H%M%S")
    ds.StudyID = accession[-6:] or "1"
    ds.AccessionNumber = accession
    ds.StudyDescription = description
    ds.ReferringPhysicianName = ""
    ds.InstitutionName = "GHT de l'Artois"
    return ds


def _finish(ds: Dataset, sop_class: str) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    return ds


def _chest_slice(size: int, z: float) -> np.ndarray:
    """One axial slice of a synthetic chest in Hounsfield units; z in [0, 1] from top to bottom."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    hu = np.full((size, size), -1000.0, dtype=np.float32)  # air
    body = (x / 0.42) ** 2 + (y / 0.32) ** 2 <= 1
    hu[body] = 40.0  # soft tissue
    hu[body & ((x / 0.40) ** 2 + (y / 0.30) ** 2 > 1)] = -100.0  # subcutaneous fat
    lung_size = 0.6 + 0.4 * np.sin(np.pi * min(max(z, 0.05), 0.95))  # the lungs widen, then narrow
    for side in (-1, 1):
        lung = ((x - side * 0.19) / (0.15 * lung_size)) ** 2 + ((y + 0.02) / (0.22 * lung_size)) ** 2 <= 1
        hu[lung & body] = -850.0
    heart = ((x + 0.04) / (0.11 * (1.2 - z * 0.6))) ** 2 + ((y + 0.05) / 0.1) ** 2 <= 1
    hu[heart & body] = 45.0
    hu[(x / 0.05) ** 2 + ((y - 0.22) / 0.05) ** 2 <= 1] = 700.0  # vertebral body
    hu[(x / 0.02) ** 2 + ((y - 0.22) / 0.02) ** 2 <= 1] = 250.0  # its marrow
    hu[((x / 0.41) ** 2 + (y / 0.31) ** 2 <= 1) & ((x / 0.39) ** 2 + (y / 0.29) ** 2 > 1)
       & (np.abs(np.sin(8 * np.arctan2(y, x) + z * 3)) > 0.85)] = 900.0  # ribs
    return hu


def chest_ct(patient: SyntheticPatient, *, accession: str, at: datetime, slices: int = 20, size: int = 128,
             seed: str = "demo", issuer: str = DEFAULT_ISSUER) -> list[Dataset]:
    """An axial chest CT: one series of `slices` images, stored as unsigned values with the
    rescale intercept -1024, a soft tissue window written in the images."""
    study_uid = _uid(seed, patient.ipp, accession, "study")
    series_uid = _uid(seed, patient.ipp, accession, "ct-series")
    frame_uid = _uid(seed, patient.ipp, accession, "frame")
    out = []
    for n in range(1, slices + 1):
        ds = _base(patient, study_uid, accession, at, "TDM thoracique", issuer)
        ds.Modality = "CT"
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = 2
        ds.SeriesDescription = "Thorax axial"
        ds.BodyPartExamined = "CHEST"
        ds.SOPInstanceUID = _uid(seed, patient.ipp, accession, "ct", n)
        ds.InstanceNumber = n
        ds.FrameOfReferenceUID = frame_uid
        ds.ImagePositionPatient = [-160.0, -160.0, -5.0 * n]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.SliceThickness = 5.0
        ds.PixelSpacing = [320 / size, 320 / size]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = ds.Columns = size
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -1024, 1, "HU"
        ds.WindowCenter, ds.WindowWidth = 40, 400
        hu = _chest_slice(size, (n - 1) / max(slices - 1, 1))
        ds.PixelData = np.clip(hu + 1024, 0, 4095).astype("<u2").tobytes()
        out.append(_finish(ds, CTImageStorage))
    return out


def chest_radiograph(patient: SyntheticPatient, *, accession: str, at: datetime, size: int = 256,
                     seed: str = "demo", issuer: str = DEFAULT_ISSUER) -> list[Dataset]:
    """A frontal chest radiograph (DX, one image): the CT volume's attenuation summed front to
    back, so lungs are dark and bones bright."""
    study_uid = _uid(seed, patient.ipp, accession, "study")
    volume = np.stack([_chest_slice(size, z) for z in np.linspace(0.05, 0.95, 24)])  # (z, y, x)
    attenuation = np.clip(volume + 1000, 0, None).sum(axis=1)  # along y: a frontal projection, (z, x)
    image = (attenuation / max(float(attenuation.max()), 1.0) * 4095)
    image = np.kron(image, np.ones((size // 24 + 1, 1)))[:size]  # stretch the 24 levels to the height
    ds = _base(patient, study_uid, accession, at, "Radiographie du thorax", issuer)
    ds.Modality = "DX"
    ds.SeriesInstanceUID = _uid(seed, patient.ipp, accession, "dx-series")
    ds.SeriesNumber = 1
    ds.SeriesDescription = "Thorax face"
    ds.BodyPartExamined = "CHEST"
    ds.SOPInstanceUID = _uid(seed, patient.ipp, accession, "dx", 1)
    ds.InstanceNumber = 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = image.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.PixelData = np.clip(image, 0, 4095).astype("<u2").tobytes()
    return [_finish(ds, DigitalXRayImageStorageForPresentation)]


def write_study(datasets: list[Dataset], directory: Path) -> list[Path]:
    """Write each instance as <directory>/<study>/<sop instance>.dcm (a DICOM Part 10 file)."""
    paths = []
    for ds in datasets:
        folder = directory / str(ds.StudyInstanceUID)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{ds.SOPInstanceUID}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


# --- the demo's studies --------------------------------------------------------------------------

#: How many patients in bed of the demo physician's unit get imaging (a CT, then a radiograph).
DEMO_IMAGED_PATIENTS = 3
DEMO_UNIT = "LENS-MED-MIN"
DEMO_ORDERER = "Dr Claire Lefebvre (médecin)"


def seed_imaging(uow: UnitOfWork, settings: Settings) -> dict[str, int]:
    """Write synthetic studies for a few patients in bed of the demo physician's unit into the
    local DICOM store (the demo has no Orthanc): a chest CT each, fulfilling an imaging order
    (so the order list shows its study), and a chest radiograph for the first. Development
    only; a store directory that already holds files is left as it is."""
    from naho.identity import service as identity
    from naho.record import service as record
    from naho.results import imaging_service

    if not (settings.development and settings.demo_patients) or settings.orthanc_url:
        return {}
    directory = settings.imaging_store_dir
    if directory.is_dir() and any(directory.rglob("*.dcm")):
        return {}
    written = ordered = 0
    zone = ZoneInfo(settings.timezone)
    with uow:
        s = uow.session
        now = uow.clock.now()
        board = record.bed_board(s, DEMO_UNIT, now)
        lines = [b for b in (*board.beds, *board.without_bed) if b.patient_id and b.encounter_id][:DEMO_IMAGED_PATIENTS]
        people = identity.summaries(s, [b.patient_id for b in lines if b.patient_id])
        for index, line in enumerate(lines):
            assert line.patient_id and line.encounter_id
            who = people[line.patient_id]
            patient = SyntheticPatient(who.ipp, who.birth_name.upper(), who.first_names.split()[0].upper(),
                                       who.birth_date.strftime("%Y%m%d"), who.sex if who.sex in ("M", "F") else "O")
            performed = (now - timedelta(hours=3 + index)).replace(microsecond=0)
            order = imaging_service.import_order(
                s, line.patient_id, line.encounter_id, modality="CT", body_part="Thorax",
                question="Dyspnée et fièvre : foyer pulmonaire ? embolie ?", urgency="urgent",
                ordered_by=DEMO_ORDERER, now=performed - timedelta(hours=2), zone=zone)
            ordered += 1
            written += len(write_study(chest_ct(patient, accession=order.accession_number, at=performed,
                                                seed=str(settings.seed)), directory))
            if index == 0:
                written += len(write_study(chest_radiograph(patient, accession=f"RX{order.accession_number[2:]}",
                                                            at=performed - timedelta(days=1), seed=str(settings.seed)),
                                           directory))
        uow.commit()
    return {"imaging_orders": ordered, "dicom_instances": written} if written else {}
