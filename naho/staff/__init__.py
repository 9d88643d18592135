"""The staff directory: professionals, their professions (RPPS) and unit assignments.

Other domains use `naho.staff.service`; accounts and roles live in `naho.platform.security`.
"""
