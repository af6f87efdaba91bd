-- index_events: time zero of each stay, the first moment the patient is concurrently
-- hypomagnesaemic and hypocalcaemic.
--
-- Reads:  lab_harmonised (magnesium, status = 'used'), calcium_corrected (non-null
--         ca_corrected_mmol_l), study_config.
-- Writes: index_events (at most one row per encounter).
--
-- Low: Mg < cfg.mg_low_mmol_l (default 0.70 mmol/L), corrected Ca <
-- cfg.ca_corrected_low_mmol_l (default 2.15 mmol/L); a value at the threshold is not low. A
-- calcium without albumin has no corrected value and never qualifies.
--
-- Candidate times are the draw times of low Mg and low corrected Ca results of the stay. At a
-- candidate time T the qualifying pair is the last Mg and the last corrected Ca drawn at or
-- before T (same stay; ties at one time: the lower value). T is an index when both are low
-- and drawn at most cfg.concurrent_window_hours (default 6 h) apart. The index is the first
-- such T; it always equals the later of the two draw times. Taking the *last* draws (not any
-- earlier low one) means a value that has already normalised never qualifies: Mg 0.60 at
-- 08:00, Mg 0.80 at 10:00, Ca 2.00 at 11:00 is not concurrent hypoMg + hypoCa at 11:00.
-- The qualifying values are the cohort's baseline Mg and Ca.

CREATE OR REPLACE TABLE index_events AS
WITH
magnesium AS (
    SELECT subject_id, encounter_id, time, value_si AS mg_mmol_l
    FROM lab_harmonised
    WHERE analyte = 'magnesium' AND status = 'used'
),

calcium AS (
    SELECT subject_id, encounter_id, time, ca_corrected_mmol_l, ca_total_mmol_l, albumin_g_l
    FROM calcium_corrected
    WHERE ca_corrected_mmol_l IS NOT NULL
),

candidate_times AS (
    SELECT mg.subject_id, mg.encounter_id, mg.time AS candidate_time
    FROM magnesium AS mg
    CROSS JOIN study_config AS cfg
    WHERE mg.mg_mmol_l < cfg.mg_low_mmol_l

    UNION

    SELECT ca.subject_id, ca.encounter_id, ca.time AS candidate_time
    FROM calcium AS ca
    CROSS JOIN study_config AS cfg
    WHERE ca.ca_corrected_mmol_l < cfg.ca_corrected_low_mmol_l
),

last_magnesium AS (
    SELECT
        t.subject_id,
        t.encounter_id,
        t.candidate_time,
        mg.time AS mg_draw_time,
        mg.mg_mmol_l,
        ROW_NUMBER() OVER (
            PARTITION BY t.subject_id, t.encounter_id, t.candidate_time
            ORDER BY mg.time DESC, mg.mg_mmol_l
        ) AS recency_rank
    FROM candidate_times AS t
    INNER JOIN magnesium AS mg
        ON mg.subject_id = t.subject_id
        AND mg.encounter_id = t.encounter_id
        AND mg.time <= t.candidate_time
),

last_calcium AS (
    SELECT
        t.subject_id,
        t.encounter_id,
        t.candidate_time,
        ca.time AS ca_draw_time,
        ca.ca_corrected_mmol_l,
        ca.ca_total_mmol_l,
        ca.albumin_g_l,
        ROW_NUMBER() OVER (
            PARTITION BY t.subject_id, t.encounter_id, t.candidate_time
            ORDER BY ca.time DESC, ca.ca_corrected_mmol_l
        ) AS recency_rank
    FROM candidate_times AS t
    INNER JOIN calcium AS ca
        ON ca.subject_id = t.subject_id
        AND ca.encounter_id = t.encounter_id
        AND ca.time <= t.candidate_time
),

qualifying AS (
    SELECT
        m.subject_id,
        m.encounter_id,
        m.candidate_time,
        m.mg_draw_time,
        m.mg_mmol_l,
        c.ca_draw_time,
        c.ca_corrected_mmol_l,
        c.ca_total_mmol_l,
        c.albumin_g_l,
        ROW_NUMBER() OVER (
            PARTITION BY m.subject_id, m.encounter_id ORDER BY m.candidate_time
        ) AS time_rank
    FROM last_magnesium AS m
    INNER JOIN last_calcium AS c
        ON c.subject_id = m.subject_id
        AND c.encounter_id = m.encounter_id
        AND c.candidate_time = m.candidate_time
    CROSS JOIN study_config AS cfg
    WHERE m.recency_rank = 1
        AND c.recency_rank = 1
        AND m.mg_mmol_l < cfg.mg_low_mmol_l
        AND c.ca_corrected_mmol_l < cfg.ca_corrected_low_mmol_l
        AND abs(date_diff('second', m.mg_draw_time, c.ca_draw_time)) / 3600.0
            <= cfg.concurrent_window_hours
)

SELECT
    subject_id,
    encounter_id,
    candidate_time AS index_time,
    mg_draw_time,
    mg_mmol_l,
    ca_draw_time,
    ca_corrected_mmol_l,
    ca_total_mmol_l,
    albumin_g_l
FROM qualifying
WHERE time_rank = 1;
