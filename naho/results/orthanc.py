"""The Orthanc adapter of the image store: QIDO-RS and WADO-RS rendered over HTTP with httpx.

Orthanc's DICOMweb plugin (Debian `orthanc-dicomweb`, 1.7) serves `/dicom-web/studies?…`,
`…/series`, `…/instances` and `…/frames/{n}/rendered` with the standard `window=center,width,
function` and `viewport=w,h` parameters; the commas of these and of `includefield` must reach
it as they are (it does not decode `%2C`), so the query strings are written here, not by httpx.
The browser never talks to Orthanc: naho fetches and passes the bytes on after the door let the
person in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx

from naho.config import Settings
from naho.results import imaging_rules as rules
from naho.results.imaging_ports import PacsUnavailable


class OrthancStore:
    """One httpx client per process (connection pooling); basic auth when configured."""

    def __init__(self, url: str, *, zone: ZoneInfo, timeout: float = 10.0, username: str = "", password: str = "",
                 transport: httpx.BaseTransport | None = None) -> None:
        root = url.rstrip("/")
        self.dicomweb_base = f"{root}/dicom-web"
        self.zone = zone
        auth = httpx.BasicAuth(username, password) if username else None
        self.client = httpx.Client(base_url=self.dicomweb_base, timeout=timeout, auth=auth, transport=transport,
                                   headers={"User-Agent": "naho"})

    @classmethod
    def from_settings(cls, settings: Settings) -> OrthancStore:
        return cls(settings.orthanc_url, zone=ZoneInfo(settings.timezone), timeout=settings.orthanc_timeout,
                   username=settings.orthanc_username, password=settings.orthanc_password)

    def close(self) -> None:
        self.client.close()

    def _get(self, path: str, params: dict[str, str] | None = None, accept: str = "application/dicom+json",
             ) -> httpx.Response:
        if params:  # commas stay commas: the plugin splits includefield and window on them, undecoded
            path += "?" + "&".join(f"{quote(k)}={quote(v, safe=',')}" for k, v in params.items())
        try:
            response = self.client.get(path, headers={"Accept": accept})
        except httpx.HTTPError as exc:
            raise PacsUnavailable(f"Orthanc: {type(exc).__name__}") from exc
        if response.status_code >= 500:
            raise PacsUnavailable(f"Orthanc answered {response.status_code}")
        return response

    def _json(self, path: str, params: dict[str, str] | None = None) -> list[dict[str, Any]]:
        response = self._get(path, params)
        if response.status_code == 404:
            return []
        if response.status_code != 200:
            raise PacsUnavailable(f"Orthanc answered {response.status_code} to a query")
        data = response.json() if response.content else []
        return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []

    def find_studies(self, patient_ids: Sequence[str]) -> list[rules.StudySummary]:
        items: list[dict[str, Any]] = []
        for patient_id in dict.fromkeys(p for p in patient_ids if p):
            items += self._json("/studies", {"PatientID": patient_id, "includefield": ",".join(rules.STUDY_FIELDS),
                                             "limit": "200"})
        return [s for s in rules.studies_from_json(items, self.zone) if s.patient_id in patient_ids]

    def get_study(self, study_uid: str) -> rules.StudySummary | None:
        found = self._json("/studies", {"StudyInstanceUID": rules.require_uid(study_uid),
                                        "includefield": ",".join(rules.STUDY_FIELDS)})
        studies = [s for s in rules.studies_from_json(found, self.zone) if s.uid == study_uid]
        return studies[0] if studies else None

    def list_series(self, study_uid: str) -> list[rules.SeriesSummary]:
        path = f"/studies/{rules.require_uid(study_uid)}/series"
        return rules.series_from_json(self._json(path, {"includefield": ",".join(rules.SERIES_FIELDS)}), study_uid)

    def list_instances(self, study_uid: str, series_uid: str) -> list[rules.InstanceRef]:
        path = f"/studies/{rules.require_uid(study_uid)}/series/{rules.require_uid(series_uid)}/instances"
        found = self._json(path, {"includefield": ",".join(rules.INSTANCE_FIELDS)})
        return rules.instances_from_json(found, study_uid, series_uid)

    def render(self, study_uid: str, series_uid: str, instance_uid: str, frame: int, *,
               window: rules.WindowPreset | None, size: int | None) -> bytes:
        path = (f"/studies/{rules.require_uid(study_uid)}/series/{rules.require_uid(series_uid)}"
                f"/instances/{rules.require_uid(instance_uid)}/frames/{int(frame)}/rendered")
        query = {"viewport": f"{int(size)},{int(size)}"} if size else {}
        if window:
            query["window"] = window.dicomweb
        response = self._get(path, query, accept="image/jpeg")
        if response.status_code in (400, 404):  # no such instance or frame (Orthanc: 400 for a frame too far)
            raise LookupError("no such frame")
        if response.status_code != 200:
            raise PacsUnavailable(f"Orthanc answered {response.status_code} to a rendering")
        return response.content
