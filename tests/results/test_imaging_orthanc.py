"""Imaging against a real Orthanc (Debian's `orthanc` and `orthanc-dicomweb`), started by the test
on a free loopback port with its DICOM port off and remote access refused: the Orthanc adapter
(QIDO-RS, WADO-RS rendered with windows and viewports) and the same pages, API and FHIR as with
the local store. Skipped by hand when Orthanc is not installed; CI (NAHO_REQUIRE_SERVICES=1) fails."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.imagingstudy import ImagingStudy
from pydicom.dataset import Dataset

from naho.platform.deps import Container
from naho.results import imaging_rules
from naho.results.imaging_ports import PacsUnavailable
from naho.results.orthanc import OrthancStore
from tests.conftest import free_port, service_missing
from tests.personas import NURSE, PHYSICIAN, login
from tests.results.conftest import Inpatient, admit_inpatient
from tests.results.imaging_support import ct_of, picture, radiograph_of

pytestmark = pytest.mark.integration
PARIS = ZoneInfo("Europe/Paris")
PLUGIN_DIRS = (Path("/usr/share/orthanc/plugins"), Path("/usr/lib/orthanc"))


def _orthanc_binary() -> str | None:
    installed = (p for p in ("/usr/sbin/Orthanc", "/usr/bin/Orthanc") if os.access(p, os.X_OK))
    return shutil.which("Orthanc") or next(installed, None)


def _dicomweb_plugin() -> Path | None:
    for folder in PLUGIN_DIRS:
        found = sorted(folder.glob("libOrthancDicomWeb.so*")) if folder.is_dir() else []
        if found:
            return found[0]
    return None


def _listening_ports(pid: int) -> set[int]:
    """TCP ports the process listens on (from /proc: its socket inodes in LISTEN state)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


class Orthanc:
    def __init__(self, url: str, process: subprocess.Popen[bytes], port: int) -> None:
        self.url, self.process, self.port = url, process, port
        self.http = httpx.Client(base_url=url, timeout=30)

    def upload(self, datasets: list[Dataset]) -> list[Dataset]:
        for ds in datasets:
            data = io.BytesIO()
            ds.save_as(data, enforce_file_format=True)
            response = self.http.post("/instances", content=data.getvalue())
            assert response.status_code == 200, response.text
        return datasets


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    binary, plugin = _orthanc_binary(), _dicomweb_plugin()
    if binary is None or plugin is None:
        service_missing("Orthanc with its DICOMweb plugin is not installed (apt-get install orthanc orthanc-dicomweb)")
    assert binary is not None and plugin is not None
    folder = tmp_path_factory.mktemp("orthanc")
    port = free_port()
    # Orthanc 1.10 has no setting to bind its HTTP server to one address: it listens on every
    # interface, and RemoteAccessAllowed=false makes it refuse any client that is not loopback.
    # The DICOM server (port 4242 by default, on every interface too) is switched off.
    config = {
        "Name": "naho-tests", "HttpPort": port, "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
        "DicomServerEnabled": False, "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "index"), "Plugins": [str(plugin)], "HttpCompressionEnabled": False,
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False},
    }
    (folder / "orthanc.json").write_text(json.dumps(config), encoding="utf-8")
    log = (folder / "orthanc.log").open("wb")
    process = subprocess.Popen([binary, str(folder / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                if httpx.get(f"{url}/system", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("Orthanc did not start:\n" + (folder / "orthanc.log").read_text(errors="replace")[-3000:])
            time.sleep(0.1)
        server = Orthanc(url, process, port)
        yield server
        server.http.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture
def store(orthanc: Orthanc) -> Iterator[OrthancStore]:
    adapter = OrthancStore(orthanc.url, zone=PARIS, timeout=10)
    yield adapter
    adapter.close()


def test_orthanc_listens_on_its_http_port_only_and_has_dicomweb(orthanc: Orthanc) -> None:
    assert _listening_ports(orthanc.process.pid) == {orthanc.port}  # no DICOM port
    system = orthanc.http.get("/system").json()
    assert system["Name"] == "naho-tests" and system["PluginsEnabled"] is True
    assert "dicom-web" in orthanc.http.get("/plugins").json()


def test_the_orthanc_adapter_finds_lists_and_renders(orthanc: Orthanc, store: OrthancStore,
                                                     container: Container) -> None:
    patient = admit_inpatient(container)
    ct = orthanc.upload(ct_of(patient, slices=5))
    orthanc.upload(radiograph_of(patient))
    studies = store.find_studies([patient.ipp])
    assert [s.description for s in studies] == ["Radiographie du thorax", "TDM thoracique"]
    tdm = studies[1]
    assert (tdm.uid, tdm.patient_id, tdm.accession_number, tdm.modalities) == (
        ct[0].StudyInstanceUID, patient.ipp, "IM2600000182", ("CT",))
    assert tdm.performed_at is not None and tdm.performed_at.isoformat() == "2026-11-25T07:30:00+00:00"
    assert (tdm.series_count, tdm.instance_count) == (1, 5)
    assert store.find_studies(["0000000"]) == []
    assert store.get_study(tdm.uid) == tdm and store.get_study("1.2.3.4") is None

    [series] = store.list_series(tdm.uid)
    assert (series.uid, series.modality, series.number, series.description, series.instance_count) == (
        ct[0].SeriesInstanceUID, "CT", 2, "Thorax axial", 5)
    instances = store.list_instances(tdm.uid, series.uid)
    assert [i.uid for i in instances] == [ds.SOPInstanceUID for ds in ct]  # in instance number order
    assert all(i.frames == 1 for i in instances)

    middle = instances[2].uid
    plain = store.render(tdm.uid, series.uid, middle, 1, window=None, size=None)
    lung = store.render(tdm.uid, series.uid, middle, 1, window=imaging_rules.WINDOW_PRESETS["lung"], size=None)
    thumbnail = store.render(tdm.uid, series.uid, middle, 1, window=None, size=64)
    assert picture(plain).size == (128, 128) and max(picture(thumbnail).size) <= 64
    assert picture(plain).convert("L").getpixel((40, 60)) < 40  # lung black in the image's soft tissue window
    assert 60 < picture(lung).convert("L").getpixel((40, 60)) < 110  # grey in the lung window
    with pytest.raises(LookupError):
        store.render(tdm.uid, "1.2.3", middle, 1, window=None, size=None)  # not this series' instance
    with pytest.raises(LookupError):
        store.render(tdm.uid, series.uid, middle, 2, window=None, size=None)  # one frame only
    with pytest.raises(imaging_rules.NotAUid):
        store.render(tdm.uid, series.uid, "../../system", 1, window=None, size=None)


def test_an_orthanc_that_is_down_says_so(container: Container) -> None:
    down = OrthancStore(f"http://127.0.0.1:{free_port()}", zone=PARIS, timeout=2)
    with pytest.raises(PacsUnavailable):
        down.find_studies(["1000123"])
    down.close()


def _physician(container: Container, client: TestClient, store: OrthancStore) -> TestClient:
    container.ports["images"] = store
    return login(client, PHYSICIAN)


def test_the_pages_show_orthancs_studies_and_proxy_its_frames(orthanc: Orthanc, store: OrthancStore,
                                                             container: Container, client: TestClient) -> None:
    patient: Inpatient = admit_inpatient(container)
    other = admit_inpatient(container, "MARTIN")
    ct = orthanc.upload(ct_of(patient, "IM2600000190", slices=4))
    theirs = orthanc.upload(ct_of(other, "IM2600000208", slices=2))
    _physician(container, client, store)
    page = client.get(f"/patients/{patient.id}/imagerie")
    assert page.status_code == 200 and f'data-study="{ct[0].StudyInstanceUID}"' in page.text
    assert theirs[0].StudyInstanceUID not in page.text
    base = f"/patients/{patient.id}/imagerie/etudes/{ct[0].StudyInstanceUID}"
    viewer = client.get(base)
    assert viewer.status_code == 200 and 'max="4"' in viewer.text and 'class="imaging-thumbnail"' in viewer.text
    images = f"{base}/series/{ct[0].SeriesInstanceUID}/images"
    frame = client.get(f"{images}/{ct[1].SOPInstanceUID}/1", params={"fenetre": "bone"})
    assert frame.status_code == 200 and frame.headers["content-type"] == "image/jpeg"
    assert picture(frame.content).size == (128, 128)
    thumbnail = client.get(f"{images}/{ct[1].SOPInstanceUID}/1", params={"vignette": "true"})
    assert max(picture(thumbnail.content).size) <= imaging_rules.THUMBNAIL_SIZE
    # Another patient's study under this patient's page: refused, whatever the physician may see.
    assert client.get(f"/patients/{patient.id}/imagerie/etudes/{theirs[0].StudyInstanceUID}").status_code == 404
    assert client.get(f"/patients/{patient.id}/imagerie/etudes/{theirs[0].StudyInstanceUID}/series/"
                      f"{theirs[0].SeriesInstanceUID}/images/{theirs[0].SOPInstanceUID}/1").status_code == 404

    fhir = client.get(f"/fhir/R4/ImagingStudy/{ct[0].StudyInstanceUID}", headers={"accept": "application/fhir+json"})
    assert fhir.status_code == 200, fhir.text
    study = ImagingStudy.model_validate(fhir.json())
    [endpoint] = study.contained
    assert study.endpoint[0].reference == "#dicomweb"
    assert endpoint.address == f"{orthanc.url}/dicom-web" and endpoint.connectionType.code == "dicom-wado-rs"
    assert study.numberOfInstances == 4 and study.series[0].uid == ct[0].SeriesInstanceUID


def test_a_nurse_outside_the_care_team_gets_nothing_from_orthanc(orthanc: Orthanc, store: OrthancStore,
                                                                 container: Container, app) -> None:  # type: ignore[no-untyped-def]
    patient = admit_inpatient(container, "LEROY", unit="LENS-MED-CARDIO")
    ct = orthanc.upload(ct_of(patient, "IM2600000216", slices=2))
    container.ports["images"] = store
    nurse = login(TestClient(app), NURSE)
    image = (f"/patients/{patient.id}/imagerie/etudes/{ct[0].StudyInstanceUID}/series/{ct[0].SeriesInstanceUID}"
             f"/images/{ct[0].SOPInstanceUID}/1")
    for path in (f"/patients/{patient.id}/imagerie", image):
        response = nurse.get(path)
        assert response.status_code == 404 and response.headers["content-type"] != "image/jpeg"
