"""Tables of the medication circuit: dispensing (filled in by its step)."""

from __future__ import annotations

__all__: list[str] = []
