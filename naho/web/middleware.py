"""Security headers on every response, and the CSRF binding cookie for every browser."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request, Response

from naho.platform.security import csrf

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


def install(app: object, *, production: bool) -> None:
    headers = security_headers(production)

    async def middleware(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if csrf.CSRF_COOKIE not in request.cookies:
            request.state.csrf_binding = csrf.new_binding()
        response = await call_next(request)
        response.headers.update(headers)
        if request.url.path.startswith(("/api/", "/connexion", "/compte", "/admin", "/personnel")):
            response.headers.setdefault("Cache-Control", "no-store")
        binding = getattr(request.state, "csrf_binding", None)
        if binding:
            response.set_cookie(csrf.CSRF_COOKIE, binding, httponly=True, samesite="strict",
                                secure=production, path="/")
        return response

    app.middleware("http")(middleware)  # type: ignore[attr-defined]
