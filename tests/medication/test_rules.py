"""The prescription safety checks: each refused case next to its legitimate twin, which must pass."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from naho.medication.rules import (
    ALLERGY_FAMILIES,
    FAMILY_LABELS,
    HARD_LIMIT_FACTOR,
    ROUTES,
    AgeRule,
    AlertKind,
    BadAtcCode,
    BadFrequency,
    BadQuantity,
    Catalogue,
    Component,
    DoseLimit,
    Frequency,
    ImplausiblePatientValue,
    Interaction,
    InteractionLevel,
    MedicationRuleError,
    Order,
    OrderBlocked,
    OverrideReasonRequired,
    PatientContext,
    PregnancyRisk,
    Product,
    Quantity,
    RenalRule,
    Severity,
    Sex,
    Substance,
    UnknownProduct,
    UnknownRoute,
    UnknownUnit,
    allergy_family,
    body_surface_area,
    check_atc,
    check_order,
    check_route,
    cockcroft_gault,
    convert,
    interaction_key,
    is_valid_gtin13,
    order_amounts,
    overridden_alerts,
    parse_unit,
)

# --- a small formulary, written for the tests ------------------------------------------------------

PARACETAMOL_LIMITS = (
    DoseLimit("mg", min_age_years=18, min_weight_kg=50, max_single=1000, max_daily=4000),
    DoseLimit("mg", min_age_years=18, max_weight_kg=50, max_single=1000, max_daily_per_kg=60),
    DoseLimit("mg", max_age_years=18, max_single_per_kg=15, max_daily_per_kg=60, max_single=1000, max_daily=4000),
)
NSAID_KEYS = frozenset({"ANTI-INFLAMMATOIRES NON STEROIDIENS", "HYPERKALIEMIANTS"})

SUBSTANCES = {s.code: s for s in (
    Substance("paracetamol", "paracétamol", "N02BE01", PARACETAMOL_LIMITS, duplicate_class="N02BE",
              interaction_keys=frozenset({"PARACETAMOL"})),
    Substance("amoxicillin", "amoxicilline", "J01CA04",
              (DoseLimit("mg", min_age_years=18, max_single=3000, max_daily=12000),),
              renal=(RenalRule(30, note="Espacer les prises (toutes les 12 h)."),),
              duplicate_class="J01CA", interaction_keys=frozenset({"AMOXICILLINE", "PENICILLINES"})),
    Substance("clavulanic_acid", "acide clavulanique", "J01CG",
              (DoseLimit("mg", routes=frozenset({"IV"}), max_single=200, max_daily=1200),), duplicate_class="J01CG"),
    Substance("ceftriaxone", "ceftriaxone", "J01DD04", (DoseLimit("mg", max_single=4000, max_daily=4000),),
              duplicate_class="J01DD"),
    Substance("meropenem", "méropénem", "J01DH02", duplicate_class="J01DH"),
    Substance("aztreonam", "aztréonam", "J01DF01", duplicate_class="J01DF"),
    Substance("cotrimoxazole", "sulfaméthoxazole + triméthoprime", "J01EE01", duplicate_class="J01EE"),
    Substance("trimethoprim", "triméthoprime", "J01EA01", duplicate_class="J01EA"),
    Substance("ibuprofen", "ibuprofène", "M01AE01", (DoseLimit("mg", max_single=800, max_daily=2400),),
              pregnancy=PregnancyRisk.AVOID, duplicate_class="M01A",
              interaction_keys=NSAID_KEYS | {"IBUPROFENE"}),
    Substance("ketoprofen", "kétoprofène", "M01AE03", duplicate_class="M01A",
              interaction_keys=NSAID_KEYS | {"KETOPROFENE"}),
    Substance("diclofenac", "diclofénac", "M01AB05", duplicate_class="M01A",
              interaction_keys=NSAID_KEYS | {"DICLOFENAC"}),
    Substance("metformin", "metformine", "A10BA02", (DoseLimit("mg", max_single=1000, max_daily=3000),),
              renal=(RenalRule(30, contraindicated=True, note="Arrêter la metformine."),
                     RenalRule(45, max_daily=1000, unit="mg", note="Dose maximale 1 000 mg/j."),
                     RenalRule(60, max_daily=2000, unit="mg")),
              duplicate_class="A10BA", interaction_keys=frozenset({"METFORMINE"})),
    Substance("iohexol", "iohexol", "V08AB02", duplicate_class="V08AB",
              interaction_keys=frozenset({"IOHEXOL", "PRODUITS DE CONTRASTE IODES"})),
    Substance("warfarin", "warfarine", "B01AA03", pregnancy=PregnancyRisk.CONTRAINDICATED,
              pregnancy_note="Tératogène (embryopathie aux AVK).", duplicate_class="B01AA",
              interaction_keys=frozenset({"WARFARINE", "ANTIVITAMINES K", "ANTICOAGULANTS ORAUX"})),
    Substance("aspirin", "acide acétylsalicylique", "B01AC06", duplicate_class="B01AC",
              interaction_keys=frozenset({"ACIDE ACETYLSALICYLIQUE"})),
    Substance("norepinephrine", "noradrénaline", "C01CA03",
              (DoseLimit("µg", max_hourly_per_kg=300),), duplicate_class="C01CA"),
    Substance("methotrexate", "méthotrexate", "L01BA01", (DoseLimit("mg", max_single_per_m2=40),),
              pregnancy=PregnancyRisk.CONTRAINDICATED, duplicate_class="L01BA"),
    Substance("sodium_chloride", "chlorure de sodium", "B05XA03", duplicate_class=None),
    Substance("enoxaparin", "énoxaparine", "B01AB05",
              (DoseLimit("UI", max_single_per_kg=100, max_daily_per_kg=200),),
              renal=(RenalRule(15, contraindicated=True),
                     RenalRule(30, note="Dose curative : 100 UI/kg une fois par jour.")),
              duplicate_class="B01AB"),
)}


def _product(code: str, substance: str, amount: Quantity | None, form: str, routes: set[str],
             volume_ml: float | None = None) -> Product:
    return Product(code, code, (Component(substance, amount, volume_ml),), form, frozenset(routes))


PRODUCTS = {p.code: p for p in (
    _product("paracetamol_500_tab", "paracetamol", Quantity(500, "mg"), "comprimé", {"PO"}),
    _product("paracetamol_1g_iv", "paracetamol", Quantity(1000, "mg"), "solution pour perfusion", {"IV"}, 100),
    _product("amoxicillin_1g_iv", "amoxicillin", Quantity(1, "g"), "poudre pour solution injectable", {"IV", "IM"}),
    Product("amox_clav_1g_iv", "amoxicilline/acide clavulanique 1 g/200 mg", (
        Component("amoxicillin", Quantity(1000, "mg")), Component("clavulanic_acid", Quantity(200, "mg"))),
        "poudre pour solution injectable", frozenset({"IV"})),
    _product("ceftriaxone_1g", "ceftriaxone", Quantity(1, "g"), "poudre pour solution injectable", {"IV", "IM"}),
    _product("meropenem_1g", "meropenem", Quantity(1, "g"), "poudre pour solution injectable", {"IV"}),
    _product("aztreonam_1g", "aztreonam", Quantity(1, "g"), "poudre pour solution injectable", {"IV"}),
    _product("cotrimoxazole_800", "cotrimoxazole", Quantity(800, "mg"), "comprimé", {"PO"}),
    _product("trimethoprim_300", "trimethoprim", Quantity(300, "mg"), "comprimé", {"PO"}),
    _product("ibuprofen_400", "ibuprofen", Quantity(400, "mg"), "comprimé", {"PO"}),
    _product("ketoprofen_100_iv", "ketoprofen", Quantity(100, "mg"), "poudre pour solution injectable", {"IV"}),
    _product("diclofenac_50", "diclofenac", Quantity(50, "mg"), "comprimé", {"PO"}),
    _product("metformin_1000", "metformin", Quantity(1000, "mg"), "comprimé", {"PO"}),
    _product("iohexol_350", "iohexol", Quantity(350, "mg"), "solution injectable", {"IV"}, 1),
    _product("warfarin_5", "warfarin", Quantity(5, "mg"), "comprimé", {"PO"}),
    _product("aspirin_75", "aspirin", Quantity(75, "mg"), "sachet", {"PO"}),
    _product("norepinephrine_8mg", "norepinephrine", Quantity(8, "mg"), "solution injectable", {"IV"}, 4),
    _product("methotrexate_25", "methotrexate", Quantity(25, "mg"), "solution injectable", {"IV", "IM", "SC"}, 1),
    _product("nacl_09_500", "sodium_chloride", Quantity(4.5, "g"), "solution pour perfusion", {"IV"}, 500),
    _product("enoxaparin_6000", "enoxaparin", Quantity(6000, "UI"), "solution injectable", {"SC"}, 0.6),
)}

INTERACTIONS = (
    Interaction("METFORMINE", "PRODUITS DE CONTRASTE IODES", ((InteractionLevel.CONTRAINDICATION, ""),),
                "Acidose lactique liée à une insuffisance rénale fonctionnelle."),
    Interaction("ANTI-INFLAMMATOIRES NON STEROIDIENS", "ANTI-INFLAMMATOIRES NON STEROIDIENS",
                ((InteractionLevel.DISCOURAGED, ""),), "Majoration du risque ulcérogène et hémorragique digestif."),
    Interaction("ACIDE ACETYLSALICYLIQUE", "ANTICOAGULANTS ORAUX", (
        (InteractionLevel.CONTRAINDICATION, "avec des doses anti-inflammatoires"),
        (InteractionLevel.DISCOURAGED, "avec des doses antalgiques"),
        (InteractionLevel.TO_CONSIDER, "avec des doses antiagrégantes")), "Majoration du risque hémorragique."),
    Interaction("ANTIVITAMINES K", "PARACETAMOL", ((InteractionLevel.PRECAUTION, ""),),
                "Risque d'augmentation de l'effet de l'anticoagulant oral aux doses maximales."),
)

CATALOGUE = Catalogue(SUBSTANCES, PRODUCTS, INTERACTIONS)


def adult(**changes: object) -> PatientContext:
    """A 45-year-old man of 70 kg and 175 cm, with normal renal function."""
    values: dict[str, object] = {"age_years": 45.0, "weight_kg": 70.0, "height_cm": 175.0, "sex": Sex.MALE,
                                 "creatinine_clearance_ml_min": 95.0}
    values.update(changes)
    return PatientContext(**values)  # type: ignore[arg-type]


def child(**changes: object) -> PatientContext:
    """A one-year-old girl of 10 kg and 75 cm."""
    values: dict[str, object] = {"age_years": 1.0, "weight_kg": 10.0, "height_cm": 75.0, "sex": Sex.FEMALE,
                                 "creatinine_clearance_ml_min": 90.0}
    values.update(changes)
    return PatientContext(**values)  # type: ignore[arg-type]


def order(product: str, value: float, unit: str, route: str, frequency: Frequency | None = None) -> Order:
    return Order(product, Quantity(value, unit), route, frequency or Frequency.once())


def kinds(alerts: list, severity: Severity | None = None) -> list[AlertKind]:  # type: ignore[type-arg]
    return [a.kind for a in alerts if severity is None or a.severity is severity]


def only(alerts: list, kind: AlertKind):  # type: ignore[no-untyped-def,type-arg]
    found = [a for a in alerts if a.kind is kind]
    assert len(found) == 1, alerts
    return found[0]


AMOXICILLIN_1G = order("amoxicillin_1g_iv", 1, "g", "IV", Frequency.every(8))
CEFTRIAXONE_2G = order("ceftriaxone_1g", 2, "g", "IV", Frequency.times_a_day(1))
PARACETAMOL_1G_Q6H = order("paracetamol_1g_iv", 1, "g", "IV", Frequency.every(6))
IBUPROFEN_400_TID = order("ibuprofen_400", 1, "pres", "PO", Frequency.times_a_day(3))
METFORMIN_1G_BID = order("metformin_1000", 1000, "mg", "PO", Frequency.times_a_day(2))


# --- allergy and cross-reactivity -----------------------------------------------------------------


def test_amoxicillin_is_refused_to_a_penicillin_allergic_patient() -> None:
    alerts = check_order(AMOXICILLIN_1G, adult(allergies=frozenset({"ATC:J01C"})), CATALOGUE)
    allergy = only(alerts, AlertKind.ALLERGY)
    assert allergy.severity is Severity.BLOCKING
    assert "amoxicilline" in allergy.text()
    with pytest.raises(OrderBlocked):
        overridden_alerts(alerts, "je sais")


def test_amoxicillin_is_accepted_for_a_patient_without_allergy() -> None:
    assert check_order(AMOXICILLIN_1G, adult(), CATALOGUE) == []


def test_amoxicillin_is_accepted_for_a_patient_allergic_to_something_else() -> None:
    patient = adult(allergies=frozenset({"ATC:J01FA", "FOOD:peanut", "ENV:latex"}))
    assert check_order(AMOXICILLIN_1G, patient, CATALOGUE) == []


def test_an_allergy_to_one_penicillin_refuses_the_whole_family() -> None:
    alerts = check_order(AMOXICILLIN_1G, adult(allergies=frozenset({"ATC:J01CE01"})), CATALOGUE)
    assert kinds(alerts, Severity.BLOCKING) == [AlertKind.ALLERGY]


def test_a_combination_containing_the_allergen_is_refused() -> None:
    alerts = check_order(order("amox_clav_1g_iv", 1, "g", "IV", Frequency.every(8)),
                         adult(allergies=frozenset({"ATC:J01CA04"})), CATALOGUE)
    assert set(kinds(alerts, Severity.BLOCKING)) == {AlertKind.ALLERGY}
    assert "amoxicillin" in {a.substance for a in alerts}


def test_ceftriaxone_is_flagged_for_cross_reactivity_with_penicillin_allergy() -> None:
    alerts = check_order(CEFTRIAXONE_2G, adult(allergies=frozenset({"ATC:J01CA04"})), CATALOGUE)
    alert = only(alerts, AlertKind.CROSS_REACTIVITY)
    assert alert.severity is Severity.OVERRIDE_REQUIRED
    assert "pénicillines" in alert.text() and "céphalosporines" in alert.text()
    assert overridden_alerts(alerts, "allergie ancienne non documentée, éruption bénigne") == (alert,)
    with pytest.raises(OverrideReasonRequired):
        overridden_alerts(alerts, "   ")


def test_ceftriaxone_is_accepted_without_penicillin_allergy() -> None:
    assert check_order(CEFTRIAXONE_2G, adult(), CATALOGUE) == []


def test_meropenem_cross_reacts_with_cephalosporin_allergy_but_aztreonam_does_not() -> None:
    patient = adult(allergies=frozenset({"ATC:J01DD"}))
    meropenem = check_order(order("meropenem_1g", 1, "g", "IV", Frequency.every(8)), patient, CATALOGUE)
    assert kinds(meropenem) == [AlertKind.CROSS_REACTIVITY]
    assert check_order(order("aztreonam_1g", 1, "g", "IV", Frequency.every(8)), patient, CATALOGUE) == []


def test_a_sulfonamide_allergy_refuses_cotrimoxazole_but_not_trimethoprim_alone() -> None:
    patient = adult(allergies=frozenset({"ATC:J01EC"}))
    cotrimoxazole = check_order(order("cotrimoxazole_800", 1, "pres", "PO", Frequency.times_a_day(2)), patient,
                                CATALOGUE)
    assert kinds(cotrimoxazole) == [AlertKind.ALLERGY]
    assert check_order(order("trimethoprim_300", 1, "pres", "PO"), patient, CATALOGUE) == []


def test_nsaid_intolerance_covers_every_nsaid_and_aspirin() -> None:
    patient = adult(allergies=frozenset({"ATC:M01AE01"}))
    assert kinds(check_order(order("diclofenac_50", 1, "pres", "PO"), patient, CATALOGUE)) == [AlertKind.ALLERGY]
    assert kinds(check_order(order("aspirin_75", 1, "pres", "PO"), patient, CATALOGUE)) == [AlertKind.ALLERGY]
    assert check_order(order("paracetamol_500_tab", 1, "pres", "PO"), patient, CATALOGUE) == []


def test_every_allergy_family_has_a_french_label() -> None:
    assert set(FAMILY_LABELS) == set(ALLERGY_FAMILIES)
    assert allergy_family("J01CR02") == "penicillins"
    assert allergy_family("J01EA01") is None
    assert allergy_family("N02BE01") is None


# --- interactions ----------------------------------------------------------------------------------


def test_an_ansm_contraindication_blocks() -> None:
    patient = adult(active_orders=(METFORMIN_1G_BID,))
    alerts = check_order(order("iohexol_350", 100, "mL", "IV"), patient, CATALOGUE)
    alert = only(alerts, AlertKind.INTERACTION)
    assert alert.severity is Severity.BLOCKING
    assert "contre-indication" in alert.text() and "metformine" in alert.text()
    with pytest.raises(OrderBlocked):
        overridden_alerts(alerts, "urgence vitale")


def test_iodinated_contrast_without_metformin_passes() -> None:
    patient = adult(active_orders=(PARACETAMOL_1G_Q6H,))
    assert check_order(order("iohexol_350", 100, "mL", "IV"), patient, CATALOGUE) == []


def test_the_interaction_is_found_in_either_order() -> None:
    patient = adult(active_orders=(order("iohexol_350", 100, "mL", "IV"),))
    assert kinds(check_order(METFORMIN_1G_BID, patient, CATALOGUE), Severity.BLOCKING) == [AlertKind.INTERACTION]


def test_an_association_deconseillee_needs_a_reason_and_two_nsaids_are_a_duplicate() -> None:
    patient = adult(active_orders=(IBUPROFEN_400_TID,))
    alerts = check_order(order("ketoprofen_100_iv", 100, "mg", "IV", Frequency.times_a_day(2)), patient, CATALOGUE)
    assert sorted(kinds(alerts, Severity.OVERRIDE_REQUIRED)) == [AlertKind.DUPLICATE, AlertKind.INTERACTION]
    assert "association déconseillée" in only(alerts, AlertKind.INTERACTION).text()
    assert len(overridden_alerts(alerts, "relais IV de l'ibuprofène, ibuprofène arrêté ce soir")) == 2


def test_two_nsaids_of_different_chemical_subgroups_are_still_a_duplicate() -> None:
    patient = adult(active_orders=(IBUPROFEN_400_TID,))
    alerts = check_order(order("diclofenac_50", 1, "pres", "PO", Frequency.times_a_day(2)), patient, CATALOGUE)
    duplicate = only(alerts, AlertKind.DUPLICATE)
    assert "M01A" in duplicate.text()


def test_one_nsaid_with_paracetamol_is_no_duplicate() -> None:
    patient = adult(active_orders=(PARACETAMOL_1G_Q6H,))
    assert check_order(IBUPROFEN_400_TID, patient, CATALOGUE) == []


def test_a_conditional_contraindication_needs_a_reason_but_does_not_block() -> None:
    patient = adult(active_orders=(order("warfarin_5", 1, "pres", "PO", Frequency.times_a_day(1)),))
    alerts = check_order(order("aspirin_75", 1, "pres", "PO", Frequency.times_a_day(1)), patient, CATALOGUE)
    alert = only(alerts, AlertKind.INTERACTION)
    assert alert.severity is Severity.OVERRIDE_REQUIRED
    assert "doses antiagrégantes" in alert.text()  # every condition is shown


def test_a_precaution_d_emploi_only_informs() -> None:
    patient = adult(active_orders=(order("warfarin_5", 1, "pres", "PO", Frequency.times_a_day(1)),))
    alerts = check_order(PARACETAMOL_1G_Q6H, patient, CATALOGUE)
    assert kinds(alerts, Severity.INFO) == [AlertKind.INTERACTION]
    assert overridden_alerts(alerts, None) == ()


def test_interaction_by_atc_class() -> None:
    catalogue = Catalogue(SUBSTANCES, PRODUCTS, (
        Interaction("ATC:B01A", "ATC:M01A", ((InteractionLevel.DISCOURAGED, ""),), "Risque hémorragique.", "PUI"),))
    patient = adult(active_orders=(order("warfarin_5", 1, "pres", "PO", Frequency.times_a_day(1)),))
    alerts = check_order(IBUPROFEN_400_TID, patient, catalogue)
    assert kinds(alerts, Severity.OVERRIDE_REQUIRED) == [AlertKind.INTERACTION]
    assert "PUI" in alerts[0].text()
    assert check_order(PARACETAMOL_1G_Q6H, patient, catalogue) == []


def test_interaction_levels_are_ranked_and_validated() -> None:
    assert [lv.rank for lv in InteractionLevel] == [0, 1, 2, 3]
    with pytest.raises(MedicationRuleError):
        Interaction("METFORMINE", "ATC:XYZ", ((InteractionLevel.PRECAUTION, ""),), "")
    with pytest.raises(MedicationRuleError):
        Interaction("Metformine", "IOHEXOL", ((InteractionLevel.PRECAUTION, ""),), "")
    with pytest.raises(MedicationRuleError):
        Interaction("METFORMINE", "IOHEXOL", (), "")


def test_interaction_key_normalises_the_thesaurus_names() -> None:
    assert interaction_key("Anti-inflammatoires  non stéroïdiens") == "ANTI-INFLAMMATOIRES NON STEROIDIENS"
    assert interaction_key("Médicaments à l’origine d’un hypogonadisme") == "MEDICAMENTS A L'ORIGINE D'UN HYPOGONADISME"
    assert interaction_key("cœur") == "COEUR"


@given(st.text(max_size=40))
def test_interaction_key_is_idempotent(name: str) -> None:
    assert interaction_key(interaction_key(name)) == interaction_key(name)


# --- dose ------------------------------------------------------------------------------------------


def test_paracetamol_1_g_every_6_h_is_fine_for_a_70_kg_adult() -> None:
    assert check_order(PARACETAMOL_1G_Q6H, adult(), CATALOGUE) == []


def test_paracetamol_2_g_in_one_dose_is_refused() -> None:
    alerts = check_order(order("paracetamol_1g_iv", 2, "g", "IV"), adult(), CATALOGUE)
    dose = only(alerts, AlertKind.DOSE)
    assert dose.severity is Severity.BLOCKING  # twice the maximum: a slip, not a choice
    assert "2000 mg" in dose.text() and "1000 mg" in dose.text()


def test_paracetamol_1_5_g_in_one_dose_needs_a_reason() -> None:
    alerts = check_order(order("paracetamol_1g_iv", 1.5, "g", "IV"), adult(), CATALOGUE)
    assert kinds(alerts, Severity.OVERRIDE_REQUIRED) == [AlertKind.DOSE]


def test_paracetamol_1_g_every_4_h_exceeds_the_daily_maximum() -> None:
    alerts = check_order(order("paracetamol_1g_iv", 1, "g", "IV", Frequency.every(4)), adult(), CATALOGUE)
    dose = only(alerts, AlertKind.DOSE)
    assert dose.severity is Severity.OVERRIDE_REQUIRED
    assert "6000 mg" in dose.text() and "24 h" in dose.text()


def test_the_daily_dose_adds_the_active_orders_of_the_same_substance() -> None:
    patient = adult(active_orders=(PARACETAMOL_1G_Q6H,))
    alerts = check_order(order("paracetamol_500_tab", 2, "pres", "PO", Frequency.if_needed(3)), patient, CATALOGUE)
    assert sorted(kinds(alerts)) == [AlertKind.DOSE, AlertKind.DUPLICATE]
    assert "7000 mg" in only(alerts, AlertKind.DOSE).text()
    # background + "if needed" of one substance is shown only: the daily dose speaks for its excess
    assert only(alerts, AlertKind.DUPLICATE).severity is Severity.INFO
    fitted = order("paracetamol_500_tab", 1, "pres", "PO", Frequency.if_needed(3, every_hours=4))
    assert kinds(check_order(fitted, adult(weight_kg=80.0, active_orders=(
        order("paracetamol_500_tab", 1, "pres", "PO", Frequency.every(6)),)), CATALOGUE)) == [AlertKind.DUPLICATE]


def test_a_light_adult_is_capped_by_weight() -> None:
    alerts = check_order(PARACETAMOL_1G_Q6H, adult(weight_kg=45.0), CATALOGUE)
    dose = only(alerts, AlertKind.DOSE)
    assert "2700 mg" in dose.text() and "60 mg/kg/j" in dose.text()
    assert check_order(order("paracetamol_1g_iv", 600, "mg", "IV", Frequency.every(6)), adult(weight_kg=45.0),
                       CATALOGUE) == []


def test_paracetamol_15_mg_per_kg_is_fine_for_a_10_kg_child() -> None:
    assert check_order(order("paracetamol_1g_iv", 15, "mg/kg", "IV", Frequency.every(6)), child(), CATALOGUE) == []


def test_paracetamol_150_mg_is_fine_for_a_10_kg_child() -> None:
    assert check_order(order("paracetamol_1g_iv", 150, "mg", "IV", Frequency.every(6)), child(), CATALOGUE) == []


def test_paracetamol_1_g_is_refused_for_a_10_kg_child() -> None:
    alerts = check_order(order("paracetamol_1g_iv", 1, "g", "IV"), child(), CATALOGUE)
    single, daily = alerts
    assert single.kind is daily.kind is AlertKind.DOSE
    assert single.severity is Severity.BLOCKING  # 6.7 times 15 mg/kg
    assert daily.severity is Severity.OVERRIDE_REQUIRED  # 1000 mg in 24 h against 600
    assert "15 mg/kg" in single.text() and "150 mg" in single.text()
    assert "60 mg/kg/j" in daily.text() and "600 mg" in daily.text()


def test_a_dose_in_millilitres_is_converted_with_the_concentration() -> None:
    # 10 mL/kg of a 10 mg/mL solution for a 10 kg child = 1000 mg
    alerts = check_order(order("paracetamol_1g_iv", 100, "mL", "IV"), child(), CATALOGUE)
    assert kinds(alerts, Severity.BLOCKING) == [AlertKind.DOSE]
    assert check_order(order("paracetamol_1g_iv", 15, "mL", "IV", Frequency.every(6)), child(), CATALOGUE) == []


def test_the_second_component_of_a_combination_is_checked_too() -> None:
    # 2 g of amoxicillin in the 1 g/200 mg product brings 400 mg of clavulanic acid (max 200 mg per dose)
    alerts = check_order(order("amox_clav_1g_iv", 2, "g", "IV", Frequency.every(8)), adult(), CATALOGUE)
    dose = only(alerts, AlertKind.DOSE)
    assert dose.substance == "clavulanic_acid" and dose.severity is Severity.BLOCKING
    assert check_order(order("amox_clav_1g_iv", 1, "g", "IV", Frequency.every(8)), adult(), CATALOGUE) == []


def test_an_infusion_rate_is_checked_per_kg_and_hour() -> None:
    fine = order("norepinephrine_8mg", 0.5, "µg/kg/min", "IV", Frequency.continuous())
    assert check_order(fine, adult(), CATALOGUE) == []
    slip = order("norepinephrine_8mg", 50, "µg/kg/min", "IV", Frequency.continuous())
    alert = only(check_order(slip, adult(), CATALOGUE), AlertKind.DOSE)
    assert alert.severity is Severity.BLOCKING and "/h" in alert.text()


def test_an_infusion_is_dosed_as_a_rate_and_only_it() -> None:
    with pytest.raises(BadFrequency):
        order("norepinephrine_8mg", 0.5, "µg/kg/min", "IV", Frequency.every(6))
    with pytest.raises(BadFrequency):
        order("norepinephrine_8mg", 0.5, "mg", "IV", Frequency.continuous())


def test_a_dose_per_m2_uses_the_body_surface_area() -> None:
    fine = order("methotrexate_25", 15, "mg/m²", "IM")
    assert check_order(fine, adult(), CATALOGUE) == []
    over = order("methotrexate_25", 50, "mg/m2", "IM")
    assert kinds(check_order(over, adult(), CATALOGUE), Severity.OVERRIDE_REQUIRED) == [AlertKind.DOSE]


def test_a_dose_per_m2_without_height_blocks() -> None:
    alerts = check_order(order("methotrexate_25", 15, "mg/m²", "IM"), adult(height_cm=None), CATALOGUE)
    assert kinds(alerts) == [AlertKind.HEIGHT_REQUIRED]
    assert alerts[0].severity is Severity.BLOCKING


def test_units_of_another_kind_are_said_unchecked() -> None:
    alerts = check_order(order("paracetamol_1g_iv", 1, "UI", "IV"), adult(), CATALOGUE)
    assert kinds(alerts, Severity.INFO) == [AlertKind.UNCHECKED]


def test_international_units_per_kg() -> None:
    assert check_order(order("enoxaparin_6000", 100, "UI/kg", "SC", Frequency.every(12)), adult(), CATALOGUE) == []
    alerts = check_order(order("enoxaparin_6000", 1, "mL", "SC", Frequency.every(12)), adult(), CATALOGUE)
    assert set(kinds(alerts)) == {AlertKind.DOSE}  # 10 000 UI per injection for 70 kg: above 100 UI/kg


@given(st.floats(min_value=1, max_value=4000, allow_nan=False))
def test_paracetamol_dose_severity_follows_the_rule(milligrams: float) -> None:
    alerts = [a for a in check_order(order("paracetamol_1g_iv", milligrams, "mg", "IV"), adult(), CATALOGUE)
              if a.kind is AlertKind.DOSE]
    if milligrams <= 1000:
        assert alerts == []
    elif milligrams < 1000 * HARD_LIMIT_FACTOR:
        assert [a.severity for a in alerts] == [Severity.OVERRIDE_REQUIRED]
    else:
        assert Severity.BLOCKING in [a.severity for a in alerts]


@given(st.floats(min_value=0.5, max_value=150), st.floats(min_value=0.1, max_value=30))
def test_a_weight_based_paediatric_dose_is_judged_on_its_milligrams(weight: float, mg_per_kg: float) -> None:
    patient = child(weight_kg=weight)
    per_kg = check_order(order("paracetamol_1g_iv", mg_per_kg, "mg/kg", "IV"), patient, CATALOGUE)
    absolute = check_order(order("paracetamol_1g_iv", mg_per_kg * weight, "mg", "IV"), patient, CATALOGUE)
    assert [a.severity for a in per_kg] == [a.severity for a in absolute]
    if mg_per_kg <= 15 and mg_per_kg * weight <= 1000:
        assert per_kg == []


# --- weight and height -----------------------------------------------------------------------------


def test_a_missing_weight_blocks() -> None:
    alerts = check_order(PARACETAMOL_1G_Q6H, adult(weight_kg=None), CATALOGUE)
    assert kinds(alerts, Severity.BLOCKING) == [AlertKind.WEIGHT_REQUIRED]
    assert "6 avril 2011" in alerts[0].text()


def test_a_missing_weight_blocks_a_weight_based_dose_without_a_second_alert() -> None:
    alerts = check_order(order("paracetamol_1g_iv", 15, "mg/kg", "IV"), child(weight_kg=None), CATALOGUE)
    assert kinds(alerts) == [AlertKind.WEIGHT_REQUIRED]


def test_a_missing_height_needs_a_reason() -> None:
    alerts = check_order(PARACETAMOL_1G_Q6H, adult(height_cm=None), CATALOGUE)
    assert kinds(alerts, Severity.OVERRIDE_REQUIRED) == [AlertKind.HEIGHT_REQUIRED]
    assert overridden_alerts(alerts, "patient grabataire, taille non mesurable") == tuple(alerts)


# --- duplicate therapy -----------------------------------------------------------------------------


def test_the_same_substance_twice_is_a_duplicate() -> None:
    patient = adult(active_orders=(order("paracetamol_500_tab", 1, "pres", "PO", Frequency.times_a_day(2)),))
    alerts = check_order(order("paracetamol_1g_iv", 1, "g", "IV"), patient, CATALOGUE)
    assert kinds(alerts, Severity.OVERRIDE_REQUIRED) == [AlertKind.DUPLICATE]


def test_solutes_are_never_duplicates() -> None:
    patient = adult(active_orders=(order("nacl_09_500", 500, "mL", "IV", Frequency.every(12)),))
    assert check_order(order("nacl_09_500", 100, "mL", "IV", Frequency.times_a_day(3)), patient, CATALOGUE) == []


def test_an_active_order_whose_product_left_the_formulary_is_said_unchecked() -> None:
    patient = adult(active_orders=(order("withdrawn_product", 1, "pres", "PO"),))
    alerts = check_order(PARACETAMOL_1G_Q6H, patient, CATALOGUE)
    assert kinds(alerts) == [AlertKind.UNCHECKED]
    assert alerts[0].severity is Severity.INFO


def test_an_unknown_product_cannot_be_ordered() -> None:
    with pytest.raises(UnknownProduct):
        check_order(order("withdrawn_product", 1, "pres", "PO"), adult(), CATALOGUE)


# --- renal function --------------------------------------------------------------------------------


def test_metformin_is_refused_below_30_ml_min() -> None:
    alerts = check_order(METFORMIN_1G_BID, adult(creatinine_clearance_ml_min=25.0), CATALOGUE)
    renal = only(alerts, AlertKind.RENAL)
    assert renal.severity is Severity.BLOCKING
    assert "25 mL/min" in renal.text() and "30 mL/min" in renal.text()


def test_metformin_is_capped_between_30_and_45_ml_min() -> None:
    alerts = check_order(METFORMIN_1G_BID, adult(creatinine_clearance_ml_min=40.0), CATALOGUE)
    renal = only(alerts, AlertKind.RENAL)
    assert renal.severity is Severity.OVERRIDE_REQUIRED and "1000 mg" in renal.text()
    fitted = order("metformin_1000", 500, "mg", "PO", Frequency.times_a_day(2))
    assert check_order(fitted, adult(creatinine_clearance_ml_min=40.0), CATALOGUE) == []


def test_metformin_is_fine_with_normal_renal_function() -> None:
    assert check_order(METFORMIN_1G_BID, adult(creatinine_clearance_ml_min=90.0), CATALOGUE) == []


def test_an_unknown_clearance_is_said_for_a_renally_adjusted_drug() -> None:
    alerts = check_order(METFORMIN_1G_BID, adult(creatinine_clearance_ml_min=None), CATALOGUE)
    assert kinds(alerts, Severity.INFO) == [AlertKind.RENAL]
    assert check_order(PARACETAMOL_1G_Q6H, adult(creatinine_clearance_ml_min=None), CATALOGUE) == []


def test_a_renal_adjustment_note_informs() -> None:
    alerts = check_order(AMOXICILLIN_1G, adult(creatinine_clearance_ml_min=20.0), CATALOGUE)
    renal = only(alerts, AlertKind.RENAL)
    assert renal.severity is Severity.INFO and "12 h" in renal.text()


def test_enoxaparin_is_contraindicated_below_15_and_adjusted_below_30() -> None:
    dose = order("enoxaparin_6000", 100, "UI/kg", "SC", Frequency.every(12))
    assert kinds(check_order(dose, adult(creatinine_clearance_ml_min=10.0), CATALOGUE), Severity.BLOCKING) == [
        AlertKind.RENAL]
    assert kinds(check_order(dose, adult(creatinine_clearance_ml_min=20.0), CATALOGUE), Severity.INFO) == [
        AlertKind.RENAL]


def test_cockcroft_gault() -> None:
    assert cockcroft_gault(60, 70, False, 80) == pytest.approx(86.1)
    assert cockcroft_gault(60, 70, True, 80) == pytest.approx(72.8)
    with pytest.raises(ImplausiblePatientValue):
        cockcroft_gault(60, 70, True, 0)


# --- pregnancy -------------------------------------------------------------------------------------


def test_warfarin_is_refused_during_pregnancy() -> None:
    warfarin = order("warfarin_5", 1, "pres", "PO", Frequency.times_a_day(1))
    pregnant = adult(sex=Sex.FEMALE, pregnant=True, weight_kg=65.0)
    assert kinds(check_order(warfarin, pregnant, CATALOGUE), Severity.BLOCKING) == [AlertKind.PREGNANCY]
    assert check_order(warfarin, adult(sex=Sex.FEMALE, pregnant=False), CATALOGUE) == []
    assert check_order(warfarin, adult(), CATALOGUE) == []


def test_an_unknown_pregnancy_status_is_asked_for_a_teratogen_in_a_woman_of_childbearing_age() -> None:
    warfarin = order("warfarin_5", 1, "pres", "PO", Frequency.times_a_day(1))
    assert kinds(check_order(warfarin, adult(sex=Sex.FEMALE), CATALOGUE), Severity.INFO) == [AlertKind.PREGNANCY]
    assert check_order(warfarin, adult(sex=Sex.FEMALE, age_years=70.0), CATALOGUE) == []


def test_an_nsaid_during_pregnancy_needs_a_reason() -> None:
    alerts = check_order(IBUPROFEN_400_TID, adult(sex=Sex.FEMALE, pregnant=True), CATALOGUE)
    assert kinds(alerts, Severity.OVERRIDE_REQUIRED) == [AlertKind.PREGNANCY]


# --- age ------------------------------------------------------------------------------------------

CODEINE = Substance("codeine", "codéine", "R05DA04", age=(AgeRule(12, note="ANSM 2013."),), duplicate_class="N02A")
CIPRO = Substance("cipro", "ciprofloxacine", "J01MA02", age=(AgeRule(18, contraindicated=False),))
AGE_CATALOGUE = Catalogue(
    {**SUBSTANCES, "codeine": CODEINE, "cipro": CIPRO},
    {**PRODUCTS, "codeine_30": _product("codeine_30", "codeine", Quantity(30, "mg"), "comprimé", {"PO"}),
     "cipro_500": _product("cipro_500", "cipro", Quantity(500, "mg"), "comprimé", {"PO"})}, INTERACTIONS)


def test_codeine_is_refused_to_a_child_under_12_and_accepted_at_12() -> None:
    codeine = order("codeine_30", 1, "pres", "PO", Frequency.every(6))
    alert = only(check_order(codeine, child(age_years=8.0, weight_kg=25.0), AGE_CATALOGUE), AlertKind.AGE)
    assert alert.severity is Severity.BLOCKING and "12" in alert.text()
    assert check_order(codeine, child(age_years=12.0, weight_kg=40.0), AGE_CATALOGUE) == []


def test_a_fluoroquinolone_for_an_adolescent_needs_a_reason() -> None:
    cipro = order("cipro_500", 1, "pres", "PO", Frequency.times_a_day(2))
    alerts = check_order(cipro, child(age_years=15.0, weight_kg=50.0), AGE_CATALOGUE)
    assert kinds(alerts, Severity.OVERRIDE_REQUIRED) == [AlertKind.AGE]
    assert check_order(cipro, adult(), AGE_CATALOGUE) == []


def test_the_strictest_age_rule_speaks() -> None:
    substance = Substance("x", "x", "N02BE01", age=(AgeRule(18, contraindicated=False), AgeRule(2)))
    catalogue = Catalogue({"x": substance}, {"x1": _product("x1", "x", None, "comprimé", {"PO"})})
    infant = check_order(order("x1", 1, "pres", "PO"), child(), catalogue)
    assert [(a.kind, a.severity) for a in infant] == [(AlertKind.AGE, Severity.BLOCKING)]
    teenager = check_order(order("x1", 1, "pres", "PO"), child(age_years=16.0, weight_kg=55.0), catalogue)
    assert [(a.kind, a.severity) for a in teenager] == [(AlertKind.AGE, Severity.OVERRIDE_REQUIRED)]
    with pytest.raises(BadQuantity):
        AgeRule(0)


# --- route -----------------------------------------------------------------------------------------


def test_a_route_the_product_does_not_have_blocks() -> None:
    alerts = check_order(order("ceftriaxone_1g", 1, "g", "SC"), adult(), CATALOGUE)
    assert kinds(alerts, Severity.BLOCKING) == [AlertKind.ROUTE]
    assert check_order(order("ceftriaxone_1g", 1, "g", "IM"), adult(), CATALOGUE) == []


def test_route_codes() -> None:
    assert check_route("IV") == "IV" and "PO" in ROUTES
    with pytest.raises(UnknownRoute):
        check_route("oral")
    with pytest.raises(UnknownRoute):
        Product("p", "p", (Component("paracetamol"),), "comprimé", frozenset({"oral"}))


# --- values ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["mg", "g", "µg", "μg", "mcg", "UI", "mL", "mmol", "pres", "mg/kg", "µg/kg/min",
                                  "mg/m2", "mg/m²", "UI/h", "mg/24h"])
def test_known_units_parse(text: str) -> None:
    parse_unit(text)


@pytest.mark.parametrize("text", ["", "kg", "mg/kg/kg", "mg/min/kg/h", "mg/lb", "cuillère", "mg/kg/m²"])
def test_unknown_units_are_refused(text: str) -> None:
    with pytest.raises(UnknownUnit):
        parse_unit(text)


def test_conversion() -> None:
    assert convert(1, "g", "mg") == 1000
    assert convert(250, "µg", "mg") == pytest.approx(0.25)
    assert convert(1, "MUI", "UI") == 1_000_000
    assert convert(1, "g", "UI") is None


@given(st.floats(min_value=1e-6, max_value=1e6), st.sampled_from(["g", "mg", "µg", "ng"]),
       st.sampled_from(["g", "mg", "µg", "ng"]))
def test_conversion_round_trips(value: float, a: str, b: str) -> None:
    there = convert(value, a, b)
    assert there is not None
    assert convert(there, b, a) == pytest.approx(value)


@pytest.mark.parametrize("value", [0, -1, math.nan, math.inf, True])
def test_a_dose_is_a_positive_number(value: float) -> None:
    with pytest.raises(BadQuantity):
        Quantity(value, "mg")


@pytest.mark.parametrize("code", ["A", "A10", "A10B", "A10BA", "A10BA02", " j01ca04 "])
def test_atc_codes(code: str) -> None:
    assert check_atc(code) == code.strip().upper()


@pytest.mark.parametrize("code", ["", "1", "A1", "A10B1", "A10BA2", "A10BA021", "ATC:A10"])
def test_bad_atc_codes(code: str) -> None:
    with pytest.raises(BadAtcCode):
        check_atc(code)


def test_a_substance_validates_its_codes() -> None:
    with pytest.raises(BadAtcCode):
        Substance("x", "x", "n02be01")
    with pytest.raises(BadAtcCode):
        Substance("x", "x", "N02BE01", duplicate_class="analgésiques")


def test_dose_limits_are_validated() -> None:
    with pytest.raises(UnknownUnit):
        DoseLimit("mg/kg", max_single=1)
    with pytest.raises(BadQuantity):
        DoseLimit("mg", max_single=0)
    with pytest.raises(BadQuantity):
        DoseLimit("mg")
    with pytest.raises(UnknownRoute):
        DoseLimit("mg", routes=frozenset({"voie orale"}), max_single=1)
    assert DoseLimit("mg", min_age_years=0, max_single=1).applies("IV", 0, 3.0)


def test_renal_rules_are_validated() -> None:
    with pytest.raises(BadQuantity):
        RenalRule(30)
    with pytest.raises(BadQuantity):
        RenalRule(30, contraindicated=True, max_daily=1000, unit="mg")
    with pytest.raises(BadQuantity):
        RenalRule(30, max_daily=1000)
    with pytest.raises(BadQuantity):
        RenalRule(0, contraindicated=True)


def test_a_catalogue_refuses_a_product_naming_an_absent_substance() -> None:
    with pytest.raises(UnknownProduct):
        Catalogue({}, {"p": PRODUCTS["paracetamol_500_tab"]})


def test_gtin13_check_digit() -> None:
    assert is_valid_gtin13("4006381333931")  # a textbook EAN-13
    assert not is_valid_gtin13("4006381333932")
    assert not is_valid_gtin13("400638133393")


@pytest.mark.parametrize("changes", [{"age_years": -1.0}, {"age_years": 131.0}, {"weight_kg": 0.1},
                                     {"weight_kg": 500.0}, {"height_cm": 5.0}, {"creatinine_clearance_ml_min": -3.0}])
def test_implausible_patient_values_are_refused(changes: dict[str, float]) -> None:
    with pytest.raises(ImplausiblePatientValue):
        adult(**changes)


def test_frequencies() -> None:
    assert Frequency.every(8).doses_per_day() == 3
    assert Frequency.every(36).doses_per_day() == 1
    assert Frequency.every(5).doses_per_day() == 5
    assert Frequency.if_needed(6, every_hours=6).doses_per_day() == 4
    assert Frequency.continuous().doses_per_day() == 24
    for bad in (lambda: Frequency.times_a_day(0), lambda: Frequency.every(0.1), lambda: Frequency.if_needed(0)):
        with pytest.raises(BadFrequency):
            bad()


@given(st.floats(min_value=0.25, max_value=168))
def test_an_interval_never_underestimates_the_doses_of_a_day(hours: float) -> None:
    assert Frequency.every(hours).doses_per_day() >= min(24 / hours, 24 / 0.25) - 1e-6


def test_body_surface_area() -> None:
    assert body_surface_area(70, 175) == pytest.approx(1.845, abs=1e-3)


def test_order_amounts_of_a_tablet_order() -> None:
    amounts = order_amounts(IBUPROFEN_400_TID, PRODUCTS["ibuprofen_400"], adult(), "g")
    assert amounts is not None
    assert amounts.single == pytest.approx(0.4) and amounts.daily == pytest.approx(1.2)


# --- properties of the whole -----------------------------------------------------------------------

_PRODUCT_CODES = sorted(PRODUCTS)


@st.composite
def orders(draw: st.DrawFn) -> Order:
    product = PRODUCTS[draw(st.sampled_from(_PRODUCT_CODES))]
    route = draw(st.sampled_from(sorted(product.routes)))
    if draw(st.booleans()):
        return Order(product.code, Quantity(draw(st.floats(0.01, 100)), "µg/kg/min"), route, Frequency.continuous())
    unit = draw(st.sampled_from(["mg", "g", "pres", "mL", "mg/kg", "UI"]))
    return Order(product.code, Quantity(draw(st.floats(0.01, 5000)), unit), route,
                 draw(st.sampled_from([Frequency.once(), Frequency.every(6), Frequency.times_a_day(3)])))


@given(orders(), st.lists(orders(), max_size=3), st.frozensets(st.sampled_from(
    ["ATC:J01C", "ATC:J01DD04", "ATC:M01A", "ATC:B01AA03", "FOOD:peanut"]), max_size=2),
    st.one_of(st.none(), st.floats(0, 150)), st.booleans())
def test_alerts_are_sorted_and_signing_follows_their_severity(
        new: Order, active: list[Order], allergies: frozenset[str], clearance: float | None, pregnant: bool) -> None:
    patient = adult(active_orders=tuple(active), allergies=allergies, creatinine_clearance_ml_min=clearance,
                    sex=Sex.FEMALE, pregnant=pregnant)
    alerts = check_order(new, patient, CATALOGUE)
    ranks = [list(Severity).index(a.severity) for a in alerts]
    assert ranks == sorted(ranks)
    for alert in alerts:
        alert.text()  # every message formats with its parameters
    if any(a.severity is Severity.BLOCKING for a in alerts):
        with pytest.raises(OrderBlocked):
            overridden_alerts(alerts, "raison")
    else:
        assert overridden_alerts(alerts, "raison") == tuple(
            a for a in alerts if a.severity is Severity.OVERRIDE_REQUIRED)


@given(st.sampled_from(sorted({p.components[0].substance for p in PRODUCTS.values()})))
def test_an_allergy_to_a_substance_always_blocks_it(code: str) -> None:
    substance = SUBSTANCES[code]
    product = next(p for p in PRODUCTS.values() if p.components[0].substance == code)
    alerts = check_order(Order(product.code, Quantity(1, "pres"), sorted(product.routes)[0], Frequency.once()),
                         adult(allergies=frozenset({f"ATC:{substance.atc}"})), CATALOGUE)
    assert AlertKind.ALLERGY in kinds(alerts, Severity.BLOCKING)


def test_every_error_is_a_medication_rule_error() -> None:
    for error in (UnknownUnit, BadQuantity, BadAtcCode, BadFrequency, UnknownProduct, ImplausiblePatientValue,
                  OrderBlocked, OverrideReasonRequired, UnknownRoute):
        assert issubclass(error, MedicationRuleError)


# --- creatinine clearance from the chart's creatinine ---------------------------------------------

from naho.medication.rules import (  # noqa: E402
    CREATININE_VALID_DAYS,
    BadInfusion,
    Concentration,
    check_infusion,
    check_titration,
    checked_rate,
    clearance_from_creatinine,
    infusion_dose_rate,
    infusion_ml_per_hour,
)


def test_a_recent_creatinine_gives_the_cockcroft_gault_clearance() -> None:
    clearance = clearance_from_creatinine(69, 72, Sex.MALE, 80, days_old=2)
    assert clearance == round(1.23 * 71 * 72 / 80) == 79
    # an unknown sex takes the female factor: the lower clearance, the stricter rule
    assert clearance_from_creatinine(69, 72, Sex.UNKNOWN, 80, 2) == round(1.04 * 71 * 72 / 80) == 66


def test_an_old_creatinine_or_an_unknown_weight_gives_no_clearance() -> None:
    assert clearance_from_creatinine(69, 72, Sex.MALE, 80, CREATININE_VALID_DAYS) is not None
    assert clearance_from_creatinine(69, 72, Sex.MALE, 80, CREATININE_VALID_DAYS + 0.1) is None
    assert clearance_from_creatinine(69, None, Sex.MALE, 80, 1) is None
    assert clearance_from_creatinine(20, 120, Sex.MALE, 10, 1) == 300.0  # capped to what PatientContext accepts


def test_an_old_creatinine_is_said_for_a_renally_adjusted_drug_and_a_recent_one_applies_its_rule() -> None:
    old = check_order(METFORMIN_1G_BID, adult(creatinine_clearance_ml_min=None, creatinine_days_old=12.4), CATALOGUE)
    unchecked = only(old, AlertKind.UNCHECKED)
    assert unchecked.severity is Severity.INFO and "12 days old" in unchecked.text()
    assert AlertKind.RENAL not in kinds(old)
    # the same patient with a recent creatinine giving 40 mL/min: the renal cap speaks
    recent = check_order(METFORMIN_1G_BID, adult(creatinine_clearance_ml_min=40.0), CATALOGUE)
    assert only(recent, AlertKind.RENAL).severity is Severity.OVERRIDE_REQUIRED
    assert kinds(check_order(PARACETAMOL_1G_Q6H, adult(creatinine_days_old=12.4), CATALOGUE)) == []


# --- continuous infusions ---------------------------------------------------------------------------


def test_a_concentration_is_an_amount_per_ml() -> None:
    assert Concentration.of_preparation(50, "mg", 50) == Concentration(1.0, "mg/mL")
    assert Concentration.of_preparation(8, "mg", 50).value == pytest.approx(0.16)
    for value, unit in ((0, "mg/mL"), (-1, "mg/mL"), (math.nan, "mg/mL"), (1, "mg"), (1, "mL/mL"), (1, "mg/L"),
                        (1, "pres/mL"), (1, "kg/mL")):
        with pytest.raises(BadInfusion):
            Concentration(value, unit)
    with pytest.raises(BadInfusion):
        Concentration.of_preparation(50, "mg", 0)


def test_dose_rates_convert_to_pump_rates_and_back() -> None:
    noradrenaline = Concentration.of_preparation(8, "mg", 50)  # 0.16 mg/mL
    # 0.1 µg/kg/min for 72 kg = 432 µg/h = 2.7 mL/h
    assert infusion_ml_per_hour(Quantity(0.1, "µg/kg/min"), noradrenaline, 72) == pytest.approx(2.7)
    assert infusion_dose_rate(2.7, noradrenaline, "µg/kg/min", 72) == pytest.approx(0.1)
    morphine = Concentration(1, "mg/mL")
    assert infusion_ml_per_hour(Quantity(2, "mg/h"), morphine, None) == pytest.approx(2)
    assert infusion_dose_rate(2, morphine, "µg/h", None) == pytest.approx(2000)
    heparin = Concentration.of_preparation(25000, "UI", 50)  # 500 UI/mL
    assert infusion_ml_per_hour(Quantity(18, "UI/kg/h"), heparin, 80) == pytest.approx(2.88)
    assert infusion_ml_per_hour(Quantity(4, "mL/h"), heparin, None) == 4.0


@given(st.floats(0.01, 50), st.floats(0.001, 100), st.floats(2, 200))
def test_converting_to_ml_per_hour_and_back_gives_the_dose_rate(rate: float, concentration: float,
                                                                  weight: float) -> None:
    strength = Concentration(concentration, "mg/mL")
    ml = infusion_ml_per_hour(Quantity(rate, "µg/kg/min"), strength, weight)
    assert infusion_dose_rate(ml, strength, "µg/kg/min", weight) == pytest.approx(rate)


def test_conversions_refuse_what_they_cannot_compute() -> None:
    morphine = Concentration(1, "mg/mL")
    with pytest.raises(BadInfusion):
        infusion_ml_per_hour(Quantity(2, "mg"), morphine, None)  # not a rate
    with pytest.raises(BadInfusion):
        infusion_ml_per_hour(Quantity(2, "UI/h"), morphine, None)  # UI with mg/mL
    with pytest.raises(BadInfusion):
        infusion_ml_per_hour(Quantity(0.1, "µg/kg/min"), morphine, None)  # per kg without weight
    with pytest.raises(BadInfusion):
        infusion_dose_rate(-1, morphine, "mg/h", None)


def test_a_pump_rate_is_checked_as_an_amount_of_drug_when_the_concentration_is_known() -> None:
    assert checked_rate(Quantity(2.7, "mL/h"), Concentration(0.16, "mg/mL")) == Quantity(2.7 * 0.16, "mg/h")
    assert checked_rate(Quantity(2, "mg/h"), Concentration(1, "mg/mL")) == Quantity(2, "mg/h")
    assert checked_rate(Quantity(2.7, "mL/h"), None) == Quantity(2.7, "mL/h")
    # 150 mL/h of 0.16 mg/mL noradrenaline is 24 mg/h: over 300 µg/kg/h for 70 kg (21 mg/h); 10 mL/h is not
    fast = Order("norepinephrine_8mg", checked_rate(Quantity(150, "mL/h"), Concentration(0.16, "mg/mL")), "IV",
                 Frequency.continuous())
    slow = Order("norepinephrine_8mg", checked_rate(Quantity(10, "mL/h"), Concentration(0.16, "mg/mL")), "IV",
                 Frequency.continuous())
    assert only(check_order(fast, adult(), CATALOGUE), AlertKind.DOSE).severity is Severity.OVERRIDE_REQUIRED
    assert kinds(check_order(slow, adult(), CATALOGUE)) == []


def test_a_titration_range_is_whole_ordered_and_holds_the_starting_rate() -> None:
    start = Quantity(0.1, "µg/kg/min")
    check_titration(start, 0.05, 1.0)
    check_titration(start, None, None)
    for low, high in ((0.05, None), (None, 1.0), (1.0, 0.05), (0.1, 0.1), (0, 1.0), (0.2, 1.0), (0.01, 0.05)):
        with pytest.raises(BadInfusion):
            check_titration(start, low, high)
    with pytest.raises(BadInfusion):
        check_titration(Quantity(1, "mg"), 0.5, 2)  # a bolus is not titrated


def test_a_concentration_or_a_range_belongs_to_a_continuous_infusion_of_a_matching_unit() -> None:
    check_infusion(Quantity(2, "mg/h"), Frequency.continuous(), Concentration(1, "mg/mL"), 1, 4)
    check_infusion(Quantity(4, "mL/h"), Frequency.continuous(), Concentration(500, "UI/mL"), None, None)
    check_infusion(Quantity(1, "g"), Frequency.every(8), None, None, None)
    with pytest.raises(BadInfusion):
        check_infusion(Quantity(1, "g"), Frequency.every(8), Concentration(10, "mg/mL"), None, None)
    with pytest.raises(BadInfusion):
        check_infusion(Quantity(2, "mg/h"), Frequency.continuous(), Concentration(500, "UI/mL"), None, None)
