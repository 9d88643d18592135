"""Pure rules of laboratory orders: the catalogue, urgencies, the numbers printed on labels and
the status an order goes through, from the physician's order to the final result.

No session, clock or HL7 here (STYLE.md R1, R13): values in, value or a rule-named error out.
Sources: HL7 v2.5 chapter 4 (ORC-1 order control NW / CA, TQ1-9 priority S / A / R), table 0487
(specimen types), LOINC (test codes, check digit by the mod 10 algorithm of the LOINC manual
§12.4), docs/adr/0015-lab-orders.md (the status model).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from naho.results.rules import NotLoinc, ResultRuleError, check_loinc


class OrderRuleError(ResultRuleError):
    """An order breaks a rule; the class name is the rule's name."""


class BadCatalogue(OrderRuleError):
    """The catalogue file is malformed (unknown container, bad LOINC, missing field)."""


class UnknownTest(OrderRuleError):
    """A test code the catalogue does not hold."""


class NoTestOrdered(OrderRuleError):
    """An order form with no test."""


class OrderCancelled(OrderRuleError):
    """The order was cancelled: nothing more is done with it."""


class AlreadyCollected(OrderRuleError):
    """The specimen of this order was already collected."""


class CollectedOrderNotCancellable(OrderRuleError):
    """Once the specimen is collected the order goes to the laboratory: it is cancelled there."""


class NotASpecimenLabel(OrderRuleError):
    """The scanned or typed text is not a specimen number naho prints."""


class Urgency(StrEnum):
    """How soon the laboratory must report; HL7 priority codes (TQ1-9, table 0485)."""

    ROUTINE = "routine"
    URGENT = "urgent"
    STAT = "stat"

    @property
    def hl7(self) -> str:
        return {"routine": "R", "urgent": "A", "stat": "S"}[self.value]


class OrderStatus(StrEnum):
    """Where an order stands, in the order it goes (ADR 0015)."""

    ORDERED = "ordered"
    COLLECTED = "collected"
    RECEIVED = "received"  # the laboratory has it: acknowledged after collection, or a first result
    PRELIMINARY = "preliminary"
    FINAL = "final"
    CANCELLED = "cancelled"


_RANK = {s: n for n, s in enumerate((OrderStatus.ORDERED, OrderStatus.COLLECTED, OrderStatus.RECEIVED,
                                     OrderStatus.PRELIMINARY, OrderStatus.FINAL))}


class Transmission(StrEnum):
    """Where the order's last message to the laboratory stands (beside the status)."""

    PENDING = "pending"  # in the outbox, not acknowledged yet
    ACCEPTED = "accepted"  # AA
    ERROR = "error"  # AE or AR: the outbox tries again, then the message is dead
    NOT_SENT = "not_sent"  # no laboratory interface configured


# --- the catalogue -----------------------------------------------------------------------------------

CONTAINER_COLOURS = frozenset({"lavender", "green", "light-blue", "gold", "red", "grey", "culture-bottle"})
SPECIMEN_TYPES = frozenset({"BLD", "PLAS", "SER", "UR"})


@dataclass(frozen=True, slots=True)
class Container:
    code: str
    label: str
    colour: str
    specimen_type: str
    volume_ml: float


@dataclass(frozen=True, slots=True)
class Test:
    """An orderable test or panel."""

    code: str
    label: str
    loinc: str | None
    container: Container
    components: tuple[tuple[str, str], ...]  # (LOINC, label) the laboratory reports for a panel


@dataclass(frozen=True, slots=True)
class Catalogue:
    tests: Mapping[str, Test]

    def test(self, code: str) -> Test:
        try:
            return self.tests[code]
        except KeyError:
            raise UnknownTest(f"{code!r} is not in the laboratory catalogue") from None


def loinc_check_digit(number: str) -> int:
    """The check digit of a LOINC code's number (mod 10, LOINC manual §12.4): digits doubled
    from the rightmost one every other digit, the digits of the products summed."""
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char) * (2 if position % 2 == 0 else 1)
        total += digit // 10 + digit % 10
    return (10 - total % 10) % 10


def valid_loinc(code: str) -> str:
    """The code if it is LOINC-shaped with the right check digit; NotLoinc otherwise."""
    number, _, digit = check_loinc(code).partition("-")
    if loinc_check_digit(number) != int(digit):
        raise NotLoinc(f"{code!r} has a wrong LOINC check digit")
    return code


_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,19}$")


def load_catalogue(data: Mapping[str, object]) -> Catalogue:
    """The catalogue file as read by yaml.safe_load (see the file's header for its shape)."""
    try:
        raw_containers = data["containers"]
        raw_tests = data["tests"]
        assert isinstance(raw_containers, Mapping) and isinstance(raw_tests, Mapping), "containers and tests"
        containers: dict[str, Container] = {}
        for code, spec in raw_containers.items():
            assert isinstance(spec, Mapping), f"container {code}"
            colour, kind = str(spec["colour"]), str(spec["specimen_type"])
            if colour not in CONTAINER_COLOURS:
                raise BadCatalogue(f"container {code}: colour {colour!r} is not one of {sorted(CONTAINER_COLOURS)}")
            if kind not in SPECIMEN_TYPES:
                raise BadCatalogue(f"container {code}: specimen type {kind!r} is not one of {sorted(SPECIMEN_TYPES)}")
            containers[str(code)] = Container(str(code), str(spec["label"]), colour, kind, float(spec["volume_ml"]))
        tests: dict[str, Test] = {}
        for code, spec in raw_tests.items():
            assert isinstance(spec, Mapping), f"test {code}"
            if not _CODE.match(str(code)):
                raise BadCatalogue(f"test code {code!r}: capitals, digits, - and _ only (20 at most)")
            container = containers.get(str(spec["container"]))
            if container is None:
                raise BadCatalogue(f"test {code}: unknown container {spec['container']!r}")
            components = spec.get("components") or {}
            assert isinstance(components, Mapping), f"test {code} components"
            parts = tuple((valid_loinc(str(k)), str(v)) for k, v in components.items())
            loinc = spec.get("loinc")
            if loinc is None and not parts:
                raise BadCatalogue(f"test {code}: a test without LOINC code must list its components")
            tests[str(code)] = Test(str(code), str(spec["label"]), valid_loinc(str(loinc)) if loinc else None,
                                    container, parts)
        if not tests:
            raise BadCatalogue("the catalogue holds no test")
        return Catalogue(tests)
    except (AssertionError, KeyError, TypeError, ValueError, NotLoinc) as exc:
        raise BadCatalogue(f"laboratory catalogue: {exc}") from exc


def choose_tests(catalogue: Catalogue, codes: Iterable[str]) -> list[Test]:
    """The tests of an order form, each once, in the catalogue's order."""
    wanted = {c.strip() for c in codes if c.strip()}
    if not wanted:
        raise NoTestOrdered("choose at least one test")
    for code in wanted:
        catalogue.test(code)
    return [t for code, t in catalogue.tests.items() if code in wanted]


def specimens_of(tests: Sequence[Test]) -> list[tuple[Container, list[Test]]]:
    """One specimen per container: tests drawn into the same kind of tube share it (one label)."""
    groups: dict[str, tuple[Container, list[Test]]] = {}
    for test in tests:
        groups.setdefault(test.container.code, (test.container, []))[1].append(test)
    return list(groups.values())


# --- numbers -----------------------------------------------------------------------------------------

PLACER_PREFIX = "O"
SPECIMEN_PREFIX = "S"
GROUP_PREFIX = "G"
_SPECIMEN = re.compile(r"^S\d{10}$")


def placer_number(n: int) -> str:
    """The placer order number (ORC-2 / OBR-2): `O` + 10 digits, from naho's counter."""
    return f"{PLACER_PREFIX}{n:010d}"


def is_placer_number(value: str) -> bool:
    """Is this a placer order number naho gives (`O` + 10 digits)?"""
    return len(value) == 11 and value.startswith(PLACER_PREFIX) and value[1:].isdigit()


def specimen_number(n: int) -> str:
    """The specimen number printed on the label (Code 128) and sent in SPM-2: `S` + 10 digits."""
    return f"{SPECIMEN_PREFIX}{n:010d}"


def group_number(n: int) -> str:
    """The placer group number (ORC-4) of the tests ordered together: `G` + 10 digits."""
    return f"{GROUP_PREFIX}{n:010d}"


def read_specimen_label(text: str) -> str:
    """The specimen number a scanner typed (it may add spaces or a newline); upper-cased."""
    value = text.strip().upper()
    if not _SPECIMEN.match(value):
        raise NotASpecimenLabel(f"{text.strip()!r} is not a specimen label (S and 10 digits)")
    return value


# --- status ------------------------------------------------------------------------------------------

def collect(status: OrderStatus) -> OrderStatus:
    """The nurse drew the specimen: only an order still waiting for it."""
    if status is OrderStatus.CANCELLED:
        raise OrderCancelled("the order was cancelled: do not collect its specimen")
    if status is not OrderStatus.ORDERED:
        raise AlreadyCollected("the specimen was already collected")
    return OrderStatus.COLLECTED


def cancel(status: OrderStatus) -> OrderStatus:
    """The physician withdraws the order: only before its specimen is collected."""
    if status is OrderStatus.CANCELLED:
        raise OrderCancelled("the order is already cancelled")
    if status is not OrderStatus.ORDERED:
        raise CollectedOrderNotCancellable("the specimen is collected: ask the laboratory to cancel the test")
    return OrderStatus.CANCELLED


def acknowledged(status: OrderStatus) -> OrderStatus:
    """The laboratory accepted the order (AA). Once the specimen is collected this says the
    laboratory has registered it: received; before, the order just waits for its specimen."""
    return OrderStatus.RECEIVED if status is OrderStatus.COLLECTED else status


def after_results(status: OrderStatus, result_statuses: Iterable[str]) -> OrderStatus:
    """The status once results (OBX-11 statuses of the report's current results) arrived: final
    when every valid result is final or corrected, else preliminary; never backwards, and a
    cancelled order stays cancelled (its late results are filed all the same)."""
    statuses = [s for s in result_statuses if s not in ("X", "D")]
    if status is OrderStatus.CANCELLED:
        return status
    if not statuses:
        return max(status, OrderStatus.RECEIVED, key=_RANK.__getitem__)
    proposed = OrderStatus.FINAL if all(s in ("F", "C") for s in statuses) else OrderStatus.PRELIMINARY
    return max(status, proposed, key=_RANK.__getitem__)
