import datetime as dt

import pytest

from naho.messaging.pki import TestAuthority

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


class Pki:
    """One authority, the group's mailbox, two professionals, and an unrelated authority."""

    def __init__(self) -> None:
        self.ca = TestAuthority("GHT Test", NOW)
        self.group = self.ca.issue_organisation("secretariat@ght-test.mssante.fr", "GHT Test")
        self.alice = self.ca.issue_professional(
            "alice.martin@medecin.mssante.fr", "Alice Martin", "Cabinet Martin", rpps="10001234567"
        )
        self.bob = self.ca.issue_professional("bob.durand@medecin.mssante.fr", "Bob Durand", "Cabinet Durand")
        self.rogue_ca = TestAuthority("Rogue", NOW)
        # Same address as the group's mailbox, issued by an authority we do not trust.
        self.impostor = self.rogue_ca.issue_organisation("secretariat@ght-test.mssante.fr", "GHT Test")
        # A two-level hierarchy, as IGC-Santé's: root -> intermediate -> professional.
        self.root = TestAuthority("Racine Test", NOW)
        self.intermediate = TestAuthority("Personnes Test", NOW, parent=self.root)
        self.carol = self.intermediate.issue_professional(
            "carol.petit@medecin.mssante.fr", "Carol Petit", "Cabinet Petit"
        )


@pytest.fixture(scope="session")
def pki() -> Pki:
    return Pki()
