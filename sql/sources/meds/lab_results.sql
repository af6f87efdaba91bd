-- lab_results: lab-role rows (rules in classify.sql). encounter_id = hadm_id when the shards
-- carry one; otherwise the pseudo-stay without stay boundaries, else NULL (attached by time).
SELECT
    subject_id,
    coalesce(
        hadm_id,
        CASE WHEN NOT (SELECT has_stays FROM meds_flags) THEN 'subject:' || subject_id END
    ) AS encounter_id,
    time,
    analyte,
    numeric_value AS value,
    unit,
    'MEDS:' || code AS source_code
FROM meds_classified
WHERE role = 'lab' AND skip_reason IS NULL
