"""Benchmark `identity_matching`: naho's duplicate detection against Splink 5, same records, same run.

    uv run --group bench python bench/identity_matching.py [--quick] [--no-write]

1. A synthetic population (naho.sandbox.population, fixed seed): full 100,000 records, quick
   10,000; 10 % are extra records of a person already present, with realistic entry errors;
   1 % of persons are twins (distinct persons sharing birth name, date and place).
2. naho: `blocking_keys` → candidate pairs → `match`; a pair is a duplicate when the verdict is
   "same" or "probable". Pure Python, one process.
3. Splink 5 on DuckDB, on the same records cleaned the same way (RNIV normal form, naho's phonetic
   keys offered as columns): comparisons on birth name (used name cross-match, phonetic, typos),
   first name (compound, phonetic, typos, reordered), birth date (day/month swap, one digit,
   one year), sex and birth place, term-frequency adjustments on names and place; the same
   blocking as naho (one rule per kind of key); lambda from deterministic rules, u by random
   sampling, m by EM (two sessions); a pair is a duplicate when match probability >= 0.9.
4. Pairwise precision, recall and F1 against the truth (same person id; twins are two persons),
   and each side's wall time end to end, preparation and blocking included.

`--database-url` is accepted for uniformity and ignored: no naho database is involved.
"""

from __future__ import annotations

import csv
import gc
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _common as common

from naho.identity.rules import (
    UNKNOWN_BIRTH_PLACE,
    Traits,
    blocking_keys,
    candidate_pairs,
    match,
    normalise_name,
    phonetic_fr,
)
from naho.sandbox.population import Population, generate_population

NAME = "identity_matching"
SEED = 20260512  # the matcher's weights were tuned on other seeds (see naho.identity.rules)
SPLINK_THRESHOLD = 0.9
NAHO_DUPLICATE = ("same", "probable")

GOALS = {"naho_f1": ">= splink_f1", "naho_s": "<= splink_s"}
UNITS = {
    "records": "count", "true_pairs": "count", "twin_pairs": "count",
    "naho_f1": "ratio", "naho_precision": "ratio", "naho_recall": "ratio", "naho_s": "s",
    "naho_candidate_pairs": "count", "naho_twins_merged": "count",
    "splink_f1": "ratio", "splink_precision": "ratio", "splink_recall": "ratio", "splink_s": "s",
    "splink_prepare_s": "s", "splink_train_s": "s", "splink_predict_s": "s", "splink_twins_merged": "count",
    "generate_s": "s", "splink_best_f1": "ratio", "splink_best_threshold": "probability",
}


@dataclass(frozen=True)
class Params:
    quick: bool
    records: int
    u_max_pairs: float

    @classmethod
    def for_run(cls, quick: bool) -> Params:
        if quick:
            return cls(quick=True, records=10_000, u_max_pairs=2e6)
        return cls(quick=False, records=100_000, u_max_pairs=1e7)


@dataclass
class Outcome:
    pairs: set[tuple[int, int]]
    seconds: float
    extra: dict[str, float | int]
    probabilities: dict[tuple[int, int], float] | None = None  # Splink: every pair scored >= 0.5


def run_naho(population: Population) -> Outcome:
    normalise_name.cache_clear()  # warmed by the generator: start cold, as a fresh process would
    phonetic_fr.cache_clear()
    start = time.perf_counter()
    traits = [r.traits for r in population.records]
    ids = [r.id for r in population.records]
    candidates = candidate_pairs(traits)
    found = {(ids[i], ids[j]) for i, j in candidates if match(traits[i], traits[j]).verdict in NAHO_DUPLICATE}
    seconds = time.perf_counter() - start
    return Outcome(found, seconds, {"naho_candidate_pairs": len(candidates)})


# ---------------------------------------------------------------------------------------------
# Splink


KEY_KINDS = ("ym", "yd", "dm")  # naho's blocking keys besides the date (see blocking_keys)
KEY_COLUMNS = ("k_d", *(f"k_{side}{kind}" for kind in KEY_KINDS for side in "nuf"))
SPLINK_COLUMNS = (
    "unique_id", "birth_name", "used_name", "birth_name_ph", "first_name", "first_token", "first_name_ph",
    "other_first_names", "sex", "birth_date", "birth_date_digits", "birth_place", *KEY_COLUMNS,
)


def _compact(name: str) -> str:
    return normalise_name(name).replace("-", "").replace("'", "").replace(" ", "")


def key_columns(t: Traits) -> dict[str, str | None]:
    """naho's blocking keys, one column per kind: n = birth name, u = used name, f = first name."""
    d = t.birth_date
    low, high = sorted((d.day, d.month))
    first = normalise_name(t.first_names[0]).replace("-", " ").replace("'", " ").split() if t.first_names else []
    phonetic = {"n": phonetic_fr(t.birth_name), "u": phonetic_fr(t.used_name) if t.used_name else None,
                "f": phonetic_fr(first[0]) if first else None}
    columns: dict[str, str | None] = {"k_d": f"d:{d.isoformat()}"}
    for side, key in phonetic.items():
        prefix = "f" if side == "f" else "n"
        columns[f"k_{side}ym"] = key and f"{prefix}ym:{key}:{d.year}:{d.month}"
        columns[f"k_{side}yd"] = key and f"{prefix}yd:{key}:{d.year}:{low}:{high}"
        columns[f"k_{side}dm"] = key and f"{prefix}dm:{key}:{d.day}:{d.month}"
    return columns


def check_keys_match_naho(population: Population) -> None:
    """Splink's blocking columns hold exactly naho's keys, so both compare the same pairs."""
    for record in population.records:
        ours = {v for v in key_columns(record.traits).values() if v}
        if ours != blocking_keys(record.traits):
            raise SystemExit(f"blocking columns differ from naho's keys for record {record.id}")


def splink_row(record_id: int, t: Traits) -> list[Any]:
    """One input row: the traits in the same normal form naho compares, and naho's blocking keys."""
    first = normalise_name(t.first_names[0]) if t.first_names else ""
    first_token = next(iter(first.replace("'", " ").replace("-", " ").split()), "")
    place = t.birth_place if t.birth_place and t.birth_place != UNKNOWN_BIRTH_PLACE else None
    keys = key_columns(t)
    return [
        record_id, _compact(t.birth_name), _compact(t.used_name) if t.used_name else None,
        phonetic_fr(t.birth_name), _compact(first), first_token, phonetic_fr(first),
        " ".join(_compact(n) for n in t.first_names[1:]), t.sex, t.birth_date.isoformat(),
        t.birth_date.strftime("%d%m%Y"), place, *(keys[c] for c in KEY_COLUMNS),
    ]


def splink_settings() -> Any:
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    birth_name = cl.CustomComparison(output_column_name="birth_name", comparison_levels=[
        cll.NullLevel("birth_name"),
        cll.ExactMatchLevel("birth_name", term_frequency_adjustments=True),
        cll.CustomLevel("birth_name_l = used_name_r OR used_name_l = birth_name_r OR used_name_l = used_name_r",
                        "used name of one = birth or used name of the other"),
        cll.CustomLevel("birth_name_ph_l = birth_name_ph_r", "same phonetic key"),
        cll.DamerauLevenshteinLevel("birth_name", 1),
        cll.JaroWinklerLevel("birth_name", 0.88),
        cll.JaroWinklerLevel("birth_name", 0.7),
        cll.ElseLevel(),
    ])
    first_name = cl.CustomComparison(output_column_name="first_name", comparison_levels=[
        cll.NullLevel("first_name"),
        cll.ExactMatchLevel("first_name", term_frequency_adjustments=True),
        cll.CustomLevel("first_token_l = first_token_r AND (first_token_l = first_name_l OR first_token_r = "
                        "first_name_r)", "first part of a compound first name"),
        cll.CustomLevel("first_name_ph_l = first_name_ph_r", "same phonetic key"),
        cll.DamerauLevenshteinLevel("first_name", 1),
        cll.CustomLevel("list_contains(string_split(other_first_names_r, ' '), first_name_l) OR "
                        "list_contains(string_split(other_first_names_l, ' '), first_name_r)",
                        "first name among the other's first names"),
        cll.JaroWinklerLevel("first_name", 0.88),
        cll.JaroWinklerLevel("first_name", 0.7),
        cll.ElseLevel(),
    ])
    birth_date = cl.CustomComparison(output_column_name="birth_date", comparison_levels=[
        cll.NullLevel("birth_date"),
        cll.ExactMatchLevel("birth_date"),
        cll.CustomLevel("day(CAST(birth_date_l AS DATE)) = month(CAST(birth_date_r AS DATE)) AND "
                        "month(CAST(birth_date_l AS DATE)) = day(CAST(birth_date_r AS DATE)) AND "
                        "year(CAST(birth_date_l AS DATE)) = year(CAST(birth_date_r AS DATE))",
                        "day and month swapped"),
        cll.LevenshteinLevel("birth_date_digits", 1),
        cll.AbsoluteDateDifferenceLevel("birth_date", input_is_string=True, threshold=1, metric="year"),
        cll.ElseLevel(),
    ])
    sex = cl.ExactMatch("sex")
    birth_place = cl.CustomComparison(output_column_name="birth_place", comparison_levels=[
        cll.NullLevel("birth_place"),
        cll.ExactMatchLevel("birth_place", term_frequency_adjustments=True),
        cll.CustomLevel("substr(birth_place_l, 1, 2) = substr(birth_place_r, 1, 2)", "same département"),
        cll.ElseLevel(),
    ])
    # The same candidate pairs as naho: one rule per kind of naho blocking key; a record's name
    # keys are its birth name's and its used name's, hence the four combinations for those.
    blocking: list[Any] = [block_on("k_d")]
    for kind in KEY_KINDS:
        blocking += [block_on(f"k_n{kind}"), block_on(f"k_u{kind}"), f"l.k_n{kind} = r.k_u{kind}",
                     f"l.k_u{kind} = r.k_n{kind}", block_on(f"k_f{kind}")]
    return SettingsCreator(
        link_type="dedupe_only",
        comparisons=[birth_name, first_name, birth_date, sex, birth_place],
        blocking_rules_to_generate_predictions=blocking,
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
    )


def run_splink(population: Population, params: Params, scratch: Path) -> Outcome:
    import duckdb
    from splink import DuckDBAPI, Linker, block_on

    logging.getLogger("splink").setLevel(logging.WARNING)
    normalise_name.cache_clear()  # naho's run warmed them: give Splink's preparation a cold start too
    phonetic_fr.cache_clear()
    start = time.perf_counter()
    path = scratch / "records.csv"
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(SPLINK_COLUMNS)
        writer.writerows(splink_row(r.id, r.traits) for r in population.records)
    con = duckdb.connect()
    types = {c: "VARCHAR" for c in SPLINK_COLUMNS} | {"unique_id": "BIGINT"}
    con.execute(f"CREATE TABLE records AS SELECT * FROM read_csv(?, header = true, columns = {types!r})",
                [str(path)])
    db_api = DuckDBAPI(connection=con)
    table = db_api.register("records", dataset_display_name="records")
    linker = Linker(table, splink_settings(), log_level=logging.WARNING)
    prepared = time.perf_counter()

    exact = "l.birth_name = r.birth_name AND l.first_name = r.first_name AND l.birth_date = r.birth_date"
    linker.training.estimate_probability_two_random_records_match([exact], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=params.u_max_pairs, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("birth_date"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("birth_name", "first_name"))
    trained = time.perf_counter()

    # Scored down to 0.5 so that other thresholds can be examined afterwards (splink_best_f1).
    predictions = linker.inference.predict(threshold_match_probability=0.5)
    rows = predictions.as_duckdbpyrelation().select("unique_id_l, unique_id_r, match_probability").fetchall()
    probabilities = {(min(a, b), max(a, b)): p for a, b, p in rows}
    found = {pair for pair, p in probabilities.items() if p >= SPLINK_THRESHOLD}
    end = time.perf_counter()
    con.close()
    return Outcome(found, end - start, {"splink_prepare_s": prepared - start, "splink_train_s": trained - prepared,
                                        "splink_predict_s": end - trained}, probabilities)


# ---------------------------------------------------------------------------------------------
# Scoring and report


def scores(found: set[tuple[int, int]], truth: set[tuple[int, int]]) -> tuple[float, float, float]:
    true_positives = len(found & truth)
    precision = true_positives / len(found) if found else 0.0
    recall = true_positives / len(truth) if truth else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def best_threshold(probabilities: dict[tuple[int, int], float], truth: set[tuple[int, int]]) -> tuple[float, float]:
    """Splink's F1 at the threshold that would have been best, chosen knowing the truth (an upper bound)."""
    best = (0.0, 0.0)
    for threshold in (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9999):
        f1 = scores({pair for pair, p in probabilities.items() if p >= threshold}, truth)[2]
        best = max(best, (f1, threshold))
    return best


def twins_merged(found: Iterable[tuple[int, int]], population: Population) -> int:
    """Predicted pairs joining records of two twins (the collision RNIV most fears)."""
    person = {r.id: r.person_id for r in population.records}
    twins = {frozenset(pair) for pair in population.twins}
    return sum(frozenset((person[a], person[b])) in twins for a, b in found)


def main() -> int:
    args = common.parser(__doc__.splitlines()[0]).parse_args()
    common.install_sigterm_handler()
    params = Params.for_run(args.quick)
    run_params: dict[str, Any] = common.common_params(args.quick) | {
        "seed": SEED, "duplicate_rate": 0.1, "twin_rate": 0.01, "splink_threshold": SPLINK_THRESHOLD,
        "naho_duplicate_verdicts": list(NAHO_DUPLICATE), "splink_u_max_pairs": params.u_max_pairs,
        "versions": common.package_versions("splink", "duckdb", "rapidfuzz", "faker"),
    }

    start = time.perf_counter()
    population = generate_population(params.records, seed=SEED)
    generate_s = time.perf_counter() - start
    truth = population.true_pairs()
    print(f"{len(population.records):,} records, {len(truth):,} true duplicate pairs, "
          f"{len(population.twins):,} pairs of twins ({generate_s:.1f} s)")

    gc.collect()
    naho = run_naho(population)
    print(f"naho: {naho.seconds:.1f} s")
    gc.collect()
    with common.scratch_directory("naho-bench-identity-") as scratch:
        splink = run_splink(population, params, scratch)
    print(f"splink: {splink.seconds:.1f} s")
    check_keys_match_naho(population)  # after the timings: it fills naho's caches

    naho_p, naho_r, naho_f1 = scores(naho.pairs, truth)
    splink_p, splink_r, splink_f1 = scores(splink.pairs, truth)
    figures: dict[str, float | int] = {
        "records": len(population.records), "true_pairs": len(truth), "twin_pairs": len(population.twins),
        "naho_f1": naho_f1, "splink_f1": splink_f1, "naho_s": naho.seconds, "splink_s": splink.seconds,
        "naho_precision": naho_p, "naho_recall": naho_r, "splink_precision": splink_p, "splink_recall": splink_r,
        "naho_twins_merged": twins_merged(naho.pairs, population),
        "splink_twins_merged": twins_merged(splink.pairs, population),
        **naho.extra, **splink.extra, "generate_s": generate_s,
    }
    assert splink.probabilities is not None
    figures["splink_best_f1"], figures["splink_best_threshold"] = best_threshold(splink.probabilities, truth)
    run_params["loadavg_end"] = common.load_average()
    print(f"F1: naho {naho_f1:.4f} (P {naho_p:.4f}, R {naho_r:.4f}), splink {splink_f1:.4f} "
          f"(P {splink_p:.4f}, R {splink_r:.4f}); splink at its best threshold "
          f"{figures['splink_best_threshold']}: {figures['splink_best_f1']:.4f}")
    title = f"identity_matching ({'quick' if args.quick else 'full'}, {params.records:,} records)"
    common.print_table(title, figures, UNITS, GOALS)
    if not args.no_write:
        path = common.write_results(NAME, figures, UNITS, run_params)
        print(f"\nwritten {path.relative_to(common.ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
