"""Synthetic studies for the imaging tests, written where an image store reads them."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image
from pydicom.dataset import Dataset

from naho.sandbox.imaging import SyntheticPatient, chest_ct, chest_radiograph, write_study
from tests.results.conftest import Inpatient

AT = datetime(2026, 11, 25, 7, 30, tzinfo=UTC)
JPEG = b"\xff\xd8\xff"


def synthetic(patient: Inpatient, name: str = "DURAND") -> SyntheticPatient:
    return SyntheticPatient(patient.ipp, name, "MARIE", "19620314", "F")


def ct_of(patient: Inpatient, accession: str = "IM2600000182", *, slices: int = 20) -> list[Dataset]:
    return chest_ct(synthetic(patient), accession=accession, at=AT, slices=slices, seed="tests")


def radiograph_of(patient: Inpatient, accession: str = "DX-1") -> list[Dataset]:
    return chest_radiograph(synthetic(patient), accession=accession, at=AT.replace(hour=9), seed="tests")


def write(datasets: list[Dataset], directory: Path) -> list[Dataset]:
    write_study(datasets, directory)
    return datasets


def picture(data: bytes) -> Image.Image:
    assert data[:3] == JPEG, data[:20]
    image = Image.open(io.BytesIO(data))
    image.load()
    return image
