-- Patient → persons (gender male/female → M/F, anything else U).
CREATE OR REPLACE TEMP VIEW fhir_person_rows AS
SELECT
    id AS subject_id,
    CASE gender WHEN 'male' THEN 'M' WHEN 'female' THEN 'F' ELSE 'U' END AS sex,
    TRY_CAST(substr(birth_date, 1, 4) AS INTEGER) AS year_of_birth,
    CASE
        WHEN id IS NULL THEN 'Patient.id missing'
        WHEN count(*) OVER (PARTITION BY id) > 1 THEN 'Patient.id repeated'
    END AS skip_reason
FROM fhir_patient;

-- Encounter → encounters: hospital stays only (Encounter.class in fhir_encounter_classes.csv);
-- status by fhir_statuses.csv; an encounter without a period end is skipped (stay not over).
-- Died in hospital: dischargeDisposition 'exp' (expired), or the Patient's deceasedDateTime
-- inside the stay; false when the patient is known alive or died outside it; else unknown.
CREATE OR REPLACE TEMP VIEW fhir_encounter AS
SELECT
    json ->> '$.id' AS id,
    json ->> '$.status' AS status,
    json ->> '$.class.system' AS class_system,
    json ->> '$.class.code' AS class_code,
    fhir_ref(json ->> '$.subject.reference', 'Patient') AS subject_id,
    fhir_time(json ->> '$.period.start') AS admit_time,
    fhir_time(json ->> '$.period.end') AS discharge_time,
    list_transform(fhir_codings(json -> '$.hospitalization.dischargeDisposition.coding'),
                   lambda x: x.code) AS disposition_codes
FROM fhir_encounter_raw;

CREATE OR REPLACE TEMP VIEW fhir_encounter_rows AS
SELECT
    e.id AS encounter_id,
    e.subject_id,
    e.admit_time,
    e.discharge_time,
    date_diff('day', p.birth, e.admit_time) / 365.25 AS age_years,
    CASE
        WHEN list_contains(e.disposition_codes, 'exp') THEN true
        WHEN p.deceased_time IS NOT NULL
            THEN p.deceased_time BETWEEN e.admit_time AND e.discharge_time
        WHEN p.deceased = false THEN false
    END AS died_in_hospital,
    CASE
        WHEN e.id IS NULL THEN 'Encounter.id missing'
        WHEN fhir_status_skip('Encounter', e.status) IS NOT NULL
            THEN fhir_status_skip('Encounter', e.status)
        WHEN c.code IS NULL THEN 'Encounter.class not a hospital stay'
        WHEN e.subject_id IS NULL THEN 'Encounter.subject not a Patient reference'
        WHEN e.admit_time IS NULL THEN 'Encounter.period.start missing or partial'
        WHEN e.discharge_time IS NULL THEN 'Encounter.period.end missing or partial'
        WHEN e.discharge_time < e.admit_time THEN 'Encounter ends before it starts'
        WHEN count(*) OVER (PARTITION BY e.id) > 1 THEN 'Encounter.id repeated'
    END AS skip_reason
FROM fhir_encounter AS e
LEFT JOIN ref_fhir_encounter_classes AS c
    ON c.code = e.class_code AND c.system = e.class_system AND c.is_hospital_stay = 'true'
LEFT JOIN fhir_patient_birth AS p ON p.id = e.subject_id;
