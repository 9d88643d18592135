"""The local image store: DICOM files in a directory, read with pydicom, rendered with numpy and
Pillow. The demo's PACS when no Orthanc is configured; it answers the same summaries as
`OrthancStore` because it builds the same DICOM JSON (pydicom's `to_json_dict`) and hands it to
the same parsers (`imaging_rules`).

The index (which file holds which instance) is built at first use and rebuilt when the set of
files changes; headers are read without pixel data, so indexing stays cheap.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from PIL import Image
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from naho.results import imaging_rules as rules

_STUDY_TAGS = ("StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber", "StudyDescription", "StudyID",
               "PatientName", "PatientID", "IssuerOfPatientID", "OtherPatientIDsSequence", "ReferringPhysicianName")
_SERIES_TAGS = ("StudyInstanceUID", "SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription",
                "BodyPartExamined")
_INSTANCE_TAGS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID", "InstanceNumber",
                  "NumberOfFrames")


@dataclass(frozen=True)
class _Entry:
    path: Path
    header: Dataset


def _subset(ds: Dataset, keywords: Sequence[str]) -> Dataset:
    out = Dataset()
    for keyword in keywords:
        if keyword in ds:
            out[keyword] = ds[keyword]
    return out


def _json(ds: Dataset) -> dict[str, Any]:
    return ds.to_json_dict(bulk_data_threshold=1 << 20, bulk_data_element_handler=lambda _element: "")


class LocalDicomStore:
    """DICOM Part 10 files under `directory` (any depth, `*.dcm`)."""

    dicomweb_base = ""

    def __init__(self, directory: Path, *, zone: ZoneInfo) -> None:
        self.directory = directory
        self.zone = zone
        self._lock = threading.Lock()
        self._signature: tuple[int, int] | None = None
        self._entries: dict[str, _Entry] = {}  # by SOP Instance UID

    def _index(self) -> dict[str, _Entry]:
        files = sorted(self.directory.rglob("*.dcm")) if self.directory.is_dir() else []
        signature = (len(files), max((f.stat().st_mtime_ns for f in files), default=0))
        with self._lock:
            if signature != self._signature:
                entries = {}
                for path in files:
                    try:
                        header = dcmread(path, stop_before_pixels=True)
                    except Exception:  # noqa: S112  (a stray or broken file is not an image: skipped)
                        continue
                    uid = str(header.get("SOPInstanceUID", ""))
                    if rules.is_uid(uid):
                        entries[uid] = _Entry(path, header)
                self._entries, self._signature = entries, signature
            return self._entries

    def _of_study(self, study_uid: str) -> list[_Entry]:
        return [e for e in self._index().values() if str(e.header.get("StudyInstanceUID", "")) == study_uid]

    def _study_json(self, entries: list[_Entry]) -> dict[str, Any]:
        item = _json(_subset(entries[0].header, _STUDY_TAGS))
        modalities = sorted({str(e.header.get("Modality", "")) for e in entries} - {""})
        item[rules.MODALITIES_IN_STUDY] = {"vr": "CS", "Value": modalities}
        item[rules.SERIES_COUNT] = {"vr": "IS", "Value": [len({str(e.header.SeriesInstanceUID) for e in entries})]}
        item[rules.STUDY_INSTANCE_COUNT] = {"vr": "IS", "Value": [len(entries)]}
        return item

    def find_studies(self, patient_ids: Sequence[str]) -> list[rules.StudySummary]:
        wanted = set(patient_ids)
        studies: dict[str, list[_Entry]] = {}
        for entry in self._index().values():
            ids = {str(entry.header.get("PatientID", ""))} | {
                str(o.get("PatientID", "")) for o in entry.header.get("OtherPatientIDsSequence", [])}
            if ids & wanted:
                studies.setdefault(str(entry.header.StudyInstanceUID), []).append(entry)
        return rules.studies_from_json([self._study_json(e) for e in studies.values()], self.zone)

    def get_study(self, study_uid: str) -> rules.StudySummary | None:
        entries = self._of_study(rules.require_uid(study_uid))
        return rules.study_from_json(self._study_json(entries), self.zone) if entries else None

    def list_series(self, study_uid: str) -> list[rules.SeriesSummary]:
        series: dict[str, list[_Entry]] = {}
        for entry in self._of_study(rules.require_uid(study_uid)):
            series.setdefault(str(entry.header.SeriesInstanceUID), []).append(entry)
        items = []
        for entries in series.values():
            item = _json(_subset(entries[0].header, _SERIES_TAGS))
            item[rules.SERIES_INSTANCE_COUNT] = {"vr": "IS", "Value": [len(entries)]}
            items.append(item)
        return rules.series_from_json(items, study_uid)

    def list_instances(self, study_uid: str, series_uid: str) -> list[rules.InstanceRef]:
        rules.require_uid(series_uid)
        items = [_json(_subset(e.header, _INSTANCE_TAGS)) for e in self._of_study(rules.require_uid(study_uid))
                 if str(e.header.SeriesInstanceUID) == series_uid]
        return rules.instances_from_json(items, study_uid, series_uid)

    def render(self, study_uid: str, series_uid: str, instance_uid: str, frame: int, *,
               window: rules.WindowPreset | None, size: int | None) -> bytes:
        entry = self._index().get(rules.require_uid(instance_uid))
        if (entry is None or str(entry.header.get("StudyInstanceUID")) != study_uid
                or str(entry.header.get("SeriesInstanceUID")) != series_uid):
            raise LookupError("no such instance")
        ds = dcmread(entry.path)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        if not 1 <= frame <= frames:
            raise LookupError("no such frame")
        pixels = ds.pixel_array
        if frames > 1:
            pixels = pixels[frame - 1]
        return to_jpeg(render_grey(ds, pixels, window), size)


def _first(value: Any) -> float | None:
    """The first value of a DS that may be multi-valued (WindowCenter may list several)."""
    if isinstance(value, (MultiValue, list, tuple)):
        value = value[0] if len(value) else None
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def render_grey(ds: Dataset, pixels: np.ndarray, window: rules.WindowPreset | None) -> np.ndarray:
    """8-bit grey levels of a monochrome frame: the modality LUT (rescale slope and intercept),
    then the VOI window (the preset, else the image's own, else its full range), linear as
    PS3.3 C.11.2.1.2.1; MONOCHROME1 is inverted. Colour images are passed as they are."""
    if pixels.ndim == 3:  # RGB
        return np.asarray(pixels, dtype=np.uint8)
    values = pixels.astype(np.float32) * float(ds.get("RescaleSlope", 1) or 1) + float(
        ds.get("RescaleIntercept", 0) or 0)
    if window is not None:
        center, width = window.center, window.width
    elif (c := _first(ds.get("WindowCenter"))) is not None and (w := _first(ds.get("WindowWidth"))) is not None:
        center, width = c, w
    else:
        low_value, high_value = float(values.min()), float(values.max())
        center, width = (low_value + high_value) / 2, max(high_value - low_value, 1.0)
    low, high = rules.window_bounds(center, width)
    grey = np.clip((values - low) / max(high - low, 1e-6), 0.0, 1.0) * 255.0
    if str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1":
        grey = 255.0 - grey
    return grey.round().astype(np.uint8)


def to_jpeg(grey: np.ndarray, size: int | None) -> bytes:
    image = Image.fromarray(grey)
    if size:
        image.thumbnail((size, size))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()
