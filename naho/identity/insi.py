"""The national INSi teleservice, behind a port (STYLE.md R4).

The real service is reached with a health-professional or establishment certificate through the
ANS's SOAP interface; that adapter comes with production credentials. The demo and the tests use
`SimulatedInsi`, which answers deterministically from the traits, with the INS *demonstration*
authority (OID INS-NIR-DEMO), so a simulated INS can never pass for a real one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

from naho.identity.rules import INS_NIR_DEMO_OID, Traits, ins_key


@dataclass(frozen=True)
class InsiAnswer:
    ins: str
    oid: str
    traits: Traits


class InsiPort(Protocol):
    def search(self, traits: Traits) -> InsiAnswer | None:
        """One identity whose reference traits match (INSi code 00), or None."""
        ...


class SimulatedInsi:
    """Answers every well-formed identity born in France or abroad; never a real INS."""

    def search(self, traits: Traits) -> InsiAnswer | None:
        if traits.sex not in ("M", "F"):
            return None  # INSi knows only M and F
        place = traits.birth_place if traits.birth_place and traits.birth_place != "99999" else "99100"
        digest = int(hashlib.sha256(f"{traits.birth_name}|{traits.first_names}|{traits.birth_date}".encode())
                     .hexdigest(), 16)
        order = f"{digest % 998 + 1:03d}"
        nir13 = (f"{1 if traits.sex == 'M' else 2}{traits.birth_date.year % 100:02d}{traits.birth_date.month:02d}"
                 f"{place}{order}")
        return InsiAnswer(ins=nir13 + ins_key(nir13), oid=INS_NIR_DEMO_OID, traits=traits)
