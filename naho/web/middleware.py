"""Security headers on every response, and the CSRF binding cookie for every browser."""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from naho.platform.security import csrf

#: Pages that hold personal data are never cached by the browser or a proxy.
NO_STORE_PREFIXES = ("/api/", "/fhir/", "/connexion", "/compte", "/admin", "/accueil", "/recherche")

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "media-src 'self' blob:",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])


def security_headers(production: bool) -> dict[str, str]:
    headers = {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
        "Permissions-Policy": "geolocation=(), payment=(), usb=()",
        "Cross-Origin-Opener-Policy": "same-origin",
    }
    if production:
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    return headers


class ShellMiddleware:
    """Pure ASGI (no per-request task or body copy, unlike BaseHTTPMiddleware)."""

    def __init__(self, app: ASGIApp, *, production: bool) -> None:
        self.app = app
        self.production = production
        self.headers = security_headers(production)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        binding = None
        if csrf.CSRF_COOKIE not in Request(scope).cookies:
            binding = csrf.new_binding()
            scope.setdefault("state", {})["csrf_binding"] = binding
        no_store = scope["path"].startswith(NO_STORE_PREFIXES)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    if name not in headers:  # a route may set a stricter one (documents: sandbox)
                        headers[name] = value
                if no_store and "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
                if binding:
                    cookie = f"{csrf.CSRF_COOKIE}={binding}; HttpOnly; Path=/; SameSite=strict"
                    headers.append("set-cookie", cookie + ("; Secure" if self.production else ""))
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: FastAPI, *, production: bool) -> None:
    app.add_middleware(ShellMiddleware, production=production)
