"""In-process domain events, published after the transaction that caused them commits.

Events are past-tense dataclasses defined by each domain (STYLE.md R9). Work that must survive a
crash goes through the outbox instead; events are for immediate, in-process reactions.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[[Any], None]


class EventBus:
    def __init__(self) -> None:
        self._handlers: dict[type, list[Handler]] = defaultdict(list)

    def subscribe(self, event_type: type, handler: Handler) -> None:
        self._handlers[event_type].append(handler)

    def publish(self, event: object) -> None:
        for handler in self._handlers.get(type(event), []):
            try:
                handler(event)
            except Exception:
                # One failing subscriber must not hide the event from the others.
                log.exception("event handler %r failed on %r", handler, event)
