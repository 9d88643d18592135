"""Scheduling: schedules of the group's consultations, their slots, appointments, the waiting list.

Other domains use `naho.scheduling.service` (search, book, cancel, reschedule...), never the tables.
"""
