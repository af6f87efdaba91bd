-- calcium_trajectory_summary: corrected calcium around time zero, aggregated (no ids), for
-- the trajectory figure.
--
-- Reads:  analytic_cohort, calcium_corrected (non-null ca_corrected_mmol_l), study_config.
-- Writes: calcium_trajectory_summary (exposed BOOLEAN, hours_bin_start INTEGER,
--         n_results BIGINT, n_episodes BIGINT, mean_ca_corrected_mmol_l DOUBLE,
--         sd_ca_corrected_mmol_l DOUBLE).
--
-- Every corrected calcium of an analysed episode's stay drawn in
-- [index_time - cfg.trajectory_before_hours, index_time + cfg.trajectory_after_hours)
-- (hours, defaults 48 and 96; start included, end excluded so bins tile the range), in bins
-- of cfg.trajectory_bin_hours (default 12 h): hours_bin_start = floor(hours / width) x width,
-- so the bin [0, 12) holds the index draw itself. n_episodes counts stays with a result in
-- the bin; sd is the sample standard deviation (null for a single result).
-- Determinism: a floating-point SUM depends on the order rows arrive in (threads, physical
-- order of the tables before it), and rounding cannot always hide that (a mean of many
-- results can sit within rounding error of a 6th-decimal boundary). So the sums are exact:
-- each value as DECIMAL(9, 6) (corrected Ca is at most 2 dp, well under 1000 mmol/L), their
-- sum and sum of squares in exact decimal arithmetic, and only then mean = sum / n and
-- sd = sqrt((sum of squares - sum^2 / n) / (n - 1)) in DOUBLE, rounded to 6 decimals. A
-- re-run gives the same bits whatever the order. Small counts are suppressed by the
-- report, not here.

CREATE OR REPLACE TABLE calcium_trajectory_summary AS
WITH
results_around_index AS (
    SELECT
        a.exposed,
        a.encounter_id,
        c.ca_corrected_mmol_l,
        date_diff('second', a.index_time, c.time) / 3600.0 AS hours_from_index
    FROM analytic_cohort AS a
    INNER JOIN calcium_corrected AS c
        ON c.subject_id = a.subject_id
        AND c.encounter_id = a.encounter_id
    WHERE c.ca_corrected_mmol_l IS NOT NULL
),

binned AS (
    SELECT
        r.exposed,
        r.encounter_id,
        CAST(r.ca_corrected_mmol_l AS DECIMAL(9, 6)) AS ca_exact_mmol_l,
        CAST(
            FLOOR(r.hours_from_index / cfg.trajectory_bin_hours) * cfg.trajectory_bin_hours
            AS INTEGER
        ) AS hours_bin_start
    FROM results_around_index AS r
    CROSS JOIN study_config AS cfg
    WHERE r.hours_from_index >= -cfg.trajectory_before_hours
        AND r.hours_from_index < cfg.trajectory_after_hours
),

exact_sums AS (
    SELECT
        exposed,
        hours_bin_start,
        COUNT(*) AS n_results,
        COUNT(DISTINCT encounter_id) AS n_episodes,
        CAST(SUM(ca_exact_mmol_l) AS DOUBLE) AS sum_ca,
        CAST(SUM(ca_exact_mmol_l * ca_exact_mmol_l) AS DOUBLE) AS sum_ca_squared
    FROM binned
    GROUP BY exposed, hours_bin_start
)

SELECT
    exposed,
    hours_bin_start,
    CAST(n_results AS BIGINT) AS n_results,
    CAST(n_episodes AS BIGINT) AS n_episodes,
    round(sum_ca / n_results, 6) AS mean_ca_corrected_mmol_l,
    CASE
        WHEN n_results > 1 THEN round(
            sqrt(greatest((sum_ca_squared - sum_ca * sum_ca / n_results) / (n_results - 1), 0)),
            6
        )
    END AS sd_ca_corrected_mmol_l
FROM exact_sums;
