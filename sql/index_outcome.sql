-- index_outcome: calcium at fixed horizons after time zero; the primary outcome is corrected
-- calcium at the primary horizon.
--
-- Reads:  index_events, calcium_corrected (non-null ca_corrected_mmol_l), lab_harmonised
--         (calcium_ionized, status = 'used'), study_outcome_horizons, study_config.
-- Writes: index_outcome_horizons (long: one row per index event, horizon and calcium
--         measure with a result in its window; none when nothing was measured),
--         index_outcome (one row per index event; outcome columns null when none measured).
--
-- Horizons: study_outcome_horizons (written from cfg.outcome_horizons_hours, default 24, 48
-- and 72 h, plus the primary cfg.horizon_hours, default 48 h, flagged is_primary), joined
-- as a table: one query serves any list of horizons.
-- Measures: 'corrected' (albumin-corrected total Ca, calcium_corrected.sql: corrected with
-- the latest albumin at or before the calcium draw within cfg.albumin_lookback_hours) and
-- 'ionized' (used ionized Ca), each on its own: a horizon may have one, both or neither.
-- albumin_same_day (corrected rows; null for ionized): whether that albumin was at most
-- cfg.albumin_same_day_hours old (calcium_corrected.albumin_same_day).
-- Outcome at a horizon H: the result of that measure, same stay, drawn nearest to
-- index_time + H and at most cfg.outcome_tolerance_hours (default 12) from it, both ends
-- included; on a tie in distance the earlier draw wins (then the lower value). A fixed
-- horizon with a tolerance, rather than "the next result", keeps informative re-testing
-- (labs re-checked sooner when abnormal) from choosing the time. Windows of neighbouring
-- horizons may overlap (24 +/- 12 and 48 +/- 12 share 36 h): one draw can then serve both.
-- No result in the window (discharged, died or not re-tested) leaves no row.
-- config.py enforces H - outcome_tolerance_hours > grace_hours for every horizon: no
-- outcome is ever drawn before exposure is decided.
--
-- index_outcome (unchanged primary outcome, plus the ionized one):
--   outcome_ca_corrected_mmol_l, outcome_hours_from_index: corrected Ca at the primary
--   horizon; outcome_ca_ionized_mmol_l, outcome_ca_ionized_hours_from_index: ionized Ca at
--   the primary horizon (secondary; null when not measured); outcome_calcium_measure:
--   which corrected Ca the primary outcome is, 'corrected_same_day_albumin' or
--   'corrected_lookback_albumin' (null when no primary outcome was measured).

CREATE OR REPLACE TABLE index_outcome_horizons AS
WITH
calcium_after_index AS (
    SELECT
        i.subject_id,
        i.encounter_id,
        i.index_time,
        'corrected' AS calcium_measure,
        c.ca_corrected_mmol_l AS value_mmol_l,
        date_diff('second', i.index_time, c.time) / 3600.0 AS hours_from_index,
        c.albumin_same_day
    FROM index_events AS i
    INNER JOIN calcium_corrected AS c
        ON c.subject_id = i.subject_id
        AND c.encounter_id = i.encounter_id
    WHERE c.ca_corrected_mmol_l IS NOT NULL

    UNION ALL

    SELECT
        i.subject_id,
        i.encounter_id,
        i.index_time,
        'ionized' AS calcium_measure,
        h.value_si AS value_mmol_l,
        date_diff('second', i.index_time, h.time) / 3600.0 AS hours_from_index,
        CAST(NULL AS BOOLEAN) AS albumin_same_day
    FROM index_events AS i
    INNER JOIN lab_harmonised AS h
        ON h.subject_id = i.subject_id
        AND h.encounter_id = i.encounter_id
    WHERE h.analyte = 'calcium_ionized' AND h.status = 'used'
),

in_window AS (
    SELECT
        a.*,
        hz.horizon_hours,
        hz.is_primary,
        ROW_NUMBER() OVER (
            PARTITION BY a.encounter_id, hz.horizon_hours, a.calcium_measure
            ORDER BY
                abs(a.hours_from_index - hz.horizon_hours),
                a.hours_from_index,
                a.value_mmol_l
        ) AS nearness_rank
    FROM calcium_after_index AS a
    CROSS JOIN study_outcome_horizons AS hz
    CROSS JOIN study_config AS cfg
    WHERE abs(a.hours_from_index - hz.horizon_hours) <= cfg.outcome_tolerance_hours
)

SELECT
    subject_id,
    encounter_id,
    index_time,
    CAST(horizon_hours AS INTEGER) AS horizon_hours,
    is_primary,
    CAST(calcium_measure AS VARCHAR) AS calcium_measure,
    value_mmol_l,
    hours_from_index,
    albumin_same_day
FROM in_window
WHERE nearness_rank = 1;

CREATE OR REPLACE TABLE index_outcome AS
SELECT
    i.subject_id,
    i.encounter_id,
    i.index_time,
    c.value_mmol_l AS outcome_ca_corrected_mmol_l,
    c.hours_from_index AS outcome_hours_from_index,
    io.value_mmol_l AS outcome_ca_ionized_mmol_l,
    io.hours_from_index AS outcome_ca_ionized_hours_from_index,
    CAST(CASE
        WHEN c.albumin_same_day THEN 'corrected_same_day_albumin'
        WHEN NOT c.albumin_same_day THEN 'corrected_lookback_albumin'
    END AS VARCHAR) AS outcome_calcium_measure
FROM index_events AS i
LEFT JOIN index_outcome_horizons AS c
    ON c.encounter_id = i.encounter_id
    AND c.is_primary
    AND c.calcium_measure = 'corrected'
LEFT JOIN index_outcome_horizons AS io
    ON io.encounter_id = i.encounter_id
    AND io.is_primary
    AND io.calcium_measure = 'ionized';
