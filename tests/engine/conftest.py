"""Test tier engine/: The engines behind ``mgca.engine``: the SQL runner and its static dependency
analysis, the loader, and Spark local mode giving DuckDB's tables row for row.
"""
