"""Test tier sql/: SQL definitions, tested with hand-written patient stories (``helpers.stories``):
a few rows each, loaded into a real DuckDB file and run through the real ``sql/`` steps; every
expected episode is worked out by hand in the test.
"""
