"""Test tier synthetic/: The synthetic-data generator and its known-truth replay.
"""
