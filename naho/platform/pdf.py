"""Documents naho writes as PDF (the discharge letter, an imaging report), drawn with fpdf2
(pure Python, ADR 0013).

The PDF core font Helvetica is used with the Windows-1252 encoding, which holds every French
letter and typographic sign (é, œ, ’, «, €...): no font file to ship or install. A character
outside it (rare in a letter: Greek, CJK) is written as its closest plain form or '?'.
The output is deterministic for a given letter (fixed creation date: the signing time)."""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Sequence
from typing import Protocol

from fpdf import FPDF

ENCODING = "windows-1252"


def _plain(text: str) -> str:
    """Text the core font can write: unchanged when Windows-1252 holds it."""
    out = []
    for char in text:
        try:
            char.encode(ENCODING)
            out.append(char)
        except UnicodeEncodeError:
            folded = unicodedata.normalize("NFKD", char).encode(ENCODING, "ignore").decode(ENCODING)
            out.append(folded or "?")
    return "".join(out)


class Section(Protocol):
    """A titled part of a document: its title, then its lines."""

    @property
    def title(self) -> str: ...

    @property
    def lines(self) -> Sequence[str]: ...


def render(*, title: str, header: Sequence[str], sections: Sequence[Section], footer: Sequence[str],
           created_at: dt.datetime) -> bytes:
    """A4 portrait, one column: the title, the header lines (establishment, patient, stay), each
    section with its title, then the footer (signature)."""
    pdf = FPDF(format="A4")
    pdf.core_fonts_encoding = ENCODING
    pdf.set_creation_date(created_at)
    pdf.set_producer("naho")
    pdf.set_title(_plain(title))
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.set_margins(18, 18, 18)
    pdf.add_page()
    pdf.set_font("Helvetica", style="B", size=15)
    pdf.multi_cell(0, 8, _plain(title), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("Helvetica", size=10)
    for line in header:
        pdf.multi_cell(0, 5, _plain(line), new_x="LMARGIN", new_y="NEXT")
    for section in sections:
        pdf.ln(3)
        pdf.set_font("Helvetica", style="B", size=11)
        pdf.multi_cell(0, 6, _plain(section.title), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=10)
        for line in section.lines:
            pdf.multi_cell(0, 5, _plain(line) or " ", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(5)
    pdf.set_font("Helvetica", style="I", size=10)
    for line in footer:
        pdf.multi_cell(0, 5, _plain(line), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
