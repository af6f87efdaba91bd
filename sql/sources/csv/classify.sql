-- classify: every row of a plain long-format extract (--source csv) with the canonical values it
-- maps to, or the reason it is skipped. The column mapping (which extract column is which
-- field) comes from the config's long_format section and is applied by the views src_labs,
-- src_medications, src_persons, src_encounters, whose columns already carry canonical names
-- (NULL where the extract has no such column).
--
-- Reads: src_labs, src_medications, src_persons, src_encounters; ref_analyte_bounds (the
--        analytes of sql/reference/analyte_bounds.csv), ref_lab_codes
--        (sql/reference/sources/lab_codes.csv, the one LOINC list), ref_ingredients
--        (sql/reference/ingredients.csv).

-- A time written with a UTC offset or Z ("2024-03-02T08:00:00+01:00", "…Z") is skipped, never
-- converted: DuckDB's cast to TIMESTAMP silently drops the offset, and an extract that mixes
-- clocks (UTC beside local, or two offsets) would shift intervals between draws by hours.
CREATE OR REPLACE TEMP MACRO has_utc_offset(t) AS regexp_matches(
    trim(CAST(t AS VARCHAR)), '[T ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|[+-]\d{2}(:?\d{2})?)$', 'i'
);

-- labs: analyte = a canonical analyte name (any case) or a LOINC code ('19123-9' or
-- 'LOINC:19123-9' / 'LOINC/19123-9'); the unit as reported, else the LOINC code's default.
CREATE OR REPLACE TEMP VIEW long_labs_classified AS
WITH labs AS (
    SELECT
        *,
        lower(trim(CAST(analyte AS VARCHAR))) AS analyte_text,
        regexp_replace(trim(CAST(analyte AS VARCHAR)), '^loinc[:/]+', '', 'i') AS loinc_code
    FROM src_labs
)
SELECT
    CAST(l.subject_id AS VARCHAR) AS subject_id,
    nullif(trim(CAST(l.encounter_id AS VARCHAR)), '') AS encounter_id,
    TRY_CAST(l.time AS TIMESTAMP) AS time,
    coalesce(a.analyte, lc.analyte) AS analyte,
    TRY_CAST(l.value AS DOUBLE) AS value,
    coalesce(nullif(trim(CAST(l.unit AS VARCHAR)), ''), lc.unit) AS unit,
    CASE WHEN lc.code IS NOT NULL THEN 'LOINC:' || lc.code ELSE 'extract:' || l.analyte_text END
        AS source_code,
    CASE
        WHEN coalesce(a.analyte, lc.analyte) IS NULL THEN 'analyte not recognised'
        WHEN l.subject_id IS NULL THEN 'no subject_id'
        WHEN TRY_CAST(l.time AS TIMESTAMP) IS NULL THEN 'time missing or unparseable'
        WHEN has_utc_offset(l.time) THEN 'time has a UTC offset or Z (local clock expected)'
    END AS skip_reason,
    CASE WHEN TRY_CAST(l.value AS DOUBLE) IS NULL THEN 'no numeric value' END AS note
FROM labs AS l
LEFT JOIN ref_analyte_bounds AS a ON a.analyte = l.analyte_text
LEFT JOIN ref_lab_codes AS lc ON lc.vocabulary = 'LOINC' AND lc.code = l.loinc_code;

-- medications: ingredient must be listed in ingredients.csv (any case, spaces -> '_');
-- given: true/false, 1/0, yes/no, given/not given, administered/not administered; a row
-- whose flag is none of these is skipped (never guessed). given_configured = false (config
-- given: null) takes every row as given.
CREATE OR REPLACE TEMP VIEW long_medications_classified AS
WITH meds AS (
    SELECT
        *,
        replace(lower(trim(CAST(ingredient AS VARCHAR))), ' ', '_') AS ingredient_text,
        lower(trim(CAST(given AS VARCHAR))) AS given_text
    FROM src_medications
)
SELECT
    CAST(m.subject_id AS VARCHAR) AS subject_id,
    nullif(trim(CAST(m.encounter_id AS VARCHAR)), '') AS encounter_id,
    TRY_CAST(m.time AS TIMESTAMP) AS time,
    i.ingredient,
    TRY_CAST(m.dose AS DOUBLE) AS dose,
    nullif(trim(CAST(m.dose_unit AS VARCHAR)), '') AS dose_unit,
    CASE
        WHEN nullif(trim(CAST(m.route AS VARCHAR)), '') IS NULL THEN NULL
        WHEN lower(trim(CAST(m.route AS VARCHAR))) IN ('iv', 'intravenous') THEN 'iv'
        WHEN lower(trim(CAST(m.route AS VARCHAR))) IN ('oral', 'po', 'enteral') THEN 'oral'
        ELSE 'other'
    END AS route,
    CASE
        WHEN NOT m.given_configured THEN true
        WHEN m.given_text IN ('true', 't', '1', 'yes', 'y', 'given', 'administered') THEN true
        WHEN m.given_text IN ('false', 'f', '0', 'no', 'n', 'not given', 'not administered')
            THEN false
    END AS given,
    'extract:' || m.ingredient_text AS source_code,
    CASE
        WHEN i.ingredient IS NULL THEN 'ingredient not in ingredients.csv'
        WHEN m.subject_id IS NULL THEN 'no subject_id'
        WHEN TRY_CAST(m.time AS TIMESTAMP) IS NULL THEN 'time missing or unparseable'
        WHEN has_utc_offset(m.time) THEN 'time has a UTC offset or Z (local clock expected)'
        WHEN m.given_configured AND m.given_text NOT IN (
            'true', 't', '1', 'yes', 'y', 'given', 'administered',
            'false', 'f', '0', 'no', 'n', 'not given', 'not administered'
        ) THEN 'given flag missing or not recognised'
        WHEN m.given_configured AND m.given_text IS NULL
            THEN 'given flag missing or not recognised'
    END AS skip_reason,
    CASE
        WHEN m.given_configured AND m.given_text IN (
            'false', 'f', '0', 'no', 'n', 'not given', 'not administered'
        ) THEN 'not given'
    END AS note
FROM meds AS m
LEFT JOIN ref_ingredients AS i ON i.ingredient = m.ingredient_text;

CREATE OR REPLACE TEMP VIEW long_persons_classified AS
SELECT
    CAST(subject_id AS VARCHAR) AS subject_id,
    CASE upper(trim(CAST(sex AS VARCHAR)))
        WHEN 'F' THEN 'F' WHEN 'FEMALE' THEN 'F' WHEN 'M' THEN 'M' WHEN 'MALE' THEN 'M'
        ELSE 'U'
    END AS sex,
    TRY_CAST(year_of_birth AS INTEGER) AS year_of_birth,
    CASE
        WHEN subject_id IS NULL THEN 'no subject_id'
        WHEN row_number() OVER (PARTITION BY CAST(subject_id AS VARCHAR)) > 1
            THEN 'repeated subject_id'
    END AS skip_reason,
    CAST(NULL AS VARCHAR) AS note
FROM src_persons;

CREATE OR REPLACE TEMP VIEW long_encounters_classified AS
WITH enc AS (
    SELECT
        CAST(encounter_id AS VARCHAR) AS encounter_id,
        CAST(subject_id AS VARCHAR) AS subject_id,
        TRY_CAST(admit_time AS TIMESTAMP) AS admit_time,
        TRY_CAST(discharge_time AS TIMESTAMP) AS discharge_time,
        TRY_CAST(age_years AS DOUBLE) AS age_years,
        nullif(trim(CAST(age_years AS VARCHAR)), '') AS age_text,
        CAST(admit_time AS VARCHAR) AS admit_text,
        CAST(discharge_time AS VARCHAR) AS discharge_text,
        lower(trim(CAST(died_in_hospital AS VARCHAR))) AS died_text,
        row_number() OVER (PARTITION BY CAST(encounter_id AS VARCHAR)) AS copy_number
    FROM src_encounters
)
SELECT
    encounter_id,
    subject_id,
    admit_time,
    discharge_time,
    age_years,
    CASE
        WHEN died_text IN ('true', 't', '1', 'yes', 'y') THEN true
        WHEN died_text IN ('false', 'f', '0', 'no', 'n') THEN false
    END AS died_in_hospital,
    CASE
        WHEN encounter_id IS NULL THEN 'no encounter_id'
        WHEN copy_number > 1 THEN 'repeated encounter_id'
        WHEN subject_id IS NULL THEN 'no subject_id'
        WHEN admit_time IS NULL THEN 'admit_time missing or unparseable'
        WHEN discharge_time IS NULL THEN 'discharge_time missing or unparseable'
        WHEN has_utc_offset(admit_text) OR has_utc_offset(discharge_text)
            THEN 'admit or discharge time has a UTC offset or Z (local clock expected)'
        WHEN discharge_time < admit_time THEN 'discharge_time before admit_time'
    END AS skip_reason,
    CASE WHEN age_text IS NOT NULL AND age_years IS NULL THEN 'age not numeric' END AS note
FROM enc;
