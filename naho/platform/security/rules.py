"""Pure security rules: roles, session lifetime, login throttling, password policy.

No I/O here (STYLE.md R1): values in, a decision out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class Role(StrEnum):
    """What a person may do. A staff account may hold several roles."""

    PHYSICIAN = "physician"
    NURSE = "nurse"
    PHARMACIST = "pharmacist"
    PHARMACY_TECHNICIAN = "pharmacy_technician"
    ADMISSION_CLERK = "admission_clerk"
    PORTER = "porter"
    IT_ADMIN = "it_admin"
    #: Identity-vigilance staff (cellule d'identitovigilance): traits, duplicates, merges.
    IDENTITY_VIGILANCE = "identity_vigilance"
    #: Medical information department (DIM): reviews break-the-glass accesses.
    MEDICAL_INFORMATION = "medical_information"
    #: A system or script calling the API with a bearer token (lab, ADT gateway...).
    INTERFACE = "interface"
    PATIENT = "patient"


#: Roles held by hospital staff (everyone who uses the staff pages).
STAFF_ROLES: frozenset[Role] = frozenset(Role) - {Role.PATIENT, Role.INTERFACE}
#: Roles whose holders care for patients (they will see charts through the care relationship).
CARE_ROLES: frozenset[Role] = frozenset({Role.PHYSICIAN, Role.NURSE, Role.PHARMACIST})


def roles_allow(held: frozenset[Role], required: frozenset[Role]) -> bool:
    """True when the holder has at least one of the required roles."""
    return bool(held & required)


@dataclass(frozen=True)
class SessionTimes:
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime


def session_is_alive(times: SessionTimes, now: datetime, idle: timedelta) -> bool:
    """A session lives until its absolute expiry and dies after `idle` without activity."""
    return now < times.expires_at and now - times.last_seen_at < idle


def login_throttled(
    failures_for_username: int, failures_from_address: int, max_failures: int
) -> bool:
    """Refuse further attempts after too many recent failures.

    One account is protected after `max_failures`; one address may try several accounts (a
    shared ward computer), so it gets four times as many before being stopped.
    """
    return failures_for_username >= max_failures or failures_from_address >= 4 * max_failures


MIN_PASSWORD_LENGTH = 12


class WeakPasswordError(ValueError):
    """The password does not meet naho's minimum policy."""


def check_password_policy(password: str, username: str) -> None:
    """Raise WeakPasswordError unless the password is long enough and not the username.

    Length beats composition rules (ANSSI and NIST SP 800-63B recommendations).
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPasswordError(f"at least {MIN_PASSWORD_LENGTH} characters are required")
    if username and username.lower() in password.lower():
        raise WeakPasswordError("the password must not contain the username")
