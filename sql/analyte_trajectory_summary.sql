-- analyte_trajectory_summary: corrected and ionized calcium, magnesium and PTH around time
-- zero, by exposure group and time bin, aggregated (no ids), for the report's trajectory
-- panels.
--
-- Reads:  analytic_cohort, calcium_corrected (non-null ca_corrected_mmol_l), lab_harmonised
--         (status 'used'; analytes calcium_ionized, magnesium, pth), study_config.
-- Writes: analyte_trajectory_summary (measure VARCHAR, unit VARCHAR, exposed BOOLEAN,
--         hours_bin_start INTEGER, n_results BIGINT, n_episodes BIGINT, mean_value DOUBLE,
--         sd_value DOUBLE).
--
-- measure: 'calcium_corrected' (mmol/L, albumin-corrected total Ca), 'calcium_ionized'
-- (mmol/L), 'magnesium' (serum Mg, mmol/L), 'pth' (intact PTH, pmol/L); values are the SI
-- values at reporting precision (lab_harmonised.value_si).
-- Window and bins as calcium_trajectory_summary: results of an analysed episode's stay drawn
-- in [index_time - cfg.trajectory_before_hours, index_time + cfg.trajectory_after_hours)
-- (hours), bins of cfg.trajectory_bin_hours, hours_bin_start = floor(hours / width) x width.
-- The episode is the unit: an episode's results in one bin are first averaged (so a patient
-- re-tested six times in a bin counts once), then mean_value and sd_value (sample SD, null
-- for one episode) are taken over the episodes of the bin; n_episodes counts them and
-- n_results counts the results behind them. A 95 % CI is mean +/- t(n_episodes - 1) x sd /
-- sqrt(n_episodes) (computed by the report).
-- Determinism: each episode's bin mean is an exact decimal sum over an integer count,
-- rounded to 4 decimals (below every reporting precision, 2 dp at most) and held as
-- DECIMAL(9, 4) (PTH is at most 1000 pmol/L, analyte_bounds); the
-- sums over episodes are then exact, so a re-run gives the same bits whatever the row order
-- or thread count. Small counts are suppressed by the report, not here.

CREATE OR REPLACE TABLE analyte_trajectory_summary AS
WITH
measurements AS (
    SELECT
        c.subject_id,
        c.encounter_id,
        c.time,
        'calcium_corrected' AS measure,
        'mmol/L' AS unit,
        c.ca_corrected_mmol_l AS value
    FROM calcium_corrected AS c
    WHERE c.ca_corrected_mmol_l IS NOT NULL

    UNION ALL

    SELECT
        h.subject_id,
        h.encounter_id,
        h.time,
        h.analyte AS measure,
        h.unit_si AS unit,
        h.value_si AS value
    FROM lab_harmonised AS h
    WHERE h.status = 'used'
        AND h.value_si IS NOT NULL
        AND h.analyte IN ('calcium_ionized', 'magnesium', 'pth')
),

binned AS (
    SELECT
        a.exposed,
        a.encounter_id,
        m.measure,
        m.unit,
        CAST(m.value AS DECIMAL(9, 4)) AS value_exact,
        CAST(
            FLOOR(
                (date_diff('second', a.index_time, m.time) / 3600.0) / cfg.trajectory_bin_hours
            ) * cfg.trajectory_bin_hours
            AS INTEGER
        ) AS hours_bin_start
    FROM analytic_cohort AS a
    INNER JOIN measurements AS m
        ON m.subject_id = a.subject_id
        AND m.encounter_id = a.encounter_id
    CROSS JOIN study_config AS cfg
    WHERE date_diff('second', a.index_time, m.time) / 3600.0 >= -cfg.trajectory_before_hours
        AND date_diff('second', a.index_time, m.time) / 3600.0 < cfg.trajectory_after_hours
),

episode_bins AS (
    SELECT
        measure,
        unit,
        exposed,
        encounter_id,
        hours_bin_start,
        COUNT(*) AS n_results,
        CAST(round(CAST(SUM(value_exact) AS DOUBLE) / COUNT(*), 4) AS DECIMAL(9, 4))
            AS episode_mean
    FROM binned
    GROUP BY measure, unit, exposed, encounter_id, hours_bin_start
),

exact_sums AS (
    SELECT
        measure,
        MAX(unit) AS unit,
        exposed,
        hours_bin_start,
        SUM(n_results) AS n_results,
        COUNT(*) AS n_episodes,
        CAST(SUM(episode_mean) AS DOUBLE) AS sum_value,
        CAST(SUM(episode_mean * episode_mean) AS DOUBLE) AS sum_value_squared
    FROM episode_bins
    GROUP BY measure, exposed, hours_bin_start
)

SELECT
    CAST(measure AS VARCHAR) AS measure,
    CAST(unit AS VARCHAR) AS unit,
    exposed,
    hours_bin_start,
    CAST(n_results AS BIGINT) AS n_results,
    CAST(n_episodes AS BIGINT) AS n_episodes,
    round(sum_value / n_episodes, 6) AS mean_value,
    CASE
        WHEN n_episodes > 1 THEN round(
            sqrt(
                greatest((sum_value_squared - sum_value * sum_value / n_episodes)
                    / (n_episodes - 1), 0)
            ),
            6
        )
    END AS sd_value
FROM exact_sums;
