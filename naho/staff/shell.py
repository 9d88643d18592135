"""The staff shell's context port: which establishments to offer and which one is current."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from sqlalchemy.orm import Session, sessionmaker

from naho.platform.security.actor import Actor
from naho.sites import service as sites
from naho.sites.schemas import EstablishmentPublic
from naho.staff import service as staff


@dataclass(frozen=True)
class ShellContext:
    establishments: list[EstablishmentPublic]
    current: EstablishmentPublic


def current_establishment(choices: list[EstablishmentPublic], chosen: str | None,
                          worked_in: list[str]) -> EstablishmentPublic:
    """The session's choice, else where the person works, else the pivot establishment."""
    by_code = {e.code: e for e in choices}
    for code in [chosen, *worked_in]:
        if code and code in by_code:
            return by_code[code]
    return next((e for e in choices if e.pivot), choices[0])


def make_shell_port(factory: sessionmaker[Session]):  # type: ignore[no-untyped-def]
    def shell(request: Request, actor: Actor) -> ShellContext | None:
        cached = getattr(request.state, "shell", None)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        with factory() as s:
            choices = sites.establishment_choices(s)
            if not choices:
                return None
            worked_in = [] if actor.establishment_code else staff.establishments_of(s, actor.account_id)
        context = ShellContext(choices, current_establishment(choices, actor.establishment_code, worked_in))
        request.state.shell = context
        return context

    return shell
