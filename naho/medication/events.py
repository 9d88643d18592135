"""Events of the medication domain (past tense), published on the in-process bus after the
transaction that caused them commits (platform.events)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class DosesHandedOver:
    """A prepared dispensing batch was handed over for transport from the pharmacy to a unit: the
    robot fleet subscribes to make a mission of it (urgent ones first)."""

    batch_id: uuid.UUID
    establishment_code: str
    from_pharmacy: str  # the pharmacy unit's code
    to_unit: str
    items: int
    urgent: bool
    at: datetime
