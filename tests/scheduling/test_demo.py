"""The demo's schedules and patient account: created once, development only."""

from __future__ import annotations

from naho.config import DEVELOPMENT_PASSWORD, Settings
from naho.platform.deps import Container
from naho.platform.security import service as security
from naho.sandbox.scheduling import DEMO_PATIENT_LOGIN, seed_scheduling
from naho.scheduling import service as scheduling
from tests.scheduling.world import new_patient


def test_the_demo_gets_three_schedules_and_a_patient_account_once(container: Container) -> None:
    new_patient(container)  # the first patient of the index (IPP 01000001)
    development = Settings(mode="development", database_url=container.settings.database_url, demo_patients=1)
    assert seed_scheduling(container.uow(), development.model_copy(update={"mode": "test"})) == {}
    created = seed_scheduling(container.uow(), development)
    assert created["demo_patient_accounts_created"] == 1 and created["demo_slots_created"] > 500
    assert seed_scheduling(container.uow(), development) == {"demo_slots_created": 0,
                                                              "demo_patient_accounts_created": 0}
    with container.uow() as uow:
        assert {v.establishment_code for v in scheduling.list_schedules(uow.session)} == {"LENS", "BETHUNE", "HENIN"}
    signed = security.sign_in(container.uow(), container.settings, username=DEMO_PATIENT_LOGIN,
                              password=DEVELOPMENT_PASSWORD, address="127.0.0.1", user_agent=None)
    assert not signed.mfa_pending
