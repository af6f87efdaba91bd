-- medication_administrations from hosp/emar (+ emar_detail) and icu/inputevents (rules in
-- classify.sql). hosp/prescriptions are orders, not administrations: never read as doses.
SELECT subject_id, encounter_id, time, ingredient, dose, dose_unit, route, given, source_code
FROM mimic_emar_classified
WHERE skip_reason IS NULL
UNION ALL
SELECT subject_id, encounter_id, time, ingredient, dose, dose_unit, route, given, source_code
FROM mimic_inputs_classified
WHERE skip_reason IS NULL
