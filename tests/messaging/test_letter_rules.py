"""Pure rules of the discharge letter: the draft's order, the lock, the sections, the PDF's text."""

from __future__ import annotations

import datetime as dt
import re
import zlib
from zoneinfo import ZoneInfo

import pytest

from naho.messaging import letter_rules as rules
from naho.platform import pdf as pdf_document

AT = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)


def _draft() -> rules.LetterContent:
    return rules.draft(
        patient_name="DEPREZ Lucien", patient_birth_date=dt.date(1937, 11, 8), patient_sex="M", ipp="10000001",
        ins=None, nda="100000001", establishment="LENS", unit="Médecine interne", admitted_at=AT,
        discharged_at=AT + dt.timedelta(days=5),
        diagnoses=[rules.Diagnosis("J18.9", "Pneumopathie", "resolved"),
                   rules.Diagnosis("I50.0", "Insuffisance cardiaque", "active")],
        treatments=[rules.Treatment("stopped", "Mopral", None, None, "Pas d'indication"),
                    rules.Treatment("new", "Lovenox", "4000 UI", "1/j", None)],
        pending_results=[], appointments=[rules.FollowUp(AT + dt.timedelta(days=30), "Cardiologie", "LENS")],
        allergies=["Pénicillines"])


def test_the_draft_lists_active_diagnoses_and_new_treatments_first() -> None:
    content = _draft()
    assert [d.icd10 for d in content.diagnoses] == ["I50.0", "J18.9"]
    assert [t.change for t in content.treatments] == ["new", "stopped"]
    assert rules.from_json(rules.to_json(content)) == content


def test_free_text_is_edited_until_signed_and_only_free_text() -> None:
    edited = rules.edit(_draft(), rules.LetterStatus.DRAFT, {"reasons": "  Dyspnée\r\nfébrile  "})
    assert edited.reasons == "Dyspnée\nfébrile"
    with pytest.raises(rules.LetterAlreadySigned):
        rules.edit(edited, rules.LetterStatus.SIGNED, {"reasons": "autre"})
    with pytest.raises(rules.LetterSectionInvalid):
        rules.edit(edited, rules.LetterStatus.DRAFT, {"diagnoses": "I10"})
    with pytest.raises(rules.LetterSectionInvalid):
        rules.edit(edited, rules.LetterStatus.DRAFT, {"synthesis": "x" * (rules.MAX_SECTION_CHARS + 1)})
    with pytest.raises(rules.LetterAlreadySigned):
        rules.check_signable(rules.LetterStatus.SIGNED)


def test_every_section_has_a_loinc_code_and_empty_ones_say_so() -> None:
    sections = rules.sections(_draft(), {"new": "nouveau"}, ZoneInfo("Europe/Paris"))
    assert {s.key for s in sections} <= set(rules.SECTION_LOINC)
    by_key = {s.key: s for s in sections}
    assert by_key["reasons"].lines == ("-",) and by_key["pending_results"].lines == ("-",)
    assert by_key["treatments"].lines[0] == "[nouveau] Lovenox 4000 UI 1/j"
    assert by_key["follow_up"].lines == ("31/12/2026 10:30 Cardiologie - LENS",)  # Paris time


def test_the_pdf_writes_french_text_with_the_core_font() -> None:
    pdf = pdf_document.render(title="Lettre de liaison", header=["Œdème, cœur « ok » – 5 €, Ωmega"],
                            sections=[rules.Section("reasons", "Motif", ("Dyspnée d’effort",))], footer=[],
                            created_at=AT)
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    text = b"".join(zlib.decompress(s) for s in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S)
                    if s[:1] == b"x").decode("cp1252")
    assert "Œdème, cœur « ok » – 5 €, ?mega" in text and "Dyspnée d’effort" in text
    assert pdf_document.render(title="x", header=[], sections=[], footer=[], created_at=AT) == pdf_document.render(
        title="x", header=[], sections=[], footer=[], created_at=AT)
