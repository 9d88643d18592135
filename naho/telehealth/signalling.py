"""The signalling hub: who is connected to which room, and relaying between the two.

WebRTC carries the audio, video and shared documents peer to peer; only the session
descriptions, ICE candidates, chat lines and the practitioner's actions pass here. The hub lives
in the web process: both participants of a room must reach the same process (a load balancer
routes /teleconsultation/<appointment>/ by its path; see docs/adr/0014-teleconsultation.md).
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket

from naho.telehealth.rules import Role


@dataclass
class RoomLine:
    sockets: dict[Role, WebSocket] = field(default_factory=dict)
    #: Known once the practitioner admitted the patient (or read from the session when joining).
    admitted: bool = False


class Hub:
    def __init__(self) -> None:
        self.rooms: dict[uuid.UUID, RoomLine] = {}

    def line(self, appointment_id: uuid.UUID) -> RoomLine:
        return self.rooms.setdefault(appointment_id, RoomLine())

    def join(self, appointment_id: uuid.UUID, role: Role, socket: WebSocket) -> WebSocket | None:
        """Seat a participant; returns the connection it replaces (the same person reconnecting)."""
        line = self.line(appointment_id)
        previous = line.sockets.get(role)
        line.sockets[role] = socket
        return previous

    def leave(self, appointment_id: uuid.UUID, role: Role, socket: WebSocket) -> bool:
        """Unseat a connection if it is still the participant's current one."""
        line = self.rooms.get(appointment_id)
        if line is None or line.sockets.get(role) is not socket:
            return False
        del line.sockets[role]
        if not line.sockets:
            del self.rooms[appointment_id]
        return True

    def present(self, appointment_id: uuid.UUID) -> set[Role]:
        line = self.rooms.get(appointment_id)
        return set(line.sockets) if line else set()

    async def send(self, appointment_id: uuid.UUID, role: Role, message: dict[str, Any]) -> bool:
        line = self.rooms.get(appointment_id)
        socket = line.sockets.get(role) if line else None
        if socket is None:
            return False
        with contextlib.suppress(RuntimeError, OSError):  # gone in the meantime: its own loop cleans up
            await socket.send_json(message)
            return True
        return False

    async def broadcast(self, appointment_id: uuid.UUID, message: dict[str, Any]) -> None:
        for role in list(self.present(appointment_id)):
            await self.send(appointment_id, role, message)


def other(role: Role) -> Role:
    return Role.PRACTITIONER if role is Role.PATIENT else Role.PATIENT
