-- encounters: the stays of meds_stays with both ends, in order; with no stay boundaries in
-- the data (has_stays = false), one pseudo-stay per subject from its first to its last lab or
-- dose ('subject:<id>'). Age at admission in years = days from MEDS_BIRTH / 365.25;
-- died_in_hospital = a MEDS_DEATH inside [admit, discharge].
WITH births AS (
    SELECT subject_id, min(time) AS birth_time FROM meds_rows WHERE role = 'birth' GROUP BY ALL
),
deaths AS (
    SELECT subject_id, min(time) AS death_time FROM meds_rows WHERE role = 'death' GROUP BY ALL
),
stays AS (
    SELECT encounter_id, subject_id, admit_time, discharge_time
    FROM meds_stays
    WHERE admit_time IS NOT NULL AND discharge_time IS NOT NULL AND discharge_time >= admit_time
    UNION ALL
    SELECT 'subject:' || subject_id, subject_id, min(time), max(time)
    FROM meds_classified
    WHERE skip_reason IS NULL AND role IN ('lab', 'medication')
        AND NOT (SELECT has_stays FROM meds_flags)
    GROUP BY subject_id
)
SELECT
    s.encounter_id,
    s.subject_id,
    s.admit_time,
    s.discharge_time,
    round(date_diff('day', b.birth_time, s.admit_time) / 365.25, 2) AS age_years,
    CASE
        WHEN d.death_time IS NULL THEN false
        ELSE d.death_time BETWEEN s.admit_time AND s.discharge_time
    END AS died_in_hospital
FROM stays AS s
LEFT JOIN births AS b ON b.subject_id = s.subject_id
LEFT JOIN deaths AS d ON d.subject_id = s.subject_id
