"""Who is acting: the authenticated person or system behind a request."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from naho.platform.security.rules import Role


@dataclass(frozen=True)
class Actor:
    account_id: uuid.UUID
    username: str
    display_name: str
    roles: frozenset[Role]
    #: "session" (browser cookie), "token" (API bearer), "system" (background work, CLI)
    via: str = "session"
    session_id: uuid.UUID | None = None
    establishment_code: str | None = None
    unit_code: str | None = None
    address: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def has_any(self, *roles: Role) -> bool:
        return bool(self.roles & set(roles))

    @property
    def label(self) -> str:
        return f"{self.display_name} ({self.username})"


SYSTEM_ACTOR = Actor(
    account_id=uuid.UUID(int=0),
    username="system",
    display_name="naho",
    roles=frozenset(),
    via="system",
)
