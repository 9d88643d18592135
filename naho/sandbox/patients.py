"""Synthetic patients and stays for the demo and the sandboxes: deterministic for a seed.

Identities come from `population.generate_population` (duplicates and twins included, for the
identity-vigilance worklist); a share of them are in a bed now, others had a stay last month.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from naho.identity import rules as identity_rules
from naho.identity import service as identity
from naho.identity.insi import SimulatedInsi
from naho.platform import audit
from naho.platform.counters import reserve
from naho.platform.security.actor import SYSTEM_ACTOR
from naho.platform.uow import UnitOfWork
from naho.record import chart
from naho.record import service as record
from naho.sandbox.population import generate_population
from naho.sites import service as sites

Progress = Callable[[int, int], None]
#: Units whose patients lie in beds (inpatient stays).
INPATIENT_KINDS = {"medicine", "surgery", "icu", "maternity", "paediatrics", "geriatrics", "rehabilitation",
                   "oncology", "psychiatry", "neonatology", "continuing_care"}
OCCUPANCY = 0.7  # share of beds taken in the demo
#: Vital signs of the patients in a bed: a round every 8 hours over the last two days.
VITALS_SPAN = timedelta(days=2)
ADMISSION_NOTE = "Entrée dans le service. Installation en chambre, bracelet d'identification posé."


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


def _beds(session: Session) -> tuple[list[tuple[str, str, str]], dict[str, list[str]]]:
    """(establishment, unit, bed) of every bed of an inpatient unit, and the beds of each unit."""
    found = []
    by_unit: dict[str, list[str]] = {}
    for establishment in sites.establishment_choices(session):
        for unit in sites.list_units(session, establishment.code):
            if unit.kind in INPATIENT_KINDS:
                by_unit[unit.code] = [bed.code for bed in sites.list_beds(session, unit.code)]
                found += [(establishment.code, unit.code, bed) for bed in by_unit[unit.code]]
    return found, by_unit


def seed_patients(uow: UnitOfWork, *, count: int, seed: int, progress: Progress | None = None) -> dict[str, int]:
    """Add `count` synthetic identity records and their stays (only into an empty index)."""
    if count <= 0:
        return {"patients_created": 0}
    with uow:
        if identity.count_patients(uow.session):
            return {"patients_created": 0}
    rng = random.Random(seed)
    population = generate_population(count, seed, duplicate_rate=0.03, twin_rate=0.01)
    insi = SimulatedInsi()
    used_ins: set[str] = set()
    with uow:
        s = uow.session
        now = uow.clock.now()
        beds, unit_beds = _beds(s)
        rng.shuffle(beds)
        ipps = iter(reserve(s, "ipp", len(population.records), start=1000001))
        ndas = iter(reserve(s, "nda", len(population.records), start=26000001))
        in_bed = beds[: int(len(beds) * OCCUPANCY)]
        admitted = finished = 0
        for index, record_ in enumerate(population.records):
            traits = record_.traits
            roll = rng.random()
            status = (identity_rules.IdentityStatus.QUALIFIED if roll < 0.45 else
                      identity_rules.IdentityStatus.VALIDATED if roll < 0.7 else
                      identity_rules.IdentityStatus.PROVISIONAL)
            answer = insi.search(traits) if status.ins_retrieved else None
            if answer is not None and answer.ins in used_ins:
                answer = None  # a duplicate record of someone already qualified: INSi would say so
            if answer is not None:
                used_ins.add(answer.ins)
            if status.ins_retrieved and answer is None:
                status = identity_rules.IdentityStatus.VALIDATED  # INSi knows no undetermined sex
            patient_id = identity.import_identity(
                s, traits, status=status, now=now, actor_label="Données synthétiques",
                ins=(answer.ins, answer.oid) if answer else None, ipp_number=next(ipps))
            if index < len(in_bed):
                establishment, unit, bed = in_bed[index]
                since = now - timedelta(hours=rng.randint(2, 24 * 12))
                record.import_stay(s, patient_id, establishment_code=establishment, encounter_class="inpatient",
                                   unit_code=unit, bed_code=bed, admitted_at=since, now=now,
                                   actor_label="Données synthétiques", unit_beds=unit_beds[unit],
                                   nda_number=next(ndas), expected_end_at=now + timedelta(days=rng.randint(0, 7)))
                chart.import_history(s, patient_id, observations=_vitals(rng, max(since, now - VITALS_SPAN), now),
                                     notes=[("nursing", ADMISSION_NOTE, since)], author="Données synthétiques",
                                     now=now)
                admitted += 1
            elif rng.random() < 0.3:
                establishment, unit, _bed = rng.choice(beds)
                start = now - timedelta(days=rng.randint(20, 60))
                record.import_stay(s, patient_id, establishment_code=establishment, encounter_class="inpatient",
                                   unit_code=unit, bed_code=None, admitted_at=start, now=now,
                                   actor_label="Données synthétiques", unit_beds=unit_beds[unit],
                                   nda_number=next(ndas), discharged_at=start + timedelta(days=rng.randint(1, 9)))
                finished += 1
            if progress and index % 50 == 0:
                progress(index, len(population.records))
        audit.record(s, SYSTEM_ACTOR, "sandbox:patients:seed", at=now,
                     details={"patients": len(population.records), "in_bed": admitted, "past_stays": finished})
        uow.commit()
    if progress:
        progress(len(population.records), len(population.records))
    return {"patients_created": len(population.records), "stays_in_progress": admitted, "past_stays": finished}
