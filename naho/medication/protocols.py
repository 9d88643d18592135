"""Protocols (order sets): lines of orders applied together, read from `data/protocols.yaml`.

The file is validated at load against the formulary: an unknown field, an unknown product, a route
the product lacks, a malformed dose or schedule, an "if needed" line without its indication stop the
whole load with the protocol and line named (same reader as the formulary, `catalogue._document`).
Applying a protocol (checks, all or nothing) is `service.apply_protocol`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from naho.medication.catalogue import DATA_DIR, FormularyError, _document, _fields, _quantity, _where
from naho.medication.rules import (
    Catalogue,
    Frequency,
    FrequencyKind,
    MedicationRuleError,
    Order,
    Quantity,
    check_route,
)

PROTOCOLS = DATA_DIR / "protocols.yaml"

_TOP_KEYS = {"version", "protocols"}
_PROTOCOL_KEYS = {"code", "name", "description", "source", "lines"}
_LINE_KEYS = {"product", "dose", "route", "frequency", "times_per_day", "every_hours", "max_per_24h", "indication",
              "duration_days", "comment"}


class ProtocolError(FormularyError):
    """The protocols file is malformed or names what the formulary lacks; the message says where."""


@dataclass(frozen=True, slots=True)
class ProtocolLine:
    """One order of a protocol, as the prescriber would type it."""

    product: str
    dose: Quantity
    route: str
    frequency: Frequency
    indication: str | None = None
    duration_days: float | None = None
    comment: str | None = None

    @property
    def order(self) -> Order:
        return Order(self.product, self.dose, self.route, self.frequency)


@dataclass(frozen=True, slots=True)
class Protocol:
    code: str
    name: str
    description: str
    source: str
    lines: tuple[ProtocolLine, ...]


def _line(entry: Any, where: str, catalogue: Catalogue) -> ProtocolLine:
    fields = _fields(entry, _LINE_KEYS, ["product", "dose", "route", "frequency"], where)
    product = catalogue.products.get(str(fields["product"]))
    if product is None:
        raise ProtocolError(f"{where}: product {fields['product']!r} is not in the formulary")
    try:
        route = check_route(str(fields["route"]))
        if route not in product.routes:
            raise ProtocolError(f"{where}: {product.code} has no route {route} ({', '.join(sorted(product.routes))})")
        frequency = Frequency(FrequencyKind(fields["frequency"]), fields.get("times_per_day"),
                              fields.get("every_hours"), fields.get("max_per_24h"))
        line = ProtocolLine(product.code, _quantity(fields["dose"], where), route, frequency,
                            fields.get("indication"), fields.get("duration_days"), fields.get("comment"))
        line.order  # noqa: B018 - a rate needs a continuous schedule: Order says so
    except (MedicationRuleError, ValueError, TypeError) as exc:
        raise ProtocolError(f"{where}: {exc}") from exc
    if frequency.kind is FrequencyKind.IF_NEEDED and not (line.indication or "").strip():
        raise ProtocolError(f"{where}: an 'if needed' line states its indication")
    return line


def parse_protocols(text: str, catalogue: Catalogue, source: str = "protocols.yaml") -> dict[str, Protocol]:
    """The protocols of the file, by code, each line checked against `catalogue`."""
    try:
        return _parse(text, catalogue, source)
    except ProtocolError:
        raise
    except FormularyError as exc:  # the shared field checks speak of the formulary's error
        raise ProtocolError(str(exc)) from exc


def _parse(text: str, catalogue: Catalogue, source: str) -> dict[str, Protocol]:
    top = _document(text, source, _TOP_KEYS, ["version", "protocols"])
    protocols: dict[str, Protocol] = {}
    for entry in top["protocols"]:
        code = entry.get("code") if isinstance(entry, dict) else entry
        where = _where(source, entry if isinstance(entry, dict) else {}, f"protocol {code!r}")
        fields = _fields(entry, _PROTOCOL_KEYS, sorted(_PROTOCOL_KEYS), where)
        if code in protocols:
            raise ProtocolError(f"{where}: code given twice")
        if not isinstance(fields["lines"], list) or not fields["lines"]:
            raise ProtocolError(f"{where}: a protocol has at least one line")
        lines = tuple(_line(line, _where(source, line if isinstance(line, dict) else {}, f"protocol {code!r}, "
                                          f"line {n + 1}"), catalogue) for n, line in enumerate(fields["lines"]))
        protocols[str(code)] = Protocol(str(code), str(fields["name"]), str(fields["description"]),
                                        str(fields["source"]), lines)
    return protocols


def load_protocols(catalogue: Catalogue, path: Path = PROTOCOLS) -> dict[str, Protocol]:
    """The shipped (or given) protocols file, validated against the formulary in force."""
    return parse_protocols(path.read_text(encoding="utf-8"), catalogue, path.name)
