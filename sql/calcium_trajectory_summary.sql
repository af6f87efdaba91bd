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
-- the bin; sd is the sample standard deviation (null for a single result). Mean and sd are
-- rounded to 6 decimals so that a re-run gives the same bits whatever the summation order.
-- Small counts are suppressed by the report, not here.

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
        r.ca_corrected_mmol_l,
        CAST(
            FLOOR(r.hours_from_index / cfg.trajectory_bin_hours) * cfg.trajectory_bin_hours
            AS INTEGER
        ) AS hours_bin_start
    FROM results_around_index AS r
    CROSS JOIN study_config AS cfg
    WHERE r.hours_from_index >= -cfg.trajectory_before_hours
        AND r.hours_from_index < cfg.trajectory_after_hours
)

SELECT
    exposed,
    hours_bin_start,
    CAST(COUNT(*) AS BIGINT) AS n_results,
    CAST(COUNT(DISTINCT encounter_id) AS BIGINT) AS n_episodes,
    round(AVG(ca_corrected_mmol_l), 6) AS mean_ca_corrected_mmol_l,
    round(STDDEV_SAMP(ca_corrected_mmol_l), 6) AS sd_ca_corrected_mmol_l
FROM binned
GROUP BY exposed, hours_bin_start;
