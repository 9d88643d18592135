"""The demo's synthetic imaging: studies written for patients in bed of the demo unit, each CT
fulfilling an imaging order, fast, once; nothing when an Orthanc is configured."""

from __future__ import annotations

import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydicom import dcmread

from naho.config import Settings
from naho.platform.deps import Container
from naho.results.dicom_store import LocalDicomStore
from naho.results.imaging_rules import is_accession_number
from naho.sandbox.imaging import chest_ct, chest_radiograph, seed_imaging
from tests.results.conftest import admit_inpatient
from tests.results.imaging_support import AT, synthetic


@pytest.fixture
def container(app) -> Container:  # type: ignore[no-untyped-def]
    return app.state.container  # type: ignore[no-any-return]


def _development(container: Container, directory: Path, **changes: object) -> Settings:
    return container.settings.model_copy(update={"mode": "development", "demo_patients": 10,
                                                 "imaging_store_dir": directory, **changes})


def test_the_demo_gets_a_ct_per_patient_in_bed_and_a_radiograph(container: Container, tmp_path: Path) -> None:
    patients = [admit_inpatient(container, name) for name in ("DURAND", "MARTIN", "PETIT", "ROUX")]
    directory = tmp_path / "dicom"
    started = time.perf_counter()
    result = seed_imaging(container.uow(), _development(container, directory))
    assert time.perf_counter() - started < 10  # demo start-up stays fast
    assert result == {"imaging_orders": 3, "dicom_instances": 3 * 20 + 1}
    store = LocalDicomStore(directory, zone=ZoneInfo("Europe/Paris"))
    imaged = [p for p in patients if store.find_studies([p.ipp])]
    assert len(imaged) == 3
    for patient in imaged:
        studies = store.find_studies([patient.ipp])
        ct = next(s for s in studies if s.modalities == ("CT",))
        assert is_accession_number(ct.accession_number) and ct.instance_count == 20
    assert sum(len(store.find_studies([p.ipp])) for p in imaged) == 4
    assert seed_imaging(container.uow(), _development(container, directory)) == {}  # once
    assert seed_imaging(container.uow(), _development(container, tmp_path / "other", orthanc_url="http://pacs")) == {}
    assert seed_imaging(container.uow(), _development(container, tmp_path / "other", mode="test")) == {}


def test_synthetic_images_are_valid_dicom_with_pixels(container: Container, tmp_path: Path) -> None:
    patient = admit_inpatient(container)
    [slice_] = chest_ct(synthetic(patient), accession="A1", at=AT, slices=1, size=64)
    path = tmp_path / "ct.dcm"
    slice_.save_as(path, enforce_file_format=True)
    again = dcmread(path)
    hu = again.pixel_array * float(again.RescaleSlope) + float(again.RescaleIntercept)
    assert again.PatientID == patient.ipp and again.Modality == "CT" and hu.shape == (64, 64)
    assert hu.min() == -1000 and hu.max() >= 700  # air around, bone inside
    [dx] = chest_radiograph(synthetic(patient), accession="A2", at=AT, size=64)
    assert dx.Modality == "DX" and dx.pixel_array.shape == (64, 64) and dx.pixel_array.max() > 0
