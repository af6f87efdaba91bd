-- FHIR R4 bulk export (NDJSON) → mgca. The adapter binds one view per resource type,
-- fhir_<type>_raw (json JSON), over every file of that type, read as JSON objects by DuckDB.
-- Times: FHIR dateTime values carry a UTC offset; they are converted to UTC and stored as naive
-- timestamps (the session time zone is UTC). A date-only value is taken as 00:00 UTC; a
-- partial date ('2020', '2020-05') is not a usable time and the row is skipped.
-- References: 'Patient/<id>' and 'Encounter/<id>' (relative references of a bulk export).

CREATE OR REPLACE TEMP MACRO fhir_time(t) AS
    CAST(TRY_CAST(t AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS TIMESTAMP);
CREATE OR REPLACE TEMP MACRO fhir_ref(r, resource_type) AS
    CASE WHEN starts_with(r, resource_type || '/') THEN substr(r, length(resource_type) + 2) END;
CREATE OR REPLACE TEMP MACRO fhir_codings(j) AS
    from_json(j, '[{"system": "VARCHAR", "code": "VARCHAR", "display": "VARCHAR"}]');

-- Status rules (fhir_statuses.csv): 'use' keeps the row, 'skip' counts it with its reason.
CREATE OR REPLACE TEMP MACRO fhir_status_skip(p_resource, p_status) AS (
    SELECT CASE
        WHEN p_status IS NULL THEN p_resource || '.status missing'
        WHEN any_value(s.action) IS NULL
            THEN p_resource || '.status ' || p_status || ' not in fhir_statuses.csv'
        WHEN any_value(s.action) = 'skip' THEN any_value(s.reason)
    END
    FROM ref_fhir_statuses AS s
    WHERE s.resource = p_resource AND s.status = p_status
);

CREATE OR REPLACE TEMP VIEW fhir_patient AS
SELECT
    json ->> '$.id' AS id,
    lower(json ->> '$.gender') AS gender,
    json ->> '$.birthDate' AS birth_date,
    fhir_time(json ->> '$.deceasedDateTime') AS deceased_time,
    TRY_CAST(json -> '$.deceasedBoolean' AS BOOLEAN) AS deceased
FROM fhir_patient_raw;

-- Birth date completed like OMOP's: a missing month is 1 July, a missing day the 15th.
CREATE OR REPLACE TEMP VIEW fhir_patient_birth AS
SELECT id, any_value(gender) AS gender, any_value(deceased_time) AS deceased_time,
       any_value(deceased) AS deceased,
       any_value(CASE
           WHEN length(birth_date) = 4 THEN TRY_CAST(birth_date || '-07-01' AS DATE)
           WHEN length(birth_date) = 7 THEN TRY_CAST(birth_date || '-15' AS DATE)
           ELSE TRY_CAST(birth_date AS DATE) END) AS birth
FROM fhir_patient GROUP BY id;
