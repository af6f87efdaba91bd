-- medication_administrations from the extract's medications file (rules in classify.sql).
SELECT
    subject_id,
    -- without an encounters file every row belongs to its subject's pseudo-stay (encounters.sql)
    CASE
        WHEN (SELECT has_encounters FROM long_format_flags) THEN encounter_id
        ELSE 'subject:' || subject_id
    END AS encounter_id,
    time, ingredient, dose, dose_unit, route, given, source_code
FROM long_medications_classified
WHERE skip_reason IS NULL
