"""Identity rules: confidence statuses (RNIV §3.2), proofs (§3.3), INS (§4), names, duplicates."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from naho.identity.rules import (
    HIGH_TRUST_PROOFS,
    INS_NIA_OID,
    INS_NIR_DEMO_OID,
    INS_NIR_OID,
    INS_NIR_TEST_OID,
    PROBABLE_THRESHOLD,
    TEST_INS_OIDS,
    AttributeRequiresProvisionalError,
    DocumentChecked,
    DoubtCleared,
    DoubtfulFictitiousExclusiveError,
    Downgraded,
    DowngradeReason,
    IdentityAttribute,
    IdentityEvent,
    IdentityRuleError,
    IdentityState,
    IdentityStatus,
    InsFormatError,
    InsRetrieved,
    InsVerificationFailed,
    InsVerified,
    LowTrustProofError,
    NoInsToVerifyError,
    ProofKind,
    RestrictedIdentityError,
    Traits,
    UnknownInsAuthorityError,
    blocking_keys,
    candidate_pairs,
    ins_is_valid,
    ins_key,
    ins_kind,
    ins_usable,
    is_high_trust,
    match,
    next_status,
    normalise_name,
    phonetic_fr,
)

PROVISIONAL = IdentityState(IdentityStatus.PROVISIONAL)
RETRIEVED = IdentityState(IdentityStatus.RETRIEVED)
VALIDATED = IdentityState(IdentityStatus.VALIDATED)
QUALIFIED = IdentityState(IdentityStatus.QUALIFIED)
DOUBTFUL = IdentityState(IdentityStatus.PROVISIONAL, frozenset({IdentityAttribute.DOUBTFUL}))
FICTITIOUS = IdentityState(IdentityStatus.PROVISIONAL, frozenset({IdentityAttribute.FICTITIOUS}))
LOW_TRUST_PROOFS = sorted(set(ProofKind) - HIGH_TRUST_PROOFS)

# ---------------------------------------------------------------------------------------------
# Statuses and proofs


def test_the_general_case_high_trust_devices_are_those_of_rniv_3_3_2() -> None:
    for kind in (ProofKind.NATIONAL_ID_CARD, ProofKind.PASSPORT, ProofKind.RESIDENCE_PERMIT,
                 ProofKind.EIDAS_ELECTRONIC_ID):
        assert is_high_trust(kind)
    for kind in (ProofKind.FAMILY_RECORD_BOOK, ProofKind.BIRTH_CERTIFICATE, ProofKind.VITALE_CARD,
                 ProofKind.DRIVING_LICENCE, ProofKind.DOCUMENT_COPY, ProofKind.OTHER_COUNTRY_ID_CARD):
        assert not is_high_trust(kind)


@pytest.mark.parametrize("proof", sorted(HIGH_TRUST_PROOFS))
def test_a_high_trust_proof_validates_a_provisional_identity(proof: ProofKind) -> None:
    assert next_status(PROVISIONAL, event=DocumentChecked(proof)).status is IdentityStatus.VALIDATED


@pytest.mark.parametrize("proof", LOW_TRUST_PROOFS)
def test_validating_with_a_low_trust_proof_is_refused(proof: ProofKind) -> None:
    with pytest.raises(LowTrustProofError):
        next_status(PROVISIONAL, event=DocumentChecked(proof))
    with pytest.raises(LowTrustProofError):
        next_status(RETRIEVED, event=DocumentChecked(proof))


@pytest.mark.parametrize(("current", "event", "expected"), [
    (PROVISIONAL, InsRetrieved(), IdentityStatus.RETRIEVED),
    (PROVISIONAL, InsVerified(), IdentityStatus.RETRIEVED),
    (VALIDATED, InsRetrieved(), IdentityStatus.QUALIFIED),
    (RETRIEVED, DocumentChecked(ProofKind.PASSPORT), IdentityStatus.QUALIFIED),
    (VALIDATED, DocumentChecked(ProofKind.NATIONAL_ID_CARD), IdentityStatus.VALIDATED),
    (QUALIFIED, InsVerified(), IdentityStatus.QUALIFIED),
    (QUALIFIED, InsVerificationFailed(), IdentityStatus.VALIDATED),
    (QUALIFIED, InsVerificationFailed(to_provisional=True), IdentityStatus.PROVISIONAL),
    (RETRIEVED, InsVerificationFailed(), IdentityStatus.PROVISIONAL),
    (QUALIFIED, Downgraded(DowngradeReason.INS_DISCORDANCE), IdentityStatus.PROVISIONAL),
    (VALIDATED, Downgraded(DowngradeReason.INS_INCONSISTENT), IdentityStatus.PROVISIONAL),
])
def test_legal_moves_of_rniv_3_2_2(current: IdentityState, event: IdentityEvent, expected: IdentityStatus) -> None:
    after = next_status(current, event=event)
    assert after.status is expected
    assert IdentityAttribute.DOUBTFUL not in after.attributes


def test_doubt_downgrades_a_qualified_identity_to_provisional_and_marks_it_doubtful() -> None:
    for reason in (DowngradeReason.DOUBT, DowngradeReason.VITALE_FRAUD):
        after = next_status(QUALIFIED, event=Downgraded(reason))
        assert after == DOUBTFUL
        assert not ins_usable(after.status, after.attributes)


@pytest.mark.parametrize("restricted", [DOUBTFUL, FICTITIOUS])
@pytest.mark.parametrize("event", [DocumentChecked(ProofKind.PASSPORT), InsRetrieved(), InsVerified()])
def test_a_doubtful_or_fictitious_identity_is_never_promoted(restricted: IdentityState, event: IdentityEvent) -> None:
    with pytest.raises(RestrictedIdentityError):
        next_status(restricted, event=event)


def test_once_the_doubt_is_cleared_the_identity_can_be_validated_again() -> None:
    cleared = next_status(DOUBTFUL, event=DoubtCleared())
    assert cleared == PROVISIONAL
    assert next_status(cleared, event=DocumentChecked(ProofKind.PASSPORT)).status is IdentityStatus.VALIDATED


def test_a_failed_verification_needs_an_ins() -> None:
    with pytest.raises(NoInsToVerifyError):
        next_status(VALIDATED, event=InsVerificationFailed())


def test_attributes_follow_the_matrix_of_rniv_3_2_3() -> None:
    IdentityState(IdentityStatus.QUALIFIED, frozenset({IdentityAttribute.HOMONYM}))
    IdentityState(IdentityStatus.PROVISIONAL, frozenset({IdentityAttribute.DOUBTFUL, IdentityAttribute.HOMONYM}))
    with pytest.raises(AttributeRequiresProvisionalError):
        IdentityState(IdentityStatus.VALIDATED, frozenset({IdentityAttribute.DOUBTFUL}))
    with pytest.raises(AttributeRequiresProvisionalError):
        IdentityState(IdentityStatus.RETRIEVED, frozenset({IdentityAttribute.FICTITIOUS}))
    with pytest.raises(DoubtfulFictitiousExclusiveError):
        IdentityState(IdentityStatus.PROVISIONAL, frozenset({IdentityAttribute.DOUBTFUL, IdentityAttribute.FICTITIOUS}))
    with pytest.raises(DoubtfulFictitiousExclusiveError):
        next_status(FICTITIOUS, event=Downgraded(DowngradeReason.DOUBT))


@pytest.mark.parametrize("status", list(IdentityStatus))
def test_the_ins_is_usable_only_when_qualified(status: IdentityStatus) -> None:
    assert ins_usable(status) is (status is IdentityStatus.QUALIFIED)
    assert ins_usable(status, {IdentityAttribute.HOMONYM}) is (status is IdentityStatus.QUALIFIED)


def test_the_ins_is_not_usable_for_a_doubtful_or_fictitious_identity_whatever_the_status_says() -> None:
    assert not ins_usable(IdentityStatus.QUALIFIED, {IdentityAttribute.DOUBTFUL})
    assert not ins_usable(IdentityStatus.QUALIFIED, {IdentityAttribute.FICTITIOUS})


_events = st.one_of(
    st.builds(DocumentChecked, st.sampled_from(list(ProofKind))),
    st.just(InsRetrieved()), st.just(InsVerified()), st.builds(InsVerificationFailed, st.booleans()),
    st.builds(Downgraded, st.sampled_from(list(DowngradeReason))), st.just(DoubtCleared()),
)


@given(st.lists(_events, max_size=12), st.sampled_from([PROVISIONAL, FICTITIOUS]))
def test_qualified_is_reached_only_through_a_high_trust_check_and_an_ins_since_the_last_downgrade(
        events: list[IdentityEvent], start: IdentityState) -> None:
    """Model check: replay any sequence; refused events change nothing; the status is what RNIV says."""
    state, checked, ins = start, False, False
    for event in events:
        try:
            state = next_status(state, event=event)
        except IdentityRuleError:
            continue
        if isinstance(event, DocumentChecked):
            checked = True
        elif isinstance(event, InsRetrieved | InsVerified):
            ins = True
        elif isinstance(event, InsVerificationFailed):
            ins, checked = False, checked and not event.to_provisional
        elif isinstance(event, Downgraded):
            ins = checked = False
        assert state.status.ins_retrieved is ins
        assert state.status.document_checked is checked
        assert ins_usable(state.status, state.attributes) is (checked and ins)
    assert not (state.restricted and state.status is not IdentityStatus.PROVISIONAL)


# ---------------------------------------------------------------------------------------------
# INS


def test_the_rniv_example_ins_is_valid() -> None:
    assert ins_key("2600588154002") == "33"
    assert ins_is_valid("260058815400233")


def test_a_wrong_key_is_refused() -> None:
    assert not ins_is_valid("260058815400234")
    assert not ins_is_valid("260058815400244")  # the IHE PAM example's made-up NIA key


def test_corsica_2a_counts_as_19_and_2b_as_18() -> None:
    body_2a, body_2b = "185032A004123", "185032B004123"
    assert ins_key(body_2a) == f"{97 - 1850319004123 % 97:02d}"
    assert ins_key(body_2b) == f"{97 - 1850318004123 % 97:02d}"
    assert ins_key(body_2a) != ins_key(body_2b)
    assert ins_is_valid(body_2a + ins_key(body_2a))
    assert not ins_is_valid(body_2a + ins_key(body_2b))


@pytest.mark.parametrize("value", [
    "", "26005881540023", "2600588154002333", "260058815400A33", " 260058815400233",
    "360058815400233",  # sex digit 3: neither NIR nor NIA (RNIV §4.1)
    "760058815400233", "860058815400233",  # temporary numbers
    "260138815400233",  # month 13
    "260050015400233",  # département 00
    "260058815400033",  # order number 000
])
def test_malformed_ins_are_refused_whatever_their_key(value: str) -> None:
    if len(value) == 15 and value[:13].isalnum():
        value = value[:13] + (ins_key(value[:13]) if value[:13].isdigit() else value[13:])
    assert not ins_is_valid(value)


def test_ins_key_refuses_what_is_not_a_nir() -> None:
    for value in ("260058815400", "2600588154002A", "26005881540AB", "2600588154002 "):
        with pytest.raises(InsFormatError):
            ins_key(value)


_nir_bodies = st.builds(
    lambda sex, year, month, dept, commune, order: f"{sex}{year:02d}{month:02d}{dept}{commune:03d}{order:03d}",
    st.sampled_from("12"), st.integers(0, 99),
    st.one_of(st.integers(1, 12), st.integers(20, 42), st.integers(50, 99)),
    st.one_of(st.integers(1, 99).map(lambda d: f"{d:02d}"), st.sampled_from(["2A", "2B"])),
    st.integers(0, 999), st.integers(1, 999),
)


@given(_nir_bodies, st.data())
def test_any_single_digit_change_breaks_the_key(body: str, data: st.DataObject) -> None:
    ins = body + ins_key(body)
    assert ins_is_valid(ins)
    position = data.draw(st.sampled_from([i for i, c in enumerate(ins) if c.isdigit()]))
    digit = data.draw(st.sampled_from([d for d in "0123456789" if d != ins[position]]))
    assert not ins_is_valid(ins[:position] + digit + ins[position + 1:])


def test_the_oid_tells_nir_from_nia() -> None:
    assert ins_kind(INS_NIR_OID) == "NIR"
    assert ins_kind(INS_NIA_OID) == "NIA"
    assert {ins_kind(oid) for oid in TEST_INS_OIDS} == {"NIR"}
    assert {INS_NIR_TEST_OID, INS_NIR_DEMO_OID} == TEST_INS_OIDS
    assert INS_NIR_OID not in TEST_INS_OIDS
    with pytest.raises(UnknownInsAuthorityError):
        ins_kind("1.2.250.1.213.1.4.2")  # INS-C, retired


# ---------------------------------------------------------------------------------------------
# Names


@pytest.mark.parametrize(("raw", "stored"), [
    ("Lefèvre", "LEFEVRE"),
    ("  d'Artagnan -  de / la  Tour ", "D'ARTAGNAN-DE LA TOUR"),
    ("Œuvray-Müller", "OEUVRAY-MULLER"),
    ("O’Neil", "O'NEIL"),
    ("jean--pierre", "JEAN-PIERRE"),
    ("Hélène, Marie", "HELENE MARIE"),
    ("-Zoé-", "ZOE"),
])
def test_names_are_stored_as_rniv_annex_iii_says(raw: str, stored: str) -> None:
    assert normalise_name(raw) == stored


@given(st.text(max_size=30))
def test_normalising_is_idempotent_and_keeps_only_allowed_characters(raw: str) -> None:
    stored = normalise_name(raw)
    assert normalise_name(stored) == stored
    assert set(stored) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ -'")
    assert stored == stored.strip(" -'")
    assert "  " not in stored


@pytest.mark.parametrize("names", [
    ("Lefebvre", "Lefèvre", "Lefebure", "LEFEBVRE"),
    ("Dupont", "Dupond"),
    ("Phillippe", "Philippe"),
    ("Caron", "Carron", "Karon"),
    ("Mathieu", "Matthieu"),
    ("Gauthier", "Gautier"),
    ("Laurent", "Loran"),
    ("Christophe", "Kristophe"),
    ("Da Silva", "DASILVA"),
])
def test_common_french_spelling_variants_sound_alike(names: tuple[str, ...]) -> None:
    assert len({phonetic_fr(n) for n in names}) == 1


@pytest.mark.parametrize(("a", "b"), [
    ("Martin", "Martine"), ("Dupont", "Dupuis"), ("Caron", "Charron"), ("Étienne", "Étiennette"),
    ("Simon", "Simone"), ("Bernard", "Bertrand"), ("Jean", "Jeanne"),
])
def test_names_that_sound_different_keep_different_keys(a: str, b: str) -> None:
    assert phonetic_fr(a) != phonetic_fr(b)


@given(st.text(alphabet="abcdeéèêfghijklmnoôpqrstuùvwxyzç -'", max_size=20))
def test_the_phonetic_key_ignores_case_accents_and_separators(name: str) -> None:
    assert phonetic_fr(name) == phonetic_fr(normalise_name(name).upper())
    assert phonetic_fr(name) == phonetic_fr(name.upper())


# ---------------------------------------------------------------------------------------------
# Duplicates

JEANNE = Traits(birth_name="DUPONT", used_name=None, first_names=("JEANNE", "MARIE", "CECILE"), sex="F",
                birth_date=date(1960, 5, 3), birth_place="62498")


def variant(**changes: object) -> Traits:
    return dataclasses.replace(JEANNE, **changes)  # type: ignore[arg-type]


def test_an_identical_record_is_the_same_person() -> None:
    found = match(JEANNE, variant())
    assert found.verdict == "same"
    assert found.score == 1.0


@pytest.mark.parametrize(("other", "reason"), [
    (variant(birth_name="DUPNOT"), "typo_birth_name"),
    (variant(birth_name="DUPOND"), "phonetic_birth_name"),
    (variant(first_names=("JEANE", "MARIE", "CECILE")), "phonetic_first_name"),
    (variant(first_names=("JAENNE",)), "typo_first_name"),
    (variant(birth_date=date(1960, 3, 5)), "transposed_day_month"),
    (variant(birth_date=date(1960, 5, 8)), "typo_birth_date"),
    (variant(birth_date=date(1961, 5, 3)), "typo_birth_date"),
    (variant(birth_name="MARTIN", used_name="MARTIN"), "used_name_matches_birth_name"),
    (variant(first_names=("MARIE", "JEANNE", "CECILE")), "first_names_reordered"),
    (variant(birth_place=None), "missing_birth_place"),
    (variant(birth_name="Dupont", first_names=("jeanne", "Marie", "Cécile")), "same_birth_name"),
])
def test_a_duplicate_with_one_entry_error_is_probable(other: Traits, reason: str) -> None:
    original = variant(used_name="MARTIN") if reason == "used_name_matches_birth_name" else JEANNE
    found = match(original, other)
    assert found.verdict in ("same", "probable"), found
    assert reason in found.reasons
    assert not found.twins_suspected


def test_a_compound_first_name_recorded_by_its_first_part_is_probable() -> None:
    jean_pierre = Traits(birth_name="LEROY", used_name=None, first_names=("JEAN-PIERRE",), sex="M",
                         birth_date=date(1971, 11, 24), birth_place="59350")
    found = match(jean_pierre, dataclasses.replace(jean_pierre, first_names=("JEAN",)))
    assert found.verdict == "probable"
    assert "compound_first_name" in found.reasons
    assert match(jean_pierre, dataclasses.replace(jean_pierre, first_names=("JEAN-LUC",))).verdict == "possible"


def test_twins_are_never_merged() -> None:
    sister = variant(first_names=("LOUISE", "ANNE"))
    brother = variant(first_names=("PAUL",), sex="M")
    for twin in (sister, brother, variant(first_names=("LOUISE",), birth_place=None)):
        found = match(JEANNE, twin)
        assert found.twins_suspected
        assert found.verdict not in ("same", "probable")
    # Close enough to score "probable" on points alone: the twin rule is what keeps them apart.
    emma = variant(first_names=("EMMA",))
    for twin in (variant(first_names=("EMMY",)), variant(first_names=("EMMA",), sex="M")):
        found = match(emma, twin)
        assert found.score >= PROBABLE_THRESHOLD
        assert found.twins_suspected
        assert found.verdict == "possible"


def test_twins_stay_apart_when_one_of_their_records_has_an_entry_error_too() -> None:
    emilie = Traits(birth_name="FERREIRA", used_name=None, first_names=("EMILIE", "MONIQUE"), sex="F",
                    birth_date=date(1926, 3, 11), birth_place="72249")
    amelie = dataclasses.replace(emilie, first_names=("AMELIE", "THERESE"), birth_date=date(1926, 11, 3))
    found = match(emilie, amelie)
    assert found.twins_suspected
    assert found.verdict == "possible"


def test_short_first_names_that_only_share_a_phonetic_key_are_not_taken_for_one() -> None:
    assert phonetic_fr("ANNE") == phonetic_fr("ANAIS")  # the diaeresis of ANAÏS is not stored
    found = match(variant(first_names=("ANNE",)), variant(first_names=("ANAIS",)))
    assert "phonetic_first_name" not in found.reasons
    assert found.twins_suspected and found.verdict == "possible"
    assert "phonetic_first_name" in match(variant(first_names=("MATHILDE",)), variant(first_names=("MATILDE",))).reasons


def test_twins_sharing_their_middle_names_stay_apart() -> None:
    found = match(JEANNE, variant(first_names=("LOUISE", "MARIE", "CECILE")))
    assert found.twins_suspected
    assert found.verdict not in ("same", "probable")


def test_a_badly_typed_first_name_is_not_twins_when_the_later_first_names_agree() -> None:
    found = match(JEANNE, variant(first_names=("JAENNNE", "MARIE", "CECILE")))
    assert not found.twins_suspected
    assert "same_later_first_names" in found.reasons
    assert found.verdict == "probable"


_distinct_first_names = st.lists(st.sampled_from(["PAUL", "LOUISE", "HUGO", "CAMILLE", "ZOE", "THEO", "MANON",
                                                  "NATHAN", "CHLOE", "ENZO", "EMMA", "EMMY", "LEA", "LENA"]),
                                 min_size=2, max_size=2, unique=True)


@given(_distinct_first_names, st.sampled_from(["M", "F"]), st.sampled_from(["M", "F"]),
       st.sampled_from(["62498", "59350", "99350", None]), st.sampled_from(["LEGRAND", "N'DIAYE", "LE GALL"]))
def test_two_people_sharing_birth_name_date_and_place_but_not_first_names_are_never_probable(
        names: list[str], sex_a: str, sex_b: str, place: str | None, birth_name: str) -> None:
    a = variant(birth_name=birth_name, first_names=(names[0],), sex=sex_a, birth_place=place)
    b = variant(birth_name=birth_name, first_names=(names[1],), sex=sex_b, birth_place=place)
    found = match(a, b)
    assert found.twins_suspected
    assert found.verdict in ("possible", "different")


_traits = st.builds(
    Traits,
    birth_name=st.sampled_from(["DUPONT", "DUPOND", "MARTIN", "MARTINEZ", "LE GALL", "LEGALL", "PETIT"]),
    used_name=st.sampled_from([None, "MARTIN", "PETIT"]),
    first_names=st.lists(st.sampled_from(["JEAN", "JEAN-PIERRE", "MARIE", "MARI", "LEA", "LEO"]), min_size=1,
                         max_size=3).map(tuple),
    sex=st.sampled_from(["M", "F", "I"]),
    birth_date=st.dates(date(1990, 1, 1), date(1991, 12, 31)),
    birth_place=st.sampled_from([None, "99999", "62498", "62119", "59350", "99350"]),
)


@given(_traits, _traits)
def test_matching_is_symmetric_and_scores_stay_between_0_and_1(a: Traits, b: Traits) -> None:
    assert match(a, b) == match(b, a)
    assert 0.0 <= match(a, b).score <= 1.0


def test_strangers_and_homonyms_born_on_other_days_are_different() -> None:
    stranger = Traits(birth_name="BERNARD", used_name=None, first_names=("HUGO",), sex="M",
                      birth_date=date(1999, 1, 17), birth_place="59350")
    assert match(JEANNE, stranger).verdict == "different"
    assert match(JEANNE, variant(birth_date=date(1987, 9, 21))).verdict == "different"


def test_duplicates_share_a_blocking_key_with_the_original_and_strangers_do_not() -> None:
    for other in (variant(birth_date=date(1960, 3, 5)), variant(birth_name="DUPOMT", birth_date=date(1960, 5, 8)),
                  variant(first_names=("JAENNE",), birth_date=date(1966, 5, 3)),
                  variant(birth_name="MARTIN", used_name="MARTIN", birth_date=date(1961, 5, 3))):
        assert blocking_keys(JEANNE) & blocking_keys(other)
    stranger = Traits(birth_name="BERNARD", used_name=None, first_names=("HUGO",), sex="M",
                      birth_date=date(1999, 1, 17), birth_place="59350")
    assert not blocking_keys(JEANNE) & blocking_keys(stranger)


def test_candidate_pairs_are_the_identities_sharing_a_key() -> None:
    stranger = Traits(birth_name="BERNARD", used_name=None, first_names=("HUGO",), sex="M",
                      birth_date=date(1999, 1, 17), birth_place="59350")
    identities = [JEANNE, stranger, variant(birth_date=date(1960, 3, 5)), variant(birth_name="DUPOMT")]
    assert candidate_pairs(identities) == {(0, 2), (0, 3), (2, 3)}
