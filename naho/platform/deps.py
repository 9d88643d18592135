"""What routes receive: the container built by create_app, a unit of work, the actor (R5)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import HTTPConnection

from naho.config import Settings
from naho.platform.clock import Clock
from naho.platform.events import EventBus
from naho.platform.uow import UnitOfWork

if TYPE_CHECKING:
    from naho.platform.security.actor import Actor


@dataclass
class Container:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    clock: Clock
    bus: EventBus
    #: Filled by app.py: ports implemented by domains, looked up by name (e.g. "shell").
    ports: dict[str, Any] = field(default_factory=dict)

    def uow(self) -> UnitOfWork:
        # The outbox topics that have a handler: services enqueue only to those (platform.uow).
        return UnitOfWork(self.session_factory, self.clock, self.bus,
                          channels=frozenset(self.ports.get("outbox_handlers", {})))


def get_container(request: HTTPConnection) -> Container:
    container: Container = request.app.state.container
    return container


def get_uow(request: Request) -> UnitOfWork:
    return get_container(request).uow()


def get_actor(request: Request) -> Actor:
    """The actor the route's policy authenticated (never None on a protected route)."""
    actor: Actor | None = getattr(request.state, "actor", None)
    if actor is None:  # a public route asked for an actor: a programming error
        raise RuntimeError("this route's policy does not authenticate anyone")
    return actor


ContainerDep = Annotated[Container, Depends(get_container)]
UowDep = Annotated[UnitOfWork, Depends(get_uow)]
ActorDep = Annotated["Actor", Depends(get_actor)]


def client_address(request: HTTPConnection) -> str:
    return request.client.host if request.client else "unknown"
