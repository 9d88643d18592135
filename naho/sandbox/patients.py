"""Synthetic patients and stays for the demo and the sandboxes: deterministic for a seed.

Identities come from `population.generate_population` (duplicates and twins included, for the
identity-vigilance worklist), plus showcase cases every demo of more than a few dozen patients
has: a birth name mistyped, day and month swapped, a married name taken for the birth name, and
a pair of twins. A duplicate record never holds an INS: it was typed at a desk that did not call
INSi (had it, INSi would have returned the person's reference identity). A share of the patients
are in a bed now, in a unit that fits their age and sex, others had a stay last month. Everyone
gets the problems and allergies of their age and sex (sandbox.clinical); stays get their notes,
and a stay in progress its referring physician (and often a referring nurse) from its unit.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import Session

from naho.identity import rules as identity_rules
from naho.identity import service as identity
from naho.identity.insi import SimulatedInsi
from naho.identity.rules import Traits
from naho.platform import audit
from naho.platform.counters import reserve
from naho.platform.security.actor import SYSTEM_ACTOR
from naho.platform.security.models import Account
from naho.platform.uow import UnitOfWork
from naho.record import care_team, chart
from naho.record import service as record
from naho.sandbox import clinical
from naho.sandbox.medication import InBed, seed_orders
from naho.sandbox.population import Population, generate_population
from naho.sites import service as sites
from naho.staff import service as staff

Progress = Callable[[int, int], None]
#: Units whose patients lie in beds (inpatient stays).
INPATIENT_KINDS = {"medicine", "surgery", "icu", "maternity", "paediatrics", "geriatrics", "rehabilitation",
                   "oncology", "psychiatry", "neonatology", "continuing_care"}
OCCUPANCY = 0.7  # share of beds taken in the demo
#: Vital signs of the patients in a bed: a round every 8 hours over the last two days.
VITALS_SPAN = timedelta(days=2)
ADMISSION_NOTE = "Entrée dans le service. Installation en chambre, bracelet d'identification posé."
AUTHOR = "Données synthétiques"
#: Below this many patients the showcase cases are left out (tiny sandboxes stay random).
SHOWCASE_FROM = 50
SHOWCASE_KINDS = ("typo_birth_name", "day_month_swap", "married_name", "twin")


@dataclass(frozen=True)
class SeedRecord:
    """One identity record to load; `duplicate` marks an extra record of a person already there."""

    traits: Traits
    duplicate: bool
    showcase: str | None = None


@dataclass(frozen=True)
class _Unit:
    code: str
    name: str
    kind: str
    establishment: str


def fits(kind: str, age: int, sex: str) -> bool:
    """Whether a patient of this age and sex is plausible in a unit of this kind."""
    if kind == "neonatology":
        return age < 1
    if kind == "paediatrics":
        return age < 16
    if kind == "maternity":
        return sex == "F" and 16 <= age <= 45
    if kind == "geriatrics":
        return age >= 75
    return age >= 16


def _vitals(rng: random.Random, start: datetime, end: datetime) -> list[tuple[str, float, datetime]]:
    """Plausible rounds of vital signs every 8 hours, drifting slowly so the plots show a trend."""
    measures: list[tuple[str, float, datetime]] = []
    heart, systolic, temperature = rng.uniform(65, 95), rng.uniform(105, 150), rng.uniform(36.4, 37.4)
    at = start
    while at <= end:
        heart = min(max(heart + rng.uniform(-6, 6), 45), 140)
        systolic = min(max(systolic + rng.uniform(-8, 8), 80), 190)
        temperature = min(max(temperature + rng.uniform(-0.3, 0.3), 35.5), 39.8)
        measures += [("heart_rate", float(round(heart)), at), ("systolic_bp", float(round(systolic)), at),
                     ("diastolic_bp", float(round(systolic * rng.uniform(0.55, 0.65))), at),
                     ("spo2", float(round(rng.uniform(92, 99))), at), ("temperature", round(temperature, 1), at)]
        at += timedelta(hours=8)
    return measures


def _measures(rng: random.Random, age: int, sex: str, at: datetime) -> list[tuple[str, float, datetime]]:
    """Weight and height taken at admission (a prescription states them): plausible for the age."""
    if age < 15:
        height = 50 + age * 6.5 + rng.uniform(-5, 5)
        weight = max(3.0, 3.5 + age * 2.6 + rng.uniform(-2, 2))
    else:
        height = rng.gauss(176 if sex == "M" else 163, 7)
        weight = max(40.0, rng.gauss(78 if sex == "M" else 66, 12))
    return [("weight", round(weight, 1), at), ("height", float(round(height)), at)]


def _beds(session: Session) -> tuple[list[tuple[_Unit, str]], dict[str, list[str]]]:
    """(unit, bed) of every bed of an inpatient unit, and the beds of each unit."""
    found = []
    by_unit: dict[str, list[str]] = {}
    for establishment in sites.establishment_choices(session):
        for unit in sites.list_units(session, establishment.code):
            if unit.kind in INPATIENT_KINDS:
                by_unit[unit.code] = [bed.code for bed in sites.list_beds(session, unit.code)]
                place = _Unit(unit.code, unit.name, unit.kind, establishment.code)
                found += [(place, bed) for bed in by_unit[unit.code]]
    return found, by_unit


def _referents(session: Session, unit_codes: list[str],
               labels: dict[uuid.UUID, str]) -> dict[str, dict[str, list[uuid.UUID]]]:
    """Account ids of each unit's physicians and nurses, in directory order (deterministic);
    `labels` receives how each signs (as an actor's label)."""
    accounts = {name: id_ for name, id_ in session.execute(select(Account.username, Account.id))}
    found: dict[str, dict[str, list[uuid.UUID]]] = {}
    for code in unit_codes:
        people, _total = staff.list_staff(session, unit_code=code, limit=500)
        found[code] = {p: [accounts[m.username] for m in people if m.profession == p] for p in ("physician", "nurse")}
        labels.update({accounts[m.username]: f"{m.first_name} {m.last_name} ({m.username})" for m in people})
    return found


def _swap_letters(name: str) -> str | None:
    """The name with two different neighbouring letters of its middle swapped (a typing slip)."""
    middle = len(name) // 2
    for i in (middle, middle - 1, middle + 1):
        if 0 < i < len(name) - 1 and name[i] != name[i + 1] and name[i].isalpha() and name[i + 1].isalpha():
            return name[:i] + name[i + 1] + name[i] + name[i + 2:]
    return None


def showcase(population: Population, rng: random.Random) -> list[SeedRecord]:
    """One extra record per kind of SHOWCASE_KINDS, each of a different person with a single
    record, so the identity-vigilance worklist always shows them."""
    counts: dict[int, int] = {}
    for r in population.records:
        counts[r.person_id] = counts.get(r.person_id, 0) + 1
    twins = {p for pair in population.twins for p in pair}
    alone = [r for r in population.records if counts[r.person_id] == 1 and r.person_id not in twins]
    used: set[int] = set()
    found: list[SeedRecord] = []

    def pick(test: Callable[[Traits], bool]) -> Traits | None:
        candidates = [r for r in alone if r.person_id not in used and test(r.traits)]
        if not candidates:
            return None
        chosen = rng.choice(candidates)
        used.add(chosen.person_id)
        return chosen.traits

    typo = pick(lambda t: len(t.birth_name) >= 6 and _swap_letters(t.birth_name) is not None)
    if typo:
        found.append(SeedRecord(replace(typo, birth_name=_swap_letters(typo.birth_name) or typo.birth_name),
                                duplicate=True, showcase="typo_birth_name"))
    swap = pick(lambda t: t.birth_date.day <= 12 and t.birth_date.day != t.birth_date.month)
    if swap:
        d = swap.birth_date
        found.append(SeedRecord(replace(swap, birth_date=d.replace(day=d.month, month=d.day)), duplicate=True,
                                showcase="day_month_swap"))
    married = pick(lambda t: t.sex == "F" and bool(t.used_name) and t.used_name != t.birth_name)
    if married:  # registered elsewhere under her married name, taken for her birth name
        found.append(SeedRecord(replace(married, birth_name=married.used_name or "", used_name=None),
                                duplicate=True, showcase="married_name"))
    sibling = pick(lambda t: t.sex in ("F", "M"))
    if sibling:
        taken = {n.split("-")[0] for n in sibling.first_names}
        others = [r.traits.first_names for r in alone
                  if r.traits.sex == sibling.sex and r.traits.first_names[0].split("-")[0] not in taken]
        if others:
            found.append(SeedRecord(replace(sibling, first_names=rng.choice(others), used_name=None),
                                    duplicate=False, showcase="twin"))
    return found


def seed_records(count: int, seed: int) -> list[SeedRecord]:
    """The identity records of the demo, in load order (deterministic for a seed)."""
    rng = random.Random(f"{seed}:showcase")
    with_showcase = count >= SHOWCASE_FROM
    population = generate_population(count - len(SHOWCASE_KINDS) if with_showcase else count, seed,
                                     duplicate_rate=0.03, twin_rate=0.01)
    records = [SeedRecord(r.traits, duplicate=r.id in population.corruptions) for r in population.records]
    if with_showcase:
        extra = showcase(population, rng)
        for item in extra:
            records.insert(rng.randrange(len(records) + 1), item)
        while len(records) < count:  # a kind found no candidate: a record typed twice the same way
            records.append(replace(records[rng.randrange(len(records))], duplicate=True, showcase=None))
    return records


def _status(rng: random.Random, item: SeedRecord) -> identity_rules.IdentityStatus:
    roll = rng.random()
    if item.duplicate:  # typed at a desk in a hurry: provisional, sometimes checked against a document
        return identity_rules.IdentityStatus.VALIDATED if roll < 0.3 else identity_rules.IdentityStatus.PROVISIONAL
    return (identity_rules.IdentityStatus.QUALIFIED if roll < 0.45 else
            identity_rules.IdentityStatus.VALIDATED if roll < 0.7 else
            identity_rules.IdentityStatus.PROVISIONAL)


def seed_patients(uow: UnitOfWork, *, count: int, seed: int, progress: Progress | None = None) -> dict[str, int]:
    """Add `count` synthetic identity records, their stays and charts (only into an empty index)."""
    if count <= 0:
        return {"patients_created": 0}
    with uow:
        if identity.count_patients(uow.session):
            return {"patients_created": 0}
    rng = random.Random(seed)
    care = random.Random(f"{seed}:chart")  # apart, so clinical content does not shift the stays
    records = seed_records(count, seed)
    insi = SimulatedInsi()
    used_ins: set[str] = set()
    with uow:
        s = uow.session
        now = uow.clock.now()
        beds, unit_beds = _beds(s)
        rng.shuffle(beds)
        ipps = iter(reserve(s, "ipp", len(records), start=1000001))
        ndas = iter(reserve(s, "nda", len(records), start=26000001))
        in_bed = beds[: int(len(beds) * OCCUPANCY)]
        # Each bed to be filled waits for the next patient who fits its unit; a bed nobody fits
        # (a neonatology cot, without newborns in the population) stays free.
        waiting = list(range(len(in_bed)))
        admitted = finished = problems_total = allergies_total = notes_total = members = 0
        labels: dict[uuid.UUID, str] = {}
        referents = _referents(s, sorted(unit_beds), labels)
        in_bed_now: list[InBed] = []
        # Chart rows are added after the identities and stays (which flush one by one): then one
        # flush inserts them in batches, instead of a few rows riding along with every flush.
        later: list[Callable[[], None]] = []
        for index, item in enumerate(records):
            traits = item.traits
            status = _status(rng, item)
            answer = insi.search(traits) if status.ins_retrieved else None
            if answer is not None and answer.ins in used_ins:
                answer = None  # a duplicate record of someone already qualified: INSi would say so
            if answer is not None:
                used_ins.add(answer.ins)
            if status.ins_retrieved and answer is None:
                status = identity_rules.IdentityStatus.VALIDATED  # INSi knows no undetermined sex
            patient_id = identity.import_identity(
                s, traits, status=status, now=now, actor_label=AUTHOR,
                ins=(answer.ins, answer.oid) if answer else None, ipp_number=next(ipps))
            age = clinical.age_on(traits.birth_date, now.date())
            sex = traits.sex
            problems = clinical.draw_problems(care, traits.birth_date, sex, now)
            allergies = clinical.draw_allergies(care, traits.birth_date, now)
            later.append(partial(chart.import_history, s, patient_id, observations=[], notes=[], conditions=problems,
                                 allergies=allergies, author=AUTHOR, now=now))
            problems_total += len(problems)
            allergies_total += len(allergies)
            slot = next((w for w in waiting[:400] if fits(in_bed[w][0].kind, age, sex)), None)
            if slot is not None:
                waiting.remove(slot)
                unit, bed = in_bed[slot]
                since = now - timedelta(hours=rng.randint(2, 24 * 12))
                stay = record.import_stay(s, patient_id, establishment_code=unit.establishment,
                                          encounter_class="inpatient", unit_code=unit.code, bed_code=bed,
                                          admitted_at=since, now=now, actor_label=AUTHOR,
                                          unit_beds=unit_beds[unit.code], nda_number=next(ndas),
                                          expected_end_at=now + timedelta(days=rng.randint(0, 7)))
                notes = [("nursing", ADMISSION_NOTE, since),
                         *clinical.stay_notes(care, unit_kind=unit.kind, unit_name=unit.name, age=age, sex=sex,
                                              problems=problems, admitted_at=since, now=now)]
                vitals = [*_measures(care, age, sex, since), *_vitals(rng, max(since, now - VITALS_SPAN), now)]
                later.append(partial(chart.import_history, s, patient_id, observations=vitals, notes=notes,
                                     author=AUTHOR, now=now, encounter_id=stay))
                notes_total += len(notes)
                # The stay's referents, named by the unit when the patient came in.
                physician = None
                for role, profession in (("referring_physician", "physician"), ("referring_nurse", "nurse")):
                    candidates = referents[unit.code][profession]
                    if candidates and (profession == "physician" or care.random() < 0.5):
                        chosen = care.choice(candidates)
                        physician = chosen if profession == "physician" else physician
                        later.append(partial(care_team.import_member, s, stay, chosen, role, at=since))
                        members += 1
                in_bed_now.append(InBed(patient_id, stay, unit.kind, age, since, physician,
                                        labels.get(physician) if physician else None))
                admitted += 1
            elif rng.random() < 0.3:
                past = next((u for u, _bed in (rng.choice(beds) for _ in range(8)) if fits(u.kind, age, sex)), None)
                if past is not None:
                    start = now - timedelta(days=rng.randint(20, 60))
                    end = start + timedelta(days=rng.randint(1, 9))
                    stay = record.import_stay(s, patient_id, establishment_code=past.establishment,
                                              encounter_class="inpatient", unit_code=past.code, bed_code=None,
                                              admitted_at=start, now=now, actor_label=AUTHOR,
                                              unit_beds=unit_beds[past.code], nda_number=next(ndas),
                                              discharged_at=end)
                    notes = clinical.stay_notes(care, unit_kind=past.kind, unit_name=past.name, age=age, sex=sex,
                                                problems=problems, admitted_at=start, now=now, discharged_at=end)
                    later.append(partial(chart.import_history, s, patient_id, observations=[], notes=notes,
                                         author=AUTHOR, now=now, encounter_id=stay))
                    notes_total += len(notes)
                    finished += 1
            if progress and index % 50 == 0:
                progress(index, len(records))
        for add in later:
            add()
        treated = seed_orders(s, in_bed_now, rng=random.Random(f"{seed}:medication"), now=now)
        result = {"patients_created": len(records), "stays_in_progress": admitted, "past_stays": finished,
                  "problems": problems_total, "allergies": allergies_total, "notes": notes_total,
                  "care_team_members": members, "medication_orders": treated.imported}
        audit.record(s, SYSTEM_ACTOR, "sandbox:patients:seed", at=now, details={
            "patients": len(records), "in_bed": admitted, "past_stays": finished, "problems": problems_total,
            "allergies": allergies_total, "notes": notes_total, "care_team_members": members,
            "medication_orders": treated.imported, "medication_orders_left_out": treated.left_out})
        uow.commit()
    if progress:
        progress(len(records), len(records))
    return result
