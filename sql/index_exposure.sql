-- index_exposure: what was given around time zero: prior magnesium (prevalent use, which
-- excludes), obstetric MgSO4 and citrate-CRRT calcium (which exclude), magnesium in the grace
-- period (the exposure) and calcium in the grace period.
--
-- Reads:  index_events, encounters, mg_repletion, medication_harmonised,
--         calcium_supplementation, study_config.
-- Writes: index_exposure (one row per index event).
--
-- The stay's magnesium doses: given Mg administrations (mg_repletion) linked to the stay, or
-- unlinked (encounter_id null) and given between its admit and discharge times.
--   prior_mg_repletion   any such dose at or before index_time (including exactly at it):
--                        a prevalent user, excluded from the cohort; never exposure.
--   exposed              any such dose in (index_time, index_time + cfg.grace_hours]
--                        (hours, default 6; strictly after index, boundary included).
--   hours_to_first_mg    hours from index to the first dose in the grace period (else null).
--   mg_dose_grace_mmol   elemental Mg (mmol) of the doses in the grace period; 0 when
--                        unexposed; null when a dose in it has no known elemental amount.
--   mg_route_grace       route of those grace-period doses: 'iv' (only IV), 'oral' (only
--                        oral), 'both', or null (unexposed, or only other/unknown routes).
--   calcium_in_grace     a given calcium supplement (role 'calcium_supplement')
--                        of the same subject in (index_time, index_time + cfg.grace_hours]:
--                        post-index co-intervention, descriptive only, never adjusted for.
--   calcium_dose_grace_mmol  elemental Ca (mmol) of those calcium doses
--                        (calcium_supplementation: gluconate 2.23, chloride 6.8, carbonate
--                        9.99 mmol/g, or mmol / mEq as recorded); 0 when none; null when
--                        one of them has no known elemental amount. Descriptive only, like
--                        calcium_in_grace.
--   obstetric_mg_by_grace  a given administration of role 'obstetric_magnesium'
--                        (ingredients.csv: MgSO4 for obstetric seizure prophylaxis, MIMIC-IV
--                        inputevents 227524 and eMAR 'Magnesium Sulfate (OB)'/'(L&D)') of the
--                        stay at or before index_time + cfg.grace_hours (hours, default 6):
--                        an obstetric patient whose Mg is given for another indication and
--                        would otherwise look unexposed; excluded (cohort_eligibility.sql).
--   crrt_citrate_by_grace  the same for role 'crrt_citrate' (calcium replacement of
--                        citrate-anticoagulated CRRT, MIMIC-IV inputevents 227525): a patient
--                        on CRRT, whose calcium is set by the citrate protocol, not by Mg;
--                        excluded. Both are judged up to the end of the grace period, when
--                        the strategy is assigned (a stay that starts either later stays in:
--                        it is usual care after assignment, as for any later Mg).
--   Stays are matched like Mg doses: linked to the stay, or unlinked and given between its
--   admit and discharge times.

CREATE OR REPLACE TABLE index_exposure AS
WITH
stay_mg_doses AS (
    SELECT
        i.encounter_id,
        r.time <= i.index_time AS at_or_before_index,
        r.time > i.index_time
            AND date_diff('second', i.index_time, r.time) / 3600.0 <= cfg.grace_hours
            AS in_grace,
        date_diff('second', i.index_time, r.time) / 3600.0 AS hours_from_index,
        r.elemental_mg_mmol,
        r.route_normalised
    FROM index_events AS i
    INNER JOIN encounters AS e
        ON e.encounter_id = i.encounter_id
    INNER JOIN mg_repletion AS r
        ON r.subject_id = i.subject_id
        AND (
            r.encounter_id = i.encounter_id
            OR (r.encounter_id IS NULL AND r.time >= e.admit_time AND r.time <= e.discharge_time)
        )
    CROSS JOIN study_config AS cfg
),

mg_by_index AS (
    SELECT
        encounter_id,
        MAX(CASE WHEN at_or_before_index THEN 1 ELSE 0 END) = 1 AS prior_mg_repletion,
        SUM(CASE WHEN in_grace THEN 1 ELSE 0 END) AS n_mg_doses_grace,
        SUM(CASE WHEN in_grace AND elemental_mg_mmol IS NULL THEN 1 ELSE 0 END)
            AS n_mg_doses_grace_unknown_amount,
        MIN(CASE WHEN in_grace THEN hours_from_index END) AS hours_to_first_mg,
        SUM(CASE WHEN in_grace THEN elemental_mg_mmol END) AS mg_dose_grace_known_mmol,
        MAX(CASE WHEN in_grace AND route_normalised = 'iv' THEN 1 ELSE 0 END) = 1
            AS any_iv_grace,
        MAX(CASE WHEN in_grace AND route_normalised = 'oral' THEN 1 ELSE 0 END) = 1
            AS any_oral_grace
    FROM stay_mg_doses
    GROUP BY encounter_id
),

stay_exclusion_drugs AS (
    SELECT
        i.encounter_id,
        MAX(CASE WHEN h.role = 'obstetric_magnesium' THEN 1 ELSE 0 END) = 1 AS obstetric_mg,
        MAX(CASE WHEN h.role = 'crrt_citrate' THEN 1 ELSE 0 END) = 1 AS crrt_citrate
    FROM index_events AS i
    INNER JOIN encounters AS e
        ON e.encounter_id = i.encounter_id
    INNER JOIN medication_harmonised AS h
        ON h.subject_id = i.subject_id
        AND (
            h.encounter_id = i.encounter_id
            OR (h.encounter_id IS NULL AND h.time >= e.admit_time AND h.time <= e.discharge_time)
        )
    CROSS JOIN study_config AS cfg
    WHERE h.given
        AND h.role IN ('obstetric_magnesium', 'crrt_citrate')
        AND date_diff('second', i.index_time, h.time) / 3600.0 <= cfg.grace_hours
    GROUP BY i.encounter_id
),

calcium_in_grace AS (
    SELECT
        i.encounter_id,
        COUNT(*) AS n_calcium_doses_grace,
        SUM(CASE WHEN c.elemental_ca_mmol IS NULL THEN 1 ELSE 0 END)
            AS n_calcium_doses_grace_unknown_amount,
        SUM(c.elemental_ca_mmol) AS calcium_dose_grace_known_mmol
    FROM index_events AS i
    INNER JOIN calcium_supplementation AS c
        ON c.subject_id = i.subject_id
        AND c.time > i.index_time
    CROSS JOIN study_config AS cfg
    WHERE date_diff('second', i.index_time, c.time) / 3600.0 <= cfg.grace_hours
    GROUP BY i.encounter_id
)

SELECT
    i.subject_id,
    i.encounter_id,
    i.index_time,
    COALESCE(mg.prior_mg_repletion, FALSE) AS prior_mg_repletion,
    COALESCE(mg.n_mg_doses_grace, 0) > 0 AS exposed,
    mg.hours_to_first_mg,
    CASE
        WHEN COALESCE(mg.n_mg_doses_grace, 0) = 0 THEN CAST(0 AS DOUBLE)
        WHEN mg.n_mg_doses_grace_unknown_amount > 0 THEN NULL
        ELSE round(mg.mg_dose_grace_known_mmol, 6)
    END AS mg_dose_grace_mmol,
    CAST(COALESCE(mg.n_mg_doses_grace, 0) AS BIGINT) AS n_mg_doses_grace,
    cg.encounter_id IS NOT NULL AS calcium_in_grace,
    CASE
        WHEN mg.any_iv_grace AND mg.any_oral_grace THEN 'both'
        WHEN mg.any_iv_grace THEN 'iv'
        WHEN mg.any_oral_grace THEN 'oral'
    END AS mg_route_grace,
    CASE
        WHEN cg.encounter_id IS NULL THEN CAST(0 AS DOUBLE)
        WHEN cg.n_calcium_doses_grace_unknown_amount > 0 THEN NULL
        ELSE round(cg.calcium_dose_grace_known_mmol, 6)
    END AS calcium_dose_grace_mmol,
    COALESCE(xd.obstetric_mg, FALSE) AS obstetric_mg_by_grace,
    COALESCE(xd.crrt_citrate, FALSE) AS crrt_citrate_by_grace
FROM index_events AS i
LEFT JOIN mg_by_index AS mg
    ON mg.encounter_id = i.encounter_id
LEFT JOIN calcium_in_grace AS cg
    ON cg.encounter_id = i.encounter_id
LEFT JOIN stay_exclusion_drugs AS xd
    ON xd.encounter_id = i.encounter_id;
