"""The pure rules of teleconsultation: the room's window, the room token, what ends a consultation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from naho.telehealth import rules

START = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
END = START + timedelta(minutes=20)
KEY = b"k" * 32
APPOINTMENT = uuid.UUID("11111111-1111-1111-1111-111111111111")
PERSON = uuid.UUID("22222222-2222-2222-2222-222222222222")


def _token(expires_at: datetime = END + timedelta(minutes=30), key: bytes = KEY) -> str:
    return rules.sign_room_token(key, rules.RoomClaims(APPOINTMENT, PERSON, rules.Role.PATIENT, expires_at))


def _read(token: str, *, appointment: uuid.UUID = APPOINTMENT, person: uuid.UUID = PERSON,
          now: datetime = START) -> rules.RoomClaims:
    return rules.read_room_token(KEY, token, appointment_id=appointment, account_id=person, now=now)


def test_the_room_opens_fifteen_minutes_before_and_closes_thirty_after_the_end() -> None:
    window = rules.check_room_open(START, END, START - timedelta(minutes=15))
    assert window == rules.Window(START - timedelta(minutes=15), END + timedelta(minutes=30))
    assert rules.check_room_open(START, END, END + timedelta(minutes=29, seconds=59)) == window


def test_the_room_refuses_too_early() -> None:
    with pytest.raises(rules.RoomNotYetOpen):
        rules.check_room_open(START, END, START - timedelta(minutes=15, seconds=1))


def test_the_room_refuses_once_closed() -> None:
    with pytest.raises(rules.RoomClosed):
        rules.check_room_open(START, END, END + timedelta(minutes=30))


def test_a_token_reads_back_its_claims() -> None:
    claims = _read(_token())
    assert (claims.appointment_id, claims.account_id, claims.role) == (APPOINTMENT, PERSON, rules.Role.PATIENT)
    assert claims.expires_at == END + timedelta(minutes=30)


def test_a_token_for_another_appointment_is_refused() -> None:
    with pytest.raises(rules.WrongAppointment):
        _read(_token(), appointment=uuid.uuid4())


def test_a_token_for_another_person_is_refused() -> None:
    with pytest.raises(rules.WrongParticipant):
        _read(_token(), person=uuid.uuid4())


def test_an_expired_token_is_refused() -> None:
    token = _token(expires_at=START + timedelta(minutes=1))
    assert _read(token, now=START)
    with pytest.raises(rules.TokenExpired):
        _read(token, now=START + timedelta(minutes=1))


def test_a_tampered_payload_is_refused() -> None:
    payload, signature = _token().split(".")
    forged = base64.urlsafe_b64encode(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).replace(b'"patient"', b'"practitioner"'),
    ).rstrip(b"=").decode()
    assert forged != payload
    with pytest.raises(rules.TokenTampered):
        _read(f"{forged}.{signature}")


def test_a_tampered_signature_is_refused() -> None:
    payload, signature = _token().split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    with pytest.raises(rules.TokenTampered):
        _read(f"{payload}.{flipped}")


def test_a_token_signed_with_another_key_is_refused() -> None:
    with pytest.raises(rules.TokenTampered):
        _read(_token(key=b"x" * 32))


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "!!!.???", "e30.e30"])
def test_a_malformed_token_is_refused(token: str) -> None:
    with pytest.raises(rules.TokenRefused):
        _read(token)


def test_a_consultation_ends_only_admitted_identified_consented_and_with_a_note() -> None:
    ok = {"admitted": True, "identity_confirmed": True, "consent": True, "note": "Examen normal."}
    rules.check_may_end(**ok)  # type: ignore[arg-type]
    for field, value, error in [("admitted", False, rules.NotAdmitted),
                                ("identity_confirmed", False, rules.IdentityNotConfirmed),
                                ("consent", False, rules.ConsentNotRecorded), ("note", "  ", rules.EmptyNote)]:
        with pytest.raises(error):
            rules.check_may_end(**{**ok, field: value})  # type: ignore[arg-type]


def test_the_duration_runs_from_admission_and_is_written_in_minutes_above() -> None:
    assert rules.duration_seconds(START, START + timedelta(minutes=12, seconds=30)) == 750
    assert rules.duration_seconds(START, START - timedelta(seconds=5)) == 0
    assert rules.duration_minutes(750) == 13
    assert rules.duration_minutes(0) == 1
    assert rules.duration_minutes(600) == 10


def test_no_ice_server_is_configured_by_default() -> None:
    assert rules.ice_servers("", "", "", "someone", END) == []
    assert rules.ice_servers("", "turn:turn.example:3478", "", "someone", END) == []  # no secret: no TURN


def test_turn_credentials_follow_the_turn_rest_api() -> None:
    servers = rules.ice_servers("stun:a.example:3478, stun:b.example:3478", "turn:turn.example:3478",
                                "shared", "someone", END)
    assert servers[0] == {"urls": ["stun:a.example:3478", "stun:b.example:3478"]}
    username = f"{int(END.timestamp())}:someone"
    expected = base64.b64encode(hmac.new(b"shared", username.encode(), hashlib.sha1).digest()).decode()
    assert servers[1] == {"urls": ["turn:turn.example:3478"], "username": username, "credential": expected}
