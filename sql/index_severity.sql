-- index_severity: how ill the patient was at time zero (severity proxies for the adjustment
-- set) and renal replacement therapy by the end of the grace period (an eligibility
-- exclusion).
--
-- Reads:  index_events, encounters, care_events (optional canonical table: loaded empty when
--         the source does not record ICU stays or dialysis), medication_harmonised,
--         study_config.
-- Writes: index_severity (one row per index event).
--
-- Columns:
--   icu_at_index          an ICU stay (care_events.event = 'icu_stay') of the same subject
--                         running at index_time: start_time <= index_time and (end_time is
--                         null or end_time >= index_time). NULL for every episode when the
--                         source records no ICU stay at all ("not recorded by this source":
--                         the model then leaves the column out and says so).
--   vasopressor_at_index  a given vasopressor (ingredients.csv role 'vasopressor':
--                         norepinephrine, epinephrine, vasopressin, phenylephrine, dopamine)
--                         of the same subject in [index_time - cfg.baseline_lookback_hours,
--                         index_time] (hours, default 24: the baseline look-back; an infusion
--                         is charted at its start, so a running one is seen through its
--                         start within the day before). NULL for every episode when the
--                         source records no vasopressor administration at all.
--   dialysis_by_grace     a dialysis session (care_events.event = 'dialysis': haemodialysis,
--                         CRRT, peritoneal) of the stay that started at or before index_time +
--                         cfg.grace_hours (hours, default 6): a patient whose calcium and
--                         magnesium are set by the dialysate; excluded like citrate CRRT
--                         (cohort_eligibility.sql). FALSE when the source records no dialysis
--                         (nobody is excluded for what is not recorded; the attrition then
--                         shows 0 for the step). Stays are matched like drugs: linked to the
--                         stay, or unlinked and started between its admit and discharge.
-- All severity windows end at index: pre-treatment covariates only.

CREATE OR REPLACE TABLE index_severity AS
WITH
recorded AS (
    SELECT
        (SELECT COUNT(*) FROM care_events WHERE event = 'icu_stay') > 0 AS icu_recorded,
        (
            SELECT COUNT(*) FROM medication_harmonised
            WHERE role = 'vasopressor' AND given
        ) > 0 AS vasopressor_recorded
),

icu AS (
    SELECT DISTINCT i.encounter_id
    FROM index_events AS i
    INNER JOIN care_events AS c
        ON c.subject_id = i.subject_id
        AND c.start_time <= i.index_time
        AND (c.end_time IS NULL OR c.end_time >= i.index_time)
    WHERE c.event = 'icu_stay'
),

vasopressor AS (
    SELECT DISTINCT i.encounter_id
    FROM index_events AS i
    INNER JOIN medication_harmonised AS m
        ON m.subject_id = i.subject_id
        AND m.time <= i.index_time
    CROSS JOIN study_config AS cfg
    WHERE m.given
        AND m.role = 'vasopressor'
        AND date_diff('second', m.time, i.index_time) / 3600.0 <= cfg.baseline_lookback_hours
),

dialysis AS (
    SELECT DISTINCT i.encounter_id
    FROM index_events AS i
    INNER JOIN encounters AS e
        ON e.encounter_id = i.encounter_id
    INNER JOIN care_events AS c
        ON c.subject_id = i.subject_id
        AND (
            c.encounter_id = i.encounter_id
            OR (
                c.encounter_id IS NULL
                AND c.start_time >= e.admit_time
                AND c.start_time <= e.discharge_time
            )
        )
    CROSS JOIN study_config AS cfg
    WHERE c.event = 'dialysis'
        AND date_diff('second', i.index_time, c.start_time) / 3600.0 <= cfg.grace_hours
)

SELECT
    i.subject_id,
    i.encounter_id,
    i.index_time,
    CASE WHEN r.icu_recorded THEN icu.encounter_id IS NOT NULL END AS icu_at_index,
    CASE
        WHEN r.vasopressor_recorded THEN vp.encounter_id IS NOT NULL
    END AS vasopressor_at_index,
    d.encounter_id IS NOT NULL AS dialysis_by_grace
FROM index_events AS i
CROSS JOIN recorded AS r
LEFT JOIN icu
    ON icu.encounter_id = i.encounter_id
LEFT JOIN vasopressor AS vp
    ON vp.encounter_id = i.encounter_id
LEFT JOIN dialysis AS d
    ON d.encounter_id = i.encounter_id;
