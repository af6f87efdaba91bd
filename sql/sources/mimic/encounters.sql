-- encounters from hosp/admissions (rules in classify.sql).
SELECT encounter_id, subject_id, admit_time, discharge_time, age_years, died_in_hospital
FROM mimic_encounters_classified
WHERE skip_reason IS NULL
