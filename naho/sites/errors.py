from naho.platform.errors import DomainError, NotFound


class EstablishmentNotFound(NotFound):
    """No establishment has this code."""


class UnitNotFound(NotFound):
    """No unit has this code."""


class InvalidReference(DomainError):
    """The reference file breaks a rule of the group's structure."""


class RolloutTransitionRefused(DomainError):
    """The go-live state cannot move this way."""

    status = 409
    title = "Rollout transition refused"
