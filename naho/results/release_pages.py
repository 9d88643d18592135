"""The physician's side of releasing results to the patient: mark a report seen, record that
the patient was told. Thin: naho.results.release decides, refuses and audits."""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter, Depends
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from naho.platform import i18n
from naho.platform.deps import ActorDep, ContainerDep
from naho.platform.security.policy import requires
from naho.platform.security.rules import Role
from naho.results import release

router = APIRouter(include_in_schema=False)
PHYSICIANS = requires(Role.PHYSICIAN)

#: Why a report is not on the patient's portal yet (release_rules.Waiting), as staff read it.
WAITING_LABELS = {
    "not_final": i18n.N_("not final yet"),
    "physician_seen": i18n.N_("waits for a physician to mark it seen"),
    "patient_told": i18n.N_("sensitive: waits for the physician to tell the patient"),
    "delay": i18n.N_("waits for its release delay"),
    "withdrawn": i18n.N_("withdrawn by the laboratory"),
}


@router.post("/patients/{patient_id}/resultats/{report_id}/{what}", dependencies=[Depends(PHYSICIANS)])
def mark(patient_id: uuid.UUID, report_id: uuid.UUID, what: Literal["vu", "annonce"], container: ContainerDep,
         actor: ActorDep) -> Response:
    """`vu`: a physician saw the report; `annonce`: the physician told the patient."""
    settings = container.ports["results_settings"]
    marker = release.mark_told if what == "annonce" else release.mark_seen
    marker(container.uow(), actor, report_id, container.ports["care"], settings.release,
           notify=settings.notify_patients)
    return RedirectResponse(f"/patients/{patient_id}/resultats#reports", status_code=303)
