from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from naho.platform.security.rules import (
    Role,
    SessionTimes,
    WeakPasswordError,
    check_password_policy,
    login_throttled,
    roles_allow,
    session_is_alive,
)

T0 = datetime(2026, 1, 1, 8, tzinfo=UTC)


def test_roles_allow_needs_one_shared_role() -> None:
    assert roles_allow(frozenset({Role.NURSE}), frozenset({Role.NURSE, Role.PHYSICIAN}))
    assert not roles_allow(frozenset({Role.PORTER}), frozenset({Role.NURSE}))
    assert not roles_allow(frozenset(), frozenset({Role.NURSE}))


def test_a_session_dies_when_idle_or_expired() -> None:
    times = SessionTimes(T0, T0, T0 + timedelta(hours=10))
    idle = timedelta(minutes=60)
    assert session_is_alive(times, T0 + timedelta(minutes=59), idle)
    assert not session_is_alive(times, T0 + timedelta(minutes=60), idle)
    active = SessionTimes(T0, T0 + timedelta(hours=9, minutes=59), T0 + timedelta(hours=10))
    assert not session_is_alive(active, T0 + timedelta(hours=10), idle)


@given(st.integers(0, 100), st.integers(0, 100), st.integers(1, 20))
def test_throttling_is_monotonic(user_failures: int, address_failures: int, limit: int) -> None:
    if login_throttled(user_failures, address_failures, limit):
        assert login_throttled(user_failures + 1, address_failures, limit)
        assert login_throttled(user_failures, address_failures + 1, limit)
    assert login_throttled(limit, 0, limit)
    assert not login_throttled(limit - 1, 4 * limit - 1, limit)


@pytest.mark.parametrize("password", ["short", "a" * 11, "xxjdupontxxxx"])
def test_weak_passwords_are_refused(password: str) -> None:
    with pytest.raises(WeakPasswordError):
        check_password_policy(password, "jdupont")


def test_a_long_password_is_accepted() -> None:
    check_password_policy("cheval-agrafe-batterie", "jdupont")
