-- calcium_corrected: every used total-calcium result with its albumin-corrected value.
--
-- Reads:  lab_harmonised (status = 'used'), analyte_bounds, study_config.
-- Writes: calcium_corrected (one row per used calcium_total row of lab_harmonised).
--
-- Albumin: the used albumin of the same stay nearest in time to the calcium draw, at most
-- cfg.albumin_window_hours (hours, default 24) before or after it; on a tie in distance the
-- earlier albumin wins (then the lower value, reported then unrounded, so the choice is
-- always the same).
-- Correction (Payne-type; clinical.md, default_config.yaml):
--   ca_corrected_mmol_l = ca_total_mmol_l
--                         + cfg.albumin_correction_slope (mmol/L per g/L, default 0.02)
--                           x (cfg.albumin_reference_g_l (default 40 g/L) - albumin_g_l)
-- from the reported (rounded) total Ca and albumin, then rounded like a reported calcium:
-- to analyte_bounds.reporting_decimals of calcium_total (2 dp), half away from zero, so
-- thresholds see what a clinician reads (2.05 + 0.02 x 5 is 2.15, not 2.1499999999999995).
-- ca_corrected_unrounded_mmol_l keeps the same formula on the unrounded total and albumin
-- (value_si_unrounded, 6 decimals). Both null when no albumin lies in the window: such a
-- calcium cannot be classified (counted in data_quality as missing_albumin).
--
-- Known bias of the Payne correction: it agrees poorly with ionized calcium in ICU patients,
-- in advanced kidney disease and on dialysis, and depends on the albumin assay (bromocresol
-- green vs purple); with low albumin it tends to over-estimate calcium, so it misses some
-- true hypocalcaemia. Ionized calcium, where measured, is the better reference; corrected
-- and uncorrected calcium are reported as sensitivity analyses.

CREATE OR REPLACE TABLE calcium_corrected AS
WITH
calcium AS (
    SELECT
        lab_row_id,
        subject_id,
        encounter_id,
        time,
        value_si AS ca_total_mmol_l,
        value_si_unrounded AS ca_total_unrounded_mmol_l
    FROM lab_harmonised
    WHERE analyte = 'calcium_total' AND status = 'used'
),

albumin AS (
    SELECT
        subject_id,
        encounter_id,
        time,
        value_si AS albumin_g_l,
        value_si_unrounded AS albumin_unrounded_g_l
    FROM lab_harmonised
    WHERE analyte = 'albumin' AND status = 'used'
),

albumin_in_window AS (
    SELECT
        ca.lab_row_id,
        alb.time AS albumin_time,
        alb.albumin_g_l,
        alb.albumin_unrounded_g_l,
        date_diff('second', ca.time, alb.time) / 3600.0 AS albumin_hours_from_ca
    FROM calcium AS ca
    INNER JOIN albumin AS alb
        ON alb.subject_id = ca.subject_id
        AND alb.encounter_id = ca.encounter_id
    CROSS JOIN study_config AS cfg
    WHERE abs(date_diff('second', ca.time, alb.time)) / 3600.0 <= cfg.albumin_window_hours
),

nearest_albumin AS (
    SELECT
        *,
        ROW_NUMBER() OVER (
            PARTITION BY lab_row_id
            ORDER BY
                abs(albumin_hours_from_ca), albumin_time, albumin_g_l, albumin_unrounded_g_l
        ) AS nearness_rank
    FROM albumin_in_window
),

corrected AS (
    SELECT
        ca.lab_row_id,
        ca.subject_id,
        ca.encounter_id,
        ca.time,
        ca.ca_total_mmol_l,
        na.albumin_time,
        na.albumin_hours_from_ca,
        na.albumin_g_l,
        round(
            ca.ca_total_mmol_l
            + cfg.albumin_correction_slope * (cfg.albumin_reference_g_l - na.albumin_g_l),
            6
        ) AS ca_corrected_6dp_mmol_l,
        round(
            ca.ca_total_unrounded_mmol_l
            + cfg.albumin_correction_slope
            * (cfg.albumin_reference_g_l - na.albumin_unrounded_g_l),
            6
        ) AS ca_corrected_unrounded_mmol_l
    FROM calcium AS ca
    LEFT JOIN nearest_albumin AS na
        ON na.lab_row_id = ca.lab_row_id
        AND na.nearness_rank = 1
    CROSS JOIN study_config AS cfg
)

SELECT
    c.lab_row_id,
    c.subject_id,
    c.encounter_id,
    c.time,
    c.ca_total_mmol_l,
    c.albumin_time,
    c.albumin_hours_from_ca,
    c.albumin_g_l,
    -- reporting precision of calcium_total, as in lab_harmonised.sql
    round(round(c.ca_corrected_6dp_mmol_l * power(10, b.reporting_decimals), 6), 0)
        / power(10, b.reporting_decimals) AS ca_corrected_mmol_l,
    c.ca_corrected_unrounded_mmol_l
FROM corrected AS c
INNER JOIN analyte_bounds AS b
    ON b.analyte = 'calcium_total';
