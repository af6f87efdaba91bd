"""Operations around runs: Prefect settings, serving schedules, run history, artifacts."""
