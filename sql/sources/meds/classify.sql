-- classify: every MEDS row (subject_id, time, code, numeric_value) with what it maps to, or the
-- reason it is skipped. Code rules: sql/reference/sources/meds_codes.csv (exact code or
-- prefix -> role); lab and medication codes are then looked up in the code lists named in its
-- lookup column (MIMIC-IV itemids, LOINC, MIMIC-IV eMAR names and events, RxNorm).
--
-- Reads: src_meds (every data/ shard; hadm_id NULL when the shards have no such column),
--        ref_meds_codes, ref_mimic_lab_items, ref_lab_codes (the one LOINC list),
--        ref_mimic_medications,
--        ref_mimic_emar_events,
--        ref_ingredients (sql/reference/ingredients.csv, with rxnorm).
-- numeric_value is float32 in MEDS: it is read through its shortest text form so 1.2f stays
-- 1.2 (not 1.2000000476837158).

CREATE OR REPLACE TEMP VIEW meds_rows AS
SELECT
    CAST(m.subject_id AS VARCHAR) AS subject_id,
    CAST(m.hadm_id AS VARCHAR) AS hadm_id,
    TRY_CAST(m.time AS TIMESTAMP) AS time,
    CAST(m.code AS VARCHAR) AS code,
    TRY_CAST(CAST(m.numeric_value AS VARCHAR) AS DOUBLE) AS numeric_value,
    r.role,
    split_part(CAST(m.code AS VARCHAR), '//', 2) AS part2,
    split_part(CAST(m.code AS VARCHAR), '//', 3) AS part3
FROM src_meds AS m
LEFT JOIN ref_meds_codes AS r
    ON (r.match = 'exact' AND CAST(m.code AS VARCHAR) = r.code)
    OR (r.match = 'prefix' AND starts_with(CAST(m.code AS VARCHAR), r.code));

CREATE OR REPLACE TEMP VIEW meds_classified AS
SELECT
    m.*,
    coalesce(li.analyte, lo.analyte) AS analyte,
    CASE
        WHEN m.role = 'lab' AND li.itemid IS NOT NULL THEN nullif(m.part3, '')
        WHEN m.role = 'lab' THEN lo.unit
    END AS unit,
    coalesce(mm.ingredient, rx.ingredient) AS ingredient,
    CASE
        WHEN rx.ingredient IS NOT NULL THEN true
        WHEN ev.outcome = 'given' THEN true
        WHEN ev.outcome = 'not_given' THEN false
    END AS given,
    CASE
        WHEN m.role IS NULL THEN 'code not in meds_codes.csv'
        WHEN m.subject_id IS NULL THEN 'no subject_id'
        WHEN m.time IS NULL AND m.role NOT IN ('sex_f', 'sex_m')
            THEN 'time missing (static row)'
        WHEN m.role = 'lab' AND li.itemid IS NOT NULL AND coalesce(li.analyte, '') = ''
            THEN 'lab code excluded: ' || li.exclude_reason
        WHEN m.role = 'lab' AND coalesce(li.analyte, lo.analyte) IS NULL
            THEN 'lab code not in code list'
        WHEN m.role = 'medication' AND mm.medication IS NOT NULL
            AND coalesce(mm.ingredient, '') = ''
            THEN 'medication excluded: ' || mm.exclude_reason
        WHEN m.role = 'medication' AND coalesce(mm.ingredient, rx.ingredient) IS NULL
            THEN 'medication code not in code list'
        WHEN m.role = 'medication' AND rx.ingredient IS NULL AND ev.outcome IS NULL
            THEN 'event_txt not in code list'
        WHEN m.role = 'medication' AND ev.outcome = 'not_a_dose'
            THEN 'not a dose event: ' || m.part3
    END AS skip_reason,
    CASE
        WHEN m.role = 'lab' AND m.numeric_value IS NULL THEN 'no numeric value'
        WHEN m.role = 'medication' AND ev.outcome = 'not_given' THEN 'not given: ' || m.part3
        WHEN m.role IN ('sex_f', 'sex_m', 'birth', 'death') THEN 'person attribute'
        WHEN m.role IN ('admission', 'discharge') THEN 'stay boundary'
    END AS note
FROM meds_rows AS m
LEFT JOIN ref_mimic_lab_items AS li
    ON m.role = 'lab' AND starts_with(m.code, 'LAB//') AND li.itemid = m.part2
LEFT JOIN ref_lab_codes AS lo
    ON m.role = 'lab' AND starts_with(m.code, 'LOINC/') AND lo.vocabulary = 'LOINC'
    AND lo.code = substr(m.code, 7)
LEFT JOIN ref_mimic_medications AS mm
    ON m.role = 'medication' AND starts_with(m.code, 'MEDICATION//')
    AND mm.medication = lower(trim(m.part2))
LEFT JOIN ref_mimic_emar_events AS ev
    ON m.role = 'medication' AND starts_with(m.code, 'MEDICATION//') AND ev.event_txt = m.part3
LEFT JOIN (
    SELECT ingredient, rxnorm FROM ref_ingredients WHERE coalesce(rxnorm, '') <> ''
) AS rx
    ON m.role = 'medication' AND starts_with(m.code, 'RxNorm/') AND rx.rxnorm = substr(m.code, 8);

-- Stays: with a hadm_id column, each hadm_id's admission and discharge rows; without one,
-- each admission row paired with the subject's next discharge row. Stays missing either end,
-- or ending before they start, are dropped (counted in source_rows as 'unpaired stay boundary').
CREATE OR REPLACE TEMP VIEW meds_stays AS
WITH boundaries AS (
    SELECT subject_id, hadm_id, time, role
    FROM meds_classified
    WHERE role IN ('admission', 'discharge') AND skip_reason IS NULL
),
by_hadm AS (
    SELECT
        hadm_id AS encounter_id,
        min(subject_id) AS subject_id,
        min(time) FILTER (WHERE role = 'admission') AS admit_time,
        max(time) FILTER (WHERE role = 'discharge') AS discharge_time
    FROM boundaries
    WHERE hadm_id IS NOT NULL
    GROUP BY hadm_id
),
ordered AS (
    SELECT
        *,
        sum(CASE WHEN role = 'admission' THEN 1 ELSE 0 END) OVER (
            PARTITION BY subject_id ORDER BY time, role
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS stay_number
    FROM boundaries
    WHERE hadm_id IS NULL
),
by_order AS (
    SELECT
        subject_id || ':' || stay_number AS encounter_id,
        subject_id,
        min(time) FILTER (WHERE role = 'admission') AS admit_time,
        min(time) FILTER (WHERE role = 'discharge') AS discharge_time
    FROM ordered
    WHERE stay_number > 0
    GROUP BY subject_id, stay_number
)
SELECT * FROM by_hadm
UNION ALL
SELECT * FROM by_order;

-- Whether the data has any stay: without one, every subject gets one pseudo-stay from its first
-- to its last lab or dose (encounters.sql), and labs and doses are linked to it.
CREATE OR REPLACE TABLE meds_flags AS
SELECT (SELECT count(*) FROM meds_stays) > 0 AS has_stays;
