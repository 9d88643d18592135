"""Pure rules of teleconsultation: when a room is open, the room token, what closes a consultation.

No I/O, no clock, no settings (STYLE.md R1, R2): `now` and the signing key come in.

The room token binds one appointment, one participant (an account) and its role, until the
room closes. It is an HMAC-SHA256 signature (RFC 2104) over a compact JSON payload, compared in
constant time; any change to the payload or the signature refuses it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

#: The room opens this long before the appointment's start (the patient settles in the waiting room).
OPENS_BEFORE = timedelta(minutes=15)
#: ... and stays open this long after its planned end (a consultation that runs late).
CLOSES_AFTER = timedelta(minutes=30)
#: Domain separation: a key derived for room tokens signs nothing else.
_TOKEN_CONTEXT = b"naho:telehealth:room-token:v1"


class Role(StrEnum):
    """Who is in the room: the appointment's patient (or a parent for a child), its practitioner."""

    PATIENT = "patient"
    PRACTITIONER = "practitioner"


class TelehealthRuleError(ValueError):
    """A teleconsultation rule was broken; the subclass names it."""


class RoomNotYetOpen(TelehealthRuleError):
    """Too early: the room opens OPENS_BEFORE the appointment."""


class RoomClosed(TelehealthRuleError):
    """Too late: the room closed CLOSES_AFTER the appointment's end."""


class TokenRefused(TelehealthRuleError):
    """The room token is malformed, tampered with, expired, or not for this room or person."""


class TokenTampered(TokenRefused):
    pass


class TokenExpired(TokenRefused):
    pass


class WrongAppointment(TokenRefused):
    pass


class WrongParticipant(TokenRefused):
    pass


class NotAdmitted(TelehealthRuleError):
    """The practitioner has not admitted the patient from the waiting room yet."""


class IdentityNotConfirmed(TelehealthRuleError):
    """The note goes to a record only once the practitioner confirmed the patient's identity."""


class ConsentNotRecorded(TelehealthRuleError):
    """The patient's consent to the teleconsultation was not recorded."""


class EmptyNote(TelehealthRuleError):
    """A consultation ends with a note."""


@dataclass(frozen=True)
class Window:
    opens_at: datetime
    closes_at: datetime


def room_window(starts_at: datetime, ends_at: datetime) -> Window:
    """When the room of an appointment is open: OPENS_BEFORE its start to CLOSES_AFTER its end."""
    return Window(starts_at - OPENS_BEFORE, ends_at + CLOSES_AFTER)


def check_room_open(starts_at: datetime, ends_at: datetime, now: datetime) -> Window:
    """The window, or the rule that refuses entering the room now."""
    window = room_window(starts_at, ends_at)
    if now < window.opens_at:
        raise RoomNotYetOpen("the room opens 15 minutes before the appointment")
    if now >= window.closes_at:
        raise RoomClosed("the room of this appointment is closed")
    return window


@dataclass(frozen=True)
class RoomClaims:
    appointment_id: uuid.UUID
    account_id: uuid.UUID
    role: Role
    expires_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, _TOKEN_CONTEXT + b"." + payload, hashlib.sha256).digest()


def sign_room_token(key: bytes, claims: RoomClaims) -> str:
    """A token for one participant of one room, until `expires_at`."""
    payload = json.dumps({"a": str(claims.appointment_id), "p": str(claims.account_id), "r": str(claims.role),
                          "e": int(claims.expires_at.timestamp())}, separators=(",", ":")).encode()
    return f"{_b64(payload)}.{_b64(_mac(key, payload))}"


def read_room_token(key: bytes, token: str, *, appointment_id: uuid.UUID, account_id: uuid.UUID,
                    now: datetime) -> RoomClaims:
    """The claims of a token signed with `key`, for this appointment and this account, not expired.
    The signature is checked first: nothing of an unsigned payload is believed."""
    try:
        encoded, signature = token.split(".")
        payload = _unb64(encoded)
        given = _unb64(signature)
    except (ValueError, binascii.Error) as exc:
        raise TokenTampered("malformed room token") from exc
    if not hmac.compare_digest(given, _mac(key, payload)):
        raise TokenTampered("the room token's signature does not match")
    try:
        data = json.loads(payload)
        claims = RoomClaims(uuid.UUID(data["a"]), uuid.UUID(data["p"]), Role(data["r"]),
                            datetime.fromtimestamp(int(data["e"]), UTC))
    except (ValueError, KeyError, TypeError) as exc:
        raise TokenTampered("malformed room token") from exc
    if claims.appointment_id != appointment_id:
        raise WrongAppointment("this token is for another appointment")
    if claims.account_id != account_id:
        raise WrongParticipant("this token is for another person")
    if now >= claims.expires_at:
        raise TokenExpired("this room token has expired")
    return claims


def check_may_end(*, admitted: bool, identity_confirmed: bool, consent: bool, note: str) -> None:
    """A consultation's note goes to the record once the patient was admitted, their identity
    confirmed and their consent recorded (the teleconsultation's duty of identity check and
    consent, HAS 2019 guide), and only with a note."""
    if not admitted:
        raise NotAdmitted("the patient was not admitted")
    if not identity_confirmed:
        raise IdentityNotConfirmed("confirm the patient's identity first")
    if not consent:
        raise ConsentNotRecorded("record the patient's consent first")
    if not note.strip():
        raise EmptyNote("write the consultation note")


def duration_seconds(admitted_at: datetime, ended_at: datetime) -> int:
    """How long the consultation lasted: from the admission to the end, never negative."""
    return max(0, int((ended_at - admitted_at).total_seconds()))


def duration_minutes(seconds: int) -> int:
    """Rounded to the minute above as written in the note (a 30-second call is 1 minute)."""
    return max(1, -(-seconds // 60))


def ice_servers(stun_urls: str, turn_urls: str, turn_secret: str, user: str,
                expires_at: datetime) -> list[dict[str, object]]:
    """The RTCPeerConnection's iceServers from the settings: STUN as is; TURN with time-limited
    credentials of the TURN REST API (coturn `use-auth-secret`): the user name is
    "<expiry>:<user>", the password the base64 HMAC-SHA1 of it under the shared secret."""
    servers: list[dict[str, object]] = []
    stun = [u.strip() for u in stun_urls.split(",") if u.strip()]
    turn = [u.strip() for u in turn_urls.split(",") if u.strip()]
    if stun:
        servers.append({"urls": stun})
    if turn and turn_secret:
        username = f"{int(expires_at.timestamp())}:{user}"
        digest = hmac.new(turn_secret.encode(), username.encode(), hashlib.sha1).digest()
        servers.append({"urls": turn, "username": username, "credential": base64.b64encode(digest).decode()})
    return servers
