"""The services CI provides are really there (later issues build on them)."""

from __future__ import annotations

import os
import socket

from tests.conftest import service_missing

MQTT_HOST = os.environ.get("NAHO_TEST_MQTT_HOST", "127.0.0.1")
MQTT_PORT = int(os.environ.get("NAHO_TEST_MQTT_PORT", "1883"))


def _mqtt_connect_packet(client_id: bytes) -> bytes:
    # MQTT 3.1.1 CONNECT: protocol name "MQTT", level 4, clean session, keep-alive 10 s.
    variable = b"\x00\x04MQTT\x04\x02\x00\x0a"
    payload = len(client_id).to_bytes(2, "big") + client_id
    body = variable + payload
    return bytes([0x10, len(body)]) + body


def test_the_mqtt_broker_accepts_a_connection() -> None:
    try:
        sock = socket.create_connection((MQTT_HOST, MQTT_PORT), timeout=3)
    except OSError:
        service_missing(f"no MQTT broker at {MQTT_HOST}:{MQTT_PORT}")
    with sock:
        sock.sendall(_mqtt_connect_packet(b"naho-ci-probe"))
        connack = sock.recv(4)
        sock.sendall(b"\xe0\x00")  # DISCONNECT
    assert connack[:2] == b"\x20\x02", connack
    assert connack[3] == 0, f"broker refused the connection (code {connack[3]})"
