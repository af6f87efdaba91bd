"""Which settings each SQL step reads (mgca.engine.derive.config_inputs), and which steps a changed
setting makes re-run (steps_to_rerun): the sensitivity analyses re-derive only those."""

from __future__ import annotations

import pytest

from mgca.config import MgcaConfig
from mgca.engine.database import study_config_values
from mgca.engine.derive import SQL_STEPS, config_inputs, steps_to_rerun


def test_every_step_reads_study_config_only_through_cfg_and_only_real_columns() -> None:
    columns = set(study_config_values(MgcaConfig())) | {"study_outcome_horizons"}
    for sql_file in SQL_STEPS:
        unknown = config_inputs(sql_file) - columns
        assert not unknown, f"{sql_file} reads cfg columns that study_config lacks: {unknown}"


def test_settings_named_in_comments_or_literals_are_not_inputs() -> None:
    sql = (
        "-- grace: cfg.grace_hours (hours)\n"
        "CREATE OR REPLACE TABLE t AS SELECT '--cfg.horizon_hours' AS s, cfg.min_age_years\n"
        "FROM x CROSS JOIN study_config AS cfg -- cfg.pth_upper_ng_l\n"
    )
    assert config_inputs("t.sql", sql) == {"min_age_years"}


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE OR REPLACE TABLE t AS SELECT c.grace_hours FROM study_config AS c",
        "CREATE OR REPLACE TABLE t AS SELECT (SELECT grace_hours FROM study_config) AS g",
    ],
)
def test_a_step_reading_study_config_another_way_is_refused(sql: str) -> None:
    with pytest.raises(ValueError, match="without the alias cfg"):
        config_inputs("t.sql", sql)


def test_a_changed_window_reruns_the_steps_from_the_first_that_reads_it() -> None:
    last = "analytic_cohort.sql"
    cohort_steps = list(SQL_STEPS[: SQL_STEPS.index(last) + 1])
    grace = steps_to_rerun({"grace_hours"}, last)
    assert grace[0] == "index_exposure.sql" and grace[-1] == last
    assert grace == cohort_steps[cohort_steps.index("index_exposure.sql") :]
    horizon = steps_to_rerun({"horizon_hours", "study_outcome_horizons"}, last)
    assert horizon[0] == "index_outcome.sql"
    # a threshold read by the first step re-runs everything; a setting no cohort step reads,
    # nothing
    assert steps_to_rerun({"infer_missing_units"}, last) == cohort_steps
    assert steps_to_rerun({"trajectory_bin_hours"}, last) == []
