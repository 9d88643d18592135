"""Server-rendered pages: one Jinja2 environment for all domains, French through gettext.

Each domain keeps its templates in `naho/<domain>/templates/<domain>/`; the shells and shared
components live in `naho/web/templates/`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

from naho.platform.deps import get_container
from naho.platform.i18n import N_, local_date, local_datetime, translations
from naho.platform.security import csrf

#: English labels of roles (message ids), translated on screen.
ROLE_LABELS = {
    "physician": N_("Physician"),
    "nurse": N_("Nurse"),
    "pharmacist": N_("Pharmacist"),
    "pharmacy_technician": N_("Pharmacy technician"),
    "admission_clerk": N_("Admission clerk"),
    "porter": N_("Porter"),
    "it_admin": N_("IT administrator"),
    "identity_vigilance": N_("Identity vigilance"),
    "medical_information": N_("Medical information"),
    "interface": N_("Interface"),
    "patient": N_("Patient"),
}

#: English labels of unit kinds (naho/sites/rules.py UNIT_KINDS), translated on screen.
UNIT_KIND_LABELS = {
    "emergency": N_("Emergency"),
    "icu": N_("Intensive care"),
    "continuing_care": N_("Continuing care"),
    "operating_rooms": N_("Operating rooms"),
    "recovery": N_("Recovery room"),
    "medicine": N_("Medicine"),
    "surgery": N_("Surgery"),
    "maternity": N_("Maternity"),
    "neonatology": N_("Neonatology"),
    "paediatrics": N_("Paediatrics"),
    "psychiatry": N_("Psychiatry"),
    "geriatrics": N_("Geriatrics"),
    "rehabilitation": N_("Rehabilitation"),
    "oncology": N_("Oncology"),
    "outpatient": N_("Outpatient care"),
    "pharmacy": N_("Pharmacy"),
    "laboratory": N_("Laboratory"),
    "imaging": N_("Imaging"),
}

PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def make_templates(locale: str) -> Jinja2Templates:
    loaders = [FileSystemLoader(str(PACKAGE_ROOT / "web" / "templates"))]
    loaders += [FileSystemLoader(str(p)) for p in sorted(PACKAGE_ROOT.glob("*/templates")) if p.parent.name != "web"]
    env = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
    env.filters["local_datetime"] = local_datetime
    env.filters["local_date"] = local_date
    env.globals["lang"] = locale
    gettext = translations(locale).gettext
    env.filters["profession"] = lambda role: gettext(ROLE_LABELS.get(str(role), str(role)))
    env.filters["unit_kind"] = lambda kind: gettext(UNIT_KIND_LABELS.get(str(kind), str(kind)))
    return Jinja2Templates(env=env)


def csrf_token(request: Request) -> str:
    binding = getattr(request.state, "csrf_binding", None) or request.cookies.get(csrf.CSRF_COOKIE)
    return csrf.token_for(get_container(request).settings.secret_key, binding or "")


def render(request: Request, template: str, context: dict[str, Any] | None = None,
           status_code: int = 200) -> HTMLResponse:
    container = get_container(request)
    actor = getattr(request.state, "actor", None)
    shell = container.ports.get("shell")
    ctx: dict[str, Any] = {
        "actor": actor,
        "csrf_token": csrf_token(request),
        "development": container.settings.development,
        "oidc_enabled": container.settings.oidc_enabled,
        "oidc_label": container.settings.oidc_label,
        "shell": shell(request, actor) if (shell and actor) else None,
        "path": request.url.path,
    }
    ctx.update(context or {})
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(request, template, ctx, status_code=status_code)
