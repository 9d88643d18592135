"""Imaging's wiring, called by the composition root (app.py): the image store adapter chosen
from settings (Orthanc over DICOMweb, else the local DICOM store), the RIS port and its outbox
handler, the routers. Kept here so app.py gains three lines, not a domain's worth."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from fastapi import APIRouter

from naho.config import Settings
from naho.platform.deps import Container
from naho.results import imaging_pages, imaging_service
from naho.results.dicom_store import LocalDicomStore
from naho.results.imaging_ports import ImageStore, NoRis, order_handler
from naho.results.orthanc import OrthancStore

ROUTERS: tuple[APIRouter, ...] = (imaging_pages.router, imaging_pages.api)


def make_store(settings: Settings) -> ImageStore:
    zone = ZoneInfo(settings.timezone)
    if settings.orthanc_url:
        return OrthancStore.from_settings(settings)
    return LocalDicomStore(settings.imaging_store_dir, zone=zone)


def wire(container: Container, settings: Settings) -> None:
    container.ports.setdefault("images", make_store(settings))
    container.ports["imaging_settings"] = imaging_service.ImagingSettings(
        authority=settings.hl7_application, zone=ZoneInfo(settings.timezone))
    ris = container.ports.setdefault("ris", NoRis())
    container.ports["outbox_handlers"].setdefault(imaging_service.ORDER_TOPIC, order_handler(ris))


def close(container: Container) -> None:
    store = container.ports.get("images")
    if isinstance(store, OrthancStore):
        store.close()
