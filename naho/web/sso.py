"""Single sign-on for staff through an OpenID Connect provider (Pro Santé Connect-style).

authlib does the protocol (discovery, state and nonce, PKCE, code exchange, ID-token signature
and claims checks); naho maps the verified identity to a local account (security.service).
"""

from __future__ import annotations

import logging

from authlib.integrations.starlette_client import OAuth, OAuthError
from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from naho.config import Settings
from naho.platform import i18n
from naho.platform.deps import ContainerDep, client_address, get_container
from naho.platform.security import service as security
from naho.platform.security.policy import PUBLIC
from naho.web.pages import safe_next, set_session_cookie
from naho.web.templating import render

log = logging.getLogger(__name__)
router = APIRouter(prefix="/connexion/sso", include_in_schema=False)
#: Starlette session cookie holding only the flow's state, nonce and PKCE verifier.
FLOW_COOKIE = "naho_sso"


def make_oauth(settings: Settings) -> OAuth:
    oauth = OAuth()
    oauth.register(
        name="provider",
        server_metadata_url=settings.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration",
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret,
        client_kwargs={"scope": "openid profile email", "code_challenge_method": "S256"},
    )
    return oauth


def _provider(request: Request):  # type: ignore[no-untyped-def]
    oauth: OAuth | None = getattr(request.app.state, "oauth", None)
    if oauth is None:
        return None
    return oauth.create_client("provider")


def _redirect_uri(request: Request) -> str:
    public = get_container(request).settings.public_url.rstrip("/")
    return (public or str(request.base_url).rstrip("/")) + "/connexion/sso/retour"


@router.get("", dependencies=[Depends(PUBLIC)])
async def start(request: Request, suivant: str | None = None) -> Response:
    provider = _provider(request)
    if provider is None:
        return RedirectResponse("/connexion", status_code=303)
    request.session["next"] = safe_next(suivant)
    return await provider.authorize_redirect(request, _redirect_uri(request))  # type: ignore[no-any-return]


@router.get("/retour", dependencies=[Depends(PUBLIC)])
async def callback(request: Request, container: ContainerDep) -> Response:
    provider = _provider(request)
    if provider is None:
        return RedirectResponse("/connexion", status_code=303)
    next_url = safe_next(request.session.pop("next", None))
    try:
        token = await provider.authorize_access_token(request)
    except OAuthError as exc:
        log.warning("SSO refused: %s", exc)
        return render(request, "shell/login.html", {
            "error": i18n._("Single sign-on failed. Try again or use your password."),
            "next_url": next_url}, status_code=401)
    claims = token.get("userinfo") or {}
    subject = str(claims.get("sub", ""))
    username = str(claims.get(container.settings.oidc_username_claim) or "")
    try:
        signed = await run_in_threadpool(
            security.sign_in_with_oidc, container.uow(), container.settings, subject=subject,
            username=username, address=client_address(request), user_agent=request.headers.get("user-agent"),
        )
    except security.LoginRefused:
        return render(request, "shell/login.html", {
            "error": i18n._("This identity has no naho account. Ask the IT department."),
            "next_url": next_url}, status_code=403)
    response = RedirectResponse(next_url, status_code=303)
    set_session_cookie(response, signed.token, container)
    return response
