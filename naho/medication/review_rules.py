"""Pure rules of the pharmacist's review (analyse pharmaceutique, arrêté du 6 avril 2011, art. 13):
the SFPC grid of pharmaceutical interventions (Allenet et al., J Pharm Clin 2006; Act-IP), what
a decision must carry, the prescriber's answer, and the urgency signs of the review queue.

Values in, value or `ReviewRuleError` out: no session, no clock (STYLE R1).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from naho.platform.i18n import N_

#: SFPC grid, part 1: the drug-related problem (English message ids, translated on screen).
PROBLEMS: dict[str, str] = {
    "1.1": N_("Non-compliance with guidelines or contraindication"),
    "1.2": N_("Untreated indication"),
    "1.3": N_("Underdosing"),
    "1.4": N_("Overdosing"),
    "1.5": N_("Drug without indication"),
    "1.6": N_("Drug interaction"),
    "1.7": N_("Adverse drug reaction"),
    "1.8": N_("Inappropriate route or administration"),
    "1.9": N_("Treatment not received"),
    "1.10": N_("Monitoring to follow"),
}

#: SFPC grid, part 2: the intervention the pharmacist proposes.
INTERVENTIONS: dict[str, str] = {
    "2.1": N_("Addition of a drug"),
    "2.2": N_("Discontinuation"),
    "2.3": N_("Substitution or switch"),
    "2.4": N_("Choice of the route of administration"),
    "2.5": N_("Therapeutic drug monitoring"),
    "2.6": N_("Optimisation of the administration"),
    "2.7": N_("Dose adjustment"),
}

COMMENT_MAX = 2000


class Decision(StrEnum):
    """What the pharmacist decides on one order version (its `review_status` afterwards)."""

    VALIDATED = "validated"
    REFUSED = "refused"


class Response(StrEnum):
    """The prescriber's answer to an intervention (the grid's "devenir de l'intervention")."""

    ACCEPTED = "accepted"
    DECLINED = "declined"


class Sign(StrEnum):
    """Why an order in the queue deserves a look first."""

    OVERRIDDEN_ALERT = "overridden_alert"  # the prescriber signed past an alert with a reason
    ONCE = "once"  # a single dose: given soon, so analysed soon
    NARCOTIC = "narcotic"  # stupéfiant


SIGN_LABELS: dict[Sign, str] = {
    Sign.OVERRIDDEN_ALERT: N_("Overridden alert"),
    Sign.ONCE: N_("Single dose"),
    Sign.NARCOTIC: N_("Narcotic"),
}


# --- errors, named after the broken rule ------------------------------------------------------------

class ReviewRuleError(ValueError):
    """A decision or an answer breaks a rule of the review."""


class UnknownDecision(ReviewRuleError):
    """A decision is validated or refused."""


class InterventionRequired(ReviewRuleError):
    """A refusal names the problem and the intervention of the SFPC grid."""


class IncompleteIntervention(ReviewRuleError):
    """An intervention is coded whole: a problem with an intervention, never one alone."""


class UnknownProblemCode(ReviewRuleError):
    """The problem code is not in the SFPC grid."""


class UnknownInterventionCode(ReviewRuleError):
    """The intervention code is not in the SFPC grid."""


class CommentRequired(ReviewRuleError):
    """An intervention is explained to the prescriber in a comment."""


class CommentTooLong(ReviewRuleError):
    """A comment holds at most COMMENT_MAX characters."""


class UnknownResponse(ReviewRuleError):
    """The prescriber accepts or declines."""


class NoInterventionToAnswer(ReviewRuleError):
    """Only a coded intervention is answered; a plain validation needs no answer."""


class AlreadyAnswered(ReviewRuleError):
    """An intervention is answered once."""


# --- values -------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ReviewDecision:
    decision: Decision
    problem_code: str | None
    intervention_code: str | None
    comment: str | None

    @property
    def is_intervention(self) -> bool:
        return self.intervention_code is not None


@dataclass(frozen=True, slots=True)
class Answer:
    response: Response
    comment: str | None


def _clean(text: str | None) -> str | None:
    cleaned = (text or "").strip()
    if len(cleaned) > COMMENT_MAX:
        raise CommentTooLong(f"a comment holds at most {COMMENT_MAX} characters")
    return cleaned or None


def decide(decision: str, problem_code: str | None, intervention_code: str | None,
           comment: str | None) -> ReviewDecision:
    """The decision as stored, if it may be: a validation may carry a comment, or a whole
    intervention (e.g. 1.10 + 2.5, monitoring to follow) with its comment; a refusal always
    carries a problem code, an intervention code and a comment (SFPC grid)."""
    try:
        chosen = Decision((decision or "").strip())
    except ValueError:
        raise UnknownDecision(f"a decision is validated or refused, not {decision!r}") from None
    problem = (problem_code or "").strip() or None
    intervention = (intervention_code or "").strip() or None
    text = _clean(comment)
    if problem is not None and problem not in PROBLEMS:
        raise UnknownProblemCode(f"{problem!r} is not a problem of the SFPC grid")
    if intervention is not None and intervention not in INTERVENTIONS:
        raise UnknownInterventionCode(f"{intervention!r} is not an intervention of the SFPC grid")
    if chosen is Decision.REFUSED and (problem is None or intervention is None):
        raise InterventionRequired("a refusal names the problem and the intervention (SFPC grid)")
    if (problem is None) != (intervention is None):
        raise IncompleteIntervention("an intervention names both its problem and what is proposed")
    if intervention is not None and text is None:
        raise CommentRequired("an intervention is explained to the prescriber in a comment")
    return ReviewDecision(chosen, problem, intervention, text)


def answer(response: str, comment: str | None, *, has_intervention: bool, answered: bool) -> Answer:
    """The prescriber's answer to a coded intervention, once."""
    try:
        chosen = Response((response or "").strip())
    except ValueError:
        raise UnknownResponse(f"an answer is accepted or declined, not {response!r}") from None
    if not has_intervention:
        raise NoInterventionToAnswer("this review carries no intervention to answer")
    if answered:
        raise AlreadyAnswered("this intervention was already answered")
    return Answer(chosen, _clean(comment))


def urgency_signs(frequency: str, alert_severities: Iterable[str], narcotic: bool) -> tuple[Sign, ...]:
    """The signs shown beside an order in the queue, in Sign order. Blocking alerts never reach
    a signed order (ADR 0006), so the overridden ones are the alerts that matter here."""
    severities = set(alert_severities)
    signs = []
    if "override_required" in severities or "blocking" in severities:
        signs.append(Sign.OVERRIDDEN_ALERT)
    if frequency == "once":
        signs.append(Sign.ONCE)
    if narcotic:
        signs.append(Sign.NARCOTIC)
    return tuple(signs)
