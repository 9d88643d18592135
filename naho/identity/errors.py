from naho.platform.errors import Conflict, DomainError


class PossibleDuplicates(Conflict):
    """Patients that may be this person already exist: pick one, or confirm with a reason."""

    title = "Possible duplicates"


class InvalidIdentity(DomainError):
    """The traits or the INS break an identity rule."""


class IdentityTransitionRefused(DomainError):
    """This identity status change is not allowed (RNIV)."""

    status = 409
    title = "Identity status change refused"


class MergeRefused(Conflict):
    """These two records cannot be merged; the detail says why."""

    title = "Merge refused"


class InsAlreadyAssigned(Conflict):
    """This INS already belongs to another record: probably a duplicate, for identity vigilance."""


class InsNotRetrieved(DomainError):
    """The national INSi service found no identity matching these traits."""

    status = 409


class StrictTraitsLocked(Conflict):
    """The strict traits of an identity whose INS was retrieved come from INSi: they change
    through INSi, not by hand (RNIV)."""

    title = "Strict traits locked"
