"""The pure rules of the pharmacist's review: the SFPC grid a decision and an answer must follow,
each refusal beside its legitimate twin, and the urgency signs of the queue."""

from __future__ import annotations

import pytest

from naho.medication import review_rules as rules
from naho.medication.review_rules import Decision, Response, Sign


def test_a_plain_validation_needs_no_code_nor_comment() -> None:
    assert rules.decide("validated", None, None, None) == rules.ReviewDecision(Decision.VALIDATED, None, None, None)
    assert rules.decide(" validated ", "", " ", "  ").comment is None


def test_a_validation_may_carry_a_comment_or_a_whole_intervention() -> None:
    assert rules.decide("validated", None, None, "Vérifier la kaliémie à J3").comment == "Vérifier la kaliémie à J3"
    monitored = rules.decide("validated", "1.10", "2.5", "Dosage résiduel avant la 4e dose")
    assert (monitored.problem_code, monitored.intervention_code, monitored.is_intervention) == ("1.10", "2.5", True)


def test_a_refusal_without_codes_is_refused_and_its_coded_twin_passes() -> None:
    for problem, intervention in ((None, None), ("1.4", None), (None, "2.7")):
        with pytest.raises(rules.InterventionRequired):
            rules.decide("refused", problem, intervention, "Surdosage pour la clairance")
    refused = rules.decide("refused", "1.4", "2.7", "Surdosage pour la clairance: 500 mg x 2")
    assert (refused.decision, refused.problem_code, refused.intervention_code) == (Decision.REFUSED, "1.4", "2.7")


def test_a_refusal_without_comment_is_refused() -> None:
    with pytest.raises(rules.CommentRequired):
        rules.decide("refused", "1.6", "2.3", "   ")
    assert rules.decide("refused", "1.6", "2.3", "Association déconseillée").comment == "Association déconseillée"


@pytest.mark.parametrize(("problem", "intervention", "error"), [
    ("1.11", "2.7", rules.UnknownProblemCode), ("2.1", "2.7", rules.UnknownProblemCode),
    ("1.4", "2.8", rules.UnknownInterventionCode), ("1.4", "1.4", rules.UnknownInterventionCode),
])
def test_codes_outside_the_grid_are_refused(problem: str, intervention: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        rules.decide("refused", problem, intervention, "commentaire")


def test_every_code_of_the_grid_is_accepted() -> None:
    assert list(rules.PROBLEMS) == [f"1.{n}" for n in range(1, 11)]
    assert list(rules.INTERVENTIONS) == [f"2.{n}" for n in range(1, 8)]
    for problem in rules.PROBLEMS:
        for intervention in rules.INTERVENTIONS:
            assert rules.decide("refused", problem, intervention, "x").problem_code == problem


def test_half_an_intervention_on_a_validation_is_refused() -> None:
    with pytest.raises(rules.IncompleteIntervention):
        rules.decide("validated", "1.10", None, "suivi")
    with pytest.raises(rules.CommentRequired):
        rules.decide("validated", "1.10", "2.5", None)


def test_an_unknown_decision_and_a_long_comment_are_refused() -> None:
    for decision in ("", "pending", "accepted"):
        with pytest.raises(rules.UnknownDecision):
            rules.decide(decision, None, None, None)
    with pytest.raises(rules.CommentTooLong):
        rules.decide("validated", None, None, "x" * (rules.COMMENT_MAX + 1))
    assert rules.decide("validated", None, None, "x" * rules.COMMENT_MAX).comment


def test_the_prescriber_answers_a_coded_intervention_once() -> None:
    accepted = rules.answer("accepted", None, has_intervention=True, answered=False)
    assert accepted == rules.Answer(Response.ACCEPTED, None)
    assert rules.answer("declined", " patient en fin de vie ", has_intervention=True, answered=False).comment == \
        "patient en fin de vie"
    with pytest.raises(rules.AlreadyAnswered):
        rules.answer("accepted", None, has_intervention=True, answered=True)
    with pytest.raises(rules.NoInterventionToAnswer):
        rules.answer("accepted", None, has_intervention=False, answered=False)
    with pytest.raises(rules.UnknownResponse):
        rules.answer("maybe", None, has_intervention=True, answered=False)


def test_urgency_signs_name_overridden_alerts_single_doses_and_narcotics() -> None:
    assert rules.urgency_signs("times_per_day", ["info"], narcotic=False) == ()
    assert rules.urgency_signs("once", ["override_required", "info"], narcotic=True) == \
        (Sign.OVERRIDDEN_ALERT, Sign.ONCE, Sign.NARCOTIC)
    assert rules.urgency_signs("every_hours", [], narcotic=True) == (Sign.NARCOTIC,)
    assert set(rules.SIGN_LABELS) == set(Sign)
