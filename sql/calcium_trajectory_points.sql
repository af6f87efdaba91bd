-- calcium_trajectory_points: every corrected calcium of an analysed episode after exposure
-- is decided, one row per draw, for the repeated-measures (mixed) model. Row level, with
-- ids: private to the run's database, never published.
--
-- Reads:  analytic_cohort, calcium_corrected (non-null ca_corrected_mmol_l), study_config.
-- Writes: calcium_trajectory_points (subject_id, encounter_id, index_time,
--         hours_from_index DOUBLE, ca_corrected_mmol_l DOUBLE).
--
-- Window: (index + cfg.grace_hours, index + cfg.trajectory_after_hours] (hours, defaults 6
-- and 96): after the grace period so that no draw precedes the exposure decision, up to the
-- end of the trajectory figure. Every draw is kept (no subsampling); draws of the same stay
-- at the same time are kept once each as derived by calcium_corrected.

CREATE OR REPLACE TABLE calcium_trajectory_points AS
SELECT
    a.subject_id,
    a.encounter_id,
    a.index_time,
    date_diff('second', a.index_time, c.time) / 3600.0 AS hours_from_index,
    c.ca_corrected_mmol_l
FROM analytic_cohort AS a
INNER JOIN calcium_corrected AS c
    ON c.subject_id = a.subject_id
    AND c.encounter_id = a.encounter_id
CROSS JOIN study_config AS cfg
WHERE c.ca_corrected_mmol_l IS NOT NULL
    AND date_diff('second', a.index_time, c.time) / 3600.0 > cfg.grace_hours
    AND date_diff('second', a.index_time, c.time) / 3600.0 <= cfg.trajectory_after_hours;
