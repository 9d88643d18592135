"""Teleconsultation's tests build on scheduling's: the same app, patient mails collected."""

from tests.scheduling.conftest import container, sent  # noqa: F401  (fixtures)
