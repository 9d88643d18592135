"""Synthetic clinical content for the demo: problems, allergies and notes a French ward would hold.

Pure functions of a `random.Random`, so the demo is the same for a seed. Problems are ICD-10
codes with their French labels (CIM-10 FR), drawn with a prevalence that depends on age and sex
(orders of magnitude of Santé publique France and the Assurance maladie's pathology map, not
epidemiology); allergies carry the substance codes the medication checks match on (ATC class or
substance, FOOD:, ENV:). The labels and notes are data, in French.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from naho.identity.rules import Sex


@dataclass(frozen=True)
class Problem:
    icd10: str
    label: str
    #: Probability for a person of this age (years) and sex to have it.
    prevalence: Callable[[int, Sex], float]
    #: Youngest age at onset.
    onset_from: int


def _ramp(start: int, low: float, end: int, high: float) -> Callable[[int], float]:
    """0 before `start`, then linear from `low` to `high` at `end`, flat after."""
    def rate(age: int) -> float:
        if age < start:
            return 0.0
        if age >= end:
            return high
        return low + (high - low) * (age - start) / (end - start)
    return rate


_HTA = _ramp(35, 0.05, 80, 0.6)
_DIABETES = _ramp(40, 0.03, 75, 0.2)
_COPD = _ramp(45, 0.03, 75, 0.12)
_HEART_FAILURE = _ramp(60, 0.02, 90, 0.2)
_AF = _ramp(60, 0.02, 90, 0.15)
_CHOLESTEROL = _ramp(40, 0.08, 70, 0.3)
_KIDNEY = _ramp(60, 0.03, 90, 0.2)
_ISCHAEMIA = _ramp(50, 0.02, 85, 0.12)
_ALZHEIMER = _ramp(70, 0.02, 95, 0.25)
_OSTEOPOROSIS = _ramp(55, 0.05, 85, 0.35)
_PROSTATE = _ramp(50, 0.05, 85, 0.5)


def _adult(rate: float) -> Callable[[int, Sex], float]:
    return lambda age, sex: rate if age >= 18 else 0.0


#: The problems the demo draws, most frequent first. Sex "F"/"M" weights apply where they differ.
PROBLEMS: tuple[Problem, ...] = (
    Problem("I10", "Hypertension essentielle (primitive)", lambda a, s: _HTA(a), 35),
    Problem("E78.0", "Hypercholestérolémie essentielle", lambda a, s: _CHOLESTEROL(a), 40),
    Problem("E11.9", "Diabète sucré de type 2, sans complication",
            lambda a, s: _DIABETES(a) * (1.2 if s == "M" else 0.8), 40),
    Problem("E66.9", "Obésité, sans précision", _adult(0.15), 18),
    Problem("Z72.0", "Tabagisme", lambda a, s: (0.3 if s == "M" else 0.22) if 18 <= a < 70 else 0.0, 15),
    Problem("J44.9", "Maladie pulmonaire obstructive chronique, sans précision",
            lambda a, s: _COPD(a) * (1.3 if s == "M" else 0.7), 45),
    Problem("I50.9", "Insuffisance cardiaque, sans précision", lambda a, s: _HEART_FAILURE(a), 60),
    Problem("I48.9", "Fibrillation auriculaire et flutter auriculaire, sans précision", lambda a, s: _AF(a), 60),
    Problem("I25.9", "Cardiopathie ischémique chronique, sans précision",
            lambda a, s: _ISCHAEMIA(a) * (1.5 if s == "M" else 0.5), 50),
    Problem("N18.3", "Maladie rénale chronique, stade 3", lambda a, s: _KIDNEY(a), 60),
    Problem("K21.9", "Reflux gastro-œsophagien sans œsophagite", _adult(0.08), 18),
    Problem("F32.9", "Épisode dépressif, sans précision",
            lambda a, s: (0.07 if s == "F" else 0.04) if a >= 16 else 0.0, 16),
    Problem("E03.9", "Hypothyroïdie, sans précision",
            lambda a, s: (0.08 if s == "F" else 0.015) if a >= 30 else 0.0, 30),
    Problem("M81.9", "Ostéoporose, sans précision",
            lambda a, s: _OSTEOPOROSIS(a) if s == "F" else _OSTEOPOROSIS(a) / 5, 55),
    Problem("N40", "Hyperplasie de la prostate", lambda a, s: _PROSTATE(a) if s == "M" else 0.0, 50),
    Problem("G30.9", "Maladie d'Alzheimer, sans précision", lambda a, s: _ALZHEIMER(a), 70),
    Problem("J45.9", "Asthme, sans précision", lambda a, s: 0.08 if 3 <= a < 18 else 0.05 if a >= 18 else 0.0, 3),
    Problem("L20.9", "Dermatite atopique, sans précision", lambda a, s: 0.12 if a < 12 else 0.0, 0),
    Problem("G40.9", "Épilepsie, sans précision", lambda a, s: 0.008, 1),
    Problem("C50.9", "Tumeur maligne du sein, sans précision", lambda a, s: 0.03 if s == "F" and a >= 45 else 0.0, 45),
    Problem("C34.9", "Tumeur maligne des bronches ou du poumon, sans précision",
            lambda a, s: (0.015 if s == "M" else 0.007) if a >= 55 else 0.0, 55),
    Problem("F10.2", "Troubles mentaux et du comportement liés à l'utilisation d'alcool : syndrome de dépendance",
            lambda a, s: (0.04 if s == "M" else 0.015) if a >= 25 else 0.0, 25),
)
_BY_CODE = {p.icd10: p for p in PROBLEMS}


@dataclass(frozen=True)
class Substance:
    code: str
    label: str
    kind: str  # allergy | intolerance
    reactions: tuple[tuple[str, str], ...]  # (reaction, criticality)
    weight: int
    adult_only: bool = False


_SKIN = (("Urticaire", "low"), ("Éruption maculo-papuleuse", "low"), ("Prurit généralisé", "low"))
_SEVERE = (("Œdème de Quincke", "high"), ("Choc anaphylactique", "high"))

#: Declared allergies and intolerances, with relative frequency (penicillins first, as in France).
SUBSTANCES: tuple[Substance, ...] = (
    Substance("ATC:J01C", "Pénicillines", "allergy", _SKIN * 3 + _SEVERE, 30),
    Substance("ATC:J01CA04", "Amoxicilline", "allergy", _SKIN * 3 + _SEVERE, 10),
    Substance("ATC:J01DD", "Céphalosporines de troisième génération", "allergy", _SKIN + _SEVERE[:1], 5),
    Substance("ATC:J01EE", "Sulfaméthoxazole et triméthoprime (cotrimoxazole)", "allergy", _SKIN, 5),
    Substance("ATC:M01A", "Anti-inflammatoires non stéroïdiens", "allergy",
              (("Bronchospasme", "high"), ("Urticaire", "low"), ("Œdème des paupières", "low")), 8, adult_only=True),
    Substance("ATC:N02BA01", "Acide acétylsalicylique (aspirine)", "allergy", (("Bronchospasme", "high"), *_SKIN), 4,
              adult_only=True),
    Substance("ATC:N02AA01", "Morphine", "intolerance", (("Nausées et vomissements", "low"), ("Confusion", "low")), 5,
              adult_only=True),
    Substance("ATC:N02AX02", "Tramadol", "intolerance", (("Nausées et vomissements", "low"), ("Vertiges", "low")), 4,
              adult_only=True),
    Substance("ATC:C09A", "Inhibiteurs de l'enzyme de conversion", "intolerance", (("Toux sèche", "low"),), 4,
              adult_only=True),
    Substance("ATC:C10AA", "Statines", "intolerance", (("Myalgies", "low"),), 3, adult_only=True),
    Substance("ATC:V08A", "Produits de contraste iodés", "allergy", (("Urticaire", "low"), *_SEVERE), 5,
              adult_only=True),
    Substance("ATC:D08AC02", "Chlorhexidine", "allergy",
              (("Eczéma de contact", "low"), ("Choc anaphylactique", "high")), 1),
    Substance("ENV:latex", "Latex", "allergy", (("Eczéma de contact", "low"), ("Choc anaphylactique", "high")), 4),
    Substance("ENV:dust_mite", "Acariens", "allergy", (("Rhinite", "low"), ("Asthme", "low")), 4),
    Substance("ENV:grass_pollen", "Pollens de graminées", "allergy", (("Rhinoconjonctivite", "low"),), 4),
    Substance("ENV:wasp_venom", "Venin de guêpe", "allergy", (*_SEVERE, ("Réaction locale étendue", "low")), 2),
    Substance("FOOD:peanut", "Arachide", "allergy", (("Œdème de Quincke", "high"), ("Urticaire", "low")), 4),
    Substance("FOOD:egg", "Œuf", "allergy", (("Urticaire", "low"), ("Vomissements", "low")), 2),
    Substance("FOOD:shellfish", "Crustacés", "allergy", (("Urticaire", "low"), ("Œdème de Quincke", "high")), 3),
    Substance("FOOD:cow_milk_protein", "Protéines de lait de vache", "allergy",
              (("Eczéma", "low"), ("Vomissements", "low")), 2),
    Substance("FOOD:kiwi", "Kiwi", "allergy", (("Syndrome oral", "low"),), 1),
    Substance("FOOD:gluten", "Gluten (maladie cœliaque)", "intolerance", (("Diarrhée", "low"),), 1),
)

#: Share of people with at least one declared allergy or intolerance.
ALLERGY_RATE = 0.22
#: Reasons for a hospital stay, by unit kind: the notes quote one.
REASONS: dict[str, tuple[str, ...]] = {
    "medicine": ("altération de l'état général", "pneumopathie communautaire", "décompensation cardiaque",
                 "déséquilibre glycémique", "pyélonéphrite aiguë", "anémie à explorer", "malaise avec chute"),
    "surgery": ("cholécystite aiguë lithiasique", "fracture du col du fémur", "appendicite aiguë",
                "occlusion sur bride", "hernie inguinale étranglée", "prothèse totale de genou programmée"),
    "icu": ("détresse respiratoire aiguë", "choc septique d'origine pulmonaire", "état de mal épileptique",
            "surveillance post-arrêt cardiaque"),
    "continuing_care": ("surveillance post-opératoire rapprochée", "insuffisance respiratoire aiguë sur BPCO"),
    "geriatrics": ("chutes répétées", "syndrome confusionnel", "perte d'autonomie au domicile",
                   "déshydratation"),
    "rehabilitation": ("rééducation après prothèse de hanche", "rééducation après AVC",
                       "réadaptation après décompensation cardiaque"),
    "oncology": ("cure de chimiothérapie", "neutropénie fébrile", "douleurs mal contrôlées"),
    "maternity": ("accouchement par voie basse", "menace d'accouchement prématuré", "césarienne programmée"),
    "paediatrics": ("bronchiolite", "gastro-entérite avec déshydratation", "crise d'asthme"),
    "neonatology": ("prématurité", "ictère néonatal"),
    "psychiatry": ("épisode dépressif sévère", "décompensation anxieuse", "sevrage alcoolique"),
}
_DEFAULT_REASONS = ("bilan et surveillance",)

_NIGHT = ("Nuit calme, patient(e) endormi(e) aux tours de 2 h et 4 h.",
          "Nuit agitée, réveils fréquents ; réassurance, pas de chute.",
          "Douleur évaluée à 3/10 (EVA) en début de nuit, soulagée par le paracétamol.")
_DAY = ("Toilette au lavabo avec aide partielle. Mange la moitié du plateau.",
        "Lever au fauteuil l'après-midi, marche dans le couloir accompagné(e).",
        "Pansement refait, propre et sec. Pas de signe inflammatoire.",
        "Diurèse conservée, transit présent. Hydratation à encourager.",
        "Visite de la famille. Moral correct, questions sur la date de sortie.")


def age_on(birth_date: date, day: date) -> int:
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


def draw_problems(rng: random.Random, birth_date: date, sex: Sex,
                  now: datetime) -> list[tuple[str, str, datetime | None]]:
    """(ICD-10, label, onset) of a person's chronic problems, plausible for age and sex."""
    age = age_on(birth_date, now.date())
    found: list[tuple[str, str, datetime | None]] = []
    codes: set[str] = set()
    for problem in PROBLEMS:
        rate = problem.prevalence(age, sex)
        if problem.icd10 == "I50.9" and {"I10", "I48.9", "I25.9"} & codes:
            rate *= 2  # heart failure follows hypertension, atrial fibrillation, ischaemia
        if rate and rng.random() < rate:
            codes.add(problem.icd10)
            found.append((problem.icd10, problem.label, _onset(rng, birth_date, problem.onset_from, age, now)))
    return found


def _onset(rng: random.Random, birth_date: date, youngest: int, age: int, now: datetime) -> datetime | None:
    if rng.random() < 0.25:
        return None  # onset unknown, as often in a record taken over from the GP's letter
    at_age = rng.randint(min(youngest, age), age)
    day = birth_date + timedelta(days=int(at_age * 365.25) + rng.randrange(365))
    onset = datetime.combine(min(day, now.date()), time(12), tzinfo=UTC)
    return onset


def draw_allergies(rng: random.Random, birth_date: date, now: datetime) -> list[tuple[str, str, str, str, str | None]]:
    """(substance code, label, kind, criticality, reaction) of a person's declared allergies."""
    if rng.random() >= ALLERGY_RATE:
        return []
    adult = age_on(birth_date, now.date()) >= 15
    offered = [s for s in SUBSTANCES if adult or not s.adult_only]
    count = rng.choices((1, 2, 3), weights=(75, 20, 5))[0]
    chosen: list[Substance] = []
    while len(chosen) < count:
        substance = rng.choices(offered, weights=[s.weight for s in offered])[0]
        # Pénicillines and amoxicilline together would say the same thing twice.
        if substance not in chosen and not {substance.code, *(c.code for c in chosen)} >= {"ATC:J01C", "ATC:J01CA04"}:
            chosen.append(substance)
    result: list[tuple[str, str, str, str, str | None]] = []
    for substance in chosen:
        reaction: str | None
        reaction, criticality = rng.choice(substance.reactions)
        if rng.random() < 0.15:
            reaction, criticality = None, "unknown"  # "allergic, says the patient": reaction not known
        result.append((substance.code, substance.label, substance.kind, criticality, reaction))
    return result


def stay_notes(rng: random.Random, *, unit_kind: str, unit_name: str, age: int, sex: Sex,
               problems: list[tuple[str, str, datetime | None]], admitted_at: datetime, now: datetime,
               discharged_at: datetime | None = None) -> list[tuple[str, str, datetime]]:
    """(kind, text, written at) of a stay: the medical admission note, a nursing round a day,
    and the discharge summary of a finished stay."""
    reason = rng.choice(REASONS.get(unit_kind, _DEFAULT_REASONS))
    who = ("Patiente" if sex == "F" else "Patient") + f" de {age} ans"
    history = ", ".join(label.split(",")[0].lower() for _code, label, _onset in problems[:4])
    notes = [("medical",
              f"Observation médicale d'entrée — {unit_name}. {who} admis{'e' if sex == 'F' else ''} pour {reason}. "
              f"Antécédents : {history or 'aucun antécédent notable'}. Examen clinique consigné, bilan biologique "
              "demandé, traitement personnel poursuivi sauf mention contraire.",
              admitted_at + timedelta(hours=rng.randint(1, 4)))]
    end = discharged_at or now
    day = admitted_at + timedelta(hours=20)
    while day < end and len(notes) < 6:
        text = f"Transmissions : {rng.choice(_NIGHT)} {rng.choice(_DAY)}"
        notes.append(("nursing", text.replace("(e)", "e" if sex == "F" else ""), day))
        day += timedelta(days=1, hours=rng.randint(-2, 2))
    if discharged_at is not None:
        notes.append(("medical",
                      f"Synthèse de sortie — {unit_name}. Hospitalisation pour {reason}, évolution favorable. "
                      "Retour au domicile, courrier adressé au médecin traitant, ordonnance de sortie remise.",
                      discharged_at - timedelta(hours=1)))
    return notes


def problem_label(icd10: str) -> str:
    """The French label the demo uses for a code (tests check the catalogue against the rules)."""
    return _BY_CODE[icd10].label
