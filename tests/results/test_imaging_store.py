"""The local DICOM store: its index follows the files, its rendering applies the modality LUT,
the window and the photometric interpretation, frame by frame; and the RIS port's handler."""

from __future__ import annotations

import io
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage

from naho.platform.outbox import Envelope
from naho.results import imaging_rules as rules
from naho.results.dicom_store import LocalDicomStore, render_grey
from naho.results.imaging_ports import OrderToSend, order_handler

PARIS = ZoneInfo("Europe/Paris")


def _image(pixels: np.ndarray, *, photometric: str = "MONOCHROME2", frames: int = 1, **extra: object) -> Dataset:
    ds = Dataset()
    ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = "42", "1.2.3", "1.2.3.4", "1.2.3.4.5"
    ds.Modality, ds.InstanceNumber = "OT", 1
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.Rows, ds.Columns = pixels.shape[-2:]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    if frames > 1:
        ds.NumberOfFrames = frames
    for keyword, value in extra.items():
        setattr(ds, keyword, value)
    ds.PixelData = pixels.astype("<u2").tobytes()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = SecondaryCaptureImageStorage, ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta, ds.SOPClassUID = meta, SecondaryCaptureImageStorage
    return ds


RAMP = np.tile(np.arange(0, 1000, 10, dtype=np.uint16), (4, 1))  # 4 × 100, from 0 to 990


def test_the_full_range_is_shown_without_a_window_and_monochrome1_is_inverted() -> None:
    grey = render_grey(_image(RAMP), RAMP, None)
    assert grey[0, 0] == 0 and grey[0, -1] == 255 and grey.dtype == np.uint8
    inverted = render_grey(_image(RAMP, photometric="MONOCHROME1"), RAMP, None)
    assert inverted[0, 0] == 255 and inverted[0, -1] == 0


def test_the_rescale_then_the_image_window_then_a_preset_apply() -> None:
    ds = _image(RAMP, RescaleIntercept=-1000, RescaleSlope=1, WindowCenter=[-500, 40], WindowWidth=[201, 400])
    grey = render_grey(ds, RAMP, None)  # the first of the image's windows: -600 to -400 HU, stored 400 to 600
    assert grey[0, 39] == 0 and grey[0, 61] == 255 and 0 < grey[0, 50] < 255
    lung = render_grey(ds, RAMP, rules.WINDOW_PRESETS["lung"])  # -1350 to 149 HU: all the ramp inside
    assert 0 < lung[0, 0] < lung[0, 50] < lung[0, -1] < 255


def test_the_index_follows_the_files_and_frames_are_rendered_one_by_one(tmp_path: Path) -> None:
    store = LocalDicomStore(tmp_path, zone=PARIS)
    assert store.find_studies(["42"]) == []
    (tmp_path / "notes.dcm").write_text("not DICOM")  # a stray file is skipped
    two = np.stack([RAMP, RAMP[:, ::-1]])
    _image(two, frames=2, StudyDate="20261125", StudyTime="083000").save_as(tmp_path / "a.dcm",
                                                                            enforce_file_format=True)
    [study] = store.find_studies(["42"])
    assert (study.uid, study.instance_count, study.modalities) == ("1.2.3", 1, ("OT",))
    [instance] = store.list_instances("1.2.3", "1.2.3.4")
    assert instance.frames == 2 and len(rules.frames_of([instance])) == 2
    first = Image.open(io.BytesIO(store.render("1.2.3", "1.2.3.4", "1.2.3.4.5", 1, window=None, size=None)))
    second = Image.open(io.BytesIO(store.render("1.2.3", "1.2.3.4", "1.2.3.4.5", 2, window=None, size=None)))
    assert first.size == (100, 4) and first.getpixel((2, 2)) < 30 and second.getpixel((2, 2)) > 225
    for study_uid, series_uid, frame in (("1.2.3", "1.2.3.4", 3), ("1.2.3", "1.2.9", 1), ("1.2.9", "1.2.3.4", 1)):
        with pytest.raises(LookupError):
            store.render(study_uid, series_uid, "1.2.3.4.5", frame, window=None, size=None)
    assert store.find_studies(["43"]) == [] and store.get_study("1.2.9") is None


def test_the_outbox_hands_each_order_to_the_ris_port() -> None:
    sent: list[OrderToSend] = []

    class Ris:
        def send(self, order: OrderToSend) -> None:
            sent.append(order)

    payload = {"order_id": str(uuid.uuid4()), "accession_number": "IM2600000182", "patient_ipp": "1000123",
               "visit_nda": "026000001", "modality": "CT", "body_part": "Thorax", "question": "Dyspnée",
               "urgency": "urgent", "ordered_by": "Dr Claire Lefebvre"}
    order_handler(Ris())(Envelope(uuid.uuid4(), "imaging.order", payload, 1))
    assert sent == [OrderToSend("IM2600000182", "1000123", "026000001", "CT", "Thorax", "Dyspnée", "urgent",
                                "Dr Claire Lefebvre")]
