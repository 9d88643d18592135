from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from naho.platform.security.rules import Role
from naho.staff.rules import StaffRuleError, check_staff_identity, luhn_key, rpps_is_valid


@given(st.text("0123456789", min_size=10, max_size=10))
def test_a_computed_key_always_validates(body: str) -> None:
    assert rpps_is_valid(body + luhn_key(body))


@given(st.text("0123456789", min_size=10, max_size=10))
def test_a_single_digit_typo_is_caught(body: str) -> None:
    valid = body + luhn_key(body)
    wrong = valid[:-1] + str((int(valid[-1]) + 1) % 10)
    assert not rpps_is_valid(wrong)


@pytest.mark.parametrize("value", ["1000000001", "100000000170", "1000000001A"])
def test_malformed_rpps(value: str) -> None:
    assert not rpps_is_valid(value)


def test_a_physician_needs_an_rpps() -> None:
    with pytest.raises(StaffRuleError, match="RPPS"):
        check_staff_identity(frozenset({Role.PHYSICIAN}), None)
    with pytest.raises(StaffRuleError, match="RPPS"):
        check_staff_identity(frozenset({Role.PHARMACIST, Role.IT_ADMIN}), "")
    check_staff_identity(frozenset({Role.PHYSICIAN}), "10000000017")


def test_a_porter_needs_none_but_a_given_one_must_be_valid() -> None:
    check_staff_identity(frozenset({Role.PORTER}), None)
    with pytest.raises(StaffRuleError):
        check_staff_identity(frozenset({Role.NURSE}), "10000000018")
