"""Pages of a stay's care team: who is named on it and who works in the units it went through;
add a member found in the staff directory, end a membership. Thin: record.care_team decides
(the one door, who may change, the rules) and audits."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from naho.platform import i18n
from naho.platform.deps import ActorDep, ContainerDep
from naho.platform.security.policy import requires
from naho.platform.security.rules import Role
from naho.record import care_team
from naho.web.templating import render

router = APIRouter(include_in_schema=False)
#: Who may open the page (the door then decides on the patient); porters and others are refused.
VIEWERS = requires(Role.PHYSICIAN, Role.NURSE, Role.PHARMACIST, Role.ADMISSION_CLERK)
#: Who may try a change (care_team.may_change then wants a physician or nurse in the team).
CHANGERS = requires(Role.PHYSICIAN, Role.NURSE, Role.ADMISSION_CLERK)

#: Why a change was refused, by rule name, shown translated.
REFUSALS = {
    "UnknownTeamRole": i18n.N_("Choose a role in the list."),
    "ProfessionDoesNotFitRole": i18n.N_("This professional's profession does not fit the chosen role."),
    "AlreadyInCareTeam": i18n.N_("This professional is already named on the stay."),
    "StayClosed": i18n.N_("This stay is finished: no member can be added."),
    "StaffNotFound": i18n.N_("Choose a professional found in the directory."),
    "MemberNotFound": i18n.N_("This member is no longer in the care team."),
}


def _page(encounter_id: uuid.UUID, error: str | None = None) -> Response:
    suffix = f"?erreur={error}" if error else ""
    return RedirectResponse(f"/sejours/{encounter_id}/equipe{suffix}", status_code=303)


@router.get("/sejours/{encounter_id}/equipe", dependencies=[Depends(VIEWERS)])
def team(request: Request, encounter_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
         q: Annotated[str, Query(max_length=100)] = "", erreur: str | None = None) -> Response:
    view = care_team.view_care_team(container.uow(), actor, encounter_id, container.ports["care"], search=q)
    error = i18n._(REFUSALS[erreur]) if erreur in REFUSALS else None
    roles = {code: i18n._(r.label) for code, r in care_team.TEAM_ROLES.items()}
    return render(request, "record/care_team.html", {"view": view, "roles": roles, "error": error,
                                                     "role_choices": care_team.roles_for})


@router.post("/sejours/{encounter_id}/equipe/membres", dependencies=[Depends(CHANGERS)])
def add(encounter_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
        username: Annotated[str, Form(max_length=80)] = "", role: Annotated[str, Form(max_length=40)] = "") -> Response:
    # Fields default to empty so that the door, not form validation, answers first.
    try:
        care_team.add_member(container.uow(), actor, encounter_id, username, role, container.ports["care"])
    except (care_team.UnknownTeamRole, care_team.ProfessionDoesNotFitRole, care_team.AlreadyInCareTeam,
            care_team.StayClosed, care_team.StaffNotFound) as exc:
        return _page(encounter_id, str(exc.extra.get("rule", "")))
    return _page(encounter_id)


@router.post("/sejours/{encounter_id}/equipe/membres/{member_id}/fin", dependencies=[Depends(CHANGERS)])
def end(encounter_id: uuid.UUID, member_id: str, container: ContainerDep, actor: ActorDep) -> Response:
    try:
        member = uuid.UUID(member_id)
    except ValueError:
        member = uuid.UUID(int=0)  # no such member: the service answers after the door
    try:
        care_team.end_member(container.uow(), actor, encounter_id, member, container.ports["care"])
    except care_team.MemberNotFound:
        return _page(encounter_id, "MemberNotFound")
    return _page(encounter_id)
