"""Pure rules about staff: professional identifiers and what each profession requires."""

from __future__ import annotations

import re

from naho.platform.security.rules import Role

_RPPS = re.compile(r"^\d{11}$")

#: Professions whose members must be identified by their RPPS number (Répertoire partagé des
#: professionnels de santé) to prescribe, validate or sign.
RPPS_REQUIRED: frozenset[Role] = frozenset({Role.PHYSICIAN, Role.PHARMACIST})


class StaffRuleError(ValueError):
    """A staff record breaks a rule; the message says which."""


def luhn_is_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def luhn_key(digits: str) -> str:
    """The check digit to append to `digits` so the whole number passes the Luhn test."""
    for key in "0123456789":
        if luhn_is_valid(digits + key):
            return key
    raise AssertionError("unreachable: one key always fits")


def rpps_is_valid(value: str) -> bool:
    """Eleven digits whose last is a Luhn key (the RPPS identifier format)."""
    return bool(_RPPS.match(value)) and luhn_is_valid(value)


def check_staff_identity(roles: frozenset[Role], rpps: str | None) -> None:
    if rpps is not None and not rpps_is_valid(rpps):
        raise StaffRuleError(f"RPPS {rpps!r} is not eleven digits with a valid key")
    if roles & RPPS_REQUIRED and not rpps:
        names = ", ".join(sorted(roles & RPPS_REQUIRED))
        raise StaffRuleError(f"an RPPS number is required for: {names}")
