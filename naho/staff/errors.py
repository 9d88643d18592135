from naho.platform.errors import Conflict, DomainError


class InvalidStaff(DomainError):
    """A staff record breaks a rule (RPPS, profession, unknown unit)."""


class UsernameTaken(Conflict):
    """Another account already has this username."""
