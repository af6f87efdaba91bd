-- trajectory_sample: a seeded random sample of analysed episodes with their corrected
-- calcium and magnesium results, time relative to index only, for the report's figure of
-- individual trajectories. De-identified: no subject or encounter id and no date leaves
-- this table; each sampled episode is a pseudonymous sample_number (1, 2, ... within its
-- exposure group) that means nothing outside this run.
--
-- Reads:  analytic_cohort, calcium_corrected, lab_harmonised (status 'used', magnesium),
--         study_config (trajectory_sample_size, trajectory_sample_seed, small_cell_threshold,
--         trajectory_before_hours, trajectory_after_hours).
-- Writes: trajectory_sample (exposed BOOLEAN, sample_number INTEGER, measure VARCHAR,
--         hours_from_index INTEGER, value DOUBLE).
--
-- Sample: in each exposure group with at least cfg.small_cell_threshold analysed episodes
-- (a smaller group is not sampled at all), the first cfg.trajectory_sample_size episodes
-- (default 20) in the order of md5(seed || '|' || subject_id || '|' || encounter_id): a
-- pseudo-random order that is the same on every engine and every re-run with the same seed
-- (cfg.trajectory_sample_seed), and unrelated to ids' order.
-- Results: measure 'calcium_corrected' (albumin-corrected total Ca, mmol/L) and 'magnesium'
-- (serum Mg, mmol/L) of the episode's stay drawn in [index - trajectory_before_hours,
-- index + trajectory_after_hours) (hours). hours_from_index is rounded to whole hours
-- (half away from zero): enough for a 6-day figure, coarser than the record.

CREATE OR REPLACE TABLE trajectory_sample AS
WITH
group_sizes AS (
    SELECT exposed, COUNT(*) AS n_episodes
    FROM analytic_cohort
    GROUP BY exposed
),

ranked AS (
    SELECT
        a.subject_id,
        a.encounter_id,
        a.index_time,
        a.exposed,
        ROW_NUMBER() OVER (
            PARTITION BY a.exposed
            ORDER BY
                md5(
                    CAST(cfg.trajectory_sample_seed AS VARCHAR) || '|' || a.subject_id
                    || '|' || a.encounter_id
                ),
                a.subject_id,
                a.encounter_id
        ) AS sample_number
    FROM analytic_cohort AS a
    INNER JOIN group_sizes AS g
        ON g.exposed = a.exposed
    CROSS JOIN study_config AS cfg
    WHERE g.n_episodes >= cfg.small_cell_threshold
),

sampled AS (
    SELECT r.*
    FROM ranked AS r
    CROSS JOIN study_config AS cfg
    WHERE r.sample_number <= cfg.trajectory_sample_size
),

measurements AS (
    SELECT
        c.subject_id,
        c.encounter_id,
        c.time,
        'calcium_corrected' AS measure,
        c.ca_corrected_mmol_l AS value
    FROM calcium_corrected AS c
    WHERE c.ca_corrected_mmol_l IS NOT NULL

    UNION ALL

    SELECT h.subject_id, h.encounter_id, h.time, 'magnesium', h.value_si
    FROM lab_harmonised AS h
    WHERE h.status = 'used'
        AND h.value_si IS NOT NULL
        AND h.analyte = 'magnesium'
)

SELECT
    s.exposed,
    CAST(s.sample_number AS INTEGER) AS sample_number,
    CAST(m.measure AS VARCHAR) AS measure,
    CAST(round(date_diff('second', s.index_time, m.time) / 3600.0) AS INTEGER)
        AS hours_from_index,
    CAST(m.value AS DOUBLE) AS value
FROM sampled AS s
INNER JOIN measurements AS m
    ON m.subject_id = s.subject_id
    AND m.encounter_id = s.encounter_id
CROSS JOIN study_config AS cfg
WHERE date_diff('second', s.index_time, m.time) / 3600.0 >= -cfg.trajectory_before_hours
    AND date_diff('second', s.index_time, m.time) / 3600.0 < cfg.trajectory_after_hours;
