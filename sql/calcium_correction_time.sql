-- index_calcium_correction: when did calcium correct after the grace period? One row per
-- analysed episode, for the secondary analyses "calcium corrected within
-- correction_window_hours" (logistic) and "time to calcium correction" (Cox).
--
-- Reads:  analytic_cohort, calcium_corrected (non-null ca_corrected_mmol_l), encounters,
--         study_config.
-- Writes: index_calcium_correction (subject_id, encounter_id, index_time,
--         n_calcium_after_index BIGINT, corrected BOOLEAN, hours_to_event DOUBLE,
--         end_reason VARCHAR, corrected_within_window BOOLEAN, n_calcium_in_window BIGINT).
--
-- Follow-up starts when the grace period ends (pre-specified): it counts corrected Ca of the
-- same stay drawn after index_time + cfg.grace_hours (hours, default 6; a draw at exactly
-- that time is still in the grace period) and at or before discharge. Draws inside the grace
-- period never count: the treated get extra post-dose re-checks there, and with "any draw
-- at or above the threshold" more draws alone would make correction look likelier and
-- sooner (detection bias), even where Mg does nothing. Both arms start follow-up at the
-- same time, so there is no immortal time either.
-- The event: the first such draw at or above cfg.ca_corrected_low_mmol_l (mmol/L, default
-- 2.15: the lower reference limit, so "corrected" = no longer hypocalcaemic). Correction is
-- only seen when calcium is drawn, so an episode without it is censored at its last
-- corrected Ca draw after the grace period (before discharge by the rule above; nothing is
-- known after it); with no draw after the grace period, at its end (cfg.grace_hours).
--   n_calcium_after_index  corrected Ca draws after index and at or before discharge,
--                          grace period included (descriptive: how often calcium was drawn)
--   hours_to_event   hours from index (not from the end of the grace period; no event or
--                    censoring is ever earlier than cfg.grace_hours) to the event, or to
--                    censoring
--   end_reason       'corrected' | 'censored_last_calcium' | 'no_calcium_after_grace'
-- corrected_within_window (cfg.correction_window_hours, hours after index, default 72):
-- true when the event is at most that many hours after index; false when not, but a
-- corrected Ca was drawn in (index + grace, index + window]; null when none was drawn there.
--   n_calcium_in_window    corrected Ca draws in (index + grace, index + window], 0 when
--                          none: how often each arm was re-tested where "corrected within the
--                          window" is looked for (the report shows it per arm, because more
--                          draws alone make an any-draw outcome likelier)

CREATE OR REPLACE TABLE index_calcium_correction AS
WITH
draws_after_index AS (
    SELECT
        a.encounter_id,
        date_diff('second', a.index_time, c.time) / 3600.0 AS hours_from_index,
        c.ca_corrected_mmol_l >= cfg.ca_corrected_low_mmol_l AS is_normal
    FROM analytic_cohort AS a
    INNER JOIN encounters AS e
        ON e.encounter_id = a.encounter_id
    INNER JOIN calcium_corrected AS c
        ON c.subject_id = a.subject_id
        AND c.encounter_id = a.encounter_id
    CROSS JOIN study_config AS cfg
    WHERE c.ca_corrected_mmol_l IS NOT NULL
        AND c.time > a.index_time
        AND c.time <= e.discharge_time
),

per_episode AS (
    SELECT
        f.encounter_id,
        COUNT(*) AS n_calcium_after_index,
        MIN(f.hours_from_index) FILTER (
            WHERE f.is_normal AND f.hours_from_index > cfg.grace_hours
        ) AS hours_to_correction,
        MAX(f.hours_from_index) FILTER (WHERE f.hours_from_index > cfg.grace_hours)
            AS hours_to_last_calcium,
        COUNT(*) FILTER (
            WHERE f.hours_from_index > cfg.grace_hours
            AND f.hours_from_index <= cfg.correction_window_hours
        ) AS n_calcium_in_window
    FROM draws_after_index AS f
    CROSS JOIN study_config AS cfg
    GROUP BY f.encounter_id, cfg.grace_hours, cfg.correction_window_hours
)

SELECT
    a.subject_id,
    a.encounter_id,
    a.index_time,
    CAST(COALESCE(p.n_calcium_after_index, 0) AS BIGINT) AS n_calcium_after_index,
    p.hours_to_correction IS NOT NULL AS corrected,
    COALESCE(p.hours_to_correction, p.hours_to_last_calcium, CAST(cfg.grace_hours AS DOUBLE))
        AS hours_to_event,
    CASE
        WHEN p.hours_to_correction IS NOT NULL THEN 'corrected'
        WHEN p.hours_to_last_calcium IS NOT NULL THEN 'censored_last_calcium'
        ELSE 'no_calcium_after_grace'
    END AS end_reason,
    CASE
        WHEN p.hours_to_correction <= cfg.correction_window_hours THEN TRUE
        WHEN COALESCE(p.n_calcium_in_window, 0) > 0 THEN FALSE
    END AS corrected_within_window,
    CAST(COALESCE(p.n_calcium_in_window, 0) AS BIGINT) AS n_calcium_in_window
FROM analytic_cohort AS a
CROSS JOIN study_config AS cfg
LEFT JOIN per_episode AS p
    ON p.encounter_id = a.encounter_id;
