"""A teleconsultation in two real browsers with fake cameras: the patient waits, the practitioner
lets them in, each receives the other's video, they chat and share a document, the call survives
two network drops (signalling cut, then loopback down), the patient leaves and the practitioner
sees it.

Chromium offers every interface of the machine as an ICE candidate, so the server and the
browser run in a network namespace of their own with loopback only (`unshare -n`): nothing of
the call can leave the machine, and the test does not depend on its network. The script
teleconsultation_room.py does the browsing there; this test prepares the data and reads its report.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from naho.app import create_app
from naho.config import Settings
from naho.platform.clock import FixedClock
from tests.browser.conftest import CHROMIUM
from tests.conftest import IS_POSTGRES, service_missing
from tests.telehealth.world import PATIENT_EMAIL, video_appointment

pytestmark = pytest.mark.browser

SCRIPT = Path(__file__).with_name("teleconsultation_room.py")
ROOT = Path(__file__).resolve().parents[2]
UNSHARE, IP = shutil.which("unshare") or "/usr/bin/unshare", shutil.which("ip") or "/usr/sbin/ip"
#: Where PostgreSQL's Unix socket is: the namespace has no route to the host's 127.0.0.1.
POSTGRES_SOCKET_DIR = os.environ.get("NAHO_TEST_POSTGRES_SOCKET_DIR", "/var/run/postgresql")


def _namespace_works() -> bool:
    try:
        done = subprocess.run([UNSHARE, "-n", IP, "link", "set", "lo", "up"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _reachable_inside(db_url: str) -> str:
    """The database as the namespace reaches it: a SQLite file as is, PostgreSQL by its socket."""
    if not IS_POSTGRES:
        return db_url
    if not Path(POSTGRES_SOCKET_DIR).is_dir():
        service_missing(f"PostgreSQL's Unix socket directory {POSTGRES_SOCKET_DIR} is absent "
                        "(set NAHO_TEST_POSTGRES_SOCKET_DIR)")
    url = make_url(db_url)
    return url.set(host=None, port=None, query={"host": POSTGRES_SOCKET_DIR}).render_as_string(hide_password=False)


def test_two_browsers_see_each_other_then_one_leaves(db_url: str) -> None:
    if not Path(CHROMIUM).exists():
        service_missing("Debian's chromium is not installed (apt-get install chromium)")
    if not _namespace_works():
        service_missing("a network namespace cannot be made here (unshare -n needs root or user namespaces)")
    app = create_app(Settings(mode="test", database_url=db_url, workers=False),
                     clock=FixedClock(datetime(2026, 11, 25, 9, 30, tzinfo=UTC)))
    try:
        world = video_appointment(app.state.container)
    finally:
        app.state.container.engine.dispose()
    at = (world.starts_at - timedelta(minutes=5)).isoformat()
    command = [UNSHARE, "-n", "sh", "-c", f'{IP} link set lo up && exec "$0" "$@"', sys.executable, str(SCRIPT),
               _reachable_inside(db_url), str(world.appointment_id), at, PATIENT_EMAIL]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=ROOT, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no report (exit {done.returncode}):\n{done.stdout}\n{done.stderr[-3000:]}"
    seen = json.loads(lines[-1])
    assert done.returncode == 0 and "failure" not in seen, f"{seen}\n{done.stderr[-3000:]}"
    assert seen["doctor_sees"] > 0 and seen["patient_sees"] > 0  # each decoded the other's video
    assert seen["doctor_frames"] > 0 and seen["patient_frames"] > 0
    assert {seen["doctor_quality"], seen["patient_quality"]} <= {"good", "average", "poor"}
    assert seen["chat"].endswith("Bonjour docteur")
    assert seen["document"] == "ordonnance.pdf"
    assert seen["socket_reconnected"]  # signalling cut: both websockets reconnected, the video came back
    assert seen["ice_restarts"] >= 1, seen["ice_restarts"]  # loopback down for 15 s: ICE restarted, the video came back
    assert seen["doctor_status"] == seen["peer_left_text"]
    assert seen["patient_waiting"]
    assert seen["errors"] == []  # no script error, no refused content (CSP)
