"""Authentication and authorisation: accounts, sessions, tokens, policies (policy.py), CSRF."""

from naho.platform.security.actor import SYSTEM_ACTOR, Actor
from naho.platform.security.rules import CARE_ROLES, STAFF_ROLES, Role

__all__ = ["CARE_ROLES", "STAFF_ROLES", "SYSTEM_ACTOR", "Actor", "Role"]
