-- visit_occurrence → encounters: hospital stays only (visit_concept_id in omop_visit_types.csv:
-- inpatient, ER-and-inpatient, intensive care); other visits are counted as skipped.
-- Times: the *_datetime column when present, else the date at 00:00 (start) and the date at
-- 23:59:59 (end, so a same-day stay has a positive length). Age at admission in years from
-- birth_datetime, else year/month/day of birth (a missing month is taken as 1 July, a missing
-- day as the 15th: at most ±6 months of error, stated in README).
CREATE OR REPLACE TEMP VIEW omop_visit_base AS
SELECT
    v.*,
    coalesce(TRY_CAST(v.visit_start_datetime AS TIMESTAMP),
             CAST(TRY_CAST(v.visit_start_date AS DATE) AS TIMESTAMP)) AS admit_ts,
    coalesce(TRY_CAST(v.visit_end_datetime AS TIMESTAMP),
             CAST(TRY_CAST(v.visit_end_date AS DATE) AS TIMESTAMP)
                 + INTERVAL 86399 SECOND) AS discharge_ts
FROM src_visit_occurrence AS v;

CREATE OR REPLACE TEMP VIEW omop_death AS
SELECT CAST(person_id AS VARCHAR) AS subject_id, min(TRY_CAST(death_date AS DATE)) AS death_date
FROM src_death GROUP BY 1;

CREATE OR REPLACE TEMP VIEW omop_visit_rows AS
SELECT
    CAST(v.visit_occurrence_id AS VARCHAR) AS encounter_id,
    CAST(v.person_id AS VARCHAR) AS subject_id,
    v.admit_ts AS admit_time,
    v.discharge_ts AS discharge_time,
    date_diff('day',
        coalesce(TRY_CAST(p.birth_datetime AS TIMESTAMP),
                 CAST(make_date(TRY_CAST(p.year_of_birth AS BIGINT),
                                coalesce(TRY_CAST(p.month_of_birth AS BIGINT), 7),
                                coalesce(TRY_CAST(p.day_of_birth AS BIGINT),
                                         CASE WHEN p.month_of_birth IS NULL THEN 1 ELSE 15 END))
                      AS TIMESTAMP)),
        v.admit_ts) / 365.25 AS age_years,
    CASE
        WHEN o.has_death THEN coalesce(d.death_date BETWEEN CAST(v.admit_ts AS DATE)
                                                  AND CAST(v.discharge_ts AS DATE), false)
    END AS died_in_hospital,
    CASE
        WHEN v.visit_occurrence_id IS NULL THEN 'visit_occurrence_id missing'
        WHEN vt.visit_concept_id IS NULL THEN 'visit_concept_id not a hospital stay'
        WHEN v.person_id IS NULL THEN 'person_id missing'
        WHEN v.admit_ts IS NULL THEN 'visit start missing or unparseable'
        WHEN v.discharge_ts IS NULL THEN 'visit end missing or unparseable'
        WHEN v.discharge_ts < v.admit_ts THEN 'visit ends before it starts'
        WHEN count(*) OVER (PARTITION BY v.visit_occurrence_id) > 1
            THEN 'visit_occurrence_id repeated'
    END AS skip_reason
FROM omop_visit_base AS v
CROSS JOIN omop_options AS o
LEFT JOIN ref_omop_visit_types AS vt
    ON vt.visit_concept_id = CAST(v.visit_concept_id AS VARCHAR) AND vt.is_hospital_stay = 'true'
LEFT JOIN (SELECT person_id, any_value(birth_datetime) AS birth_datetime,
                  any_value(year_of_birth) AS year_of_birth,
                  any_value(month_of_birth) AS month_of_birth,
                  any_value(day_of_birth) AS day_of_birth
           FROM src_person GROUP BY person_id) AS p ON p.person_id = v.person_id
LEFT JOIN omop_death AS d ON d.subject_id = CAST(v.person_id AS VARCHAR);
