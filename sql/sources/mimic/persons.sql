-- persons from hosp/patients (rules in classify.sql).
SELECT subject_id, sex, year_of_birth
FROM mimic_persons_classified
WHERE skip_reason IS NULL
