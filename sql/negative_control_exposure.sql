-- negative_control_exposure: potassium repletion in the grace period, the negative-control
-- exposure (README "Methods: negative controls"). Potassium chloride is given on a low K for
-- reasons that overlap with Mg repletion (the same ill, diuresed patients) but potassium does
-- not move serum calcium within 48 h, so its estimated "effect" on the primary outcome, among
-- episodes given no Mg in the grace period, measures the design's systematic error.
--
-- Reads:  index_events, encounters, medication_harmonised (role 'potassium_repletion',
--         given = true), study_config.
-- Writes: negative_control_exposure (one row per index event).
--
--   k_repletion_in_grace  a given potassium_repletion dose (ingredients.csv: potassium
--                         chloride) of the stay, or unlinked and given between its admit
--                         and discharge times, in (index_time, index_time + cfg.grace_hours]
--                         (hours, default 6; the exposure's own window, index_exposure.sql).
--   k_repletion_before_index  such a dose at or before index_time (descriptive).

CREATE OR REPLACE TABLE negative_control_exposure AS
WITH
stay_k_doses AS (
    SELECT
        i.encounter_id,
        m.time <= i.index_time AS at_or_before_index,
        m.time > i.index_time
            AND date_diff('second', i.index_time, m.time) / 3600.0 <= cfg.grace_hours
            AS in_grace
    FROM index_events AS i
    INNER JOIN encounters AS e
        ON e.encounter_id = i.encounter_id
    INNER JOIN medication_harmonised AS m
        ON m.subject_id = i.subject_id
        AND (
            m.encounter_id = i.encounter_id
            OR (m.encounter_id IS NULL AND m.time >= e.admit_time AND m.time <= e.discharge_time)
        )
    CROSS JOIN study_config AS cfg
    WHERE m.role = 'potassium_repletion' AND m.given
)

SELECT
    i.encounter_id,
    COALESCE(bool_or(k.in_grace), FALSE) AS k_repletion_in_grace,
    COALESCE(bool_or(k.at_or_before_index), FALSE) AS k_repletion_before_index
FROM index_events AS i
LEFT JOIN stay_k_doses AS k
    ON k.encounter_id = i.encounter_id
GROUP BY i.encounter_id;
