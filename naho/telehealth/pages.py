"""Pages of teleconsultation: the patient's room on the portal, the practitioner's room, and the
signalling websocket they share. Thin: telehealth.service decides, audits and refuses; the
browser (static/telehealth.js) does WebRTC.

The websocket speaks JSON. From a participant: `signal` (SDP or ICE candidate, relayed to the
other once the patient is admitted), `chat`, `file` (a document went over the data channel: the
trail notes it), and from the practitioner `admit`, `identity`, `consent`, `end` (with the
note). From the server: `state`, `peer-joined`, `peer-left`, `signal`, `chat`, `error`.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from naho.platform import i18n
from naho.platform.deps import ActorDep, Container, ContainerDep, get_container
from naho.platform.errors import DomainError
from naho.platform.security.actor import Actor
from naho.platform.security.policy import requires, socket_requires
from naho.platform.security.rules import Role
from naho.telehealth import rules, service
from naho.telehealth.signalling import Hub, other
from naho.web.templating import render

router = APIRouter(include_in_schema=False)
PATIENT = requires(Role.PATIENT)
PRACTITIONER = requires(Role.PHYSICIAN)
PARTICIPANTS = socket_requires(Role.PATIENT, Role.PHYSICIAN)
#: The largest websocket message read (an SDP with many candidates is a few kilobytes).
MAX_MESSAGE = 64_000
MAX_CHAT = 2_000

REFUSALS = {
    "RoomNotYetOpen": i18n.N_("The room opens 15 minutes before the appointment. Come back then."),
    "RoomClosed": i18n.N_("The room of this teleconsultation is closed."),
    "ConsultationEnded": i18n.N_("This teleconsultation is over."),
    "NotAdmitted": i18n.N_("Admit the patient first."),
    "IdentityNotConfirmed": i18n.N_("Confirm the patient's identity first."),
    "ConsentNotRecorded": i18n.N_("Record the patient's consent first."),
    "EmptyNote": i18n.N_("Write the consultation note."),
}
#: What the browser script says, translated here (the script carries no text of its own).
SCRIPT_TEXTS = {
    "waiting": i18n.N_("You are in the waiting room: the practitioner will let you in."),
    "patient-waiting": i18n.N_("The patient is in the waiting room."),
    "patient-absent": i18n.N_("The patient has not arrived yet."),
    "in-call": i18n.N_("Consultation in progress."),
    "peer-left": i18n.N_("The other participant has left."),
    "reconnecting": i18n.N_("Connection lost: reconnecting…"),
    "ended": i18n.N_("The consultation is over."),
    "unavailable": i18n.N_("This teleconsultation is not available."),
    "no-camera": i18n.N_("Camera or microphone unavailable: check the browser's permissions."),
    "quality-good": i18n.N_("Connection: good"),
    "quality-average": i18n.N_("Connection: average"),
    "quality-poor": i18n.N_("Connection: poor"),
    "file-received": i18n.N_("Document received:"),
    "file-sent": i18n.N_("Document sent:"),
    "file-refused": i18n.N_("Only PDF, PNG or JPEG documents of up to 10 MB can be shared."),
    "you": i18n.N_("You"),
    "patient": i18n.N_("Patient"),
    "practitioner": i18n.N_("Practitioner"),
}


def _texts() -> str:
    return json.dumps({k: i18n._(v) for k, v in SCRIPT_TEXTS.items()}, ensure_ascii=False)


def _message(exc: DomainError) -> str:
    rule = str(exc.extra.get("rule") or "")
    return i18n._(REFUSALS[rule]) if rule in REFUSALS else i18n._("This teleconsultation is not available.")


def _key(container: Container) -> bytes:
    return service.room_key(container.settings.secret_key)


def _page(request: Request, container: Container, actor: Actor, appointment_id: uuid.UUID,
          template: str, base: str) -> Response:
    try:
        room = service.enter_room(container.uow(), actor, appointment_id, container.ports["care"], _key(container))
    except service.RoomRefused as exc:
        return render(request, "telehealth/closed.html", {"base": base, "message": _message(exc)},
                      status_code=exc.status)
    settings = container.settings
    ice = rules.ice_servers(settings.telehealth_stun_urls, settings.telehealth_turn_urls,
                            settings.telehealth_turn_secret, str(actor.account_id), room.window.closes_at)
    return render(request, template, {
        "base": base, "room": room, "ice": json.dumps(ice), "texts": _texts(),
        "socket": f"/teleconsultation/{appointment_id}/signal?jeton={room.token}"})


@router.get("/portail/teleconsultation/{appointment_id}", dependencies=[Depends(PATIENT)])
def patient_room(request: Request, appointment_id: uuid.UUID, container: ContainerDep, actor: ActorDep) -> Response:
    return _page(request, container, actor, appointment_id, "telehealth/room.html", "portal/base.html")


@router.get("/teleconsultations/{appointment_id}", dependencies=[Depends(PRACTITIONER)])
def practitioner_room(request: Request, appointment_id: uuid.UUID, container: ContainerDep,
                      actor: ActorDep) -> Response:
    return _page(request, container, actor, appointment_id, "telehealth/room.html", "shell/staff.html")


def _state_message(hub: Hub, appointment_id: uuid.UUID, state: service.RoomState) -> dict[str, Any]:
    present = hub.present(appointment_id)
    return {"type": "state", "patient": rules.Role.PATIENT in present,
            "practitioner": rules.Role.PRACTITIONER in present, "admitted": state.admitted,
            "identity": state.identity_confirmed, "consent": state.consent, "ended": state.ended,
            "duration": state.duration_seconds}


PRACTITIONER_ACTIONS = {"admit": service.admit, "identity": service.confirm_identity,
                        "consent": service.record_consent}


async def _handle(websocket: WebSocket, container: Container, hub: Hub, actor: Actor, room: service.Room,
                  message: dict[str, Any]) -> None:
    kind = message.get("type")
    appointment_id, role = room.appointment_id, room.role
    line = hub.line(appointment_id)
    care = container.ports["care"]
    if kind == "signal":
        if not line.admitted:
            await websocket.send_json({"type": "error", "rule": "NotAdmitted",
                                       "message": i18n._("The practitioner has not let you in yet.")})
            return
        await hub.send(appointment_id, other(role), {"type": "signal", "data": message.get("data")})
    elif kind == "chat":
        text = str(message.get("text", ""))[:MAX_CHAT].strip()
        if text and line.admitted:
            await hub.broadcast(appointment_id, {"type": "chat", "from": str(role), "text": text})
    elif kind == "file":
        name, size = str(message.get("name", ""))[:200], message.get("size", 0)
        if line.admitted and isinstance(size, int):
            await run_in_threadpool(service.record_shared_document, container.uow(), actor, appointment_id, role,
                                    name, size)
    elif role is rules.Role.PRACTITIONER and kind in (*PRACTITIONER_ACTIONS, "end"):
        try:
            if kind == "end":
                state = await run_in_threadpool(service.end_consultation, container.uow(), actor, appointment_id,
                                                str(message.get("note", "")), care)
            else:
                state = await run_in_threadpool(PRACTITIONER_ACTIONS[str(kind)], container.uow(), actor,
                                                appointment_id, care)
        except DomainError as exc:
            await websocket.send_json({"type": "error", "rule": str(exc.extra.get("rule") or ""),
                                       "message": _message(exc)})
            return
        line.admitted = state.admitted
        await hub.broadcast(appointment_id, _state_message(hub, appointment_id, state))
    else:
        await websocket.send_json({"type": "error", "rule": "UnknownMessage", "message": ""})


@router.websocket("/teleconsultation/{appointment_id}/signal", dependencies=[Depends(PARTICIPANTS)])
async def signalling(websocket: WebSocket, appointment_id: uuid.UUID,
                     jeton: Annotated[str, Query(max_length=600)] = "") -> None:
    container = get_container(websocket)
    actor: Actor = websocket.state.actor
    try:
        room = await run_in_threadpool(service.join_room, container.uow(), actor, appointment_id, jeton,
                                       container.ports["care"], _key(container))
    except DomainError:
        # Accepted then closed: a browser sees 1008 and stops retrying (a refused handshake is 1006).
        await websocket.accept()
        await websocket.close(code=1008)
        return
    await websocket.accept()
    hub: Hub = container.ports["telehealth_hub"]
    line = hub.line(appointment_id)
    line.admitted = line.admitted or room.state.admitted
    previous = hub.join(appointment_id, room.role, websocket)
    if previous is not None:  # the same person again (a reload, a new network): the old line goes
        await previous.close(code=4000)
    await hub.send(appointment_id, other(room.role), {"type": "peer-joined", "role": str(room.role)})
    await hub.broadcast(appointment_id, _state_message(hub, appointment_id, room.state))
    try:
        while True:
            raw = await websocket.receive_text()
            if len(raw) > MAX_MESSAGE:
                await websocket.close(code=1009)
                break
            try:
                message = json.loads(raw)
            except ValueError:
                continue
            if isinstance(message, dict):
                await _handle(websocket, container, hub, actor, room, message)
    except WebSocketDisconnect:
        pass
    finally:
        if hub.leave(appointment_id, room.role, websocket):
            await hub.send(appointment_id, other(room.role), {"type": "peer-left", "role": str(room.role)})
