"""A minimal OpenID Connect provider for tests: discovery, authorize, token, JWKS (RS256).

It signs in whoever the test names in `login_as`, as a real provider would after its own login.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlencode

import uvicorn
from fastapi import FastAPI, Form, Request
from fastapi.responses import RedirectResponse
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.conftest import free_port


def make_provider(issuer: str, client_id: str) -> FastAPI:
    key = RSAKey.generate_key(2048, parameters={"kid": "test-key"})
    codes: dict[str, dict[str, str]] = {}
    app = FastAPI()

    @app.get("/.well-known/openid-configuration")
    def discovery() -> dict[str, object]:
        return {
            "issuer": issuer, "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token", "jwks_uri": f"{issuer}/jwks",
            "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
        }

    @app.get("/jwks")
    def jwks() -> dict[str, object]:
        return {"keys": [key.as_dict(private=False)]}

    @app.get("/authorize")
    def authorize(request: Request, redirect_uri: str, state: str, login_as: str,
                  nonce: str = "", client: str = "") -> RedirectResponse:
        code = secrets.token_urlsafe(16)
        codes[code] = {"nonce": nonce, "user": login_as}
        return RedirectResponse(f"{redirect_uri}?{urlencode({'code': code, 'state': state})}", status_code=302)

    @app.post("/token")
    def token(code: str = Form(...)) -> dict[str, object]:
        grant = codes.pop(code)
        now = int(time.time())
        claims = {"iss": issuer, "aud": client_id, "sub": f"psc-{grant['user']}", "iat": now,
                  "exp": now + 300, "nonce": grant["nonce"], "preferred_username": grant["user"]}
        id_token = jwt.encode({"alg": "RS256", "kid": "test-key"}, claims, key)
        return {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "expires_in": 300,
                "id_token": id_token}

    return app


@contextmanager
def running_provider(client_id: str = "naho") -> Iterator[str]:
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    server = uvicorn.Server(uvicorn.Config(make_provider(issuer, client_id), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield issuer
    finally:
        server.should_exit = True
        thread.join(timeout=10)
