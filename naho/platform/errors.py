"""Domain errors and their one translation to HTTP (RFC 9457 problem details), done in app.py.

Each domain raises exceptions named after the broken rule, subclassing these.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A rule refused the request. `status` is how the API reports it."""

    status = 422
    title = "Unprocessable request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFound(DomainError):
    """Absent or not yours to see: both answer the same (STYLE.md R7)."""

    status = 404
    title = "Not found"


class Conflict(DomainError):
    status = 409
    title = "Conflict"


class Forbidden(DomainError):
    status = 403
    title = "Forbidden"


def problem(status: int, title: str, detail: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return body
