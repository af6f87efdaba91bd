"""Test tier recovery/: Seeded simulation studies: the estimators recover a known effect (and a
zero one) within stated tolerance, over replicates. Marked slow; CI runs a reduced replicate
count.
"""
