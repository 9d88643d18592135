"""The staff shell's context port: the establishment and unit a person works in right now."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from sqlalchemy.orm import Session, sessionmaker

from naho.platform.security.actor import Actor
from naho.sites import service as sites
from naho.sites.schemas import EstablishmentPublic, UnitChoice
from naho.staff import service as staff


@dataclass(frozen=True)
class ShellContext:
    establishments: list[EstablishmentPublic]
    current: EstablishmentPublic
    units: list[UnitChoice]
    current_unit: UnitChoice | None
    #: Units of the current establishment where the person is assigned (offered first).
    my_unit_codes: frozenset[str]


def current_establishment(choices: list[EstablishmentPublic], chosen: str | None,
                          workplaces: list[tuple[str, str]]) -> EstablishmentPublic:
    """The session's choice, else where the person works (primary first), else the pivot."""
    by_code = {e.code: e for e in choices}
    for code in [chosen, *(establishment for establishment, _unit in workplaces)]:
        if code and code in by_code:
            return by_code[code]
    return next((e for e in choices if e.pivot), choices[0])


def current_unit(units: list[UnitChoice], chosen: str | None, my_units: list[str]) -> UnitChoice | None:
    """The session's unit if it is in this establishment, else the person's own unit there."""
    by_code = {u.code: u for u in units}
    for code in [chosen, *my_units]:
        if code and code in by_code:
            return by_code[code]
    return None


def make_shell_port(factory: sessionmaker[Session]):  # type: ignore[no-untyped-def]
    def shell(request: Request, actor: Actor) -> ShellContext | None:
        cached = getattr(request.state, "shell", None)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        with factory() as s:
            choices = sites.establishment_choices(s)
            if not choices:
                return None
            workplaces = staff.workplaces_of(s, actor.account_id)
            establishment = current_establishment(choices, actor.establishment_code, workplaces)
            units = sites.unit_choices(s, establishment.code)
        mine = [unit for est, unit in workplaces if est == establishment.code]
        context = ShellContext(
            establishments=choices, current=establishment, units=units,
            current_unit=current_unit(units, actor.unit_code, mine), my_unit_codes=frozenset(mine),
        )
        request.state.shell = context
        return context

    return shell
