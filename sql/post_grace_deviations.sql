-- post_grace_deviations: Mg given after the grace period and before the outcome draw, per
-- arm of the analysed episodes.
--
-- Reads:  analytic_cohort, encounters, mg_repletion, study_config.
-- Writes: index_post_grace_mg (one row per analysed episode: mg_after_grace,
--         n_mg_doses_after_grace, hours_to_first_mg_after_grace),
--         post_grace_deviations (aggregate: one row per arm, exposed first).
--
-- The contrast is an initiation (intention-to-treat-like) one: strategy 1 starts Mg within
-- cfg.grace_hours of index, strategy 2 does not start it then; what happens after the grace
-- period is usual care in both. An unexposed episode given Mg after the grace period and
-- before its outcome is therefore not a protocol deviation of the emulated trial, but it
-- shows how far the contrast is "Mg now vs Mg later" rather than "Mg vs no Mg": a
-- per-protocol contrast would censor it there. This table only counts them.
--
-- Window: a given Mg dose (mg_repletion; linked to the stay, or unlinked and given between
-- its admit and discharge times, as in index_exposure.sql) in
-- (index_time + cfg.grace_hours, index_time + outcome_hours_from_index): after the grace
-- period (hours, default 6) and strictly before the primary outcome draw (a dose charted
-- at the draw's minute cannot have changed it).
--   unexposed arm: mg_after_grace = Mg started later (the deviation from "no Mg" that
--                  an initiation contrast keeps in the unexposed arm);
--   exposed arm:   mg_after_grace = Mg continued or repeated after the grace period;
--                  without it, the only Mg before the outcome was given in the grace
--                  period (not a deviation of an initiation strategy, which does not
--                  require continuing).
-- post_grace_deviations: exposed BOOLEAN, n_analysed, n_mg_after_grace,
-- n_no_mg_after_grace (BIGINT; n_mg_after_grace + n_no_mg_after_grace = n_analysed).

CREATE OR REPLACE TABLE index_post_grace_mg AS
WITH
doses AS (
    SELECT
        c.encounter_id,
        date_diff('second', c.index_time, r.time) / 3600.0 AS hours_from_index
    FROM analytic_cohort AS c
    INNER JOIN encounters AS e
        ON e.encounter_id = c.encounter_id
    INNER JOIN mg_repletion AS r
        ON r.subject_id = c.subject_id
        AND (
            r.encounter_id = c.encounter_id
            OR (r.encounter_id IS NULL AND r.time >= e.admit_time AND r.time <= e.discharge_time)
        )
    CROSS JOIN study_config AS cfg
    WHERE date_diff('second', c.index_time, r.time) / 3600.0 > cfg.grace_hours
        AND date_diff('second', c.index_time, r.time) / 3600.0 < c.outcome_hours_from_index
),

per_episode AS (
    SELECT
        encounter_id,
        COUNT(*) AS n_doses,
        MIN(hours_from_index) AS first_hours
    FROM doses
    GROUP BY encounter_id
)

SELECT
    c.subject_id,
    c.encounter_id,
    c.index_time,
    c.exposed,
    d.encounter_id IS NOT NULL AS mg_after_grace,
    CAST(COALESCE(d.n_doses, 0) AS BIGINT) AS n_mg_doses_after_grace,
    d.first_hours AS hours_to_first_mg_after_grace
FROM analytic_cohort AS c
LEFT JOIN per_episode AS d
    ON d.encounter_id = c.encounter_id;

CREATE OR REPLACE TABLE post_grace_deviations AS
SELECT
    arm.exposed,
    CAST(COUNT(p.encounter_id) AS BIGINT) AS n_analysed,
    CAST(SUM(CASE WHEN p.mg_after_grace THEN 1 ELSE 0 END) AS BIGINT) AS n_mg_after_grace,
    CAST(SUM(CASE WHEN p.encounter_id IS NOT NULL AND NOT p.mg_after_grace THEN 1 ELSE 0 END)
        AS BIGINT) AS n_no_mg_after_grace
FROM (VALUES (TRUE), (FALSE)) AS arm (exposed)
LEFT JOIN index_post_grace_mg AS p
    ON p.exposed = arm.exposed
GROUP BY arm.exposed;
