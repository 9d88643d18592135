"""The synthetic population for identity matching: deterministic, with the rates asked for."""

from __future__ import annotations

from collections import Counter

import pytest

from naho.identity.rules import normalise_name
from naho.sandbox.population import CORRUPTIONS, Population, generate_population


@pytest.fixture(scope="module")
def population() -> Population:
    return generate_population(20_000, seed=7)


def test_the_same_seed_gives_the_same_population() -> None:
    first, again = generate_population(2_000, seed=11), generate_population(2_000, seed=11)
    assert first.records == again.records
    assert first.twins == again.twins
    assert generate_population(2_000, seed=12).records != first.records


def test_records_are_numbered_and_duplicates_keep_their_person(population: Population) -> None:
    assert [r.id for r in population.records] == list(range(20_000))
    persons = Counter(r.person_id for r in population.records)
    assert len(population.records) - len(persons) == 2_000  # duplicate_rate 0.1
    pairs = population.true_pairs()
    assert len(pairs) == sum(k * (k - 1) // 2 for k in persons.values())
    assert all(a < b and population.records[a].person_id == population.records[b].person_id for a, b in pairs)
    duplicated = {r.id for r in population.records if persons[r.person_id] > 1}
    assert {i for pair in population.true_pairs() for i in pair} == duplicated


def test_about_one_person_in_a_hundred_is_a_twin(population: Population) -> None:
    persons = len({r.person_id for r in population.records})
    assert len(population.twins) == round(persons * 0.01 / 2)
    original = {r.person_id: r.traits for r in population.records if r.id not in population.corruptions}
    for a, b in population.twins:
        assert a != b
        one, other = original[a], original[b]
        assert (one.birth_name, one.birth_date, one.birth_place) == (other.birth_name, other.birth_date,
                                                                      other.birth_place)
        assert one.first_names[0].split("-")[0] != other.first_names[0].split("-")[0]
    assert not {pair for pair in population.true_pairs()
                if frozenset((population.records[pair[0]].person_id, population.records[pair[1]].person_id))
                in {frozenset(t) for t in population.twins}}


def test_duplicates_carry_the_realistic_entry_errors(population: Population) -> None:
    applied = Counter(kind for kinds in population.corruptions.values() for kind in kinds)
    assert set(applied) == set(CORRUPTIONS)
    assert len(population.corruptions) == 2_000
    untouched = sum(1 for kinds in population.corruptions.values() if not kinds)
    assert 0.05 * 2_000 < untouched < 0.30 * 2_000


def test_traits_look_like_french_records(population: Population) -> None:
    places = [r.traits.birth_place for r in population.records if r.traits.birth_place]
    assert all(len(p) == 5 for p in places)
    local = sum(p[:2] in ("59", "62") for p in places) / len(places)
    foreign = sum(p.startswith("99") for p in places) / len(places)
    assert 0.6 < local < 0.8 and 0.05 < foreign < 0.15
    originals = [r.traits for r in population.records if r.id not in population.corruptions]
    assert all(t.birth_name == normalise_name(t.birth_name) for t in originals)
    assert {t.sex for t in originals} == {"F", "M"}
    assert any(t.used_name for t in originals if t.sex == "F")
    assert any("-" in t.first_names[0] for t in originals)
