"""The patient index (MPI): identities, INS and identity vigilance (RNIV), duplicates.

Other domains use `naho.identity.service` (patient_exists, summaries, get_patient...).
"""
