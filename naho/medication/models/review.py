"""Tables of the medication circuit: review (filled in by its step)."""

from __future__ import annotations

__all__: list[str] = []
