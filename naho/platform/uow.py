"""Unit of work: one transaction per use case, events published only after commit (R3)."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.orm import Session, sessionmaker

from naho.platform.clock import Clock
from naho.platform.events import EventBus


class UnitOfWork:
    """`with uow:` opens a session; `uow.commit()` commits then publishes the collected events.

    Leaving the block without commit rolls everything back. `channels` are the outbox topics
    someone delivers (a handler is registered): a service enqueues to a topic only if it is
    there, so an instance without a receiver piles up no message that would die undelivered.
    """

    session: Session
    #: Class default: a unit of work built without channels (tests, SharedTransaction) sends nothing.
    channels: frozenset[str] = frozenset()

    def __init__(self, session_factory: sessionmaker[Session], clock: Clock, bus: EventBus, *,
                 channels: frozenset[str] = frozenset()) -> None:
        self._factory = session_factory
        self.clock = clock
        self._bus = bus
        self.channels = channels
        self._events: list[object] = []

    def __enter__(self) -> UnitOfWork:
        self.session = self._factory()
        self._events = []
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.session.rollback()
        self.session.close()

    def emit(self, event: object) -> None:
        self._events.append(event)

    def commit(self) -> None:
        self.session.commit()
        events, self._events = self._events, []
        for event in events:
            self._bus.publish(event)
