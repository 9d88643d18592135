from __future__ import annotations

from collections.abc import Iterator

import pytest

from naho.app import create_app
from naho.config import Settings
from naho.platform.clock import FixedClock
from naho.platform.deps import Container
from naho.platform.outbox import Envelope


@pytest.fixture
def sent() -> list[Envelope]:
    return []


@pytest.fixture
def container(db_url: str, clock: FixedClock, sent: list[Envelope]) -> Iterator[Container]:
    """A naho whose patient mails are collected instead of sent (topics have a receiver)."""
    handlers = {"mail.reminder": sent.append, "mail.portal": sent.append}
    app = create_app(Settings(mode="test", database_url=db_url, workers=False), clock=clock,
                     outbox_handlers=handlers)  # type: ignore[dict-item]
    yield app.state.container
    app.state.container.engine.dispose()
