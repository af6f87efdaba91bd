-- encounters: the encounters file's rows; when the extract has no encounters file
-- (has_encounters = false), one pseudo-stay per subject from its first to its last lab or
-- dose, id 'subject:<subject_id>', age unknown (the adult rule then excludes it: say so).
SELECT encounter_id, subject_id, admit_time, discharge_time, age_years, died_in_hospital
FROM long_encounters_classified
WHERE skip_reason IS NULL
UNION ALL
SELECT
    'subject:' || subject_id,
    subject_id,
    min(time),
    max(time),
    CAST(NULL AS DOUBLE),
    CAST(NULL AS BOOLEAN)
FROM (
    SELECT subject_id, time FROM long_labs_classified WHERE skip_reason IS NULL
    UNION ALL
    SELECT subject_id, time FROM long_medications_classified WHERE skip_reason IS NULL
)
WHERE NOT (SELECT has_encounters FROM long_format_flags)
GROUP BY subject_id
