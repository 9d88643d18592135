"""The pure rules of imaging: DICOM JSON (QIDO-RS) to summaries, whose study it is, window
presets, accession numbers, orders and reports, who may order and report."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from naho.platform.security.rules import Role
from naho.results import imaging_rules as rules

PARIS = ZoneInfo("Europe/Paris")
STUDY = "1.2.826.0.1.3680043.8.498.1"


def _study(uid: str = STUDY, *, patient: str = "1000123", issuer: str | None = None, date: str = "20261125",
           time: str = "083000", accession: str = "IM2600000018", others: list[tuple[str, str]] = ()) -> dict:
    item = {
        "0020000D": {"vr": "UI", "Value": [uid]},
        "00100020": {"vr": "LO", "Value": [patient]},
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "DURAND^MARIE"}]},
        "00080020": {"vr": "DA", "Value": [date]},
        "00080030": {"vr": "TM", "Value": [time]},
        "00080050": {"vr": "SH", "Value": [accession]},
        "00081030": {"vr": "LO", "Value": ["TDM thoracique"]},
        "00080061": {"vr": "CS", "Value": ["CT", "SR"]},
        "00201206": {"vr": "IS", "Value": [2]},
        "00201208": {"vr": "IS", "Value": [21]},
        "00080090": {"vr": "PN"},  # present, empty: as Orthanc sends it
    }
    if issuer is not None:
        item["00100021"] = {"vr": "LO", "Value": [issuer]}
    if others:
        item["00101002"] = {"vr": "SQ", "Value": [
            {"00100020": {"vr": "LO", "Value": [v]}, "00100021": {"vr": "LO", "Value": [i]}} for v, i in others]}
    return item


def test_a_qido_study_becomes_a_summary_in_utc() -> None:
    study = rules.study_from_json(_study(), PARIS)
    assert study is not None
    assert (study.uid, study.patient_id, study.patient_name, study.accession_number) == (
        STUDY, "1000123", "DURAND MARIE", "IM2600000018")
    assert study.performed_at == datetime(2026, 11, 25, 7, 30, tzinfo=UTC)  # 08:30 in Paris, winter time
    assert (study.modalities, study.series_count, study.instance_count) == (("CT", "SR"), 2, 21)
    assert study.description == "TDM thoracique"


def test_a_study_without_a_valid_uid_or_date_is_handled() -> None:
    assert rules.study_from_json(_study(uid="1.2.x"), PARIS) is None
    assert rules.study_from_json({"00100020": {"vr": "LO", "Value": ["1"]}}, PARIS) is None
    undated = rules.study_from_json(_study(date="", time=""), PARIS)
    assert undated is not None and undated.performed_at is None
    assert rules.dicom_datetime("20261325", "", PARIS) is None  # month 13
    assert rules.dicom_datetime("20260701", "1430", PARIS) == datetime(2026, 7, 1, 12, 30, tzinfo=UTC)  # summer


def test_studies_come_newest_first_undated_last_each_once() -> None:
    older = _study("1.2.3", date="20250101")
    newer = _study("1.2.4", date="20261201")
    undated = _study("1.2.5", date="")
    found = rules.studies_from_json([older, undated, newer, older], PARIS)
    assert [s.uid for s in found] == ["1.2.4", "1.2.3", "1.2.5"]


def test_series_and_instances_are_in_number_order_and_frames_follow() -> None:
    series = rules.series_from_json([
        {"0020000E": {"vr": "UI", "Value": ["1.2.3.2"]}, "00080060": {"vr": "CS", "Value": ["CT"]},
         "00200011": {"vr": "IS", "Value": [2]}, "0008103E": {"vr": "LO", "Value": ["Axial"]},
         "00180015": {"vr": "CS", "Value": ["CHEST"]}, "00201209": {"vr": "IS", "Value": [20]}},
        {"0020000E": {"vr": "UI", "Value": ["1.2.3.1"]}, "00080060": {"vr": "CS", "Value": ["CT"]},
         "00200011": {"vr": "IS", "Value": [1]}},
        {"0020000E": {"vr": "UI", "Value": ["not a uid"]}},
    ], "1.2.3")
    assert [(s.uid, s.number, s.description, s.body_part, s.instance_count) for s in series] == [
        ("1.2.3.1", 1, "", "", None), ("1.2.3.2", 2, "Axial", "CHEST", 20)]
    instances = rules.instances_from_json([
        {"00080018": {"vr": "UI", "Value": ["1.9.3"]}, "00200013": {"vr": "IS", "Value": [10]}},
        {"00080018": {"vr": "UI", "Value": ["1.9.2"]}, "00200013": {"vr": "IS", "Value": [2]},
         "00280008": {"vr": "IS", "Value": [3]}},
        {"00080018": {"vr": "UI", "Value": ["1.9.1"]}},
    ], "1.2.3", "1.2.3.2")
    assert [(i.uid, i.number, i.frames) for i in instances] == [("1.9.2", 2, 3), ("1.9.3", 10, 1), ("1.9.1", None, 1)]
    assert [(f.instance_uid, f.frame) for f in rules.frames_of(instances)] == [
        ("1.9.2", 1), ("1.9.2", 2), ("1.9.2", 3), ("1.9.3", 1), ("1.9.1", 1)]


@pytest.mark.parametrize(("study", "ipp", "others", "belongs"), [
    (_study(patient="1000123"), "1000123", [], True),  # our IPP, issuer unstated
    (_study(patient="1000123", issuer="NAHO"), "1000123", [], True),
    (_study(patient="1000123", issuer="naho"), "1000123", [], True),  # issuers compare without case
    (_study(patient="1000124"), "1000123", [], False),  # another patient
    (_study(patient="1000123", issuer="GAM"), "1000123", [], False),  # the same number in another domain
    (_study(patient="G42", issuer="GAM"), "1000123", [("G42", "GAM")], True),  # a known id of another domain
    (_study(patient="G42", issuer="GAM"), "1000123", [("G42", "RIS")], False),
    (_study(patient="G42"), "1000123", [("G42", "GAM")], False),  # a bare foreign id never matches
    (_study(patient="X", others=[("1000123", "NAHO")]), "1000123", [], True),  # Other Patient IDs
    (_study(patient="", issuer=""), "", [], False),
])
def test_whose_study_it_is(study: dict, ipp: str, others: list[tuple[str, str]], belongs: bool) -> None:
    summary = rules.study_from_json(study, PARIS)
    assert summary is not None
    assert rules.study_belongs(summary, ipp, authority="NAHO", other_ids=others) is belongs


def test_uids_are_digits_and_dots_so_no_path_reaches_the_pacs() -> None:
    assert rules.is_uid("1.2.840.10008.5.1.4.1.1.2")
    for bad in ("", "1..2", "1.2.", "../instances", "1.2/3", "1.2?x=1", "1" * 65, "1.2.3 "):
        assert not rules.is_uid(bad), bad
        with pytest.raises(rules.NotAUid):
            rules.require_uid(bad)


def test_window_presets_and_their_dicomweb_parameter() -> None:
    assert rules.window_preset(None) is None and rules.window_preset("") is None
    lung = rules.window_preset("lung")
    assert lung is not None and lung.dicomweb == "-600,1500,linear"
    assert rules.WINDOW_PRESETS["soft-tissue"].dicomweb == "40,400,linear"
    assert rules.WINDOW_PRESETS["bone"].center > rules.WINDOW_PRESETS["soft-tissue"].center
    with pytest.raises(rules.UnknownWindow):
        rules.window_preset("x-ray vision")


def test_the_linear_window_bounds_follow_the_dicom_formula() -> None:
    assert rules.window_bounds(40, 400) == (-160.0, 239.0)  # c - 0.5 ∓ (w - 1) / 2
    assert rules.window_bounds(0, 1) == (-0.5, -0.5)
    assert rules.window_bounds(0, 0) == (-0.5, -0.5)  # a width below 1 is taken as 1


def test_accession_numbers_carry_the_year_a_sequence_and_a_luhn_key() -> None:
    number = rules.accession_number(2026, 18)
    assert number == "IM2600000182" and len(number) == 12
    assert rules.is_accession_number(number)
    wrong_key = number[:-1] + str((int(number[-1]) + 1) % 10)
    assert not rules.is_accession_number(wrong_key)
    assert not rules.is_accession_number("XX" + number[2:]) and not rules.is_accession_number(number + "0")
    with pytest.raises(ValueError):
        rules.accession_number(2026, 0)
    with pytest.raises(ValueError):
        rules.accession_number(2026, 10_000_000)


@given(st.integers(min_value=2000, max_value=2099), st.integers(min_value=1, max_value=9_999_999))
def test_every_accession_number_is_valid_unique_and_fits_dicom_sh(year: int, sequence: int) -> None:
    number = rules.accession_number(year, sequence)
    assert rules.is_accession_number(number) and len(number) <= 16
    assert number != rules.accession_number(year, sequence % 9_999_999 + 1)


def test_an_order_needs_modality_body_part_question_and_urgency() -> None:
    order = rules.check_order(" ct ", "  Thorax   abdomen ", "  Dyspnée fébrile  ", "urgent")
    assert order == rules.OrderRequest("CT", "Thorax abdomen", "Dyspnée fébrile", rules.Urgency.URGENT)
    for args, rule in ((("XX", "Thorax", "Dyspnée", "routine"), "UnknownModality"),
                       (("CT", " ", "Dyspnée", "routine"), "BodyPartRequired"),
                       (("CT", "Thorax", "?", "routine"), "ClinicalQuestionRequired"),
                       (("CT", "Thorax", "Dyspnée", "tomorrow"), "UnknownUrgency")):
        with pytest.raises(rules.ImagingOrderInvalid) as caught:
            rules.check_order(*args)
        assert caught.value.extra["rule"] == rule


def test_the_order_status_follows_study_and_report() -> None:
    assert rules.order_status(False, False, False) is rules.OrderStatus.ORDERED
    assert rules.order_status(False, True, False) is rules.OrderStatus.PERFORMED
    assert rules.order_status(False, True, True) is rules.OrderStatus.REPORTED
    assert rules.order_status(True, True, True) is rules.OrderStatus.CANCELLED


@pytest.mark.parametrize("role", [Role.NURSE, Role.PHARMACIST, Role.PORTER, Role.ADMISSION_CLERK, Role.INTERFACE])
def test_only_physicians_order_and_report(role: Role) -> None:
    with pytest.raises(rules.NotAllowedToOrder):
        rules.check_may_order(frozenset({role}))
    with pytest.raises(rules.NotAllowedToReport):
        rules.check_may_report(frozenset({role}))
    rules.check_may_order(frozenset({Role.PHYSICIAN, role}))
    rules.check_may_report(frozenset({Role.PHYSICIAN}))


def test_a_report_needs_findings_and_a_conclusion() -> None:
    assert rules.check_report("  Pas d'anomalie décelable.  ", " Normal ") == ("Pas d'anomalie décelable.", "Normal")
    with pytest.raises(rules.ReportInvalid):
        rules.check_report("court", "Normal")
    with pytest.raises(rules.ReportInvalid):
        rules.check_report("Pas d'anomalie décelable.", "  ")
