-- low_value_episodes: runs of low serum magnesium and of low corrected calcium within a stay
-- (gaps and islands), and the two contract tables cut from it.
--
-- Reads:  lab_harmonised (magnesium, status = 'used'), calcium_corrected (non-null
--         ca_corrected_mmol_l), study_config.
-- Writes: low_value_episodes (series column: 'magnesium' or 'calcium_corrected'),
--         hypomagnesaemia_episodes, hypocalcaemia_episodes
--         (subject_id, encounter_id, episode_start, episode_end, nadir_value_mmol_l, n_results).
--
-- Low: Mg < cfg.mg_low_mmol_l (mmol/L, default 0.70: lower reference limit, CTCAE v5 grade 1
-- "< LLN"); corrected Ca < cfg.ca_corrected_low_mmol_l (mmol/L, default 2.15, same source).
-- A value exactly at the threshold is not low.
--
-- Results of one stay are taken in draw-time order (ties: lower value first). An episode
-- starts at the first low result after a non-low one (or at the first result of the stay)
-- and ends at the draw time of the first later result at/above the threshold; if none
-- follows, it ends at its last low result. nadir_value_mmol_l is the lowest value in it and
-- n_results counts its low results (the closing normal result is not counted). Episodes of
-- one stay and series never overlap: the next one starts after the closing result.

CREATE OR REPLACE TABLE low_value_episodes AS
WITH
series AS (
    SELECT
        'magnesium' AS series,
        h.subject_id,
        h.encounter_id,
        h.time,
        h.value_si AS value_mmol_l,
        h.value_si < cfg.mg_low_mmol_l AS is_low
    FROM lab_harmonised AS h
    CROSS JOIN study_config AS cfg
    WHERE h.analyte = 'magnesium' AND h.status = 'used'

    UNION ALL

    SELECT
        'calcium_corrected' AS series,
        c.subject_id,
        c.encounter_id,
        c.time,
        c.ca_corrected_mmol_l AS value_mmol_l,
        c.ca_corrected_mmol_l < cfg.ca_corrected_low_mmol_l AS is_low
    FROM calcium_corrected AS c
    CROSS JOIN study_config AS cfg
    WHERE c.ca_corrected_mmol_l IS NOT NULL
),

with_neighbours AS (
    SELECT
        *,
        LAG(is_low) OVER (
            PARTITION BY series, subject_id, encounter_id ORDER BY time, value_mmol_l
        ) AS previous_is_low,
        LEAD(is_low) OVER (
            PARTITION BY series, subject_id, encounter_id ORDER BY time, value_mmol_l
        ) AS next_is_low,
        LEAD(time) OVER (
            PARTITION BY series, subject_id, encounter_id ORDER BY time, value_mmol_l
        ) AS next_time
    FROM series
),

islands AS (
    SELECT
        *,
        SUM(CASE WHEN is_low AND NOT COALESCE(previous_is_low, FALSE) THEN 1 ELSE 0 END)
            OVER (
                PARTITION BY series, subject_id, encounter_id
                ORDER BY time, value_mmol_l
                ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
            ) AS episode_number
    FROM with_neighbours
)

SELECT
    series,
    subject_id,
    encounter_id,
    CAST(episode_number AS INTEGER) AS episode_number,
    MIN(time) AS episode_start,
    -- only the last low result of an island has no low result after it
    MAX(CASE WHEN NOT COALESCE(next_is_low, FALSE) THEN COALESCE(next_time, time) END)
        AS episode_end,
    MIN(value_mmol_l) AS nadir_value_mmol_l,
    COUNT(*) AS n_results
FROM islands
WHERE is_low
GROUP BY series, subject_id, encounter_id, episode_number;

CREATE OR REPLACE TABLE hypomagnesaemia_episodes AS
SELECT subject_id, encounter_id, episode_start, episode_end, nadir_value_mmol_l, n_results
FROM low_value_episodes
WHERE series = 'magnesium';

CREATE OR REPLACE TABLE hypocalcaemia_episodes AS
SELECT subject_id, encounter_id, episode_start, episode_end, nadir_value_mmol_l, n_results
FROM low_value_episodes
WHERE series = 'calcium_corrected';
