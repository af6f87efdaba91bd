-- low_value_episodes: runs of low serum magnesium, low calcium (calcium_status: ionized,
-- else corrected, else uncorrected total) and low potassium within a stay (gaps and
-- islands), with the CTCAE v5 grade of each nadir; and the contract tables cut from it.
--
-- Reads:  lab_harmonised (magnesium, potassium; status = 'used'), calcium_status,
--         ctcae_grades, study_config.
-- Writes: low_value_episodes (series column: 'magnesium', 'calcium' or 'potassium'),
--         hypomagnesaemia_episodes, hypocalcaemia_episodes, hypokalaemia_episodes
--         (subject_id, encounter_id, episode_start, episode_end, nadir_value_mmol_l,
--         n_results, then nadir_time, ctcae_grade, end_reason, n_low_runs; calcium also
--         calcium_measure and any_uncorrected).
--
-- Low (a value exactly at the threshold is not low; values at reporting precision):
--   Mg < cfg.mg_low_mmol_l (mmol/L, default 0.70: lower reference limit, CTCAE v5 grade 1
--   "< LLN"); K < cfg.k_low_mmol_l (default 3.5, same source); calcium: calcium_status.is_low
--   (ionized < cfg.ca_ionized_low_mmol_l 1.12, corrected or uncorrected total <
--   cfg.ca_corrected_low_mmol_l 2.15).
--
-- Rules, per stay and series, results in draw-time order (ties: lower value first; calcium
-- has one status per draw time; an episode never crosses stays):
--   1 A low run starts at a low result whose previous result is not low, is missing (first
--     result of the stay), or was drawn more than cfg.episode_gap_hours (hours, default 72)
--     earlier: nothing is known about so long a silence.
--   2 A run ends at the draw time of the first later result that is not low, if it comes at
--     most cfg.episode_gap_hours after the run's last low result (end_reason
--     'normal_result'); otherwise at its last low result: the next result is more than
--     episode_gap_hours later ('gap') or there is none ('last_result').
--   3 Two consecutive runs are one episode when the first ended on a normal result and the
--     second starts less than cfg.episode_merge_hours (default 0 = never merge) after that
--     normal result: normal values spanning less than that are a blip, not a recovery.
--     n_low_runs counts the runs merged into the episode.
-- episode_start is the first low result, episode_end as in rule 2 for the last run;
-- n_results counts the low results (closing and in-between normal results are not counted).
-- Nadir: the worst low result: the highest CTCAE grade, then the lowest value relative to
-- its own threshold (value / threshold: ionized and corrected calcium are comparable), then
-- the earliest; for Mg and K that is the lowest value, earliest first.
-- ctcae_grade: CTCAE v5 grade of the nadir from reference/ctcae_grades.csv (grade 1's blank
-- cut-point is the series' low threshold): Mg G1 < LLN-0.5, G2 < 0.5-0.4, G3 < 0.4-0.3,
-- G4 < 0.3 mmol/L; K G1 < LLN-3.0 (G2 needs symptoms: not from labs), G3 < 3.0-2.5,
-- G4 < 2.5; calcium: calcium_status.ctcae_grade. A value at a cut-point takes the milder
-- grade. Episodes of one stay and series never overlap: the next one starts after the end
-- of the previous one.

CREATE OR REPLACE TABLE low_value_episodes AS
WITH
lab_series AS (
    SELECT
        CASE h.analyte WHEN 'magnesium' THEN 'magnesium' ELSE 'potassium' END AS series,
        h.subject_id,
        h.encounter_id,
        h.time,
        h.value_si AS value_mmol_l,
        CASE h.analyte WHEN 'magnesium' THEN cfg.mg_low_mmol_l ELSE cfg.k_low_mmol_l END
            AS low_threshold_mmol_l,
        CAST(NULL AS VARCHAR) AS calcium_measure
    FROM lab_harmonised AS h
    CROSS JOIN study_config AS cfg
    WHERE h.analyte IN ('magnesium', 'potassium') AND h.status = 'used'
),

series AS (
    SELECT
        s.*,
        s.value_mmol_l < s.low_threshold_mmol_l AS is_low,
        CAST((
            SELECT MAX(g.grade)
            FROM ctcae_grades AS g
            WHERE g.measure = s.series
                AND s.value_mmol_l < s.low_threshold_mmol_l
                AND s.value_mmol_l < COALESCE(g.below_si, s.low_threshold_mmol_l)
        ) AS INTEGER) AS ctcae_grade
    FROM lab_series AS s

    UNION ALL

    SELECT
        'calcium' AS series,
        c.subject_id,
        c.encounter_id,
        c.time,
        c.value_mmol_l,
        c.low_threshold_mmol_l,
        c.calcium_measure,
        c.is_low,
        c.ctcae_grade
    FROM calcium_status AS c
),

with_neighbours AS (
    SELECT
        *,
        LAG(is_low) OVER (
            PARTITION BY series, subject_id, encounter_id ORDER BY time, value_mmol_l
        ) AS previous_is_low,
        LAG(time) OVER (
            PARTITION BY series, subject_id, encounter_id ORDER BY time, value_mmol_l
        ) AS previous_time,
        LEAD(is_low) OVER (
            PARTITION BY series, subject_id, encounter_id ORDER BY time, value_mmol_l
        ) AS next_is_low,
        LEAD(time) OVER (
            PARTITION BY series, subject_id, encounter_id ORDER BY time, value_mmol_l
        ) AS next_time
    FROM series
),

-- rules 1 and 2, row by row
flagged AS (
    SELECT
        w.*,
        w.is_low AND (
            w.previous_is_low IS NULL
            OR NOT w.previous_is_low
            OR date_diff('second', w.previous_time, w.time) / 3600.0 > cfg.episode_gap_hours
        ) AS starts_run,
        w.next_time IS NOT NULL
            AND date_diff('second', w.time, w.next_time) / 3600.0 <= cfg.episode_gap_hours
            AS next_within_gap
    FROM with_neighbours AS w
    CROSS JOIN study_config AS cfg
),

-- Only low results start a run, so a low result's run number (the runs started at or before
-- it) counts the same over the low results alone as over all results: the running count is
-- taken after the normal results are dropped, which sorts only the low ones again.
low_results AS (
    SELECT
        *,
        SUM(CASE WHEN starts_run THEN 1 ELSE 0 END) OVER (
            PARTITION BY series, subject_id, encounter_id
            ORDER BY time, value_mmol_l
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS run_number,
        -- the last low result of its run: the next result is not low, or too late, or none
        NOT (COALESCE(next_is_low, FALSE) AND next_within_gap) AS ends_run
    FROM flagged
    WHERE is_low
),

runs AS (
    SELECT
        series,
        subject_id,
        encounter_id,
        run_number,
        MIN(time) AS run_start,
        MAX(CASE
            WHEN ends_run AND next_within_gap THEN next_time
            WHEN ends_run THEN time
        END) AS run_end,
        MAX(CASE
            WHEN ends_run AND next_within_gap THEN 'normal_result'
            WHEN ends_run AND next_time IS NOT NULL THEN 'gap'
            WHEN ends_run THEN 'last_result'
        END) AS end_reason
    FROM low_results
    GROUP BY series, subject_id, encounter_id, run_number
),

-- rule 3
runs_with_previous AS (
    SELECT
        *,
        LAG(run_end) OVER (
            PARTITION BY series, subject_id, encounter_id ORDER BY run_start
        ) AS previous_run_end,
        LAG(end_reason) OVER (
            PARTITION BY series, subject_id, encounter_id ORDER BY run_start
        ) AS previous_end_reason
    FROM runs
),

merged_runs AS (
    SELECT
        r.*,
        SUM(CASE
            WHEN r.previous_end_reason = 'normal_result'
                AND date_diff('second', r.previous_run_end, r.run_start) / 3600.0
                < cfg.episode_merge_hours
                THEN 0
            ELSE 1
        END) OVER (
            PARTITION BY r.series, r.subject_id, r.encounter_id
            ORDER BY r.run_start
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS episode_number
    FROM runs_with_previous AS r
    CROSS JOIN study_config AS cfg
),

episode_bounds AS (
    SELECT
        series,
        subject_id,
        encounter_id,
        episode_number,
        MIN(run_start) AS episode_start,
        MAX(run_end) AS episode_end,
        COUNT(*) AS n_low_runs
    FROM merged_runs
    GROUP BY series, subject_id, encounter_id, episode_number
),

last_run AS (
    SELECT
        series,
        subject_id,
        encounter_id,
        episode_number,
        end_reason,
        ROW_NUMBER() OVER (
            PARTITION BY series, subject_id, encounter_id, episode_number
            ORDER BY run_start DESC
        ) AS recency_rank
    FROM merged_runs
),

episode_results AS (
    SELECT
        l.*,
        m.episode_number,
        ROW_NUMBER() OVER (
            PARTITION BY l.series, l.subject_id, l.encounter_id, m.episode_number
            ORDER BY
                COALESCE(l.ctcae_grade, 0) DESC,
                l.value_mmol_l / l.low_threshold_mmol_l,
                l.time,
                l.value_mmol_l
        ) AS severity_rank
    FROM low_results AS l
    INNER JOIN merged_runs AS m
        ON m.series = l.series
        AND m.subject_id = l.subject_id
        AND m.encounter_id = l.encounter_id
        AND m.run_number = l.run_number
),

episode_counts AS (
    SELECT
        series,
        subject_id,
        encounter_id,
        episode_number,
        COUNT(*) AS n_results,
        MAX(CASE WHEN calcium_measure = 'total_uncorrected' THEN 1 ELSE 0 END) = 1
            AS any_uncorrected
    FROM episode_results
    GROUP BY series, subject_id, encounter_id, episode_number
)

SELECT
    b.series,
    b.subject_id,
    b.encounter_id,
    CAST(b.episode_number AS INTEGER) AS episode_number,
    b.episode_start,
    b.episode_end,
    n.value_mmol_l AS nadir_value_mmol_l,
    c.n_results,
    n.time AS nadir_time,
    n.ctcae_grade,
    n.calcium_measure,
    c.any_uncorrected,
    r.end_reason,
    CAST(b.n_low_runs AS BIGINT) AS n_low_runs
FROM episode_bounds AS b
INNER JOIN episode_counts AS c
    ON c.series = b.series
    AND c.subject_id = b.subject_id
    AND c.encounter_id = b.encounter_id
    AND c.episode_number = b.episode_number
INNER JOIN episode_results AS n
    ON n.series = b.series
    AND n.subject_id = b.subject_id
    AND n.encounter_id = b.encounter_id
    AND n.episode_number = b.episode_number
    AND n.severity_rank = 1
INNER JOIN last_run AS r
    ON r.series = b.series
    AND r.subject_id = b.subject_id
    AND r.encounter_id = b.encounter_id
    AND r.episode_number = b.episode_number
    AND r.recency_rank = 1;

CREATE OR REPLACE TABLE hypomagnesaemia_episodes AS
SELECT
    subject_id, encounter_id, episode_start, episode_end, nadir_value_mmol_l, n_results,
    nadir_time, ctcae_grade, end_reason, n_low_runs
FROM low_value_episodes
WHERE series = 'magnesium';

CREATE OR REPLACE TABLE hypocalcaemia_episodes AS
SELECT
    subject_id, encounter_id, episode_start, episode_end, nadir_value_mmol_l, n_results,
    nadir_time, ctcae_grade, calcium_measure, any_uncorrected, end_reason, n_low_runs
FROM low_value_episodes
WHERE series = 'calcium';

CREATE OR REPLACE TABLE hypokalaemia_episodes AS
SELECT
    subject_id, encounter_id, episode_start, episode_end, nadir_value_mmol_l, n_results,
    nadir_time, ctcae_grade, end_reason, n_low_runs
FROM low_value_episodes
WHERE series = 'potassium';
