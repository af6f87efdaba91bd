"""Test tier ops/: Operations: the CLI, the Prefect flow and schedules, the run folder (atomic
publishing, crash safety, locking), the cache, privacy of logs and outputs, and the benchmark
scripts.
"""
