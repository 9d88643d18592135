"""The shipped formulary and ANSM thesaurus load, hold together, and bad files are refused by name and line."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from naho.medication.catalogue import (
    ANSM_INDEX,
    ANSM_THESAURUS,
    FORMULARY,
    FormularyError,
    ansm_classes,
    ansm_interactions,
    load_catalogue,
    map_to_formulary,
    parse_formulary,
)
from naho.medication.rules import (
    ROUTES,
    AlertKind,
    Frequency,
    InteractionLevel,
    Order,
    PatientContext,
    Quantity,
    Severity,
    Sex,
    check_atc,
    check_order,
)

CATALOGUE = load_catalogue()


def test_the_formulary_has_at_least_300_products_across_the_atc_tree() -> None:
    assert len(CATALOGUE.products) >= 300
    groups = {s.atc[0] for s in CATALOGUE.substances.values()}
    assert set("ABCGHJLMNPRV") <= groups


def test_product_codes_are_unique_in_the_file_itself() -> None:
    raw = yaml.safe_load(FORMULARY.read_text(encoding="utf-8"))
    codes = [p["code"] for s in raw["substances"] for p in s.get("products") or ()]
    codes += [c["code"] for c in raw["combinations"]]
    assert [c for c, n in Counter(codes).items() if n > 1] == []
    assert len(codes) == len(CATALOGUE.products)
    substance_codes = [s["code"] for s in raw["substances"]]
    assert len(set(substance_codes)) == len(substance_codes)


def test_every_substance_has_a_valid_atc_code_and_is_sold_in_a_product() -> None:
    used = {c.substance for p in CATALOGUE.products.values() for c in p.components}
    for substance in CATALOGUE.substances.values():
        assert check_atc(substance.atc) == substance.atc
        assert substance.code in used, substance.code
    for product in CATALOGUE.products.values():
        assert product.routes <= set(ROUTES), product.code
        assert not any(f"{field}:" in product.name for field in ("strength", "volume_ml", "form", "routes")), (
            f"{product.code}: a field was swallowed into the name (unquoted comma?)")


def test_hospital_essentials_are_there() -> None:
    for code in ("norepinephrine", "propofol", "midazolam", "sufentanil", "ketamine", "insulin_glargine",
                 "insulin_aspart", "enoxaparin", "heparin", "amoxicillin", "ceftriaxone", "vancomycin",
                 "sodium_chloride", "glucose", "potassium_chloride", "epinephrine", "haloperidol", "naloxone"):
        assert code in CATALOGUE.substances, code


def test_codeine_is_contraindicated_before_12_in_the_shipped_formulary() -> None:
    order = Order("PARACOD500", Quantity(1, "pres"), "PO", Frequency.every(6))
    child = _adult(age_years=9.0, weight_kg=30.0, height_cm=135.0)
    assert [(a.kind, a.severity) for a in check_order(order, child, CATALOGUE)
            if a.substance == "codeine"] == [(AlertKind.AGE, Severity.BLOCKING)]
    assert check_order(order, _adult(), CATALOGUE) == []


def test_narcotics_are_flagged_and_their_products_too() -> None:
    for code in ("morphine", "oxycodone", "fentanyl", "sufentanil", "remifentanil", "ketamine", "methadone"):
        assert CATALOGUE.substances[code].narcotic, code
    narcotic_products = {p.code for p in CATALOGUE.products.values() if p.narcotic}
    assert {"MORP10INJ", "SUFE50INJ", "FENT25TD", "KETA50INJ"} <= narcotic_products
    assert "PARA1GINJ" not in narcotic_products and "TRAM50GEL" not in narcotic_products


def test_every_mapped_interaction_names_substances_or_classes_of_the_formulary() -> None:
    keys = {k for s in CATALOGUE.substances.values() for k in s.interaction_keys}
    atcs = [s.atc for s in CATALOGUE.substances.values()]
    assert len(CATALOGUE.interactions) > 300
    for interaction in CATALOGUE.interactions:
        for side in (interaction.left, interaction.right):
            if side.startswith("ATC:"):
                assert any(a.startswith(side[4:]) for a in atcs), side
            else:
                assert side in keys, side


def test_the_whole_ansm_thesaurus_is_read() -> None:
    rows = json.loads(ANSM_THESAURUS.read_text(encoding="utf-8"))
    assert len(rows) == 3139
    interactions = ansm_interactions(rows)
    assert len(interactions) == 3139
    levels = Counter(i.level for i in interactions)
    assert set(levels) == set(InteractionLevel)
    assert len(ansm_classes(json.loads(ANSM_INDEX.read_text(encoding="utf-8")))) > 1000


def test_substances_carry_their_ansm_classes() -> None:
    assert "ANTI-INFLAMMATOIRES NON STEROIDIENS" in CATALOGUE.substances["ibuprofen"].interaction_keys
    assert "ANTIVITAMINES K" in CATALOGUE.substances["warfarin"].interaction_keys
    assert "PRODUITS DE CONTRASTE IODES" in CATALOGUE.substances["iohexol"].interaction_keys


def test_pairs_listed_under_both_members_are_kept_once() -> None:
    found = CATALOGUE.interactions_between(CATALOGUE.substances["metformin"], CATALOGUE.substances["iohexol"])
    assert [i.level for i in found] == [InteractionLevel.CONTRAINDICATION]


# --- the real formulary through the checks ----------------------------------------------------------


def _adult(**changes: object) -> PatientContext:
    values: dict[str, object] = {"age_years": 60.0, "weight_kg": 75.0, "height_cm": 172.0, "sex": Sex.MALE,
                                 "creatinine_clearance_ml_min": 80.0}
    values.update(changes)
    return PatientContext(**values)  # type: ignore[arg-type]


def test_metformin_and_iodinated_contrast_block_with_the_real_thesaurus() -> None:
    metformin = Order("METF1000CP", Quantity(1, "pres"), "PO", Frequency.times_a_day(2))
    contrast = Order("OMNI350P100", Quantity(80, "mL"), "IV", Frequency.once())
    alerts = check_order(contrast, _adult(active_orders=(metformin,)), CATALOGUE)
    assert [(a.kind, a.severity) for a in alerts] == [(AlertKind.INTERACTION, Severity.BLOCKING)]
    assert check_order(contrast, _adult(), CATALOGUE) == []


def test_a_usual_post_operative_prescription_raises_no_alert() -> None:
    """No alert storm: the legitimate everyday orders pass each other without a word."""
    orders = [
        Order("PARA1GINJ", Quantity(1, "g"), "IV", Frequency.every(6)),
        Order("ENOX4000", Quantity(4000, "UI"), "SC", Frequency.times_a_day(1)),
        Order("PANT40INJ", Quantity(40, "mg"), "IV", Frequency.times_a_day(1)),
        Order("ONDA4INJ", Quantity(4, "mg"), "IV", Frequency.if_needed(2, every_hours=8)),
        Order("NACL09P1L", Quantity(1000, "mL"), "IV", Frequency.times_a_day(2)),
        Order("CTRI1GINJ", Quantity(2, "g"), "IV", Frequency.times_a_day(1)),
        Order("MORP10LI", Quantity(1, "pres"), "PO", Frequency.if_needed(6, every_hours=4)),
    ]
    for index, order in enumerate(orders):
        alerts = check_order(order, _adult(active_orders=tuple(orders[:index])), CATALOGUE)
        assert [a for a in alerts if a.severity is not Severity.INFO] == [], order.product


def test_an_icu_sedation_at_usual_rates_raises_no_alert() -> None:
    orders = [
        Order("PROP2P50", Quantity(2, "mg/kg/h"), "IV", Frequency.continuous()),
        Order("SUFE250INJ", Quantity(0.3, "µg/kg/h"), "IV", Frequency.continuous()),
        Order("NORA8INJ", Quantity(0.2, "µg/kg/min"), "IV", Frequency.continuous()),
    ]
    for index, order in enumerate(orders):
        alerts = check_order(order, _adult(active_orders=tuple(orders[:index])), CATALOGUE)
        assert [a for a in alerts if a.severity is not Severity.INFO] == [], order.product
    tenfold = Order("NORA8INJ", Quantity(20, "µg/kg/min"), "IV", Frequency.continuous())
    assert [a.severity for a in check_order(tenfold, _adult(), CATALOGUE)] == [Severity.BLOCKING]


_SOLID_ORAL = ("comprimé", "gélule", "capsule")


@pytest.mark.parametrize("code", sorted(
    p.code for p in CATALOGUE.products.values()
    if p.form.startswith(_SOLID_ORAL) and "PO" in p.routes and all(c.amount for c in p.components)))
def test_one_tablet_for_an_adult_is_never_above_a_maximum(code: str) -> None:
    """A consistency check of the file: a limit below one tablet is a typing error."""
    order = Order(code, Quantity(1, "pres"), "PO", Frequency.once())
    alerts = check_order(order, _adult(), CATALOGUE)
    assert [a for a in alerts if a.kind in (AlertKind.DOSE, AlertKind.UNCHECKED)] == []


# --- loader errors ----------------------------------------------------------------------------------

GOOD = """
version: "test"
substances:
- code: paracetamol
  name: paracétamol
  atc: N02BE01
  limits:
  - {unit: mg, max_single: 1000, max_daily: 4000}
  products:
  - {code: PARA500CP, name: Paracétamol 500 mg comprimé, strength: 500 mg, form: comprimé, routes: [PO]}
- code: codeine
  name: codéine
  atc: R05DA04
combinations:
- {code: PARACOD, name: Paracétamol/codéine, components: [{substance: paracetamol, strength: 500 mg},
   {substance: codeine, strength: 30 mg}], form: comprimé, routes: [PO]}
"""


def test_a_good_file_loads() -> None:
    formulary = parse_formulary(GOOD)
    assert set(formulary.products) == {"PARA500CP", "PARACOD"}
    assert formulary.substances["paracetamol"].duplicate_class == "N02BE"
    assert formulary.substances["codeine"].duplicate_class == "R05DA"
    assert formulary.products["PARACOD"].components[1].amount == Quantity(30, "mg")


def test_reimporting_the_same_text_gives_the_same_catalogue() -> None:
    assert parse_formulary(GOOD) == parse_formulary(GOOD)


def test_a_product_removed_from_the_file_leaves_active_orders_unchecked_not_silent() -> None:
    removed = GOOD.replace("  products:\n  - {code: PARA500CP", "  products: []\n  # {code: PARA500CP")
    formulary = parse_formulary(removed, "v2")
    assert "PARA500CP" not in formulary.products
    catalogue = map_to_formulary(formulary, {}, ())
    active = Order("PARA500CP", Quantity(1, "pres"), "PO", Frequency.every(6))
    new = Order("PARACOD", Quantity(1, "pres"), "PO", Frequency.every(6))
    alerts = check_order(new, _adult(active_orders=(active,)), catalogue)
    assert [a.kind for a in alerts] == [AlertKind.UNCHECKED]


@pytest.mark.parametrize(("change", "message"), [
    (("atc: N02BE01", "atc: N2BE01"), "substance 'paracetamol' (line 4)"),
    (("max_daily: 4000", "max_dialy: 4000"), "unknown field 'max_dialy'"),
    (("max_single: 1000", "max_single: 0"), "substance 'paracetamol' (line 4), limit 1: max_single is a positive"),
    (("routes: [PO]}", "routes: [orale]}"), "product 'PARA500CP' (line 10)"),
    (("strength: 500 mg, form", "strength: 500mg, form"), "strength '500mg'"),
    (("strength: 500 mg, form", "strength: 500 cuillères, form"), "unknown dose unit"),
    (("{substance: codeine", "{substance: codine"), "substance 'codine' is not in the formulary"),
    (("code: PARACOD,", "code: PARA500CP,"), "product 'PARA500CP' (line 15): code given twice"),
    (("- code: codeine", "- code: paracetamol"), "code given twice"),
    (("  name: codéine\n", ""), "missing field 'name'"),
    (("form: comprimé, routes: [PO]}\n- code", "routes: [PO]}\n- code"), "missing field 'form'"),
    (("version: \"test\"", "version: \"test\"\nversion: \"again\""), "key 'version' given twice"),
    (("routes: [PO]}\n- code", "routes: PO}\n- code"), "routes is a list"),
    (("atc: R05DA04", "atc: R05DA04\n  pregnancy: maybe"), "'maybe' is not a valid PregnancyRisk"),
    (("  limits:\n", "  renal:\n  - {below: 30}\n  limits:\n"), "renal rule 1"),
    (("  limits:\n", "  age:\n  - {below: 12, blocks: true}\n  limits:\n"), "age rule 1: unknown field 'blocks'"),
    (("{code: PARA500CP,", "{code: PARA500CP, cip13: ['3400930000000'],"), "CIP13"),
    (("substances:", "substances: ["), "not valid YAML"),
])
def test_loader_errors_name_the_entry_and_the_rule(change: tuple[str, str], message: str) -> None:
    old, new = change
    assert old in GOOD
    with pytest.raises(FormularyError) as error:
        parse_formulary(GOOD.replace(old, new, 1))
    assert message in str(error.value)


def test_a_cip13_cannot_belong_to_two_products() -> None:
    cip = "3400930000007"  # a GTIN-13 with a valid check digit
    text = GOOD.replace("{code: PARA500CP,", f"{{code: PARA500CP, cip13: ['{cip}'],").replace(
        "{code: PARACOD,", f"{{code: PARACOD, cip13: ['{cip}'],")
    with pytest.raises(FormularyError, match="already belongs to 'PARA500CP'"):
        parse_formulary(text)
    assert parse_formulary(GOOD.replace("{code: PARA500CP,", f"{{code: PARA500CP, cip13: ['{cip}'],"))


def test_an_unknown_ansm_level_is_refused() -> None:
    with pytest.raises(FormularyError, match="unknown level"):
        ansm_interactions([{"main_drug": "A", "plus_drug": "B", "interaction_mechanism": "",
                            "severity_levels": [{"level": "Peut-être", "info": ""}]}])


def test_the_shipped_files_are_where_the_loader_looks() -> None:
    for path in (FORMULARY, ANSM_THESAURUS, ANSM_INDEX, ANSM_INDEX.parent / "NOTICE.md"):
        assert Path(path).is_file()
    assert "must be reviewed and validated" in FORMULARY.read_text(encoding="utf-8")


_CODES = sorted(CATALOGUE.products)


@given(st.sampled_from(_CODES), st.sampled_from(_CODES),
       st.sampled_from(["pres", "mg", "g", "µg", "UI", "mL", "mg/kg", "mmol"]), st.floats(0.001, 5000),
       st.floats(0.5, 120), st.floats(0.4, 200), st.one_of(st.none(), st.floats(0, 150)))
@settings(max_examples=300, deadline=None)
def test_any_order_of_the_real_formulary_is_judged_without_crashing(
        code: str, active_code: str, unit: str, value: float, age: float, weight: float,
        clearance: float | None) -> None:
    product, active_product = CATALOGUE.products[code], CATALOGUE.products[active_code]
    active = Order(active_code, Quantity(1, "pres"), sorted(active_product.routes)[0], Frequency.every(8))
    order = Order(code, Quantity(value, unit), sorted(product.routes)[0], Frequency.every(6))
    patient = PatientContext(age_years=age, weight_kg=weight, height_cm=150.0, sex=Sex.FEMALE,
                             creatinine_clearance_ml_min=clearance, active_orders=(active,),
                             allergies=frozenset({"ATC:J01C"}))
    for alert in check_order(order, patient, CATALOGUE):
        assert alert.text()


def test_a_usual_cardiology_and_diabetes_prescription_raises_no_alert_needing_a_reason() -> None:
    orders = [
        Order("METF1000CP", Quantity(1, "pres"), "PO", Frequency.times_a_day(2)),
        Order("LANTUSSOLO", Quantity(20, "UI"), "SC", Frequency.times_a_day(1)),
        Order("NOVORAPFLEX", Quantity(6, "UI"), "SC", Frequency.times_a_day(3)),
        Order("RAMI5CP", Quantity(1, "pres"), "PO", Frequency.times_a_day(1)),
        Order("ATOR40CP", Quantity(1, "pres"), "PO", Frequency.times_a_day(1)),
        Order("BISO5CP", Quantity(1, "pres"), "PO", Frequency.times_a_day(1)),
        Order("ASPI75SB", Quantity(1, "pres"), "PO", Frequency.times_a_day(1)),
        Order("FURO40CP", Quantity(1, "pres"), "PO", Frequency.times_a_day(1)),
        Order("ESOM20CP", Quantity(1, "pres"), "PO", Frequency.times_a_day(1)),
    ]
    for index, order in enumerate(orders):
        alerts = check_order(order, _adult(active_orders=tuple(orders[:index])), CATALOGUE)
        assert [a.text() for a in alerts if a.severity is not Severity.INFO] == [], order.product


def test_dual_antiplatelet_therapy_asks_for_its_indication() -> None:
    """ANSM: association déconseillée outside acute coronary syndromes, précaution d'emploi within;
    naho cannot read the indication, so it asks for it (a reason), showing both conditions."""
    aspirin = Order("ASPI75SB", Quantity(1, "pres"), "PO", Frequency.times_a_day(1))
    clopidogrel = Order("CLOP75CP", Quantity(1, "pres"), "PO", Frequency.times_a_day(1))
    alerts = check_order(clopidogrel, _adult(active_orders=(aspirin,)), CATALOGUE)
    assert [(a.kind, a.severity) for a in alerts] == [(AlertKind.INTERACTION, Severity.OVERRIDE_REQUIRED)]
    assert "syndromes coronariens aigus" in alerts[0].text()


def test_paracetamol_of_a_combination_adds_to_the_daily_dose() -> None:
    paracetamol = Order("PARA1GINJ", Quantity(1, "g"), "IV", Frequency.every(6))
    combination = Order("PARATRAM", Quantity(2, "pres"), "PO", Frequency.every(6))
    alerts = check_order(combination, _adult(active_orders=(paracetamol,)), CATALOGUE)
    dose = [a for a in alerts if a.kind is AlertKind.DOSE]
    assert [(a.substance, a.severity) for a in dose] == [("paracetamol", Severity.OVERRIDE_REQUIRED)]
    assert "6600 mg" in dose[0].text()
    assert check_order(combination, _adult(), CATALOGUE) == []
