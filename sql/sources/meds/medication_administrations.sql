-- medication_administrations: medication-role rows (rules in classify.sql); dose =
-- numeric_value when present, its unit unknown in MEDS (NULL: counted by the core SQL as an
-- elemental dose of unknown amount).
SELECT
    subject_id,
    coalesce(
        hadm_id,
        CASE WHEN NOT (SELECT has_stays FROM meds_flags) THEN 'subject:' || subject_id END
    ) AS encounter_id,
    time,
    ingredient,
    numeric_value AS dose,
    CAST(NULL AS VARCHAR) AS dose_unit,
    CAST(NULL AS VARCHAR) AS route,
    given,
    'MEDS:' || code AS source_code
FROM meds_classified
WHERE role = 'medication' AND skip_reason IS NULL
