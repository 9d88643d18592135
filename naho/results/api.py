"""JSON routes of laboratory results (same door, rules and audit as the pages)."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends

from naho.platform.deps import ActorDep, ContainerDep
from naho.results import service
from naho.results.pages import CLINICIANS, PHYSICIANS

router = APIRouter(prefix="/api", tags=["results"])


def _results(view: service.ResultsView) -> dict[str, Any]:
    """Tests × dates: each row's cells keyed by the observation time (ISO 8601, UTC)."""
    return {
        "patient_id": str(view.patient_id),
        "dates": [d.isoformat() for d in view.dates],
        "tests": [{"loinc": r.loinc, "label": r.label, "unit": r.unit, "reference": r.reference,
                   "results": [{"observed_at": at.isoformat(), **asdict(cell)} for at, cell in
                               sorted(r.cells.items(), key=lambda item: item[0], reverse=True)]}
                  for r in view.rows],
        "reports": [{**asdict(r), "id": str(r.id), "observed_at": r.observed_at.isoformat(),
                     "document_id": str(r.document_id) if r.document_id else None} for r in view.reports],
        "alerts": [_alert(a) for a in view.alerts],
    }


def _alert(alert: service.AlertPublic) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else str(v) if isinstance(v, uuid.UUID) else v)
            for k, v in asdict(alert).items()}


@router.get("/patients/{patient_id}/results", dependencies=[Depends(CLINICIANS)])
def patient_results(patient_id: uuid.UUID, container: ContainerDep, actor: ActorDep) -> dict[str, Any]:
    return _results(service.view_results(container.uow(), actor, patient_id, container.ports["care"]))


@router.get("/results/alerts", dependencies=[Depends(PHYSICIANS)])
def alerts(container: ContainerDep, actor: ActorDep) -> list[dict[str, Any]]:
    return [_alert(a) for a in service.alerts_for(container.uow(), actor, container.ports["care"])]


@router.post("/results/alerts/{alert_id}/acknowledge", dependencies=[Depends(PHYSICIANS)])
def acknowledge(alert_id: uuid.UUID, container: ContainerDep, actor: ActorDep) -> dict[str, Any]:
    return _alert(service.acknowledge_alert(container.uow(), actor, alert_id, container.ports["care"]))
