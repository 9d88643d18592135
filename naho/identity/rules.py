"""Pure rules of patient identity (identitovigilance): confidence statuses, proofs, INS, traits, duplicates.

Source throughout: Référentiel national d'identitovigilance (RNIV), volet 1 "Principes communs",
v2.0, December 2024 (`shared/refs/rniv-1-principes-communs-v2.0.txt`); section numbers below are
that document's. Values in, value or a domain error out: no database, clock or randomness here.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum
from functools import lru_cache
from typing import Literal, assert_never

from rapidfuzz.distance import DamerauLevenshtein

# ---------------------------------------------------------------------------------------------
# Errors, named after the broken rule


class IdentityRuleError(ValueError):
    """Base class of the identity domain's rule errors."""


class IdentityTransitionError(IdentityRuleError):
    """The requested change of confidence status is not allowed (RNIV §3.2.2)."""


class LowTrustProofError(IdentityTransitionError):
    """Only a high-trust identification device (or its equivalent) may validate an identity (EXI SI 10)."""


class RestrictedIdentityError(IdentityTransitionError):
    """A doubtful or fictitious identity stays provisional and may not query INSi (EXI SI 09)."""


class NoInsToVerifyError(IdentityTransitionError):
    """An INS verification failed on an identity that holds no INS."""


class IdentityAttributeError(IdentityRuleError):
    """The attributes do not fit the status (RNIV §3.2.3, matrix of statuses and attributes)."""


class AttributeRequiresProvisionalError(IdentityAttributeError):
    """The doubtful and fictitious attributes may only go with a provisional identity."""


class DoubtfulFictitiousExclusiveError(IdentityAttributeError):
    """The doubtful and fictitious attributes may not be combined."""


class InsFormatError(IdentityRuleError):
    """The value is not the 13 characters of a NIR/NIA (digits, 2A/2B for Corsica)."""


class UnknownInsAuthorityError(IdentityRuleError):
    """The OID is not one of the INS assigning authorities."""


# ---------------------------------------------------------------------------------------------
# Confidence statuses and attributes (RNIV §3.2)


class IdentityStatus(StrEnum):
    """The four confidence statuses: INS retrieved [I+/I-] x checked against a high-trust proof [C+/C-]."""

    PROVISIONAL = "provisional"  # provisoire [I-, C-]
    RETRIEVED = "retrieved"  # récupérée [I+, C-]
    VALIDATED = "validated"  # validée [I-, C+]
    QUALIFIED = "qualified"  # qualifiée [I+, C+]

    @property
    def ins_retrieved(self) -> bool:
        return self in (IdentityStatus.RETRIEVED, IdentityStatus.QUALIFIED)

    @property
    def document_checked(self) -> bool:
        return self in (IdentityStatus.VALIDATED, IdentityStatus.QUALIFIED)


def _status(*, ins: bool, checked: bool) -> IdentityStatus:
    if ins:
        return IdentityStatus.QUALIFIED if checked else IdentityStatus.RETRIEVED
    return IdentityStatus.VALIDATED if checked else IdentityStatus.PROVISIONAL


class IdentityAttribute(StrEnum):
    """Attributes of an identity (RNIV §3.2.3): homonyme, douteuse, fictive."""

    HOMONYM = "homonym"
    DOUBTFUL = "doubtful"
    FICTITIOUS = "fictitious"


_PROVISIONAL_ONLY = frozenset({IdentityAttribute.DOUBTFUL, IdentityAttribute.FICTITIOUS})


def check_attributes(status: IdentityStatus, attributes: Iterable[IdentityAttribute]) -> None:
    """Refuse attributes that RNIV §3.2.3 forbids with this status.

    Homonym goes with any status; doubtful and fictitious only with provisional, and never together.
    """
    present = frozenset(attributes)
    if present >= _PROVISIONAL_ONLY:
        raise DoubtfulFictitiousExclusiveError("an identity cannot be both doubtful and fictitious")
    if present & _PROVISIONAL_ONLY and status is not IdentityStatus.PROVISIONAL:
        raise AttributeRequiresProvisionalError(f"a {status} identity cannot be doubtful or fictitious")


@dataclass(frozen=True)
class IdentityState:
    """Confidence of one local identity: its status and attributes, always a legal combination."""

    status: IdentityStatus = IdentityStatus.PROVISIONAL
    attributes: frozenset[IdentityAttribute] = frozenset()

    def __post_init__(self) -> None:
        check_attributes(self.status, self.attributes)

    @property
    def restricted(self) -> bool:
        """Doubtful or fictitious: no promotion, no INSi call (EXI SI 09)."""
        return bool(self.attributes & _PROVISIONAL_ONLY)


def ins_usable(status: IdentityStatus, attributes: Iterable[IdentityAttribute] = ()) -> bool:
    """May the INS be used as an identifier (exchanges, documents)? Only when qualified (EXI SI 08).

    Doubtful or fictitious identities are provisional by construction; the check is repeated here so
    that this gate stands on its own.
    """
    return status is IdentityStatus.QUALIFIED and not (frozenset(attributes) & _PROVISIONAL_ONLY)


# ---------------------------------------------------------------------------------------------
# Identification devices (RNIV §3.3.2, §3.3.3, §4.9.2.1)


class ProofKind(StrEnum):
    """The device checked against the recorded traits; its kind must be recorded (EXI PP 09)."""

    # High trust, general case (§3.3.2)
    NATIONAL_ID_CARD = "national_id_card"  # French, or EU/EEA, Switzerland, Monaco, Andorra, ..., UK
    PASSPORT = "passport"
    RESIDENCE_PERMIT = "residence_permit"  # titre de séjour
    EIDAS_ELECTRONIC_ID = "eidas_electronic_id"  # eIDAS substantial/high: e-CNI, Appli carte Vitale, ...
    # Accepted equivalents in particular cases (§3.3.3.2 minors, §4.9.2.1 trusted partners)
    MINOR_BIRTH_RECORD_WITH_PARENT_ID = "minor_birth_record_with_parent_id"
    MINOR_TRAVEL_DOCUMENT = "minor_travel_document"  # document de circulation pour étranger mineur
    TRUSTED_THIRD_PARTY = "trusted_third_party"  # identity received validated under a trust contract
    # Lower probative value: never validate (§3.3.2 "tous les autres documents")
    OTHER_COUNTRY_ID_CARD = "other_country_id_card"  # identity card of a country outside the list above
    BIRTH_CERTIFICATE = "birth_certificate"  # extrait d'acte de naissance
    FAMILY_RECORD_BOOK = "family_record_book"  # livret de famille
    VITALE_CARD = "vitale_card"
    DRIVING_LICENCE = "driving_licence"
    DOCUMENT_COPY = "document_copy"  # copy of a high-trust document without the original
    OTHER = "other"


HIGH_TRUST_PROOFS = frozenset({
    ProofKind.NATIONAL_ID_CARD, ProofKind.PASSPORT, ProofKind.RESIDENCE_PERMIT,
    ProofKind.EIDAS_ELECTRONIC_ID, ProofKind.MINOR_BIRTH_RECORD_WITH_PARENT_ID,
    ProofKind.MINOR_TRAVEL_DOCUMENT, ProofKind.TRUSTED_THIRD_PARTY,
})


def is_high_trust(kind: ProofKind) -> bool:
    """Does this device (or accepted equivalent) allow the validated/qualified statuses? (§3.3.2-3.3.3)

    The EHPAD case (birth record + Vitale card with photo) is left out on purpose: RNIV §3.3.3.1
    limits it to direct admissions to a nursing home; a hospital applies the general rule.
    """
    return kind in HIGH_TRUST_PROOFS


# ---------------------------------------------------------------------------------------------
# Status transitions (RNIV §3.2.2, §3.2.3, §4.5, §4.8)


class DowngradeReason(StrEnum):
    """Why confidence is lowered; the first two cast doubt on the identity itself."""

    DOUBT = "doubt"  # confused patient, suspected identity theft, mass casualty event (§3.2.3)
    VITALE_FRAUD = "vitale_fraud"  # fraudulent use of a Vitale card (§3.2.2)
    INS_INCONSISTENT = "ins_inconsistent"  # INSi retrieval incoherent with a validated identity (§3.2.2)
    INS_DISCORDANCE = "ins_discordance"  # INS traits found discordant with the ID document (§4.5.3)
    STRICT_TRAIT_CHANGE = "strict_trait_change"  # e.g. change of sex or name by judgement (Annex III)

    @property
    def marks_doubtful(self) -> bool:
        return self in (DowngradeReason.DOUBT, DowngradeReason.VITALE_FRAUD)


@dataclass(frozen=True)
class DocumentChecked:
    """Recorded traits were checked against a device presented in the original."""

    proof: ProofKind


@dataclass(frozen=True)
class InsRetrieved:
    """INSi returned exactly one identity (code 00) whose traits were accepted as coherent (§4.4.1, §4.5)."""


@dataclass(frozen=True)
class InsVerified:
    """INSi verification confirmed an INS already held or received from a partner (§4.8, §4.9.2)."""


@dataclass(frozen=True)
class InsVerificationFailed:
    """INSi verification failed: the INS is removed; validated, or provisional by local choice (§3.2.2)."""

    to_provisional: bool = False


@dataclass(frozen=True)
class Downgraded:
    """Confidence is lowered to provisional; doubt also sets the doubtful attribute (§3.2.2, §3.2.3)."""

    reason: DowngradeReason


@dataclass(frozen=True)
class DoubtCleared:
    """The doubt was resolved; the identity stays provisional until checked again."""


IdentityEvent = DocumentChecked | InsRetrieved | InsVerified | InsVerificationFailed | Downgraded | DoubtCleared


def next_status(current: IdentityState, *, event: IdentityEvent) -> IdentityState:
    """The confidence after `event`, or an error named after the rule the move would break.

    Promotions (§3.2.2): a high-trust check adds [C+] (provisional → validated, retrieved →
    qualified); an accepted INSi retrieval or verification adds [I+] (provisional → retrieved,
    validated → qualified). Repeating a check already made keeps the status. Demotions: a failed
    verification removes [I+] (qualified → validated or provisional, retrieved → provisional);
    a downgrade goes to provisional from any status.
    """
    match event:
        case DocumentChecked(proof=proof):
            _refuse_if_restricted(current)
            if not is_high_trust(proof):
                raise LowTrustProofError(f"{proof} is not a high-trust identification device")
            return replace(current, status=_status(ins=current.status.ins_retrieved, checked=True))
        case InsRetrieved() | InsVerified():
            _refuse_if_restricted(current)
            return replace(current, status=_status(ins=True, checked=current.status.document_checked))
        case InsVerificationFailed(to_provisional=to_provisional):
            if not current.status.ins_retrieved:
                raise NoInsToVerifyError(f"a {current.status} identity holds no INS")
            checked = current.status.document_checked and not to_provisional
            return replace(current, status=_status(ins=False, checked=checked))
        case Downgraded(reason=reason):
            extra = {IdentityAttribute.DOUBTFUL} if reason.marks_doubtful else set()
            return IdentityState(IdentityStatus.PROVISIONAL, current.attributes | extra)
        case DoubtCleared():
            return replace(current, attributes=current.attributes - {IdentityAttribute.DOUBTFUL})
        case _:
            assert_never(event)


def _refuse_if_restricted(current: IdentityState) -> None:
    if current.restricted:
        raise RestrictedIdentityError("a doubtful or fictitious identity stays provisional")


# ---------------------------------------------------------------------------------------------
# INS: matricule (NIR or NIA, 13 characters + 2-digit key) and its assigning authority (§2.2)

#: Assigning authorities (OID) of the INS matricule: the OID, not the digits, tells NIR from NIA
#: (RNIV §2.2, §4.4.1; IHE PAM France §4.4.1). Test and demonstration matricules (fictitious
#: patients) have their own OIDs, per FR Core `fr-core-patient-ins` (INS-NIR-TEST, INS-NIR-DEMO).
INS_NIR_OID = "1.2.250.1.213.1.4.8"
INS_NIA_OID = "1.2.250.1.213.1.4.9"
INS_NIR_TEST_OID = "1.2.250.1.213.1.4.10"
INS_NIR_DEMO_OID = "1.2.250.1.213.1.4.11"

InsKind = Literal["NIR", "NIA"]

_INS_KIND_BY_OID: dict[str, InsKind] = {
    INS_NIR_OID: "NIR", INS_NIA_OID: "NIA", INS_NIR_TEST_OID: "NIR", INS_NIR_DEMO_OID: "NIR",
}
TEST_INS_OIDS = frozenset({INS_NIR_TEST_OID, INS_NIR_DEMO_OID})

_NIR13 = re.compile(r"\d{5}(?:\d{2}|2[AB])\d{6}")
# Sex 1/2 (RNIV §4.1: a number starting otherwise is neither NIR nor NIA), year, month, département
# (01-99 or 2A/2B), commune or country (3 digits), order number, key.
_INS15 = re.compile(r"(?P<sex>[12])\d\d(?P<month>\d\d)(?P<dept>\d\d|2[AB])\d{3}(?P<order>\d{3})(?P<key>\d\d)")


def ins_key(nir13: str) -> str:
    """Control key of a NIR/NIA: 97 - (number mod 97), on 2 digits; Corsica 2A → 19, 2B → 18."""
    if not _NIR13.fullmatch(nir13):
        raise InsFormatError(f"not 13 NIR characters: {nir13!r}")
    number = nir13[:5] + {"2A": "19", "2B": "18"}.get(nir13[5:7], nir13[5:7]) + nir13[7:]
    return f"{97 - int(number) % 97:02d}"


def ins_is_valid(value15: str) -> bool:
    """Is this a well-formed INS matricule (15 characters) whose key matches?

    Format checks stay deliberately loose, the key being the real guard: sex 1 or 2; month 01-12,
    or 20-42 / 50-99 (INSEE's pseudo-months for an unknown or incomplete birth month); département
    not 00; order number not 000. NIR and NIA share this format.
    """
    found = _INS15.fullmatch(value15)
    if found is None:
        return False
    month = int(found["month"])
    if not (1 <= month <= 12 or 20 <= month <= 42 or month >= 50):
        return False
    if found["dept"] == "00" or found["order"] == "000":
        return False
    return ins_key(value15[:13]) == found["key"]


def ins_kind(oid: str) -> InsKind:
    """NIR or NIA, from the matricule's assigning authority (the 15 characters cannot tell)."""
    try:
        return _INS_KIND_BY_OID[oid]
    except KeyError:
        raise UnknownInsAuthorityError(f"not an INS authority: {oid!r}") from None


# ---------------------------------------------------------------------------------------------
# Traits and their normal forms (RNIV §3.1.4, Annex III)

Sex = Literal["M", "F", "I"]  # I: indeterminate, provisional use only (Annex III)
UNKNOWN_BIRTH_PLACE = "99999"  # EXI SI 18


@dataclass(frozen=True)
class Traits:
    """The strict traits compared for duplicates, plus the used name (a complementary trait)."""

    birth_name: str
    used_name: str | None
    first_names: tuple[str, ...]
    sex: Sex
    birth_date: date
    birth_place: str | None  # INSEE code (COG) of the commune, or 99 + country code


_TRANSLITERATE = str.maketrans({
    "Œ": "OE", "œ": "oe", "Æ": "AE", "æ": "ae", "ß": "ss", "Ø": "O", "ø": "o", "Đ": "D", "đ": "d", "Ł": "L",
    "ł": "l", "’": "'", "‘": "'", "ʼ": "'", "`": "'", "´": "'", "‐": "-", "‑": "-", "–": "-", "—": "-",
})
_NOT_KEPT = re.compile(r"[^A-Z' -]+")
_AROUND_SEPARATOR = re.compile(r" *([-']) *")
_REPEATED = re.compile(r"([-' ])[-' ]*")


@lru_cache(maxsize=65536)
def normalise_name(s: str) -> str:
    """A name as RNIV Annex III wants it stored.

    Upper case without diacritics (ligatures spelled out: Œ → OE), hyphens and apostrophes kept,
    any other character ("/", ",", digits) replaced by a space (the rule given for "/"), spaces
    around a hyphen or apostrophe dropped, runs of separators collapsed to their first, trimmed.
    """
    decomposed = unicodedata.normalize("NFKD", s.translate(_TRANSLITERATE))
    text = "".join(c for c in decomposed if not unicodedata.combining(c)).upper()
    text = _NOT_KEPT.sub(" ", text)
    text = _AROUND_SEPARATOR.sub(r"\1", text)
    text = _REPEATED.sub(r"\1", text)
    return text.strip(" -'")


@lru_cache(maxsize=65536)
def _compact(s: str) -> str:
    """Comparison form: hyphens, apostrophes and spaces ignored (RNIV §3.1.1, EXI PP 20)."""
    return normalise_name(s).replace("-", "").replace("'", "").replace(" ", "")


#: French phonetic key, in the spirit of "Soundex français" / Phonex, applied in this order to the
#: letters of the normalised name. Lower-case letters are placeholders for sounds that must not be
#: rewritten again: "x" = ch [ʃ], "1" in/ain/ein [ɛ̃], "2" an/en [ɑ̃], "3" on [ɔ̃].
_PHONETIC_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), r) for p, r in (
    (r"[^A-Z]", ""),
    (r"EB(?:V|U(?=R))", "EV"),  # Lefebvre, Lefébure → LEFEVRE: silent b, old u/v spelling
    (r"PH", "F"),
    (r"CH(?=[RL])", "K"),  # Christophe, Chloé
    (r"S?CH|SH", "x"),  # Schmitt, Chemin, Shirley
    (r"QU?", "K"),
    (r"CK", "K"),
    (r"C(?=[EIY])", "S"),
    (r"C", "K"),
    (r"GU(?=[EIY])", "G"),
    (r"GE(?=[AOU])", "J"),  # Georges
    (r"G(?=[EIY])", "J"),
    (r"GN", "N"),
    (r"TH", "T"),
    (r"E?AU", "O"),
    (r"[AE]I", "E"),
    (r"Y", "I"),
    (r"W", "V"),
    (r"Z", "S"),
    # Nasal vowels: before a consonant other than n/m, or at the end (Étienne keeps its n).
    (r"(?:[AE]?IN|UN|IM)(?![AEIOUNMH])", "1"),
    (r"(?:[AE]N|[AE]M)(?![AEIOUNMH])", "2"),
    (r"O[NM](?![AEIOUNMH])", "3"),
    (r"([A-Z])\1+", r"\1"),  # double letters
    (r"[SDTX]+$", ""),  # silent final consonants: Dupont/Dupond, Durand/Durant, Camus, Leroux
    (r"X", "KS"),
    (r"ER$", "E"),  # Léger / Legé
    (r"H", ""),
    (r"(?<=.)E+$", ""),  # silent final e: Philippe / Philip
    (r"([A-Z])\1+", r"\1"),
))


@lru_cache(maxsize=65536)
def phonetic_fr(name: str) -> str:
    """A French phonetic key: names that sound alike in French get the same key.

    Rules (in order, see `_PHONETIC_RULES`): letters only; the Lefebvre family (EBV, EBUR → EV);
    PH → F; CHR/CHL → K, SCH/CH/SH → one "ch" sound; QU, Q, CK, hard C → K, soft C (before E, I,
    Y) → S; GU before E/I → G, soft G → J, GN → N; TH → T; EAU, AU → O; AI, EI → E; Y → I; W → V;
    Z → S; nasal vowels (in/ain/ein/un, an/en/am/em, on/om) each to one sound unless a vowel or
    n/m follows; double letters single; silent final S, D, T, X; other X → KS; final ER → E;
    silent H; silent final E. The key is opaque: compare keys, do not show them.
    """
    key = normalise_name(name)
    for pattern, replacement in _PHONETIC_RULES:
        key = pattern.sub(replacement, key)
    return key or _compact(name)


# ---------------------------------------------------------------------------------------------
# Duplicate detection: pairwise scoring and blocking

Verdict = Literal["same", "probable", "possible", "different"]

#: Weights of evidence, in points (a log-odds-like scale, as in Fellegi-Sunter). Tuned by hand on
#: development populations of naho.sandbox.population (seeds 20260101 and 20260102), never on the
#: benchmark's. Precision comes first: merging two patients is worse than leaving a duplicate.
W_BIRTH_NAME_EXACT = 4.0
W_BIRTH_NAME_USED_NAME = 3.5  # one record's used name is the other's birth name (marriage)
W_BIRTH_NAME_CLOSE = 2.5  # phonetic equality or one typing error
W_BIRTH_NAME_SIMILAR = 0.5  # two typing errors: not evidence for, no longer evidence against
W_BIRTH_NAME_DIFFERENT = -4.0
W_FIRST_NAME_EXACT = 3.5
W_FIRST_NAME_COMPOUND = 2.5  # JEAN-PIERRE vs JEAN
W_FIRST_NAME_CLOSE = 2.5  # phonetic equality or one typing error
W_FIRST_NAME_REORDERED = 2.0  # the same first names (two at least) in another order, some maybe missing
W_FIRST_NAME_SIMILAR = 0.5
W_FIRST_NAME_DIFFERENT = -4.5
W_LATER_FIRST_NAMES_SAME = 1.0  # same second and following first names, on top of the first name's points
W_FIRST_NAME_OTHERS_SAME = 2.5  # first names two errors apart, but all later first names the same
W_BIRTH_DATE_EXACT = 5.0
W_BIRTH_DATE_TRANSPOSED = 3.0  # day and month swapped
W_BIRTH_DATE_TYPO = 2.0  # one digit differs (DDMMYYYY), or the year is one off
W_BIRTH_DATE_DIFFERENT = -6.0
W_SEX_SAME = 0.5
W_SEX_DIFFERENT = -3.0
W_BIRTH_PLACE_SAME = 1.5
W_BIRTH_PLACE_SAME_DEPARTMENT = -0.5
W_BIRTH_PLACE_DIFFERENT = -2.5
MAX_POINTS = W_BIRTH_NAME_EXACT + W_FIRST_NAME_EXACT + W_BIRTH_DATE_EXACT + W_SEX_SAME + W_BIRTH_PLACE_SAME

#: Verdict thresholds on the score (points / MAX_POINTS, clipped to [0, 1]).
SAME_THRESHOLD = 0.99  # every strict trait identical, birth place included
PROBABLE_THRESHOLD = 0.60
POSSIBLE_THRESHOLD = 0.40

#: Typing errors, by Damerau-Levenshtein distance on the compact names. One error ("typo"): two
#: adjacent letters swapped, or one letter inserted, deleted or replaced when the longer name has
#: at least TYPO_MIN_LENGTH letters (LEA / LEO are two names, not a typo). Two errors ("similar"):
#: when the longer name has at least SIMILAR_MIN_LENGTH letters.
TYPO_MIN_LENGTH = 5
SIMILAR_MIN_LENGTH = 4
#: Equal phonetic keys count on their own for names of at least this many letters (see _sound_alike).
PHONETIC_MIN_LENGTH = 5


@dataclass(frozen=True)
class Match:
    """The comparison of two identities: a score in [0, 1], its verdict and the reasons behind it."""

    score: float
    verdict: Verdict
    reasons: tuple[str, ...]
    twins_suspected: bool


@dataclass(frozen=True, slots=True)
class _Profile:
    """What the comparison needs from one identity, computed once."""

    birth_name: str
    birth_name_key: str
    used_name: str | None
    used_name_key: str | None
    first_name: str  # the first first name, compound kept whole: JEANPIERRE
    first_name_key: str
    first_token: str  # JEAN
    first_token_key: str
    all_first_names: frozenset[str]
    later_first_names: frozenset[str]  # the second and following first names
    sex: Sex
    birth_date: date
    birth_date_digits: str  # DDMMYYYY
    birth_place: str | None


@lru_cache(maxsize=65536)
def _name_forms(name: str) -> tuple[str, str]:
    """Compact form and phonetic key of a name."""
    return _compact(name), phonetic_fr(name)


_FirstNameForms = tuple[str, str, str, str, frozenset[str], frozenset[str]]


@lru_cache(maxsize=65536)
def _first_name_forms(first_names: tuple[str, ...]) -> _FirstNameForms:
    """First name (compact, key), its first part (normal form, key), all and later first names."""
    first = normalise_name(first_names[0]) if first_names else ""
    tokens = first.replace("-", " ").replace("'", " ").split()
    first_token = tokens[0] if tokens else ""
    compact, key = _name_forms(first)
    later = frozenset(_compact(n) for n in first_names[1:])
    return compact, key, first_token, phonetic_fr(first_token), later | {compact} if compact else later, later


@lru_cache(maxsize=262144)
def _profile(traits: Traits) -> _Profile:
    birth_name, birth_name_key = _name_forms(traits.birth_name)
    used_name, used_name_key = _name_forms(traits.used_name) if traits.used_name else ("", "")
    first_name, first_name_key, first_token, first_token_key, all_first, later = _first_name_forms(traits.first_names)
    place = traits.birth_place if traits.birth_place != UNKNOWN_BIRTH_PLACE else None
    d = traits.birth_date
    return _Profile(
        birth_name=birth_name, birth_name_key=birth_name_key,
        used_name=used_name or None, used_name_key=used_name_key if used_name else None,
        first_name=first_name, first_name_key=first_name_key, first_token=first_token,
        first_token_key=first_token_key, all_first_names=all_first, later_first_names=later,
        sex=traits.sex, birth_date=d, birth_date_digits=f"{d.day:02d}{d.month:02d}{d.year:04d}",
        birth_place=place or None,
    )


def _edits(a: str, b: str) -> Literal["typo", "similar", "different"]:
    longest = max(len(a), len(b))
    distance = DamerauLevenshtein.distance(a, b, score_cutoff=2)
    if distance == 1 and (longest >= TYPO_MIN_LENGTH or sorted(a) == sorted(b)):
        return "typo"
    if distance <= 2 and longest >= SIMILAR_MIN_LENGTH:
        return "similar"
    return "different"


def _sound_alike(a: str, b: str, key_a: str, key_b: str, edits: str) -> bool:
    """Same phonetic key, trusted for short names only when the spellings are close too.

    A key drops letters, so short names collide (ANNE and ANAIS both give AN: the diaeresis that
    separates A-I is gone once the name is stored without diacritics).
    """
    return key_a == key_b and (min(len(a), len(b)) >= PHONETIC_MIN_LENGTH or edits != "different")


def _compare_birth_names(a: _Profile, b: _Profile) -> tuple[float, str]:
    if a.birth_name == b.birth_name:
        return W_BIRTH_NAME_EXACT, "same_birth_name"
    married = (a.used_name is not None and a.used_name in (b.birth_name, b.used_name)) or b.used_name == a.birth_name
    if married:
        return W_BIRTH_NAME_USED_NAME, "used_name_matches_birth_name"
    edits = _edits(a.birth_name, b.birth_name)
    if _sound_alike(a.birth_name, b.birth_name, a.birth_name_key, b.birth_name_key, edits):
        return W_BIRTH_NAME_CLOSE, "phonetic_birth_name"
    if edits == "typo":
        return W_BIRTH_NAME_CLOSE, "typo_birth_name"
    if edits == "similar":
        return W_BIRTH_NAME_SIMILAR, "similar_birth_name"
    return W_BIRTH_NAME_DIFFERENT, "different_birth_name"


def _compare_first_names(a: _Profile, b: _Profile) -> tuple[float, tuple[str, ...]]:
    points, reason = _compare_first_first_names(a, b)
    if not (a.later_first_names and a.later_first_names == b.later_first_names):
        return points, (reason,)
    if reason == "similar_first_name":
        # A badly typed first name rather than twins: twins may share a middle name (a godparent's,
        # a grandparent's) but hardly also first names two letters apart.
        return W_FIRST_NAME_OTHERS_SAME, ("same_later_first_names",)
    return points + W_LATER_FIRST_NAMES_SAME, (reason, "same_later_first_names")


def _compare_first_first_names(a: _Profile, b: _Profile) -> tuple[float, str]:
    if a.first_name == b.first_name:
        return W_FIRST_NAME_EXACT, "same_first_name"
    if a.first_token == b.first_token and a.first_token in (a.first_name, b.first_name):
        return W_FIRST_NAME_COMPOUND, "compound_first_name"
    edits = _edits(a.first_name, b.first_name)
    if _sound_alike(a.first_name, b.first_name, a.first_name_key, b.first_name_key, edits):
        return W_FIRST_NAME_CLOSE, "phonetic_first_name"
    if edits == "typo":
        return W_FIRST_NAME_CLOSE, "typo_first_name"
    fewer, more = sorted((a.all_first_names, b.all_first_names), key=len)
    if len(fewer) >= 2 and fewer <= more:
        return W_FIRST_NAME_REORDERED, "first_names_reordered"
    if edits == "similar":
        return W_FIRST_NAME_SIMILAR, "similar_first_name"
    return W_FIRST_NAME_DIFFERENT, "different_first_name"


def _compare_birth_dates(pa: _Profile, pb: _Profile) -> tuple[float, str]:
    a, b = pa.birth_date, pb.birth_date
    if a == b:
        return W_BIRTH_DATE_EXACT, "same_birth_date"
    if a.year == b.year and a.day == b.month and a.month == b.day:
        return W_BIRTH_DATE_TRANSPOSED, "transposed_day_month"
    one_digit = sum(map(str.__ne__, pa.birth_date_digits, pb.birth_date_digits)) == 1
    if one_digit or (a.day == b.day and a.month == b.month and abs(a.year - b.year) == 1):
        return W_BIRTH_DATE_TYPO, "typo_birth_date"
    return W_BIRTH_DATE_DIFFERENT, "different_birth_date"


def _compare_birth_places(a: str | None, b: str | None) -> tuple[float, str]:
    if a is None or b is None:
        return 0.0, "missing_birth_place"
    if a == b:
        return W_BIRTH_PLACE_SAME, "same_birth_place"
    if a[:2] == b[:2] and a[:2] != "99":
        return W_BIRTH_PLACE_SAME_DEPARTMENT, "same_birth_department"
    return W_BIRTH_PLACE_DIFFERENT, "different_birth_place"


def match(a: Traits, b: Traits) -> Match:
    """Are these two identities the same person? Score, verdict, reasons, twin suspicion.

    Each strict trait adds or removes points (the W_* constants): names exact, phonetic (phonetic_fr),
    one typing error, two (similar), or linked by marriage (used name of one = birth name of the
    other); the first first name whole, as the first part of a compound (JEAN vs JEAN-PIERRE) or
    found among the other's first names; the birth date exact, day and month swapped, or one digit
    or one year off; sex; birth place (unknown, 99999, counts for nothing).

    Twins are suspected when birth name and birth date agree (but for one entry error), the birth
    places do not differ, and the first names are no closer than "similar" (unless all later first
    names agree as well) or the sexes differ. The verdict is then at most "possible": two people
    must never be merged on a score (RNIV §3.1.1, collisions), so a duplicate whose first name was
    badly mistyped goes to a human.
    """
    pa, pb = _profile(a), _profile(b)
    birth_name_points, birth_name_reason = _compare_birth_names(pa, pb)
    first_name_points, first_name_reasons = _compare_first_names(pa, pb)
    date_points, date_reason = _compare_birth_dates(pa, pb)
    if "I" in (pa.sex, pb.sex):
        sex_points, sex_reason = 0.0, "indeterminate_sex"
    elif pa.sex == pb.sex:
        sex_points, sex_reason = W_SEX_SAME, "same_sex"
    else:
        sex_points, sex_reason = W_SEX_DIFFERENT, "different_sex"
    place_points, place_reason = _compare_birth_places(pa.birth_place, pb.birth_place)

    points = birth_name_points + first_name_points + date_points + sex_points + place_points
    score = min(1.0, max(0.0, points / MAX_POINTS))
    twins = (
        date_reason in ("same_birth_date", "transposed_day_month", "typo_birth_date")
        and birth_name_reason in ("same_birth_name", "phonetic_birth_name", "typo_birth_name")
        and place_reason in ("same_birth_place", "missing_birth_place")
        and (first_name_reasons[0] in ("similar_first_name", "different_first_name") or sex_reason == "different_sex")
    )
    if score >= SAME_THRESHOLD:
        verdict: Verdict = "same"
    elif score >= PROBABLE_THRESHOLD:
        verdict = "probable"
    elif score >= POSSIBLE_THRESHOLD:
        verdict = "possible"
    else:
        verdict = "different"
    if twins and verdict in ("same", "probable"):
        verdict = "possible"
    reasons = (birth_name_reason, *first_name_reasons, date_reason, sex_reason, place_reason)
    return Match(score=score, verdict=verdict, reasons=reasons, twins_suspected=twins)


def blocking_keys(traits: Traits) -> set[str]:
    """Keys a duplicate search compares on: two identities are compared only if they share one.

    The birth date (RNIV §3.1.1 searches by birth date first); then, so that one wrong part of the
    date does not hide a duplicate, the phonetic birth name (and used name, for marriages) with
    year and month (a wrong day), with year and day-month in either order (swapped day and month),
    with day and month (a wrong year); and the same three with the phonetic first part of the
    first name instead, for a birth name changed as well. A pair whose birth date differs beyond
    that can score no better than "different" (W_BIRTH_DATE_DIFFERENT), so it needs no key.
    """
    p = _profile(traits)
    d = p.birth_date
    low, high = sorted((d.day, d.month))
    keys = {f"d:{d.isoformat()}"}
    for prefix, key in (("n", p.birth_name_key), ("n", p.used_name_key), ("f", p.first_token_key)):
        if key:
            keys.update((f"{prefix}ym:{key}:{d.year}:{d.month}", f"{prefix}yd:{key}:{d.year}:{low}:{high}",
                         f"{prefix}dm:{key}:{d.day}:{d.month}"))
    return keys


def candidate_pairs(identities: Sequence[Traits]) -> set[tuple[int, int]]:
    """Index pairs (i < j) of the identities sharing at least one blocking key."""
    blocks: defaultdict[str, list[int]] = defaultdict(list)
    for index, traits in enumerate(identities):
        for key in blocking_keys(traits):
            blocks[key].append(index)
    pairs: set[tuple[int, int]] = set()
    for members in blocks.values():
        if len(members) > 1:  # indices were appended in increasing order
            pairs.update(itertools.combinations(members, 2))
    return pairs
