"""PAM FR mapping without a database: message text → typed command, errors → acknowledgements."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import hl7
import pytest

from naho.identity.errors import PossibleDuplicates
from naho.platform.security.rules import Role
from naho.record import hl7 as adt
from naho.record.errors import BedAlreadyOccupied, MovementRefused
from naho.record.rules import EncounterClass, MovementKind

PARIS = ZoneInfo("Europe/Paris")
MSH = "MSH|^~\\&|GAM|LENS|NAHO|GHT-ARTOIS|20261125100000||ADT^{trigger}^ADT_A01|{control}|P|{version}|||||FRA|{charset}"


def message(trigger: str = "A01", *, control: str = "C1", version: str = "2.5^FRA^2.11",
            charset: str = "UNICODE UTF-8", pid: str = "PID|1||123^^^GAM^PI||DURAND^MARIE^^^^^L||19620314|F",
            pv1: str = "PV1|1|I|LENS-MED-MIN^521^1", zbe: str = "ZBE|M1^GAM|20261125080000||INSERT|N") -> str:
    segments = [MSH.format(trigger=trigger, control=control, version=version, charset=charset), "EVN||20261125100000",
                pid, pv1, zbe]
    return "\r".join(s for s in segments if s) + "\r"


def parse(text: str) -> adt.AdtCommand:
    return adt.parse_adt(text, zone=PARIS)


# The A31 example of PAM FR §4.4.1 (qualified identity, INS-NIA and INS-NIR), lines re-joined.
PAM_FR_A31 = (
    "MSH|^~\\&|Gazelle|PAM_FR|PatientManager|PAM_FR|20210318151910||ADT^A31^ADT_A05|20210318151910|P|"
    "2.5^FRA^2.10||||||UNICODE UTF-8\r"
    "EVN||20210318151910\r"
    "PID|1||1900068^^^&350000121&M^PI~260058815400244^^^ASIP-SANTE-INS-NIA&1.2.250.1.213.1.4.9&ISO^INS~"
    "260058815400233^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS||^MARIE-CECILE^^^^^D~DARK^JEANNE^JEANNE "
    "MARIE CECILE^^Mme^^L||19600530|F|||^^^^^FRA^BDL^^88154|||||S|||||||||1|||||N||VALI\r"
)


def test_the_pam_fr_example_reads_as_an_identity_update() -> None:
    command = parse(PAM_FR_A31)
    assert isinstance(command, adt.UpdateIdentity) and command.visit is None
    p = command.patient
    assert (p.birth_name, p.first_names, p.used_first_name, p.used_name) == (
        "DARK", "JEANNE MARIE CECILE", "MARIE-CECILE", None)
    assert (p.sex, p.birth_date, p.birth_place, p.reliability) == ("F", date(1960, 5, 30), "88154", ("VALI",))
    assert [(i.value, i.authority, i.type_code) for i in p.identifiers] == [
        ("1900068", "350000121", "PI"), ("260058815400244", "ASIP-SANTE-INS-NIA", "INS"),
        ("260058815400233", "ASIP-SANTE-INS-NIR", "INS")]
    assert command.header.sender == "Gazelle/PAM_FR" and command.header.control_id == "20210318151910"


def test_an_admission_carries_its_unit_bed_class_and_local_time() -> None:
    command = parse(message("A01", pv1="PV1|1|I|LENS-MED-MIN^521^1^LENS" + "|" * 16 + "V42^^^GAM^VN"))
    assert isinstance(command, adt.Admit) and command.visit is not None
    assert command.visit.location is not None and command.visit.location.bed_code == "LENS-MED-MIN-521-1"
    assert command.visit.visit_number == adt.Identifier("V42", "GAM", "VN")
    assert command.visit.at == datetime(2026, 11, 25, 7, 0, tzinfo=UTC)  # 08:00 in Paris, winter
    assert command.visit.movement_id == "M1" and command.visit.action == "INSERT"


def test_a_time_with_an_offset_keeps_it_and_a_time_without_is_local() -> None:
    assert adt.parse_time("202607140930+0000", PARIS, "x") == datetime(2026, 7, 14, 9, 30, tzinfo=UTC)
    assert adt.parse_time("202607140930", PARIS, "x") == datetime(2026, 7, 14, 7, 30, tzinfo=UTC)
    assert adt.parse_time("", PARIS, "x") is None


def test_cancellations_name_the_kinds_they_may_cancel() -> None:
    a11 = parse(message("A11", zbe="ZBE|M1^GAM|20261125080000||CANCEL|N|A01"))
    assert isinstance(a11, adt.CancelMovement)
    assert set(a11.kinds) == {MovementKind.ADMISSION, MovementKind.REGISTRATION}
    a13 = parse(message("A13", zbe=""))
    assert isinstance(a13, adt.CancelMovement) and a13.kinds == (MovementKind.DISCHARGE,)


def test_the_used_name_given_up_is_an_explicit_null() -> None:
    command = parse(message("A31", pid='PID|1||1^^^NAHO^PI||""^MARIE^^^^^D~DURAND^MARIE^^^^^L||19620314|F'))
    assert command.patient.used_name == ""


@pytest.mark.parametrize(("text", "rule", "code"), [
    ("not HL7 at all", "Unparsable", 100),
    (message(control=""), "ControlIdMissing", 101),
    (message().replace("ADT^A01", "ORU^R01"), "UnsupportedMessageType", 200),
    (message("A14"), "UnsupportedTrigger", 201),  # pending admission: an option naho does not take
    (message(version="2.3"), "UnsupportedVersion", 203),
])
def test_what_cannot_be_taken_is_rejected(text: str, rule: str, code: int) -> None:
    with pytest.raises(adt.MessageRejected) as caught:
        parse(text)
    refusal = adt.refusal_of(caught.value)
    assert (refusal.ack_code, refusal.rule, refusal.code) == ("AR", rule, code)
    if rule != "Unparsable":
        assert caught.value.header is not None and caught.value.header.sender == "GAM/LENS"


@pytest.mark.parametrize(("text", "location", "code"), [
    (message(pid="PID|1||123^^^GAM^PI||DURAND^MARIE^^^^^L||1962-03-14|F"), "PID^1^7", 102),
    (message(pid="PID|1||123^^^GAM^PI||DURAND^MARIE^^^^^L||19620314|X"), "PID^1^8", 103),
    (message(pid="PID|1||||DURAND^MARIE^^^^^L||19620314|F"), "PID^1^3", 101),
    (message(zbe="ZBE|M1^GAM|20261125080000||UPDATE|N"), "ZBE^1^4", 103),
])
def test_a_malformed_field_is_an_application_error_at_its_place(text: str, location: str, code: int) -> None:
    with pytest.raises(adt.MessageInvalid) as caught:
        parse(text)
    refusal = adt.refusal_of(caught.value)
    assert (refusal.ack_code, refusal.location, refusal.code) == ("AE", location, code)


def test_the_declared_charset_decodes_the_message() -> None:
    latin = message(charset="8859/15", pid="PID|1||1^^^GAM^PI||LEFÈVRE^AGNÈS^^^^^L||19620314|F").encode("iso-8859-15")
    assert adt.decode(latin) == (latin.decode("iso-8859-15"), "iso-8859-15")
    undeclared = latin.replace(b"8859/15", b"")
    assert adt.decode(undeclared)[1] == "iso-8859-15"  # not UTF-8: the French default
    assert adt.decode("MSH|^~\\&|é".encode())[1] == "utf-8"


def test_business_refusals_are_application_errors_named_by_their_rule() -> None:
    moved = adt.refusal_of(MovementRefused("the patient is already there", rule="TransferToSameLocation"))
    assert (moved.ack_code, moved.rule, moved.code) == ("AE", "TransferToSameLocation", 207)
    assert adt.refusal_of(BedAlreadyOccupied("bed X is taken")).rule == "BedAlreadyOccupied"
    assert adt.refusal_of(PossibleDuplicates("maybe", candidates=[])).code == 205
    hidden = adt.refusal_of(ZeroDivisionError("secret detail"))
    assert hidden.rule == "InternalError" and "secret" not in hidden.reason


def test_the_acknowledgement_answers_the_sender_and_quotes_its_control_id() -> None:
    header = parse(message(control="CTRL-9")).header
    at = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
    ack = hl7.parse(adt.build_ack(header, None, control_id="ACK1", at=at, zone=PARIS, application="NAHO",
                                  facility="GHT-ARTOIS"))
    assert str(ack["MSH.F3"]) == "NAHO" and str(ack["MSH.F5"]) == "GAM" and str(ack["MSH.F6"]) == "LENS"
    assert str(ack["MSH.F7"]) == "20261125103000+0100" and str(ack.segment("MSH")(9)) == "ACK^A01^ACK"
    assert str(ack["MSH.F10"]) == "ACK1" and str(ack["MSH.F18"]) == "UNICODE UTF-8"
    assert (str(ack["MSA.F1"]), str(ack["MSA.F2"])) == ("AA", "CTRL-9")
    with pytest.raises(KeyError):
        ack.segment("ERR")


def test_a_refusal_explains_itself_in_err_with_separators_escaped() -> None:
    header = parse(message()).header
    refusal = adt.Refusal("AE", 207, "BedAlreadyOccupied", "bed A|B^C is taken", "PV1^1^3")
    text = adt.build_ack(header, refusal, control_id="A2", at=datetime(2026, 1, 1, tzinfo=UTC), zone=PARIS,
                         application="NAHO", facility="GHT-ARTOIS")
    ack = hl7.parse(text)
    assert str(ack["MSA.F1"]) == "AE"
    err = ack.segment("ERR")
    assert str(err(3)) == "207^Application internal error^HL70357" and str(err(4)) == "E"
    assert ack.unescape(str(err(5))) == "BedAlreadyOccupied"
    assert ack["ERR.F8"] == "bed A|B^C is taken"  # read back unescaped


def test_without_a_header_the_acknowledgement_still_rejects() -> None:
    text = adt.build_ack(None, adt.Refusal("AR", 100, "Unparsable", "not HL7"), control_id="X",
                         at=datetime(2026, 1, 1, tzinfo=UTC), zone=PARIS, application="NAHO", facility="GHT")
    assert text.startswith("MSH|^~\\&|NAHO|GHT|||") and "\rMSA|AR||not HL7\r" in text


def test_the_interface_acts_as_an_admission_clerk_and_says_it_is_a_machine() -> None:
    actor = adt.interface_actor("GAM/LENS")
    assert actor.roles == {Role.INTERFACE, Role.ADMISSION_CLERK}
    assert actor.display_name == "Interface ADT GAM/LENS"
    assert actor.account_id == adt.interface_actor("GAM/LENS").account_id != adt.interface_actor("LAB").account_id


def test_i_is_an_inpatient_stay() -> None:
    command = parse(message(pv1="PV1|1|I|LENS-MED-MIN"))
    assert command.visit is not None and adt._encounter_class(command.visit) is EncounterClass.INPATIENT
    assert command.visit.location is not None and command.visit.location.bed_code is None


def test_an_identity_is_not_created_without_its_strict_traits() -> None:
    command = parse(message("A28", pid="PID|1||123^^^GAM^PI||DURAND^MARIE^^^^^L||19620314|"))
    with pytest.raises(adt.MessageInvalid) as caught:
        adt._patient_create(command.patient)
    assert (caught.value.location, caught.value.code) == ("PID^1^8", 101)
