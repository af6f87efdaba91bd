-- care_events from icu/icustays and icu/procedureevents (rules in classify_care.sql).
SELECT subject_id, encounter_id, start_time, end_time, event, source_code
FROM mimic_icustays_classified
WHERE skip_reason IS NULL
UNION ALL
SELECT subject_id, encounter_id, start_time, end_time, event, source_code
FROM mimic_procedures_classified
WHERE skip_reason IS NULL
