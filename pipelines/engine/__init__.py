"""The engines that run sql/: DuckDB (embedded default) and Spark, behind one interface."""
