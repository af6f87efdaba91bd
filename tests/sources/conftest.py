"""Test tier sources/: Source adapters (MIMIC-IV, OMOP CDM, FHIR R4, MEDS, long-format CSV, Delta)
on tiny inputs in the exact distributed formats, and the corpus of bad inputs every error
message is checked on.
"""
