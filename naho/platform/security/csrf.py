"""CSRF protection: a token bound to the browser, checked on every unsafe request.

The token is an HMAC of a per-browser random value kept in an HttpOnly SameSite=Strict cookie
(signed double submit, OWASP). A form carries it in `csrf_token`; htmx sends it in the
`X-CSRF-Token` header. Requests authenticated by a bearer token carry no cookie and are exempt.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

CSRF_COOKIE = "naho_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


def new_binding() -> str:
    return secrets.token_urlsafe(24)


def token_for(secret_key: str, binding: str) -> str:
    return hmac.new(secret_key.encode(), f"csrf:{binding}".encode(), hashlib.sha256).hexdigest()


def token_is_valid(secret_key: str, binding: str | None, token: str | None) -> bool:
    if not binding or not token:
        return False
    return hmac.compare_digest(token_for(secret_key, binding), token)
