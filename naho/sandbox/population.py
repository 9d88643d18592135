"""A synthetic French patient population with known duplicates and twins, to measure matching.

Deterministic for a given seed: `random.Random(seed)` draws everything, Faker fr_FR (seeded with
the same seed) supplies the name pools. Ground truth is the person id: records of the same person
share it; twins are two persons. Birth places are INSEE commune codes, mostly Pas-de-Calais (62)
and Nord (59) maternity towns, as for a hospital group of the Artois; "99xxx" for foreign-born.

Rates: `duplicate_rate` is the share of records that are an extra record of an already present
person (a person may get several); `twin_rate` is the share of the distinct persons who are one
of a pair of twins.
"""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from faker import Faker

from naho.identity.rules import Sex, Traits, normalise_name

FIRST_BIRTH = date(1925, 1, 1)
LAST_BIRTH = date(2024, 12, 31)

# Maternity towns of the Artois and Flanders (INSEE codes): most local births happen there.
_MATERNITY_TOWNS = ("62498", "62119", "62427", "62510", "62041", "62193", "62160", "62765", "59350",
                    "59512", "59178", "59606", "59183", "59599", "59392")
_COUNTRIES = ("99350", "99352", "99351", "99139", "99127", "99134", "99131", "99109", "99122", "99208",
              "99132", "99341")  # Morocco, Algeria, Tunisia, Portugal, Italy, Spain, Belgium, ...
_OTHER_DEPARTMENTS = (*(f"{d:02d}" for d in range(1, 96) if d not in (20, 59, 62)), "2A", "2B")

# Spellings that sound alike in French, applied by the "phonetic" corruption (either direction).
_HOMOPHONES = (("PH", "F"), ("TH", "T"), ("EAU", "O"), ("AU", "O"), ("AI", "E"), ("EI", "E"), ("Y", "I"),
               ("C", "K"), ("QU", "K"), ("LL", "L"), ("NN", "N"), ("RR", "R"), ("TT", "T"), ("SS", "S"),
               ("MM", "M"), ("ER", "EZ"))
_FINAL_HOMOPHONES = (("T", "D"), ("D", "T"), ("S", ""), ("X", ""), ("E", ""))
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

#: Corruptions of a duplicate record and their relative weights (several may combine).
CORRUPTIONS: dict[str, int] = {
    "typo_birth_name": 20,  # one letter inserted, deleted, replaced, or two swapped
    "typo_first_name": 14,
    "phonetic_birth_name": 12,
    "phonetic_first_name": 6,
    "day_month_swap": 8,
    "date_typo": 6,  # one digit of the day or the year
    "married_name": 20,  # women: the spouse's name as used name, or by mistake as birth name
    "first_name_order": 5,
    "compound_truncated": 6,  # JEAN-PIERRE recorded as JEAN
    "other_first_names_missing": 5,
    "missing_birth_place": 10,
    "other_birth_place": 3,  # another commune of the same département
    "legacy_format": 8,  # lower case, accents, spaces instead of hyphens: as typed in an old system
}
_CORRUPTION_COUNTS = (0, 1, 2, 3)
_CORRUPTION_COUNT_WEIGHTS = (15, 55, 25, 5)


@dataclass(frozen=True)
class Record:
    id: int
    person_id: int
    traits: Traits


@dataclass(frozen=True)
class Population:
    """Records in random order; the truth is in person_id, twins and corruptions."""

    records: list[Record]
    twins: list[tuple[int, int]]  # person ids of each pair of twins
    corruptions: dict[int, tuple[str, ...]] = field(default_factory=dict)  # duplicate record id → applied

    def true_pairs(self) -> set[tuple[int, int]]:
        """(smaller, larger) record ids of every two records of the same person."""
        by_person: defaultdict[int, list[int]] = defaultdict(list)
        for record in self.records:
            by_person[record.person_id].append(record.id)
        return {(a, b) for ids in by_person.values() for a, b in itertools.combinations(sorted(ids), 2)}


@dataclass
class _Person:
    traits: Traits
    spouse_name: str | None
    display: tuple[str, str]  # birth name and first name as Faker spells them (accents, case)


class _Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        fake = Faker("fr_FR")
        fake.seed_instance(seed)
        self.last_names = self._pool(fake.last_name, 5000)
        self.male = self._pool(fake.first_name_male, 3000)
        self.female = self._pool(fake.first_name_female, 3000)
        # A few names are much more frequent than others, as in France (MARTIN, BERNARD, ...):
        # weight 1/(rank + 50) in Faker's order of first appearance for this seed.
        self.last_name_weights = list(itertools.accumulate(1 / (rank + 50) for rank in range(len(self.last_names))))
        self.male_weights = list(itertools.accumulate(1 / (rank + 15) for rank in range(len(self.male))))
        self.female_weights = list(itertools.accumulate(1 / (rank + 15) for rank in range(len(self.female))))
        self.days = (LAST_BIRTH - FIRST_BIRTH).days + 1

    @staticmethod
    def _pool(draw: Callable[[], str], tries: int) -> list[str]:
        return list(dict.fromkeys(draw() for _ in range(tries)))

    def last_name(self) -> str:
        return self.rng.choices(self.last_names, cum_weights=self.last_name_weights)[0]

    def first_name(self, sex: Sex) -> str:
        if sex == "F":
            return self.rng.choices(self.female, cum_weights=self.female_weights)[0]
        return self.rng.choices(self.male, cum_weights=self.male_weights)[0]

    def first_names(self, sex: Sex) -> tuple[str, ...]:
        count = self.rng.choices((1, 2, 3), weights=(30, 45, 25))[0]
        names = [self.first_name(sex)]
        if self.rng.random() < 0.12:  # compound first name: Jean-Pierre, Marie-Claire
            prefix = self.rng.choice(("Marie", "Anne") if sex == "F" else ("Jean", "Pierre"))
            if prefix != names[0]:
                names[0] = f"{prefix}-{names[0]}"
        while len(names) < count:
            other = self.first_name(sex) if self.rng.random() < 0.8 else self.first_name("M" if sex == "F" else "F")
            if other not in names:
                names.append(other)
        return tuple(names)

    def birth_place(self) -> str:
        roll = self.rng.random()
        if roll < 0.45:
            return self.rng.choice(_MATERNITY_TOWNS)
        if roll < 0.70:
            return f"{self.rng.choice(('59', '62'))}{self.rng.randint(1, 899):03d}"
        if roll < 0.91:
            return f"{self.rng.choice(_OTHER_DEPARTMENTS)}{self.rng.randint(1, 400):03d}"
        if roll < 0.995:
            return self.rng.choice(_COUNTRIES)
        return "99999"

    def person(self) -> _Person:
        sex: Sex = "F" if self.rng.random() < 0.5 else "M"
        birth_name = self.last_name()
        first_names = self.first_names(sex)
        birth_date = FIRST_BIRTH + timedelta(days=self.rng.randrange(self.days))
        spouse_name = None
        used_name = None
        if sex == "F" and birth_date.year <= 2004 and self.rng.random() < 0.45:
            spouse_name = self.last_name()
            if spouse_name != birth_name and self.rng.random() < 0.6:
                used_name = spouse_name
        traits = Traits(birth_name=normalise_name(birth_name), used_name=used_name and normalise_name(used_name),
                        first_names=tuple(normalise_name(n) for n in first_names), sex=sex,
                        birth_date=birth_date, birth_place=self.birth_place())
        return _Person(traits, spouse_name and normalise_name(spouse_name), (birth_name, first_names[0]))

    def twin_of(self, person: _Person) -> _Person:
        """Another person: same birth name, date and place; other first names; a third of pairs mixed."""
        sex: Sex = person.traits.sex if self.rng.random() < 2 / 3 else ("M" if person.traits.sex == "F" else "F")
        taken = {n.split("-")[0] for n in person.traits.first_names}
        while True:
            first_names = tuple(normalise_name(n) for n in self.first_names(sex))
            if first_names[0].split("-")[0] not in taken:
                break
        traits = replace(person.traits, first_names=first_names, sex=sex, used_name=None)
        return _Person(traits, None, (person.display[0], first_names[0]))

    def duplicate(self, person: _Person) -> tuple[Traits, tuple[str, ...]]:
        """A new record of `person` with 0 to 3 corruptions (one that does not apply is redrawn)."""
        count = self.rng.choices(_CORRUPTION_COUNTS, weights=_CORRUPTION_COUNT_WEIGHTS)[0]
        kinds, weights = list(CORRUPTIONS), list(CORRUPTIONS.values())
        traits = person.traits
        applied: list[str] = []
        for _ in range(4 * count):
            if len(applied) == count:
                break
            kind = self.rng.choices(kinds, weights=weights)[0]
            changed = None if kind in applied else self.corrupt(kind, traits, person)
            if changed is not None and changed != traits:
                traits = changed
                applied.append(kind)
        return traits, tuple(applied)

    def corrupt(self, kind: str, t: Traits, person: _Person) -> Traits | None:
        """One realistic entry error; None when it does not apply to this person."""
        rng = self.rng
        match kind:
            case "typo_birth_name":
                return replace(t, birth_name=self.typo(t.birth_name))
            case "typo_first_name":
                return replace(t, first_names=(self.typo(t.first_names[0]), *t.first_names[1:]))
            case "phonetic_birth_name":
                return replace(t, birth_name=self.homophone(t.birth_name))
            case "phonetic_first_name":
                return replace(t, first_names=(self.homophone(t.first_names[0]), *t.first_names[1:]))
            case "day_month_swap":
                d = t.birth_date
                if d.day > 12 or d.day == d.month:
                    return None
                return replace(t, birth_date=d.replace(day=d.month, month=d.day))
            case "date_typo":
                return replace(t, birth_date=self.date_typo(t.birth_date))
            case "married_name":
                if person.spouse_name is None or person.spouse_name == t.birth_name:
                    return None
                if rng.random() < 0.5:  # the used name recorded by mistake as the birth name
                    return replace(t, birth_name=person.spouse_name, used_name=person.spouse_name)
                return replace(t, used_name=person.spouse_name)
            case "first_name_order":
                if len(t.first_names) < 2:
                    return None
                return replace(t, first_names=(t.first_names[1], t.first_names[0], *t.first_names[2:]))
            case "compound_truncated":
                if "-" not in t.first_names[0]:
                    return None
                return replace(t, first_names=(t.first_names[0].split("-")[0], *t.first_names[1:]))
            case "other_first_names_missing":
                return replace(t, first_names=t.first_names[:1])
            case "missing_birth_place":
                return replace(t, birth_place=None)
            case "other_birth_place":
                if t.birth_place is None or t.birth_place.startswith("99"):
                    return None
                return replace(t, birth_place=f"{t.birth_place[:2]}{rng.randint(1, 899):03d}")
            case "legacy_format":
                birth_name, first_name = person.display
                if t.birth_name != normalise_name(birth_name):
                    birth_name = t.birth_name.title()
                if t.first_names[0] != normalise_name(first_name):
                    first_name = t.first_names[0]
                return replace(t, birth_name=birth_name.replace("-", " "),
                               first_names=(first_name.replace("-", " ").lower(), *t.first_names[1:]))
        raise ValueError(f"unknown corruption {kind!r}")

    def typo(self, name: str) -> str:
        rng = self.rng
        if len(name) < 2:
            return name + rng.choice(_LETTERS)
        i = rng.randrange(len(name) - 1)
        match rng.randrange(4):
            case 0:
                return name[:i] + rng.choice(_LETTERS) + name[i:]
            case 1:
                return name[:i] + name[i + 1:]
            case 2:
                return name[:i] + rng.choice(_LETTERS) + name[i + 1:]
            case _:
                return name[:i] + name[i + 1] + name[i] + name[i + 2:]

    def homophone(self, name: str) -> str:
        rng = self.rng
        options = [(a, b) for a, b in _HOMOPHONES if a in name] + [(b, a) for a, b in _HOMOPHONES if b in name]
        options += [(a, b) for a, b in _FINAL_HOMOPHONES if name.endswith(a) and len(name) > 3]
        if not options:
            return name + rng.choice("ESTD")
        old, new = rng.choice(options)
        if (old, new) in _FINAL_HOMOPHONES and name.endswith(old):
            return name[: len(name) - len(old)] + new
        at = rng.choice([i for i in range(len(name)) if name.startswith(old, i)])
        return name[:at] + new + name[at + len(old):]

    def date_typo(self, d: date) -> date:
        """One digit of the day or of the year's last two replaced, or the year one off."""
        for _ in range(20):
            roll = self.rng.random()
            if roll < 0.4:
                text = f"{d.day:02d}"
                i = self.rng.randrange(2)
                candidate = (d.year, d.month, int(text[:i] + str(self.rng.randrange(10)) + text[i + 1:]))
            elif roll < 0.8:
                text = str(d.year)
                i = self.rng.randrange(2, 4)
                candidate = (int(text[:i] + str(self.rng.randrange(10)) + text[i + 1:]), d.month, d.day)
            else:
                candidate = (d.year + self.rng.choice((-1, 1)), d.month, d.day)
            try:
                typo = date(*candidate)
            except ValueError:
                continue
            if typo != d and FIRST_BIRTH <= typo <= LAST_BIRTH:
                return typo
        return d


def generate_population(n: int, seed: int, duplicate_rate: float = 0.1, twin_rate: float = 0.01) -> Population:
    """`n` records of French identities with injected duplicates and twins (see the module docstring)."""
    if n < 0 or not 0 <= duplicate_rate < 1 or not 0 <= twin_rate <= 1:
        raise ValueError("n >= 0, 0 <= duplicate_rate < 1 and 0 <= twin_rate <= 1 expected")
    gen = _Generator(seed)
    duplicates = round(n * duplicate_rate)
    persons_count = n - duplicates
    twin_pairs = min(round(persons_count * twin_rate / 2), persons_count // 2)
    persons = [gen.person() for _ in range(persons_count - twin_pairs)]
    twins: list[tuple[int, int]] = []
    for index in gen.rng.sample(range(len(persons)), twin_pairs):
        persons.append(gen.twin_of(persons[index]))
        twins.append((index, len(persons) - 1))

    rows: list[tuple[int, Traits, tuple[str, ...] | None]] = [(pid, p.traits, None) for pid, p in enumerate(persons)]
    for _ in range(duplicates):
        pid = gen.rng.randrange(len(persons))
        traits, applied = gen.duplicate(persons[pid])
        rows.append((pid, traits, applied))
    gen.rng.shuffle(rows)
    records = [Record(id=i, person_id=pid, traits=traits) for i, (pid, traits, _) in enumerate(rows)]
    corruptions = {i: applied for i, (_, _, applied) in enumerate(rows) if applied is not None}
    return Population(records=records, twins=twins, corruptions=corruptions)
