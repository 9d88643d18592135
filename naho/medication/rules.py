"""Pure rules of the medication order: the catalogue's values, dose arithmetic and the safety checks
run when a prescriber orders (allergy and cross-reactivity, interactions, dose, duplicate therapy,
renal function, pregnancy, route, weight and height).

Sources: ANSM "Thésaurus des interactions médicamenteuses" (October 2020 edition, the four levels
and their conduct); arrêté du 6 avril 2011 (management of the medication circuit in health
establishments: the prescription carries the patient's weight and height); WHO ATC/DDD index
for classes. Values in, alerts out: no database, clock, file or randomness here (STYLE R1).

Choices made here, in one place:

* An alert is `blocking` (never overridable), `override_required` (the prescriber states a
  reason, which the service traces) or `info` (shown, nothing to do). Contraindications
  (allergy, ANSM contre-indication, renal, pregnancy or age contraindication, a route the
  product does not have, missing weight) block.
* ANSM levels: contre-indication blocks, association déconseillée needs a reason, précaution
  d'emploi and à prendre en compte inform (the message carries the precaution). When the
  thesaurus gives several levels under conditions the machine cannot read (a dose, a history of
  ulcer), the highest level is shown with every condition and at most needs a reason: a
  conditional contraindication must not block the legitimate case it does not cover.
* A dose above the maximum needs a reason; a dose at `HARD_LIMIT_FACTOR` times the maximum or
  more blocks (a decimal or unit slip, mg for µg, is the usual cause).
* Duplicate therapy compares `Substance.duplicate_class` (the catalogue defaults it to the ATC
  level 4; `None` for solutes, never duplicates); the same substance ordered twice (paracetamol
  IV and per os) is a duplicate too, and the daily dose adds the patient's active orders of that
  substance. A background order plus an "if needed" one of the same substance only informs:
  the daily dose speaks when their sum is too high.
* What cannot be checked is said (`info`): an unconvertible unit, an active order whose product
  left the formulary, an unknown clearance for a renally adjusted drug, an unknown pregnancy
  status for a drug contraindicated in pregnancy.
* Messages are English msgids marked with `N_` and formatted with `params` when shown
  (`Alert.text`); reference data (substance names, ANSM wording) is French data.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from naho.platform.errors import DomainError
from naho.platform.i18n import N_

#: At this multiple of a maximum dose, the order is refused rather than justified.
HARD_LIMIT_FACTOR = 2.0
#: Below this age the patient is paediatric for the dose limits.
ADULT_AGE_YEARS = 18.0

_ATC = re.compile(r"^[A-Z](?:\d{2}(?:[A-Z](?:[A-Z](?:\d{2})?)?)?)?$")


# --- errors: malformed input, not clinical alerts ------------------------------------------------


class MedicationRuleError(DomainError):
    """A medication value or order is malformed; nothing clinical was judged."""


class UnknownUnit(MedicationRuleError):
    """naho does not know this dose unit."""


class BadQuantity(MedicationRuleError):
    """A dose is a positive finite number."""


class BadAtcCode(MedicationRuleError):
    """Not an ATC code (A, A10, A10B, A10BA, A10BA02)."""


class BadFrequency(MedicationRuleError):
    """The schedule of an order is incomplete or contradicts its dose unit."""


class UnknownProduct(MedicationRuleError):
    """The ordered product is not in the formulary."""


class ImplausiblePatientValue(MedicationRuleError):
    """An age, weight, height or clearance no patient can have: a typing error."""


class OrderBlocked(MedicationRuleError):
    """A blocking alert stands: the order cannot be signed, whatever the reason given."""


class OverrideReasonRequired(MedicationRuleError):
    """An alert needing a reason was not justified."""


# --- units ------------------------------------------------------------------------------------


class Dimension(StrEnum):
    MASS = "mass"  # base mg
    VOLUME = "volume"  # base mL
    UNITS = "units"  # unités internationales, base UI
    MOLES = "moles"  # base mmol
    PRESENTATION = "presentation"  # one tablet, capsule, ampoule, suppository... of the product


_UNITS: dict[str, tuple[Dimension, float]] = {
    "g": (Dimension.MASS, 1000.0),
    "mg": (Dimension.MASS, 1.0),
    "µg": (Dimension.MASS, 0.001),
    "μg": (Dimension.MASS, 0.001),  # Greek mu, as typed on some keyboards
    "mcg": (Dimension.MASS, 0.001),
    "ng": (Dimension.MASS, 0.000001),
    "L": (Dimension.VOLUME, 1000.0),
    "mL": (Dimension.VOLUME, 1.0),
    "UI": (Dimension.UNITS, 1.0),
    "MUI": (Dimension.UNITS, 1_000_000.0),
    "mmol": (Dimension.MOLES, 1.0),
    "pres": (Dimension.PRESENTATION, 1.0),
}
_PER_TIME = {"h": 1.0, "min": 60.0, "j": 1.0 / 24.0, "d": 1.0 / 24.0}  # to "per hour"


@dataclass(frozen=True, slots=True)
class DoseUnit:
    """A parsed dose unit: `mg`, `mg/kg`, `mg/m²`, `µg/kg/min`, `UI/h`..."""

    symbol: str
    dimension: Dimension
    to_base: float  # multiply a value by this to get the dimension's base unit
    per_kg: bool = False
    per_m2: bool = False
    per_hour: float | None = None  # multiply to get an hourly amount; None: not a rate


def parse_unit(text: str) -> DoseUnit:
    """Parse a dose unit; `m2`, `m²`, `/24h` and `/jour` are accepted spellings."""
    normal = text.strip().replace("m2", "m²").replace("/24h", "/j").replace("/jour", "/j")
    parts = [p.strip() for p in normal.split("/")]
    if not parts or parts[0] not in _UNITS:
        raise UnknownUnit(f"unknown dose unit {text!r}")
    dimension, to_base = _UNITS[parts[0]]
    per_kg = per_m2 = False
    per_hour: float | None = None
    for part in parts[1:]:
        if part == "kg" and not (per_kg or per_m2) and per_hour is None:
            per_kg = True
        elif part == "m²" and not (per_kg or per_m2) and per_hour is None:
            per_m2 = True
        elif part in _PER_TIME and per_hour is None:
            per_hour = _PER_TIME[part]
        else:
            raise UnknownUnit(f"unknown dose unit {text!r}")
    return DoseUnit(normal, dimension, to_base, per_kg, per_m2, per_hour)


def convert(value: float, from_unit: str, to_unit: str) -> float | None:
    """`value` in `to_unit`, or None when the two units measure different things (mg and UI)."""
    source, target = parse_unit(from_unit), parse_unit(to_unit)
    if source.dimension is not target.dimension:
        return None
    return value * source.to_base / target.to_base


@dataclass(frozen=True, slots=True)
class Quantity:
    """A positive amount with its unit (`Quantity(1, "g")`, `Quantity(15, "mg/kg")`)."""

    value: float
    unit: str

    def __post_init__(self) -> None:
        if isinstance(self.value, bool) or not math.isfinite(self.value) or self.value <= 0:
            raise BadQuantity(f"a dose is a positive number, not {self.value!r}")
        parse_unit(self.unit)

    @property
    def parsed(self) -> DoseUnit:
        return parse_unit(self.unit)


def check_atc(code: str) -> str:
    """An ATC code at any of its five levels, upper case."""
    normal = code.strip().upper()
    if not _ATC.match(normal):
        raise BadAtcCode(f"{code!r} is not an ATC code")
    return normal


def body_surface_area(weight_kg: float, height_cm: float) -> float:
    """Body surface area in m², Mosteller formula (N Engl J Med 1987;317:1098)."""
    return math.sqrt(weight_kg * height_cm / 3600.0)


def cockcroft_gault(age_years: float, weight_kg: float, female: bool, creatinine_umol_l: float) -> float:
    """Creatinine clearance in mL/min (Cockcroft & Gault 1976, creatinine in µmol/L).

    The service layer computes it from the latest serum creatinine; the checks only read it.
    """
    if creatinine_umol_l <= 0:
        raise ImplausiblePatientValue("creatinine must be positive")
    factor = 1.04 if female else 1.23
    return factor * (140 - age_years) * weight_kg / creatinine_umol_l


#: A serum creatinine older than this (days) no longer gives the clearance the renal checks use.
CREATININE_VALID_DAYS = 7.0


def clearance_from_creatinine(age_years: float, weight_kg: float | None, sex: Sex, creatinine_umol_l: float,
                              days_old: float) -> float | None:
    """The creatinine clearance the checks use (Cockcroft-Gault, mL/min, capped at 300), or None when
    the result is older than CREATININE_VALID_DAYS or the weight is unknown; rounded to the mL/min.
    An unknown sex takes
    the female factor: the lower clearance, so the stricter renal rule."""
    if days_old > CREATININE_VALID_DAYS or weight_kg is None:
        return None
    clearance = cockcroft_gault(age_years, weight_kg, sex is not Sex.MALE, creatinine_umol_l)
    return float(min(max(round(clearance), 0), 300))  # mL/min: the precision of the estimate


# --- continuous infusions -----------------------------------------------------------------------


class BadInfusion(MedicationRuleError):
    """A concentration, rate or titration range that cannot describe a continuous infusion."""


@dataclass(frozen=True, slots=True)
class Concentration:
    """Amount of drug per mL of the prepared infusion: `1 mg/mL`, or 50 mg in 50 mL
    (`Concentration.of_preparation(50, "mg", 50)`)."""

    value: float
    unit: str  # "mg/mL", "µg/mL", "UI/mL", "mmol/mL"

    def __post_init__(self) -> None:
        if isinstance(self.value, bool) or not math.isfinite(self.value) or self.value <= 0:
            raise BadInfusion(f"a concentration is a positive number, not {self.value!r}")
        amount, _, per = self.unit.partition("/")
        if per.strip() != "mL" or amount.strip() not in _UNITS or \
                _UNITS[amount.strip()][0] in (Dimension.VOLUME, Dimension.PRESENTATION):
            raise BadInfusion(f"a concentration is an amount per mL (mg/mL, µg/mL, UI/mL), not {self.unit!r}")

    @property
    def amount_unit(self) -> str:
        return self.unit.partition("/")[0].strip()

    @classmethod
    def of_preparation(cls, amount: float, amount_unit: str, volume_ml: float) -> Concentration:
        """The concentration of `amount` (`amount_unit`) diluted to `volume_ml` mL."""
        if not (math.isfinite(volume_ml) and volume_ml > 0):
            raise BadInfusion(f"a volume is a positive number of mL, not {volume_ml!r}")
        return cls(amount / volume_ml, f"{amount_unit}/mL")


def _hourly_amount(value: float, unit: DoseUnit, weight_kg: float | None) -> float:
    """An amount per hour in the unit's plain symbol (per kg multiplied out)."""
    if unit.per_hour is None:
        raise BadInfusion(f"{unit.symbol} is not a rate (mg/h, µg/kg/min, mL/h)")
    if unit.per_m2:
        raise BadInfusion("a rate per m² is not converted; give it per kg or absolute")
    amount = value * unit.per_hour
    if unit.per_kg:
        if weight_kg is None:
            raise BadInfusion("a rate per kg needs the patient's weight")
        amount *= weight_kg
    return amount


def infusion_ml_per_hour(rate: Quantity, concentration: Concentration, weight_kg: float | None) -> float:
    """The pump rate in mL/h of a dose rate (`2 mg/h`, `0.1 µg/kg/min`) at `concentration`; a rate
    already in mL/h is returned as is (in mL/h)."""
    unit = rate.parsed
    amount = _hourly_amount(rate.value, unit, weight_kg)
    if unit.dimension is Dimension.VOLUME:
        return amount * unit.to_base
    in_concentration = convert(amount, unit.symbol.split("/")[0], concentration.amount_unit)
    if in_concentration is None:
        raise BadInfusion(f"a rate in {rate.unit} cannot be given with a concentration in {concentration.unit}")
    return in_concentration / concentration.value


def infusion_dose_rate(ml_per_hour: float, concentration: Concentration, unit: str, weight_kg: float | None) -> float:
    """The dose rate in `unit` (`mg/h`, `µg/kg/min`) of a pump running at `ml_per_hour` mL/h."""
    if not (math.isfinite(ml_per_hour) and ml_per_hour >= 0):
        raise BadInfusion(f"a pump rate is a non-negative number of mL/h, not {ml_per_hour!r}")
    target = parse_unit(unit)
    per_one = _hourly_amount(1.0, target, weight_kg)  # what 1 `unit` gives per hour, in its plain symbol
    in_target = convert(ml_per_hour * concentration.value, concentration.amount_unit, target.symbol.split("/")[0])
    if in_target is None:
        raise BadInfusion(f"a concentration in {concentration.unit} cannot give a rate in {unit}")
    return in_target / per_one


def checked_rate(rate: Quantity, concentration: Concentration | None) -> Quantity:
    """The rate the dose checks compare: a pump rate in mL/h becomes an amount per hour of the drug
    when the concentration of the preparation is known (otherwise the product's own strength is
    used, right for an undiluted syringe)."""
    unit = rate.parsed
    if concentration is None or unit.dimension is not Dimension.VOLUME or unit.per_kg or unit.per_m2:
        return rate
    ml_per_hour = _hourly_amount(rate.value, unit, None) * unit.to_base
    return Quantity(ml_per_hour * concentration.value, f"{concentration.amount_unit}/h")


def check_infusion(dose: Quantity, frequency: Frequency, concentration: Concentration | None,
                   titration_min: float | None, titration_max: float | None) -> None:
    """A concentration and a titration range belong to a continuous infusion; the concentration's
    amount measures what the rate does (mg/h with mg/mL, not UI/mL); the range holds (check_titration)."""
    given = concentration is not None or titration_min is not None or titration_max is not None
    if given and frequency.kind is not FrequencyKind.CONTINUOUS:
        raise BadInfusion("a concentration or a titration range is given for a continuous infusion only")
    unit = dose.parsed
    if concentration is not None and unit.dimension is not Dimension.VOLUME and \
            convert(1.0, unit.symbol.split("/")[0], concentration.amount_unit) is None:
        raise BadInfusion(f"a rate in {dose.unit} cannot be given with a concentration in {concentration.unit}")
    check_titration(dose, titration_min, titration_max)


def check_concentration_fits(product: Product, concentration: Concentration | None) -> None:
    """The concentration measures what the product's strength does (µg/mL of a drug in mg: yes;
    UI/mL of a drug in mg: no, the rate could not be checked)."""
    strength = product.components[0].amount
    if concentration is not None and strength is not None and \
            convert(1.0, strength.unit, concentration.amount_unit) is None:
        raise BadInfusion(f"a concentration in {concentration.unit} does not measure {product.name} "
                          f"(in {strength.unit})")


def check_titration(dose: Quantity, minimum: float | None, maximum: float | None) -> None:
    """A titration range (ICU drips) is given whole, in the order's rate unit, with 0 < min < max and
    the starting rate inside it."""
    if minimum is None and maximum is None:
        return
    if minimum is None or maximum is None:
        raise BadInfusion("a titration range gives both its minimum and its maximum")
    if dose.parsed.per_hour is None:
        raise BadInfusion("only a continuous infusion is titrated")
    if not (math.isfinite(minimum) and math.isfinite(maximum) and 0 < minimum < maximum):
        raise BadInfusion(f"a titration range is 0 < minimum < maximum, not {minimum!r}-{maximum!r}")
    if not minimum <= dose.value <= maximum:
        raise BadInfusion(f"the starting rate {dose.value!r} lies outside the titration range {minimum!r}-{maximum!r}")


# --- schedule -----------------------------------------------------------------------------------


class FrequencyKind(StrEnum):
    ONCE = "once"  # dose unique
    TIMES_PER_DAY = "times_per_day"  # matin, midi, soir: n prises par jour
    EVERY_HOURS = "every_hours"  # toutes les N heures
    CONTINUOUS = "continuous"  # perfusion continue: the dose is a rate (mg/h, µg/kg/min)
    IF_NEEDED = "if_needed"  # si besoin, with a maximum number of doses per 24 h


@dataclass(frozen=True, slots=True)
class Frequency:
    """When an order is given. Build it with the class methods."""

    kind: FrequencyKind
    times_per_day: int | None = None
    every_hours: float | None = None
    max_per_24h: int | None = None

    def __post_init__(self) -> None:
        kind = self.kind
        if kind is FrequencyKind.TIMES_PER_DAY and not (self.times_per_day and 1 <= self.times_per_day <= 48):
            raise BadFrequency("a daily schedule gives 1 to 48 doses per day")
        if kind is FrequencyKind.EVERY_HOURS and not (self.every_hours and 0.25 <= self.every_hours <= 24 * 7):
            raise BadFrequency("an interval lies between 15 minutes and a week")
        if kind is FrequencyKind.IF_NEEDED:
            if not (self.max_per_24h and 1 <= self.max_per_24h <= 48):
                raise BadFrequency("an 'if needed' order states its maximum number of doses per 24 h")
            if self.every_hours is not None and not 0.25 <= self.every_hours <= 24 * 7:
                raise BadFrequency("an interval lies between 15 minutes and a week")

    @classmethod
    def once(cls) -> Frequency:
        return cls(FrequencyKind.ONCE)

    @classmethod
    def times_a_day(cls, n: int) -> Frequency:
        return cls(FrequencyKind.TIMES_PER_DAY, times_per_day=n)

    @classmethod
    def every(cls, hours: float) -> Frequency:
        return cls(FrequencyKind.EVERY_HOURS, every_hours=hours)

    @classmethod
    def continuous(cls) -> Frequency:
        return cls(FrequencyKind.CONTINUOUS)

    @classmethod
    def if_needed(cls, max_per_24h: int, every_hours: float | None = None) -> Frequency:
        return cls(FrequencyKind.IF_NEEDED, every_hours=every_hours, max_per_24h=max_per_24h)

    def doses_per_day(self) -> float:
        """Most administrations in 24 h (a continuous infusion counts as its 24 hourly amounts)."""
        match self.kind:
            case FrequencyKind.ONCE:
                return 1.0
            case FrequencyKind.TIMES_PER_DAY:
                return float(self.times_per_day or 0)
            case FrequencyKind.EVERY_HOURS:
                # every 8 h = 3 doses; every 36 h = at most 1 in any 24 h
                return float(max(1, math.ceil(24.0 / (self.every_hours or 24.0) - 1e-9)))
            case FrequencyKind.CONTINUOUS:
                return 24.0
            case FrequencyKind.IF_NEEDED:
                cap = float(self.max_per_24h or 0)
                if self.every_hours:
                    cap = min(cap, float(max(1, math.ceil(24.0 / self.every_hours - 1e-9))))
                return cap


# --- catalogue values ---------------------------------------------------------------------------


class Severity(StrEnum):
    """What an alert asks of the prescriber."""

    BLOCKING = "blocking"  # never overridable
    OVERRIDE_REQUIRED = "override_required"  # a reason is stated and traced
    INFO = "info"


class InteractionLevel(StrEnum):
    """The four levels of the ANSM thesaurus, strongest first."""

    CONTRAINDICATION = "contre-indication"
    DISCOURAGED = "association déconseillée"
    PRECAUTION = "précaution d'emploi"
    TO_CONSIDER = "à prendre en compte"

    @property
    def rank(self) -> int:
        return list(InteractionLevel).index(self)


_LEVEL_SEVERITY = {
    InteractionLevel.CONTRAINDICATION: Severity.BLOCKING,
    InteractionLevel.DISCOURAGED: Severity.OVERRIDE_REQUIRED,
    InteractionLevel.PRECAUTION: Severity.INFO,
    InteractionLevel.TO_CONSIDER: Severity.INFO,
}


class PregnancyRisk(StrEnum):
    CONTRAINDICATED = "contraindicated"  # blocks
    AVOID = "avoid"  # needs a reason (déconseillé, benefit/risk)


class Sex(StrEnum):
    FEMALE = "F"
    MALE = "M"
    UNKNOWN = "U"


_LIMIT_FIELDS = ("min_age_years", "max_age_years", "min_weight_kg", "max_weight_kg", "max_single", "max_daily",
                 "max_single_per_kg", "max_daily_per_kg", "max_single_per_m2", "max_daily_per_m2", "max_hourly",
                 "max_hourly_per_kg")

#: Routes of administration, code → French label. Orders and products use the codes.
ROUTES: dict[str, str] = {
    "PO": "voie orale", "SL": "voie sublinguale", "BUC": "voie buccale", "ENT": "voie entérale (sonde)",
    "IV": "voie intraveineuse", "IM": "voie intramusculaire", "SC": "voie sous-cutanée", "IO": "voie intra-osseuse",
    "RECT": "voie rectale", "VAG": "voie vaginale", "INH": "voie inhalée", "NAS": "voie nasale",
    "OPH": "voie ophtalmique", "AUR": "voie auriculaire", "CUT": "voie cutanée", "TD": "voie transdermique",
    "PERI": "voie péridurale", "IT": "voie intrathécale", "LOC": "infiltration locale", "ET": "voie endotrachéale",
}


class UnknownRoute(MedicationRuleError):
    """Not one of naho's route codes (ROUTES)."""


def check_route(code: str) -> str:
    """A route code of `ROUTES`."""
    if code not in ROUTES:
        raise UnknownRoute(f"{code!r} is not a route code ({', '.join(sorted(ROUTES))})")
    return code


@dataclass(frozen=True, slots=True)
class DoseLimit:
    """Maximum doses of a substance for the patients and routes it applies to.

    Amounts are in `unit` (mg, µg, UI, mmol); `*_per_kg` and `*_per_m2` are `unit` per kg or m²;
    `max_hourly*` bound continuous infusions. A limit applies when the route is listed (or
    `routes` is empty) and age and weight lie in [min, max). Every applicable limit must hold.
    """

    unit: str
    routes: frozenset[str] = frozenset()
    min_age_years: float | None = None
    max_age_years: float | None = None
    min_weight_kg: float | None = None
    max_weight_kg: float | None = None
    max_single: float | None = None
    max_daily: float | None = None
    max_single_per_kg: float | None = None
    max_daily_per_kg: float | None = None
    max_single_per_m2: float | None = None
    max_daily_per_m2: float | None = None
    max_hourly: float | None = None
    max_hourly_per_kg: float | None = None

    def __post_init__(self) -> None:
        unit = parse_unit(self.unit)
        if unit.per_kg or unit.per_m2 or unit.per_hour is not None or unit.dimension is Dimension.PRESENTATION:
            raise UnknownUnit(f"a dose limit is stated in a plain unit (mg, µg, UI, mmol, mL), not {self.unit!r}")
        for name in _LIMIT_FIELDS:
            value = getattr(self, name)
            floor_ok = value is not None and (value >= 0 if name.startswith("min_") else value > 0)
            if value is not None and (isinstance(value, bool) or not math.isfinite(value) or not floor_ok):
                raise BadQuantity(f"{name} is a positive number, not {value!r}")
        for route in self.routes:
            check_route(route)
        caps = (self.max_single, self.max_daily, self.max_single_per_kg, self.max_daily_per_kg,
                self.max_single_per_m2, self.max_daily_per_m2, self.max_hourly, self.max_hourly_per_kg)
        if all(c is None for c in caps):
            raise BadQuantity("a dose limit states at least one maximum")

    @property
    def weight_based(self) -> bool:
        return any(v is not None for v in (
            self.min_weight_kg, self.max_weight_kg, self.max_single_per_kg, self.max_daily_per_kg,
            self.max_hourly_per_kg, self.max_single_per_m2, self.max_daily_per_m2))

    def applies(self, route: str, age_years: float, weight_kg: float | None) -> bool:
        if self.routes and route not in self.routes:
            return False
        if self.min_age_years is not None and age_years < self.min_age_years:
            return False
        if self.max_age_years is not None and age_years >= self.max_age_years:
            return False
        if weight_kg is None:
            return self.min_weight_kg is None and self.max_weight_kg is None
        if self.min_weight_kg is not None and weight_kg < self.min_weight_kg:
            return False
        return not (self.max_weight_kg is not None and weight_kg >= self.max_weight_kg)


@dataclass(frozen=True, slots=True)
class RenalRule:
    """Below `below_ml_min` of creatinine clearance: contraindicated, or at most `max_daily`
    (in `unit`), or (neither) an adjustment the prescriber reads in `note`."""

    below_ml_min: float
    contraindicated: bool = False
    max_daily: float | None = None
    unit: str | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if not 0 < self.below_ml_min <= 200:
            raise BadQuantity(f"a renal threshold lies in (0, 200] mL/min, not {self.below_ml_min!r}")
        if self.contraindicated and self.max_daily is not None:
            raise BadQuantity("a renal rule either contraindicates or caps the daily dose, not both")
        if (self.max_daily is None) != (self.unit is None):
            raise BadQuantity("a renal daily maximum comes with its unit")
        if self.max_daily is not None and not (math.isfinite(self.max_daily) and self.max_daily > 0):
            raise BadQuantity(f"a renal daily maximum is a positive number, not {self.max_daily!r}")
        if self.unit is not None:
            DoseLimit(self.unit, max_daily=1.0)  # the same plain units as the dose limits
        if not (self.contraindicated or self.max_daily is not None or self.note.strip()):
            raise BadQuantity("a renal rule contraindicates, caps the daily dose or says how to adjust")


@dataclass(frozen=True, slots=True)
class AgeRule:
    """Below `below_years` of age the substance is contraindicated (blocks) or to be avoided (a
    reason is stated), e.g. codeine under 12 (ANSM, 2013), doxycycline under 8."""

    below_years: float
    contraindicated: bool = True
    note: str = ""

    def __post_init__(self) -> None:
        if not 0 < self.below_years <= 130:
            raise BadQuantity(f"an age threshold lies in (0, 130] years, not {self.below_years!r}")


@dataclass(frozen=True, slots=True)
class Substance:
    """An active substance (DCI) of the formulary.

    `interaction_keys` are the names the ANSM thesaurus knows it by (its own and its classes,
    normalised by `interaction_key`). `duplicate_class` is an ATC prefix: two substances with the
    same one are a duplicate therapy; None: never a duplicate (solutes, electrolytes).
    """

    code: str
    name: str
    atc: str
    dose_limits: tuple[DoseLimit, ...] = ()
    renal: tuple[RenalRule, ...] = ()
    pregnancy: PregnancyRisk | None = None
    pregnancy_note: str = ""
    duplicate_class: str | None = None
    interaction_keys: frozenset[str] = frozenset()
    narcotic: bool = False
    age: tuple[AgeRule, ...] = ()

    def __post_init__(self) -> None:
        if not self.code.strip() or not self.name.strip():
            raise MedicationRuleError("a substance has a code and a name")
        if check_atc(self.atc) != self.atc:
            raise BadAtcCode(f"{self.atc!r} is not written as an ATC code (upper case, no space)")
        if self.duplicate_class is not None and check_atc(self.duplicate_class) != self.duplicate_class:
            raise BadAtcCode(f"duplicate class {self.duplicate_class!r} is not written as an ATC code")


@dataclass(frozen=True, slots=True)
class Component:
    """A substance in a product: `amount` per presentation unit (tablet, ampoule, bag), contained
    in `volume_ml` mL for solutions."""

    substance: str
    amount: Quantity | None = None
    volume_ml: float | None = None

    def __post_init__(self) -> None:
        if self.amount is not None:
            unit = self.amount.parsed
            if unit.per_kg or unit.per_m2 or unit.per_hour is not None or unit.dimension is Dimension.PRESENTATION:
                raise UnknownUnit(f"a strength is a plain amount (500 mg, 10 UI), not {self.amount.unit!r}")
        if self.volume_ml is not None and not (math.isfinite(self.volume_ml) and self.volume_ml > 0):
            raise BadQuantity(f"a volume is a positive number of mL, not {self.volume_ml!r}")


@dataclass(frozen=True, slots=True)
class Product:
    """A product of the formulary (one UCD). The first component bears the ordered dose: `1 g` of
    amoxicillin-clavulanic acid is 1 g of amoxicillin; the others follow in proportion."""

    code: str
    name: str
    components: tuple[Component, ...]
    form: str
    routes: frozenset[str]
    ucd: str | None = None
    cip13: tuple[str, ...] = ()
    narcotic: bool = False

    def __post_init__(self) -> None:
        if not self.code.strip() or not self.name.strip():
            raise MedicationRuleError("a product has a code and a name")
        if not self.components:
            raise MedicationRuleError(f"product {self.code!r} has no component")
        if not self.routes:
            raise UnknownRoute(f"product {self.code!r} has no route")
        for route in self.routes:
            check_route(route)
        if len({c.volume_ml for c in self.components}) > 1:
            raise BadQuantity(f"the components of {self.code!r} are given in different volumes")
        if self.ucd is not None and not re.fullmatch(r"\d{7}|\d{13}", self.ucd):
            raise MedicationRuleError(f"UCD {self.ucd!r} of {self.code!r} has 7 or 13 digits")
        for cip in self.cip13:
            if not is_valid_gtin13(cip):
                raise MedicationRuleError(f"CIP13 {cip!r} of {self.code!r} is not 13 digits with a valid key")


def is_valid_gtin13(code: str) -> bool:
    """13 digits whose last is the GS1 check digit (CIP13 codes are GTIN-13 starting 340)."""
    if not re.fullmatch(r"\d{13}", code):
        return False
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(code[:12]))
    return (10 - total % 10) % 10 == int(code[12])


@dataclass(frozen=True, slots=True)
class Interaction:
    """A pair of interacting substances or classes, after the ANSM thesaurus (or the pharmacy).

    `left` and `right` are either `ATC:<prefix>` or an ANSM name (`interaction_key`).
    `levels` holds one (level, condition) pair, or several when the level depends on a
    condition stated in words.
    """

    left: str
    right: str
    levels: tuple[tuple[InteractionLevel, str], ...]
    mechanism: str
    source: str = "ANSM"

    def __post_init__(self) -> None:
        if not self.levels:
            raise MedicationRuleError(f"interaction {self.left} + {self.right} has no level")
        for side in (self.left, self.right):
            if side.startswith("ATC:"):
                check_atc(side[4:])
            elif not side or side != interaction_key(side):
                raise MedicationRuleError(f"interaction side {side!r} is neither ATC:<code> nor a normalised name")

    @property
    def level(self) -> InteractionLevel:
        return min((lv for lv, _ in self.levels), key=lambda lv: lv.rank)

    @property
    def severity(self) -> Severity:
        severity = _LEVEL_SEVERITY[self.level]
        if len(self.levels) > 1 and severity is Severity.BLOCKING:
            return Severity.OVERRIDE_REQUIRED
        return severity


def interaction_key(name: str) -> str:
    """The form in which the thesaurus' substance and class names are compared: no accents,
    upper case, one space, straight apostrophes ("Anticoagulants oraux" → "ANTICOAGULANTS ORAUX")."""
    decomposed = unicodedata.normalize("NFKD", name.replace("’", "'").replace("œ", "oe").replace("Œ", "OE"))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.upper().split())


def _key_matches(key: str, substance: Substance) -> bool:
    if key.startswith("ATC:"):
        return substance.atc.startswith(key[4:])
    return key in substance.interaction_keys


@dataclass(frozen=True)
class Catalogue:
    """The formulary in memory: substances and products by code, interactions."""

    substances: Mapping[str, Substance]
    products: Mapping[str, Product]
    interactions: tuple[Interaction, ...] = ()

    def __post_init__(self) -> None:
        for product in self.products.values():
            for component in product.components:
                if component.substance not in self.substances:
                    raise UnknownProduct(
                        f"product {product.code!r} names substance {component.substance!r}, absent from the formulary")
        by_key: dict[str, list[int]] = {}
        for index, interaction in enumerate(self.interactions):
            for key in {interaction.left, interaction.right}:
                by_key.setdefault(key, []).append(index)
        object.__setattr__(self, "_by_key", by_key)

    def product(self, code: str) -> Product:
        try:
            return self.products[code]
        except KeyError:
            raise UnknownProduct(f"product {code!r} is not in the formulary") from None

    def substances_of(self, product: Product) -> list[Substance]:
        return [self.substances[c.substance] for c in product.components]

    def _candidates(self, substance: Substance) -> set[int]:
        by_key: dict[str, list[int]] = self.__dict__["_by_key"]
        keys = set(substance.interaction_keys)
        keys |= {f"ATC:{substance.atc[:n]}" for n in (1, 3, 4, 5, 7)}
        return {i for k in keys for i in by_key.get(k, ())}

    def interactions_between(self, a: Substance, b: Substance) -> list[Interaction]:
        """Interactions of the pair, in either order, strongest first."""
        found = [
            self.interactions[n] for n in sorted(self._candidates(a) & self._candidates(b))
            if (_key_matches(self.interactions[n].left, a) and _key_matches(self.interactions[n].right, b))
            or (_key_matches(self.interactions[n].left, b) and _key_matches(self.interactions[n].right, a))
        ]
        return sorted(found, key=lambda i: i.level.rank)


# --- the order and the patient ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Order:
    """A proposed (or active) medication order: a product, a dose, a route, a schedule.

    The dose is per administration (`1 g`, `15 mg/kg`, `2 pres` for two tablets), or a rate for a
    continuous infusion (`0.1 µg/kg/min`, `2 mg/h`).
    """

    product: str
    dose: Quantity
    route: str
    frequency: Frequency

    def __post_init__(self) -> None:
        rate = self.dose.parsed.per_hour is not None
        if rate != (self.frequency.kind is FrequencyKind.CONTINUOUS):
            raise BadFrequency("a continuous infusion is dosed as a rate (mg/h), and only it")


@dataclass(frozen=True, slots=True)
class PatientContext:
    """What the checks know of the patient. `allergies` are substance codes as the record stores
    them (`ATC:J01C`, `ATC:J01CA04`, `FOOD:peanut`); `active_orders` are the orders in force."""

    age_years: float
    weight_kg: float | None
    height_cm: float | None
    sex: Sex = Sex.UNKNOWN
    pregnant: bool | None = None
    creatinine_clearance_ml_min: float | None = None
    allergies: frozenset[str] = frozenset()
    active_orders: tuple[Order, ...] = ()
    #: Days since the latest creatinine when it is too old to give the clearance (None otherwise).
    creatinine_days_old: float | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.age_years <= 130:
            raise ImplausiblePatientValue(f"age {self.age_years} is not plausible")
        if self.weight_kg is not None and not 0.3 <= self.weight_kg <= 400:
            raise ImplausiblePatientValue(f"weight {self.weight_kg} kg is not plausible")
        if self.height_cm is not None and not 20 <= self.height_cm <= 250:
            raise ImplausiblePatientValue(f"height {self.height_cm} cm is not plausible")
        clearance = self.creatinine_clearance_ml_min
        if clearance is not None and not 0 <= clearance <= 300:
            raise ImplausiblePatientValue(f"creatinine clearance {clearance} mL/min is not plausible")

    @property
    def paediatric(self) -> bool:
        return self.age_years < ADULT_AGE_YEARS

    @property
    def body_surface_area(self) -> float | None:
        if self.weight_kg is None or self.height_cm is None:
            return None
        return body_surface_area(self.weight_kg, self.height_cm)


# --- alerts -------------------------------------------------------------------------------------


class AlertKind(StrEnum):
    ALLERGY = "allergy"
    CROSS_REACTIVITY = "cross_reactivity"
    INTERACTION = "interaction"
    DOSE = "dose"
    DUPLICATE = "duplicate"
    RENAL = "renal"
    PREGNANCY = "pregnancy"
    AGE = "age"
    ROUTE = "route"
    WEIGHT_REQUIRED = "weight_required"
    HEIGHT_REQUIRED = "height_required"
    UNCHECKED = "unchecked"  # a check could not be done: said, never silent


@dataclass(frozen=True, slots=True)
class Alert:
    """One finding of the checks: `message` is an English msgid formatted with `params`."""

    kind: AlertKind
    severity: Severity
    message: str
    params: tuple[tuple[str, str], ...] = ()
    substance: str | None = None

    def text(self, translate: Callable[[str], str] = lambda m: m) -> str:
        """The message in the reader's language: pass `naho.platform.i18n._`."""
        return translate(self.message).format(**dict(self.params))


def _num(value: float) -> str:
    """A number as the French screen shows it: up to 3 decimals, comma (1,5 ; 150 ; 0,025)."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text.replace(".", ",")


def _alert(kind: AlertKind, severity: Severity, message: str, code: str | None = None, /,
           **params: str) -> Alert:
    return Alert(kind, severity, message, tuple(sorted(params.items())), code)


# --- allergy families and cross-reactivity -------------------------------------------------------

#: Families inside which an allergy to one member refuses every member (same allergenic core).
#: Sulfonamides are the antibacterial ones (J01EC, and J01EE with trimethoprim), not trimethoprim
#: alone (J01EA); coxibs (M01AH) are in M01A and follow the NSAIDs.
ALLERGY_FAMILIES: dict[str, tuple[str, ...]] = {
    "penicillins": ("J01C",),
    "cephalosporins": ("J01DB", "J01DC", "J01DD", "J01DE", "J01DI"),
    "carbapenems": ("J01DH",),
    "monobactams": ("J01DF",),
    "sulfonamides": ("J01EC", "J01EE"),
    "macrolides": ("J01FA",),
    "quinolones": ("J01M",),
    "nsaids": ("M01A", "N02BA", "B01AC06"),  # aspirin: cross-intolerance with NSAIDs
}

#: How the families are named on screen (reference data, French like the substance names).
FAMILY_LABELS: dict[str, str] = {
    "penicillins": "pénicillines",
    "cephalosporins": "céphalosporines",
    "carbapenems": "carbapénèmes",
    "monobactams": "monobactames",
    "sulfonamides": "sulfamides antibactériens",
    "macrolides": "macrolides",
    "quinolones": "quinolones",
    "nsaids": "anti-inflammatoires non stéroïdiens et aspirine",
}

#: Family pairs with a documented cross-reactivity: the order needs a reason (beta-lactams: about
#: 1-2 % between penicillins and cephalosporins, under 1 % towards carbapenems; aztreonam none).
CROSS_REACTIVITY: frozenset[tuple[str, str]] = frozenset({
    ("penicillins", "cephalosporins"), ("penicillins", "carbapenems"),
    ("cephalosporins", "penicillins"), ("cephalosporins", "carbapenems"),
    ("carbapenems", "penicillins"), ("carbapenems", "cephalosporins"),
})


def allergy_family(atc: str) -> str | None:
    """The allergy family of an ATC code (substance or class), if it belongs to one."""
    for family, prefixes in ALLERGY_FAMILIES.items():
        if any(atc.startswith(p) for p in prefixes):
            return family
    return None


# --- the checks ---------------------------------------------------------------------------------

#: A woman of these ages whose pregnancy status is unknown is asked about it for a contraindicated drug.
CHILDBEARING_AGE_YEARS = (12.0, 55.0)


def check_order(order: Order, patient: PatientContext, catalogue: Catalogue) -> list[Alert]:
    """Every alert raised by ordering `order` for `patient`, most severe first.

    The legitimate order gets an empty list: each check speaks only when it has something to say.
    A check that cannot be done (an unconvertible unit, an active order whose product left the
    formulary) says so as `info`, never silently.
    """
    product = catalogue.product(order.product)
    substances = catalogue.substances_of(product)
    active, alerts = _active_orders(patient, catalogue)
    alerts += _check_weight_and_height(order, patient)
    alerts += _check_route(order, product)
    for substance in substances:
        alerts += _check_allergy(substance, patient)
        alerts += _check_pregnancy(substance, patient)
        alerts += _check_age(substance, patient)
    alerts += _check_interactions(substances, active, catalogue)
    alerts += _check_duplicates(order, substances, active, catalogue)
    alerts += _check_dose(order, product, patient, active, catalogue)
    alerts += _check_renal(order, product, patient, active, catalogue)
    order_of = list(Severity)
    return sorted(alerts, key=lambda a: order_of.index(a.severity))


_Active = tuple[Order, Product]


def _active_orders(patient: PatientContext, catalogue: Catalogue) -> tuple[list[_Active], list[Alert]]:
    known: list[_Active] = []
    alerts: list[Alert] = []
    for active in patient.active_orders:
        product = catalogue.products.get(active.product)
        if product is None:
            alerts.append(_alert(AlertKind.UNCHECKED, Severity.INFO, N_(
                "The active order of {product} could not be checked against this one: its product is no "
                "longer in the formulary."), product=active.product))
        else:
            known.append((active, product))
    return known, alerts


def _check_weight_and_height(order: Order, patient: PatientContext) -> list[Alert]:
    alerts = []
    if patient.weight_kg is None:
        alerts.append(_alert(AlertKind.WEIGHT_REQUIRED, Severity.BLOCKING, N_(
            "Weight required: a prescription states the patient's weight (arrêté du 6 avril 2011).")))
    if patient.height_cm is None:
        per_m2 = order.dose.parsed.per_m2
        alerts.append(_alert(
            AlertKind.HEIGHT_REQUIRED, Severity.BLOCKING if per_m2 else Severity.OVERRIDE_REQUIRED,
            N_("Height required: a dose per m² needs the body surface area.") if per_m2 else
            N_("Height missing: a prescription states the patient's height (arrêté du 6 avril 2011); "
               "say why it cannot be measured.")))
    return alerts


def _check_route(order: Order, product: Product) -> list[Alert]:
    if order.route in product.routes:
        return []
    return [_alert(AlertKind.ROUTE, Severity.BLOCKING, N_(
        "{product} cannot be given by the route {route} (allowed: {routes})."),
        product=product.name, route=order.route, routes=", ".join(sorted(product.routes)))]


def _check_allergy(substance: Substance, patient: PatientContext) -> list[Alert]:
    alerts = []
    family = allergy_family(substance.atc)
    for code in sorted(patient.allergies):
        if not code.startswith("ATC:"):
            continue  # FOOD:, ENV: allergens are not drugs (excipients are not in the formulary yet)
        allergen = code[4:].strip().upper()
        if not allergen:
            continue
        allergen_family = allergy_family(allergen)
        if substance.atc.startswith(allergen) or (family is not None and family == allergen_family):
            alerts.append(_alert(AlertKind.ALLERGY, Severity.BLOCKING, N_(
                "Allergy: the patient is allergic to {allergen}; {substance} belongs to the same "
                "family and is contraindicated."), substance.code, allergen=allergen, substance=substance.name))
        elif family is not None and (allergen_family, family) in CROSS_REACTIVITY:
            alerts.append(_alert(AlertKind.CROSS_REACTIVITY, Severity.OVERRIDE_REQUIRED, N_(
                "Possible cross-reactivity: the patient is allergic to {allergen} ({allergen_family}); "
                "{substance} is one of the {family}. Check the nature of the allergy before giving it."),
                substance.code, allergen=allergen, allergen_family=FAMILY_LABELS.get(allergen_family or "", ""),
                substance=substance.name, family=FAMILY_LABELS[family]))
    return alerts


def _check_pregnancy(substance: Substance, patient: PatientContext) -> list[Alert]:
    if patient.sex is Sex.MALE or substance.pregnancy is None or patient.pregnant is False:
        return []
    if patient.pregnant is None:
        low, high = CHILDBEARING_AGE_YEARS
        if substance.pregnancy is PregnancyRisk.CONTRAINDICATED and patient.sex is Sex.FEMALE \
                and low <= patient.age_years < high:
            return [_alert(AlertKind.PREGNANCY, Severity.INFO, N_(
                "Pregnancy status unknown: {substance} is contraindicated during pregnancy; check that the "
                "patient is not pregnant. {note}"), substance.code, substance=substance.name,
                note=substance.pregnancy_note)]
        return []
    if substance.pregnancy is PregnancyRisk.CONTRAINDICATED:
        return [_alert(AlertKind.PREGNANCY, Severity.BLOCKING, N_(
            "Pregnancy: {substance} is contraindicated during pregnancy. {note}"),
            substance.code, substance=substance.name, note=substance.pregnancy_note)]
    return [_alert(AlertKind.PREGNANCY, Severity.OVERRIDE_REQUIRED, N_(
        "Pregnancy: {substance} is not advised during pregnancy; state the benefit expected. {note}"),
        substance.code, substance=substance.name, note=substance.pregnancy_note)]


def _check_age(substance: Substance, patient: PatientContext) -> list[Alert]:
    """The strictest age rule the patient falls under (the lowest threshold above the age)."""
    applicable = [r for r in substance.age if patient.age_years < r.below_years]
    if not applicable:
        return []
    rule = min(applicable, key=lambda r: (not r.contraindicated, r.below_years))
    params = {"substance": substance.name, "threshold": _num(rule.below_years), "note": rule.note}
    if rule.contraindicated:
        return [_alert(AlertKind.AGE, Severity.BLOCKING, N_(
            "Age: {substance} is contraindicated before {threshold} years. {note}"), substance.code, **params)]
    return [_alert(AlertKind.AGE, Severity.OVERRIDE_REQUIRED, N_(
        "Age: {substance} is not advised before {threshold} years; state why it is needed. {note}"),
        substance.code, **params)]


def _check_interactions(substances: Sequence[Substance], active: Sequence[_Active],
                        catalogue: Catalogue) -> list[Alert]:
    alerts = []
    seen: set[tuple[str, str, str, str]] = set()
    others = [s for _, product in active for s in catalogue.substances_of(product)]
    for substance in substances:
        for other in others:
            if other.code == substance.code:
                continue  # the same substance twice is a duplicate, not an interaction
            for interaction in catalogue.interactions_between(substance, other):
                marker = (substance.code, other.code, interaction.left, interaction.right)
                if marker in seen:
                    continue
                seen.add(marker)
                conditions = " ".join(
                    f"[{lv.value}] {cond}".strip() for lv, cond in interaction.levels if cond.strip())
                alerts.append(_alert(AlertKind.INTERACTION, interaction.severity, N_(
                    "Interaction ({level}) between {substance} and {other} ({source}: {left} + {right}): "
                    "{mechanism} {conditions}"), substance.code,
                    level=interaction.level.value, substance=substance.name, other=other.name,
                    source=interaction.source, left=interaction.left, right=interaction.right,
                    mechanism=" ".join(interaction.mechanism.split()), conditions=" ".join(conditions.split())))
    return alerts


def _check_duplicates(order: Order, substances: Sequence[Substance], active: Sequence[_Active],
                      catalogue: Catalogue) -> list[Alert]:
    """Same substance or same `duplicate_class` as an active order. The same substance as a
    background order plus an "if needed" one (morphine LP and morphine for breakthrough pain) is
    only shown: the daily dose check adds both and speaks if their sum is too high."""
    alerts = []
    for active_order, active_product in active:
        if_needed = FrequencyKind.IF_NEEDED in (order.frequency.kind, active_order.frequency.kind)
        for other in catalogue.substances_of(active_product):
            for substance in substances:
                klass = substance.duplicate_class
                if klass is None or other.duplicate_class is None:
                    continue  # solutes and electrolytes are given by several lines at once
                if other.code == substance.code:
                    severity = Severity.INFO if if_needed else Severity.OVERRIDE_REQUIRED
                    alerts.append(_alert(AlertKind.DUPLICATE, severity, N_(
                        "Duplicate therapy: {substance} is already ordered ({product}); the daily dose "
                        "adds both orders."), substance.code, substance=substance.name, product=active_product.name))
                elif klass == other.duplicate_class:
                    alerts.append(_alert(AlertKind.DUPLICATE, Severity.OVERRIDE_REQUIRED, N_(
                        "Duplicate therapy: {substance} and {other} (already ordered) belong to the same "
                        "therapeutic class ({klass})."), substance.code, substance=substance.name,
                        other=other.name, klass=klass))
    return alerts


@dataclass(frozen=True, slots=True)
class Amounts:
    """One order's amounts of one substance, in a limit's unit."""

    single: float | None  # per administration (None for a continuous infusion)
    hourly: float | None  # continuous infusion only
    daily: float


def order_amounts(order: Order, product: Product, patient: PatientContext, unit: str,
                  component: int = 0) -> Amounts | None:
    """The amounts of the `component`-th substance of `order` in `unit`, or None if they cannot be
    known (unit of another kind, per-kg dose without weight, per-m² dose without height, mL or
    tablets of a product without strength)."""
    dose = order.dose.parsed
    value = order.dose.value
    if dose.per_kg:
        if patient.weight_kg is None:
            return None
        value *= patient.weight_kg
    if dose.per_m2:
        bsa = patient.body_surface_area
        if bsa is None:
            return None
        value *= bsa
    target = product.components[component]
    base_unit = dose.symbol.split("/")[0]
    if dose.dimension is Dimension.PRESENTATION:
        if target.amount is None:
            return None
        value, base_unit = value * target.amount.value, target.amount.unit
    elif dose.dimension is Dimension.VOLUME and parse_unit(unit).dimension is not Dimension.VOLUME:
        if target.amount is None or target.volume_ml is None:
            return None
        millilitres = value * dose.to_base
        value, base_unit = millilitres * target.amount.value / target.volume_ml, target.amount.unit
    elif component:
        # the dose names the first substance; the others follow the product's proportions
        first = product.components[0].amount
        if first is None or target.amount is None:
            return None
        in_first = convert(value, base_unit, first.unit)
        if in_first is None:
            return None
        value, base_unit = in_first / first.value * target.amount.value, target.amount.unit
    converted = convert(value, base_unit, unit)
    if converted is None:
        return None
    if dose.per_hour is not None:
        hourly = converted * dose.per_hour
        return Amounts(None, hourly, hourly * 24.0)
    return Amounts(converted, None, converted * order.frequency.doses_per_day())


def presentations_per_dose(order: Order, product: Product, patient: PatientContext) -> float | None:
    """How many units of the product (tablets, ampoules, vials...) one administration takes: what
    the pharmacy dispenses and the nurse prepares. None for a continuous infusion, or when it cannot
    be known (see `order_amounts`)."""
    dose = order.dose.parsed
    if dose.per_hour is not None:
        return None
    if dose.dimension is Dimension.PRESENTATION and not (dose.per_kg or dose.per_m2):
        return order.dose.value
    strength = product.components[0].amount
    if strength is None:
        return None
    amounts = order_amounts(order, product, patient, strength.unit)
    if amounts is None or amounts.single is None:
        return None
    return amounts.single / strength.value


def _check_dose(order: Order, product: Product, patient: PatientContext, active: Sequence[_Active],
                catalogue: Catalogue) -> list[Alert]:
    alerts: list[Alert] = []
    if order.dose.parsed.per_kg and patient.weight_kg is None:
        return alerts  # the blocking "weight required" already stands
    for index, substance in enumerate(catalogue.substances_of(product)):
        for limit in substance.dose_limits:
            if limit.weight_based and patient.weight_kg is None:
                continue  # idem
            if not limit.applies(order.route, patient.age_years, patient.weight_kg):
                continue
            amounts = order_amounts(order, product, patient, limit.unit, index)
            if amounts is None:
                if not (order.dose.parsed.per_m2 and patient.height_cm is None):
                    alerts.append(_alert(AlertKind.UNCHECKED, Severity.INFO, N_(
                        "The dose of {substance} in {unit} could not be compared with its maximum in "
                        "{limit_unit}: check it by hand."), substance.code, substance=substance.name,
                        unit=order.dose.unit, limit_unit=limit.unit))
                continue
            daily = amounts.daily + _same_substance_daily(substance, patient, active, limit.unit)
            alerts += _compare_dose(substance, limit, patient, amounts, daily)
    return alerts


def _same_substance_daily(substance: Substance, patient: PatientContext, active: Sequence[_Active],
                          unit: str) -> float:
    """What the patient's active orders already give of `substance` per 24 h, in `unit`."""
    total = 0.0
    for order, product in active:
        for index, component in enumerate(product.components):
            if component.substance == substance.code:
                amounts = order_amounts(order, product, patient, unit, index)
                total += amounts.daily if amounts else 0.0
    return total


def _compare_dose(substance: Substance, limit: DoseLimit, patient: PatientContext, amounts: Amounts,
                  daily: float) -> list[Alert]:
    weight = patient.weight_kg or 0.0
    bsa = patient.body_surface_area or 0.0
    caps: list[tuple[str, float | None, float, str]] = []  # what, amount, cap, basis
    unit = limit.unit

    def per(per: float | None, suffix: str) -> str:
        return f"{_num(per or 0)} {unit}/{suffix}"

    if amounts.single is not None:
        caps += [("single", amounts.single, c, b) for c, b in (
            (limit.max_single, ""),
            (_times(limit.max_single_per_kg, weight), per(limit.max_single_per_kg, "kg")),
            (_times(limit.max_single_per_m2, bsa), per(limit.max_single_per_m2, "m²"))) if c is not None]
    if amounts.hourly is not None:
        caps += [("hourly", amounts.hourly, c, b) for c, b in (
            (limit.max_hourly, ""),
            (_times(limit.max_hourly_per_kg, weight), per(limit.max_hourly_per_kg, "kg/h"))) if c is not None]
    caps += [("daily", daily, c, b) for c, b in (
        (limit.max_daily, ""),
        (_times(limit.max_daily_per_kg, weight), per(limit.max_daily_per_kg, "kg/j")),
        (_times(limit.max_daily_per_m2, bsa), per(limit.max_daily_per_m2, "m²/j"))) if c is not None]
    messages = {
        "single": N_("Dose too high: {amount} {unit} of {substance} per administration exceeds the maximum "
                     "of {cap} {unit}{basis}."),
        "hourly": N_("Rate too high: {amount} {unit}/h of {substance} exceeds the maximum of {cap} {unit}/h"
                     "{basis}."),
        "daily": N_("Daily dose too high: {amount} {unit} of {substance} per 24 h (all its orders) exceeds "
                    "the maximum of {cap} {unit}{basis}."),
    }
    alerts = []
    reported: set[str] = set()
    # the cap exceeded the most speaks for its kind of dose (per kg before absolute for a child)
    caps.sort(key=lambda c: -(c[1] or 0.0) / c[2] if c[2] > 0 else 0.0)
    for what, amount, cap, basis in caps:
        if amount is None or what in reported or amount <= cap * (1 + 1e-9):
            continue
        reported.add(what)
        severity = Severity.BLOCKING if amount >= cap * HARD_LIMIT_FACTOR else Severity.OVERRIDE_REQUIRED
        alerts.append(_alert(AlertKind.DOSE, severity, messages[what], substance.code,
                             amount=_num(amount), unit=limit.unit, substance=substance.name, cap=_num(cap),
                             basis=f" ({basis})" if basis else ""))
    return alerts


def _times(per_unit: float | None, factor: float) -> float | None:
    return None if per_unit is None or factor <= 0 else per_unit * factor


def _check_renal(order: Order, product: Product, patient: PatientContext, active: Sequence[_Active],
                 catalogue: Catalogue) -> list[Alert]:
    """The strictest renal rule below which the patient's clearance lies speaks for each substance."""
    alerts = []
    clearance = patient.creatinine_clearance_ml_min
    for index, substance in enumerate(catalogue.substances_of(product)):
        if not substance.renal:
            continue
        if clearance is None and patient.creatinine_days_old is not None:
            alerts.append(_alert(AlertKind.UNCHECKED, Severity.INFO, N_(
                "{substance} is adjusted to renal function and the latest creatinine is {days} days old "
                "(more than {valid}): the clearance was not computed; check the creatinine."), substance.code,
                substance=substance.name, days=_num(round(patient.creatinine_days_old)),
                valid=_num(CREATININE_VALID_DAYS)))
            continue
        if clearance is None:
            alerts.append(_alert(AlertKind.RENAL, Severity.INFO, N_(
                "{substance} is adjusted to renal function and no creatinine clearance is known: "
                "check the creatinine."), substance.code, substance=substance.name))
            continue
        applicable = [r for r in substance.renal if clearance < r.below_ml_min]
        if not applicable:
            continue
        rule = min(applicable, key=lambda r: r.below_ml_min)
        params = {"substance": substance.name, "clearance": _num(clearance),
                  "threshold": _num(rule.below_ml_min), "note": rule.note}
        if rule.contraindicated:
            alerts.append(_alert(AlertKind.RENAL, Severity.BLOCKING, N_(
                "Renal function: {substance} is contraindicated below {threshold} mL/min of creatinine "
                "clearance (patient: {clearance} mL/min). {note}"), substance.code, **params))
            continue
        amounts = None
        if rule.max_daily is not None and rule.unit is not None:
            amounts = order_amounts(order, product, patient, rule.unit, index)
        if rule.max_daily is None or rule.unit is None or amounts is None:
            alerts.append(_alert(AlertKind.RENAL, Severity.INFO, N_(
                "Renal function: below {threshold} mL/min (patient: {clearance} mL/min) adjust {substance}. "
                "{note}"), substance.code, **params))
            continue
        daily = amounts.daily + _same_substance_daily(substance, patient, active, rule.unit)
        if daily > rule.max_daily * (1 + 1e-9):
            alerts.append(_alert(AlertKind.RENAL, Severity.OVERRIDE_REQUIRED, N_(
                "Renal function: below {threshold} mL/min (patient: {clearance} mL/min) {substance} is "
                "limited to {cap} {unit} per 24 h; this order gives {amount} {unit}. {note}"),
                substance.code, cap=_num(rule.max_daily), unit=rule.unit, amount=_num(daily), **params))
    return alerts


# --- signing with alerts ------------------------------------------------------------------------


def overridden_alerts(alerts: Iterable[Alert], reason: str | None) -> tuple[Alert, ...]:
    """The alerts the prescriber overrides by signing with `reason`, to be traced with it.

    A blocking alert is never overridden; an `override_required` one needs a non-blank reason;
    `info` alerts need nothing and are not returned.
    """
    listed = list(alerts)
    blocking = [a for a in listed if a.severity is Severity.BLOCKING]
    if blocking:
        raise OrderBlocked("; ".join(a.text() for a in blocking), kinds=[a.kind.value for a in blocking])
    needing = tuple(a for a in listed if a.severity is Severity.OVERRIDE_REQUIRED)
    if needing and not (reason and reason.strip()):
        raise OverrideReasonRequired("state why these alerts are overridden",
                                     kinds=[a.kind.value for a in needing])
    return needing

