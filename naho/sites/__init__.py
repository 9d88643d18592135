"""The group's structure: establishments, departments, units, rooms, beds and rollout waves.

Other domains use `naho.sites.service` (read functions returning `schemas`), never the tables.
"""
