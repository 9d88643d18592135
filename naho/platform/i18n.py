"""Translations through gettext, French first (Babel catalogues in naho/locale).

Message ids are English; `naho/locale/fr/LC_MESSAGES/messages.po` is read at start-up and
compiled in memory, so no build step is needed. Dates are shown in Europe/Paris, dd/mm/yyyy.
"""

from __future__ import annotations

import gettext
import io
from datetime import datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
PARIS = ZoneInfo("Europe/Paris")


@cache
def translations(locale: str) -> gettext.NullTranslations:
    po = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return gettext.NullTranslations()
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def N_(message: str) -> str:
    """Mark a message for extraction without translating it yet (translated when shown)."""
    return message


def _(message: str, locale: str = "fr") -> str:
    return translations(locale).gettext(message)


def local_datetime(value: datetime | None, fmt: str = "%d/%m/%Y %H:%M") -> str:
    """An aware UTC time as the users read it: Paris time, dd/mm/yyyy."""
    if value is None:
        return ""
    return value.astimezone(PARIS).strftime(fmt)


def local_date(value: datetime | None) -> str:
    return local_datetime(value, "%d/%m/%Y")
