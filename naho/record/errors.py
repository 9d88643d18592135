from naho.platform.errors import Conflict, DomainError, NotFound


class EncounterNotFound(NotFound):
    """No such stay, or not one this person may see."""


class BedAlreadyOccupied(Conflict):
    """The bed is held by another stay over that period."""


class LocationNotFound(DomainError):
    """The unit or bed does not exist in that establishment."""


class MovementRefused(Conflict):
    """The movement breaks a rule of stays (PAM FR); the detail names it."""

    title = "Movement refused"


class StayMoveRefused(Conflict):
    """A stay cannot be moved to that patient (A44); the detail says why."""

    title = "Stay move refused"
