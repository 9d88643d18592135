"""Pure rules of laboratory orders: the catalogue's checks, numbers, labels and every status
change, those allowed and those refused."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from naho.results import order_rules as rules
from naho.results.orders import CATALOGUE_FILE
from naho.results.rules import NotLoinc

S = rules.OrderStatus


def shipped() -> dict[str, Any]:
    return yaml.safe_load(CATALOGUE_FILE.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_the_shipped_catalogue_holds_the_usual_tests_with_their_tubes() -> None:
    catalogue = rules.load_catalogue(shipped())
    iono = catalogue.test("IONO")
    assert iono.loinc == "24326-1" and iono.container.colour == "green" and iono.container.specimen_type == "PLAS"
    assert [code for code, _ in iono.components] == ["2951-2", "2823-3", "2075-0", "1963-8"]
    assert catalogue.test("NFS").container.colour == "lavender"
    assert catalogue.test("TPINR").loinc is None and catalogue.test("TPINR").container.colour == "light-blue"
    assert {"CREA", "CRP", "TROPO", "BHEP", "HEMOC"} <= set(catalogue.tests)


@pytest.mark.parametrize("code", ["2823-3", "14682-9", "24326-1", "58410-2", "600-7", "6301-6"])
def test_real_loinc_codes_have_their_check_digit(code: str) -> None:
    assert rules.valid_loinc(code) == code


@pytest.mark.parametrize("code", ["2823-4", "14682-0", "24326"])
def test_a_wrong_check_digit_or_shape_is_not_loinc(code: str) -> None:
    with pytest.raises(NotLoinc):
        rules.valid_loinc(code)


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["tests"]["IONO"].update(container="NOPE"), "unknown container"),
    (lambda d: d["tests"]["CRP"].update(loinc="1988-4"), "check digit"),
    (lambda d: d["tests"]["TPINR"].pop("components"), "must list its components"),
    (lambda d: d["containers"]["EDTA"].update(colour="purple"), "colour"),
    (lambda d: d["containers"]["EDTA"].update(specimen_type="XXX"), "specimen type"),
    (lambda d: d["tests"].update({"bad code": d["tests"]["CRP"]}), "capitals"),
    (lambda d: d["tests"]["NFS"]["components"].update({"718-6": "Hb"}), "check digit"),
    (lambda d: d.pop("containers"), "containers"),
    (lambda d: d.update(tests={}), "no test"),
])
def test_a_malformed_catalogue_is_refused_with_its_reason(change: Any, message: str) -> None:
    data = copy.deepcopy(shipped())
    change(data)
    with pytest.raises(rules.BadCatalogue, match=message):
        rules.load_catalogue(data)


def test_tests_of_one_tube_share_a_specimen() -> None:
    catalogue = rules.load_catalogue(shipped())
    tests = rules.choose_tests(catalogue, ["CRP", "NFS", "IONO", "IONO", " "])
    assert [t.code for t in tests] == ["IONO", "NFS", "CRP"]  # once each, the catalogue's order
    groups = rules.specimens_of(tests)
    assert [(c.code, [t.code for t in ts]) for c, ts in groups] == [("HEPARIN", ["IONO", "CRP"]), ("EDTA", ["NFS"])]


def test_an_empty_or_unknown_choice_is_refused() -> None:
    catalogue = rules.load_catalogue(shipped())
    with pytest.raises(rules.NoTestOrdered):
        rules.choose_tests(catalogue, ["", "  "])
    with pytest.raises(rules.UnknownTest):
        rules.choose_tests(catalogue, ["IONO", "GLYC"])


def test_numbers_have_their_prefix_and_ten_digits() -> None:
    assert rules.placer_number(42) == "O0000000042"
    assert rules.specimen_number(7) == "S0000000007"
    assert rules.group_number(12345) == "G0000012345"


@given(st.integers(min_value=0, max_value=9_999_999_999))
def test_a_printed_specimen_number_reads_back(n: int) -> None:
    number = rules.specimen_number(n)
    assert rules.read_specimen_label(f" {number.lower()}\r\n") == number


@pytest.mark.parametrize("text", ["", "P12345678", "D0000000001", "S123", "O0000000001", "S00000000012"])
def test_other_codes_are_not_specimen_labels(text: str) -> None:
    with pytest.raises(rules.NotASpecimenLabel):
        rules.read_specimen_label(text)


def test_urgencies_map_to_hl7_priorities() -> None:
    assert [u.hl7 for u in rules.Urgency] == ["R", "A", "S"]


# --- status -------------------------------------------------------------------------------------------

def test_an_ordered_specimen_is_collected() -> None:
    assert rules.collect(S.ORDERED) is S.COLLECTED


def test_a_cancelled_order_cannot_be_collected() -> None:
    with pytest.raises(rules.OrderCancelled):
        rules.collect(S.CANCELLED)


@pytest.mark.parametrize("status", [S.COLLECTED, S.RECEIVED, S.PRELIMINARY, S.FINAL])
def test_a_specimen_is_collected_once(status: rules.OrderStatus) -> None:
    with pytest.raises(rules.AlreadyCollected):
        rules.collect(status)


def test_an_order_is_cancelled_before_collection() -> None:
    assert rules.cancel(S.ORDERED) is S.CANCELLED


@pytest.mark.parametrize("status", [S.COLLECTED, S.RECEIVED, S.PRELIMINARY, S.FINAL])
def test_an_order_cannot_be_cancelled_after_collection(status: rules.OrderStatus) -> None:
    with pytest.raises(rules.CollectedOrderNotCancellable):
        rules.cancel(status)


def test_an_order_is_cancelled_once() -> None:
    with pytest.raises(rules.OrderCancelled):
        rules.cancel(S.CANCELLED)


def test_the_laboratorys_acceptance_means_received_only_once_collected() -> None:
    assert rules.acknowledged(S.ORDERED) is S.ORDERED
    assert rules.acknowledged(S.COLLECTED) is S.RECEIVED
    assert rules.acknowledged(S.FINAL) is S.FINAL
    assert rules.acknowledged(S.CANCELLED) is S.CANCELLED


@pytest.mark.parametrize(("status", "results", "expected"), [
    (S.COLLECTED, ["P", "F"], S.PRELIMINARY),
    (S.RECEIVED, ["F", "C"], S.FINAL),
    (S.ORDERED, ["F"], S.FINAL),  # the laboratory drew the specimen itself
    (S.PRELIMINARY, ["F", "F"], S.FINAL),
    (S.FINAL, ["P"], S.FINAL),  # never backwards
    (S.COLLECTED, ["X"], S.RECEIVED),  # only withdrawn results: the laboratory has the specimen
    (S.COLLECTED, ["F", "X"], S.FINAL),
    (S.CANCELLED, ["F"], S.CANCELLED),
])
def test_results_move_the_order_forward(status: rules.OrderStatus, results: list[str],
                                        expected: rules.OrderStatus) -> None:
    assert rules.after_results(status, results) is expected
