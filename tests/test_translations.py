"""The French catalogue is complete: every message id found in the source tree is translated.

Messages are extracted at test time (same method map and keywords as babel.cfg and
scripts/update-translations.sh), so a new `_()` in a template or `N_()` in Python fails here
until `scripts/update-translations.sh` is run and the new entries are translated.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

import naho.platform.i18n as i18n

ROOT = Path(__file__).resolve().parent.parent
FRENCH_PO = ROOT / "naho" / "locale" / "fr" / "LC_MESSAGES" / "messages.po"

METHOD_MAP = [
    ("naho/**.py", "python"),
    ("naho/**/templates/**.html", "jinja2"),
]
OPTIONS_MAP = {
    "naho/**/templates/**.html": {"extensions": "jinja2.ext.i18n"},
}
KEYWORDS = {**DEFAULT_KEYWORDS, "N_": None}


def _extracted_messages() -> dict[tuple[str, str | None], list[str]]:
    """Each (message id, context) of the source tree, with where it is used."""
    found: dict[tuple[str, str | None], list[str]] = {}
    for filename, lineno, message, _comments, context in extract_from_dir(
        str(ROOT), method_map=METHOD_MAP, options_map=OPTIONS_MAP, keywords=KEYWORDS,
    ):
        # ngettext yields (singular, plural): the catalogue is keyed by the singular.
        msgid = message[0] if isinstance(message, tuple) else message
        if msgid:
            found.setdefault((msgid, context), []).append(f"{filename}:{lineno}")
    return found


def test_every_message_has_a_french_translation() -> None:
    extracted = _extracted_messages()
    assert extracted, "no message extracted: is the method map still right?"
    with FRENCH_PO.open("rb") as handle:
        catalog = read_po(handle, locale="fr")

    missing = []
    for (msgid, context), where in sorted(extracted.items(), key=lambda item: item[1]):
        entry = catalog.get(msgid, context)
        translated = entry is not None and not entry.fuzzy and (
            all(entry.string) if isinstance(entry.string, tuple) else bool(entry.string)
        )
        if not translated:
            missing.append(f"  {msgid!r} ({', '.join(where)})")

    assert not missing, (
        f"{len(missing)} message(s) without a French translation in {FRENCH_PO} "
        "(run scripts/update-translations.sh, then translate them):\n" + "\n".join(missing)
    )


def test_catalogue_is_french() -> None:
    with FRENCH_PO.open("rb") as handle:
        catalog = read_po(handle, locale="fr")
    assert str(catalog.locale) == "fr"
    assert catalog.plural_forms == "nplurals=2; plural=(n > 1);"


def test_gettext_returns_french() -> None:
    i18n.translations.cache_clear()
    assert i18n._("Sign in") == "Se connecter"
