"""Test tier e2e/: End-to-end runs: ``mgca run`` on every source kind, from input files to
report.html.
"""
