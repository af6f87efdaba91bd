-- calcium_status: at each calcium draw time of a stay, the best available measure of serum
-- calcium, whether it is low, and its CTCAE v5 hypocalcaemia grade.
--
-- Reads:  lab_harmonised (calcium_ionized, status = 'used'), calcium_corrected,
--         ctcae_grades, study_config.
-- Writes: calcium_status (one row per subject, stay and draw time of a used total or
--         ionized calcium).
--
-- Draw times: every time a used total Ca (calcium_corrected) or ionized Ca was drawn in the
-- stay. At each, in order of preference (clinical.md: prefer ionized Ca where measured):
--   'ionized'            the used ionized Ca of the stay nearest in time, at most
--                        cfg.ionized_window_hours (hours, default 1) before or after (tie:
--                        the earlier draw, then the lower value); so a total Ca drawn with a
--                        blood gas takes the blood gas's ionized value;
--   'corrected'          else the albumin-corrected total Ca drawn at that time
--                        (calcium_corrected.sql: the latest albumin at or before it
--                        within cfg.albumin_lookback_hours, Payne-type correction);
--   'total_uncorrected'  else the total Ca itself, flagged uncorrected = true (no albumin).
-- Several total Ca at one time: the corrected one, then the lowest value.
-- measure_time is the draw time of the value used (differs from time only for an ionized
-- value standing in for a nearby total Ca).
--
-- Known bias of the Payne correction (why ionized is preferred): albumin-corrected calcium
-- agrees poorly with ionized calcium in ICU patients, in advanced kidney disease and on
-- dialysis (acid-base changes, phosphate, citrate and other anions bind calcium), and it
-- depends on the albumin assay (bromocresol green vs purple); with low albumin it tends to
-- over-estimate calcium, so it misses true hypocalcaemia. Uncorrected total Ca, with low
-- albumin, under-estimates it: those rows are flagged and kept for sensitivity analyses.
--
-- Low (a value at the threshold is not low):
--   ionized                   value < cfg.ca_ionized_low_mmol_l (default 1.12 mmol/L,
--                             clinical.md lower limit)
--   corrected / uncorrected   value < cfg.ca_corrected_low_mmol_l (default 2.15 mmol/L)
-- ctcae_grade: CTCAE v5 hypocalcaemia grade of the value (null when not low), from
-- reference/ctcae_grades.csv: measure 'calcium_ionized' for ionized values,
-- 'calcium_corrected' for corrected and (flagged) uncorrected ones; the grade is the worst
-- whose cut-point the value is below (grade 1's blank cut-point is the low threshold above):
-- corrected G1 < LLN-2.0, G2 < 2.0-1.75, G3 < 1.75-1.5, G4 < 1.5; ionized G1 < LLN-1.0,
-- G2 < 1.0-0.9, G3 < 0.9-0.8, G4 < 0.8 mmol/L. A value exactly at a cut-point takes the
-- milder grade (corrected 2.00 is grade 1, 1.99 grade 2).

CREATE OR REPLACE TABLE calcium_status AS
WITH
ionized AS (
    SELECT subject_id, encounter_id, time, value_si AS ca_ionized_mmol_l
    FROM lab_harmonised
    WHERE analyte = 'calcium_ionized' AND status = 'used'
),

draw_times AS (
    SELECT subject_id, encounter_id, time FROM ionized
    UNION
    SELECT subject_id, encounter_id, time FROM calcium_corrected
),

nearest_ionized AS (
    SELECT
        t.subject_id,
        t.encounter_id,
        t.time,
        i.time AS ionized_time,
        i.ca_ionized_mmol_l,
        ROW_NUMBER() OVER (
            PARTITION BY t.subject_id, t.encounter_id, t.time
            ORDER BY abs(date_diff('second', t.time, i.time)), i.time, i.ca_ionized_mmol_l
        ) AS nearness_rank
    FROM draw_times AS t
    INNER JOIN ionized AS i
        ON i.subject_id = t.subject_id
        AND i.encounter_id = t.encounter_id
    CROSS JOIN study_config AS cfg
    WHERE abs(date_diff('second', t.time, i.time)) / 3600.0 <= cfg.ionized_window_hours
),

total_at_time AS (
    SELECT
        c.subject_id,
        c.encounter_id,
        c.time,
        c.ca_corrected_mmol_l,
        c.ca_total_mmol_l,
        c.albumin_g_l,
        ROW_NUMBER() OVER (
            PARTITION BY c.subject_id, c.encounter_id, c.time
            ORDER BY
                CASE WHEN c.ca_corrected_mmol_l IS NULL THEN 1 ELSE 0 END,
                c.ca_corrected_mmol_l,
                c.ca_total_mmol_l,
                c.albumin_g_l
        ) AS value_rank
    FROM calcium_corrected AS c
),

best_measure AS (
    SELECT
        t.subject_id,
        t.encounter_id,
        t.time,
        CASE
            WHEN ni.ionized_time IS NOT NULL THEN 'ionized'
            WHEN tc.ca_corrected_mmol_l IS NOT NULL THEN 'corrected'
            ELSE 'total_uncorrected'
        END AS calcium_measure,
        CASE
            WHEN ni.ionized_time IS NOT NULL THEN ni.ca_ionized_mmol_l
            WHEN tc.ca_corrected_mmol_l IS NOT NULL THEN tc.ca_corrected_mmol_l
            ELSE tc.ca_total_mmol_l
        END AS value_mmol_l,
        CASE WHEN ni.ionized_time IS NOT NULL THEN ni.ionized_time ELSE t.time END
            AS measure_time,
        CASE WHEN ni.ionized_time IS NULL THEN tc.ca_total_mmol_l END AS ca_total_mmol_l,
        CASE WHEN ni.ionized_time IS NULL THEN tc.albumin_g_l END AS albumin_g_l,
        CASE
            WHEN ni.ionized_time IS NOT NULL THEN cfg.ca_ionized_low_mmol_l
            ELSE cfg.ca_corrected_low_mmol_l
        END AS low_threshold_mmol_l,
        CASE
            WHEN ni.ionized_time IS NOT NULL THEN 'calcium_ionized'
            ELSE 'calcium_corrected'
        END AS grade_measure
    FROM draw_times AS t
    CROSS JOIN study_config AS cfg
    LEFT JOIN nearest_ionized AS ni
        ON ni.subject_id = t.subject_id
        AND ni.encounter_id = t.encounter_id
        AND ni.time = t.time
        AND ni.nearness_rank = 1
    LEFT JOIN total_at_time AS tc
        ON tc.subject_id = t.subject_id
        AND tc.encounter_id = t.encounter_id
        AND tc.time = t.time
        AND tc.value_rank = 1
)

SELECT
    b.subject_id,
    b.encounter_id,
    b.time,
    b.calcium_measure,
    b.value_mmol_l,
    b.value_mmol_l < b.low_threshold_mmol_l AS is_low,
    CAST((
        SELECT MAX(g.grade)
        FROM ctcae_grades AS g
        WHERE g.measure = b.grade_measure
            AND b.value_mmol_l < b.low_threshold_mmol_l
            AND b.value_mmol_l < COALESCE(g.below_si, b.low_threshold_mmol_l)
    ) AS INTEGER) AS ctcae_grade,
    b.calcium_measure = 'total_uncorrected' AS uncorrected,
    b.measure_time,
    b.low_threshold_mmol_l,
    b.ca_total_mmol_l,
    b.albumin_g_l
FROM best_measure AS b;
