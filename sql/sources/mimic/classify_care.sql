-- classify_care: MIMIC-IV ICU stays and dialysis procedures -> care_events, one row per
-- source row with the reason it is skipped (skip_reason) or NULL; care_events.sql keeps the
-- mapped rows, source_rows.sql counts them all.
--
-- Reads: src_icustays (icu/icustays: one row per ICU stay, intime to outtime),
--        src_procedureevents (icu/procedureevents), ref_mimic_procedure_items
--        (sql/reference/sources/mimic_procedure_items.csv: dialysis itemids). Both tables are
--        optional: absent, the views are empty and the study says "not recorded".

-- icu/icustays -> care_events 'icu_stay' (every ICU care unit of MIMIC-IV is an ICU)
CREATE OR REPLACE TEMP VIEW mimic_icustays_classified AS
SELECT
    CAST(subject_id AS VARCHAR) AS subject_id,
    CAST(hadm_id AS VARCHAR) AS encounter_id,
    TRY_CAST(intime AS TIMESTAMP) AS start_time,
    TRY_CAST(outtime AS TIMESTAMP) AS end_time,
    'icu_stay' AS event,
    'MIMIC-IV:icustays' AS source_code,
    CASE
        WHEN subject_id IS NULL THEN 'no subject_id'
        WHEN TRY_CAST(intime AS TIMESTAMP) IS NULL THEN 'unparseable intime'
    END AS skip_reason,
    CAST(NULL AS VARCHAR) AS note
FROM src_icustays;

-- icu/procedureevents -> care_events 'dialysis' for the itemids of the code list; every other
-- procedure is skipped as not in the code list
CREATE OR REPLACE TEMP VIEW mimic_procedures_classified AS
SELECT
    CAST(p.subject_id AS VARCHAR) AS subject_id,
    CAST(p.hadm_id AS VARCHAR) AS encounter_id,
    TRY_CAST(p.starttime AS TIMESTAMP) AS start_time,
    TRY_CAST(p.endtime AS TIMESTAMP) AS end_time,
    k.event,
    'MIMIC-IV:' || trim(CAST(p.itemid AS VARCHAR)) AS source_code,
    CASE
        WHEN k.itemid IS NULL THEN 'itemid not in code list'
        WHEN p.subject_id IS NULL THEN 'no subject_id'
        WHEN TRY_CAST(p.starttime AS TIMESTAMP) IS NULL THEN 'unparseable starttime'
    END AS skip_reason,
    CAST(NULL AS VARCHAR) AS note
FROM src_procedureevents AS p
LEFT JOIN ref_mimic_procedure_items AS k
    ON k.itemid = trim(CAST(p.itemid AS VARCHAR));
