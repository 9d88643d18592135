#!/usr/bin/env bash
# Refresh the gettext catalogues: extract the English message ids from the source tree
# (Python and Jinja2 templates, per babel.cfg) into naho/locale/messages.pot, then merge
# them into the French catalogue naho/locale/fr/LC_MESSAGES/messages.po.
#
# Usage (from anywhere):  scripts/update-translations.sh
# Then translate every new or empty entry in the .po file (no fuzzy matching is done,
# so a changed msgid always shows up as a new, empty entry).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

LOCALE_DIR="naho/locale"
POT="$LOCALE_DIR/messages.pot"
DOMAIN="messages"
LOCALES=(fr)

VERSION="$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -n 1)"

mkdir -p "$LOCALE_DIR"

uv run pybabel --quiet extract \
    --mapping-file babel.cfg \
    --keywords N_ \
    --output-file "$POT" \
    --sort-by-file \
    --project naho \
    --version "$VERSION" \
    --copyright-holder "naho contributors" \
    --charset UTF-8 \
    --width 100 \
    .

for locale in "${LOCALES[@]}"; do
    po="$LOCALE_DIR/$locale/LC_MESSAGES/$DOMAIN.po"
    if [[ -f "$po" ]]; then
        uv run pybabel --quiet update \
            --input-file "$POT" \
            --output-dir "$LOCALE_DIR" \
            --locale "$locale" \
            --domain "$DOMAIN" \
            --no-fuzzy-matching \
            --ignore-obsolete \
            --width 100
    else
        uv run pybabel --quiet init \
            --input-file "$POT" \
            --output-dir "$LOCALE_DIR" \
            --locale "$locale" \
            --domain "$DOMAIN" \
            --width 100
    fi
done

echo "Catalogue(s) updated; untranslated entries:"
for locale in "${LOCALES[@]}"; do
    uv run python - "$LOCALE_DIR/$locale/LC_MESSAGES/$DOMAIN.po" <<'PY'
import sys

from babel.messages.pofile import read_po

path = sys.argv[1]
with open(path, "rb") as handle:
    catalog = read_po(handle)
missing = [m.id for m in catalog if m.id and (not m.string or m.fuzzy)]
print(f"  {path}: {len(missing)} of {sum(1 for m in catalog if m.id)}")
for msgid in missing:
    print(f"    {msgid!r}")
PY
done
