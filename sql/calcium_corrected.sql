-- calcium_corrected: every used total-calcium result with its albumin-corrected value.
--
-- Reads:  lab_harmonised (status = 'used'), analyte_bounds, study_config.
-- Writes: calcium_corrected (one row per used calcium_total row of lab_harmonised).
--
-- Albumin (look-back, never look-ahead): the most recent used albumin of the same stay drawn
-- at or before the calcium draw (the same minute counts) and at most
-- cfg.albumin_lookback_hours (hours, default 72) earlier; of several albumins at that one
-- time, the lower value (reported, then unrounded), so the choice is always the same. An
-- albumin drawn after the calcium is never used, however close: a value corrected with it
-- would not have existed at the calcium's draw time, and a low corrected Ca that decides
-- eligibility at time zero must be knowable then. Why 72 h: default_config.yaml.
--   albumin_hours_before_ca  hours from the albumin draw to the calcium draw (>= 0)
--   albumin_same_day         albumin_hours_before_ca <= cfg.albumin_same_day_hours (hours,
--                            default 24): corrected with a same-day albumin rather than an
--                            older one of the look-back
-- Correction (Payne-type; clinical.md, default_config.yaml):
--   ca_corrected_mmol_l = ca_total_mmol_l
--                         + cfg.albumin_correction_slope (mmol/L per g/L, default 0.02)
--                           x (cfg.albumin_reference_g_l (default 40 g/L) - albumin_g_l)
-- from the reported (rounded) total Ca and albumin, then rounded like a reported calcium:
-- to analyte_bounds.reporting_decimals of calcium_total (2 dp), half away from zero, so
-- thresholds see what a clinician reads (2.05 + 0.02 x 5 is 2.15, not 2.1499999999999995).
-- ca_corrected_unrounded_mmol_l keeps the same formula on the unrounded total and albumin
-- (value_si_unrounded, 6 decimals). Both null (and albumin_hours_before_ca,
-- albumin_same_day) when no albumin lies in the look-back: such a calcium cannot be
-- classified (counted in data_quality as no_albumin_in_lookback).
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

albumin_in_lookback AS (
    SELECT
        ca.lab_row_id,
        alb.time AS albumin_time,
        alb.albumin_g_l,
        alb.albumin_unrounded_g_l,
        date_diff('second', alb.time, ca.time) / 3600.0 AS albumin_hours_before_ca
    FROM calcium AS ca
    INNER JOIN albumin AS alb
        ON alb.subject_id = ca.subject_id
        AND alb.encounter_id = ca.encounter_id
        AND alb.time <= ca.time
    CROSS JOIN study_config AS cfg
    WHERE date_diff('second', alb.time, ca.time) / 3600.0 <= cfg.albumin_lookback_hours
),

latest_albumin AS (
    SELECT
        *,
        ROW_NUMBER() OVER (
            PARTITION BY lab_row_id
            ORDER BY albumin_time DESC, albumin_g_l, albumin_unrounded_g_l
        ) AS recency_rank
    FROM albumin_in_lookback
),

corrected AS (
    SELECT
        ca.lab_row_id,
        ca.subject_id,
        ca.encounter_id,
        ca.time,
        ca.ca_total_mmol_l,
        la.albumin_time,
        la.albumin_hours_before_ca,
        la.albumin_hours_before_ca <= cfg.albumin_same_day_hours AS albumin_same_day,
        la.albumin_g_l,
        round(
            ca.ca_total_mmol_l
            + cfg.albumin_correction_slope * (cfg.albumin_reference_g_l - la.albumin_g_l),
            6
        ) AS ca_corrected_6dp_mmol_l,
        round(
            ca.ca_total_unrounded_mmol_l
            + cfg.albumin_correction_slope
            * (cfg.albumin_reference_g_l - la.albumin_unrounded_g_l),
            6
        ) AS ca_corrected_unrounded_mmol_l
    FROM calcium AS ca
    LEFT JOIN latest_albumin AS la
        ON la.lab_row_id = ca.lab_row_id
        AND la.recency_rank = 1
    CROSS JOIN study_config AS cfg
)

SELECT
    c.lab_row_id,
    c.subject_id,
    c.encounter_id,
    c.time,
    c.ca_total_mmol_l,
    c.albumin_time,
    c.albumin_g_l,
    -- reporting precision of calcium_total, as in lab_harmonised.sql
    round(round(c.ca_corrected_6dp_mmol_l * power(10, b.reporting_decimals), 6), 0)
        / power(10, b.reporting_decimals) AS ca_corrected_mmol_l,
    c.ca_corrected_unrounded_mmol_l,
    c.albumin_hours_before_ca,
    c.albumin_same_day
FROM corrected AS c
INNER JOIN analyte_bounds AS b
    ON b.analyte = 'calcium_total';
