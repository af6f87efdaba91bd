-- lab_results from hosp/labevents (rules in classify.sql).
SELECT subject_id, encounter_id, time, analyte, value, unit, source_code
FROM mimic_labs_classified
WHERE skip_reason IS NULL
