-- classify: every MIMIC-IV source row with the canonical values it maps to, or the reason it
-- is skipped (skip_reason), plus a note for mapped rows worth counting separately (note).
-- Each view below has one row per source row read; persons.sql, encounters.sql,
-- lab_results.sql and medication_administrations.sql keep the rows with skip_reason IS NULL,
-- source_rows.sql counts all of them by reason.
--
-- Reads: src_patients, src_admissions, src_inputevents (views over the distributed files),
--        stage_labevents, stage_emar, stage_emar_detail (staged by stage_*.sql), and the code
--        lists ref_mimic_lab_items, ref_mimic_medications, ref_mimic_emar_events, ref_mimic_routes,
--        ref_mimic_input_items (sql/reference/sources/*.csv).
-- Times are MIMIC's shifted times, kept as they are (relative times are all the study uses).

-- hosp/patients -> persons. year_of_birth = anchor_year - anchor_age (MIMIC gives age at the
-- anchor year, not a birth date; one year of uncertainty).
CREATE OR REPLACE TEMP VIEW mimic_persons_classified AS
SELECT
    CAST(subject_id AS VARCHAR) AS subject_id,
    CASE upper(trim(CAST(gender AS VARCHAR))) WHEN 'F' THEN 'F' WHEN 'M' THEN 'M' ELSE 'U' END
        AS sex,
    TRY_CAST(anchor_age AS INTEGER) AS anchor_age,
    TRY_CAST(anchor_year AS INTEGER) AS anchor_year,
    TRY_CAST(anchor_year AS INTEGER) - TRY_CAST(anchor_age AS INTEGER) AS year_of_birth,
    CASE
        WHEN subject_id IS NULL THEN 'no subject_id'
        WHEN row_number() OVER (
            PARTITION BY CAST(subject_id AS VARCHAR)
            ORDER BY CAST(anchor_year AS VARCHAR), CAST(anchor_age AS VARCHAR)
        ) > 1 THEN 'repeated subject_id'
    END AS skip_reason,
    CAST(NULL AS VARCHAR) AS note
FROM src_patients;

-- hosp/admissions -> encounters. Age at admission (years) = anchor_age + year(admittime) -
-- anchor_year (MIMIC-IV documentation: anchor_age is the age in anchor_year).
CREATE OR REPLACE TEMP VIEW mimic_encounters_classified AS
WITH adm AS (
    SELECT
        CAST(a.hadm_id AS VARCHAR) AS encounter_id,
        CAST(a.subject_id AS VARCHAR) AS subject_id,
        TRY_CAST(a.admittime AS TIMESTAMP) AS admit_time,
        TRY_CAST(a.dischtime AS TIMESTAMP) AS discharge_time,
        trim(CAST(a.hospital_expire_flag AS VARCHAR)) AS expire_flag,
        row_number() OVER (
            PARTITION BY CAST(a.hadm_id AS VARCHAR) ORDER BY CAST(a.admittime AS VARCHAR)
        ) AS copy_number
    FROM src_admissions AS a
)
SELECT
    adm.encounter_id,
    adm.subject_id,
    adm.admit_time,
    adm.discharge_time,
    CAST(p.anchor_age + year(adm.admit_time) - p.anchor_year AS DOUBLE) AS age_years,
    CASE adm.expire_flag WHEN '1' THEN true WHEN '0' THEN false END AS died_in_hospital,
    CASE
        WHEN adm.encounter_id IS NULL THEN 'no hadm_id'
        WHEN adm.copy_number > 1 THEN 'repeated hadm_id'
        WHEN adm.admit_time IS NULL THEN 'admittime missing or unparseable'
        WHEN adm.discharge_time IS NULL THEN 'dischtime missing or unparseable'
        WHEN adm.discharge_time < adm.admit_time THEN 'dischtime before admittime'
        WHEN p.subject_id IS NULL THEN 'subject_id not in hosp/patients'
    END AS skip_reason,
    CAST(NULL AS VARCHAR) AS note
FROM adm
LEFT JOIN (SELECT * FROM mimic_persons_classified WHERE skip_reason IS NULL) AS p
    ON p.subject_id = adm.subject_id;

-- hosp/labevents -> lab_results, by itemid (mimic_lab_items.csv). The draw time is charttime,
-- the value valuenum and the unit valueuom as reported (units are harmonised by the core SQL).
-- A listed row with no numeric valuenum ('___', cancelled, haemolysed comments ...) is kept
-- with value NULL, so lab_harmonised counts it as missing_value per analyte; it is counted
-- here as mapped with the note 'no numeric value'.
CREATE OR REPLACE TEMP VIEW mimic_labs_classified AS
SELECT
    s.subject_id,
    s.hadm_id AS encounter_id,
    TRY_CAST(s.charttime AS TIMESTAMP) AS time,
    k.analyte,
    TRY_CAST(s.valuenum AS DOUBLE) AS value,
    nullif(trim(s.valueuom), '') AS unit,
    'MIMIC-IV:' || s.itemid AS source_code,
    CASE
        WHEN NOT s.listed THEN 'itemid not in code list'
        WHEN coalesce(k.analyte, '') = '' THEN 'itemid excluded: ' || k.exclude_reason
        WHEN s.subject_id IS NULL THEN 'no subject_id'
        WHEN TRY_CAST(s.charttime AS TIMESTAMP) IS NULL THEN 'charttime missing or unparseable'
    END AS skip_reason,
    CASE WHEN TRY_CAST(s.valuenum AS DOUBLE) IS NULL THEN 'no numeric value' END AS note
FROM stage_labevents AS s
LEFT JOIN ref_mimic_lab_items AS k
    ON k.itemid = s.itemid;

-- hosp/emar (+ hosp/emar_detail) -> medication_administrations, by medication name
-- (mimic_medications.csv) and event_txt (mimic_emar_events.csv). Only events whose outcome
-- is 'given' are doses (given = true); 'not_given' events are kept with given = false (the
-- core SQL counts them as not_given and never as exposure); 'not_a_dose' events (rate
-- changes, stops, documentation) and events whose text is not listed are skipped.
-- Dose: the parent emar_detail row's dose_given (parent_field_ordinal empty) when numeric,
-- else the sum of the product-component rows' dose_given when they share one unit; NULL
-- when neither (a given dose of unknown amount still counts as a dose).
-- Route: emar_detail.route of the parent row (else the first component), via mimic_routes.csv;
-- routes not listed become 'other'.
CREATE OR REPLACE TEMP VIEW mimic_emar_dose AS
SELECT
    emar_id,
    max(TRY_CAST(dose_given AS DOUBLE)) FILTER (WHERE parent_field_ordinal IS NULL)
        AS parent_dose,
    min(nullif(trim(dose_given_unit), '')) FILTER (WHERE parent_field_ordinal IS NULL)
        AS parent_unit,
    sum(TRY_CAST(dose_given AS DOUBLE)) FILTER (WHERE parent_field_ordinal IS NOT NULL)
        AS component_dose,
    count(DISTINCT lower(trim(dose_given_unit))) FILTER (
        WHERE parent_field_ordinal IS NOT NULL AND TRY_CAST(dose_given AS DOUBLE) IS NOT NULL
    ) AS n_component_units,
    min(nullif(trim(dose_given_unit), '')) FILTER (
        WHERE parent_field_ordinal IS NOT NULL AND TRY_CAST(dose_given AS DOUBLE) IS NOT NULL
    ) AS component_unit,
    min_by(nullif(trim(route), ''), coalesce(parent_field_ordinal, ''))
        FILTER (WHERE nullif(trim(route), '') IS NOT NULL) AS route
FROM stage_emar_detail
WHERE listed
GROUP BY emar_id;

CREATE OR REPLACE TEMP VIEW mimic_emar_classified AS
SELECT
    s.subject_id,
    s.hadm_id AS encounter_id,
    TRY_CAST(s.charttime AS TIMESTAMP) AS time,
    m.ingredient,
    CASE
        WHEN d.parent_dose IS NOT NULL THEN d.parent_dose
        WHEN d.n_component_units = 1 THEN d.component_dose
    END AS dose,
    CASE
        WHEN d.parent_dose IS NOT NULL THEN d.parent_unit
        WHEN d.n_component_units = 1 THEN d.component_unit
    END AS dose_unit,
    CASE WHEN d.route IS NULL THEN NULL ELSE coalesce(r.route_canonical, 'other') END AS route,
    ev.outcome = 'given' AS given,
    'MIMIC-IV:emar:' || s.medication AS source_code,
    CASE
        WHEN NOT s.listed
            THEN coalesce(carrier_reason(s.medication), 'medication not in code list')
        WHEN coalesce(m.ingredient, '') = '' THEN 'medication excluded: ' || m.exclude_reason
        WHEN ev.outcome IS NULL THEN 'event_txt not in code list'
        WHEN ev.outcome = 'not_a_dose' THEN 'not a dose event: ' || s.event_txt
        WHEN s.subject_id IS NULL THEN 'no subject_id'
        WHEN TRY_CAST(s.charttime AS TIMESTAMP) IS NULL THEN 'charttime missing or unparseable'
    END AS skip_reason,
    CASE WHEN ev.outcome = 'not_given' THEN 'not given: ' || s.event_txt END AS note
FROM stage_emar AS s
LEFT JOIN ref_mimic_medications AS m ON m.medication = s.medication
LEFT JOIN ref_mimic_emar_events AS ev ON ev.event_txt = s.event_txt
LEFT JOIN mimic_emar_dose AS d ON d.emar_id = s.emar_id
LEFT JOIN ref_mimic_routes AS r ON upper(r.route) = upper(d.route);

-- hosp/emar_detail rows: counted as used when they belong to a listed eMAR event.
CREATE OR REPLACE TEMP VIEW mimic_emar_detail_classified AS
SELECT
    CASE WHEN NOT listed THEN 'detail of an eMAR event not in the code list' END AS skip_reason,
    CASE WHEN listed THEN 'dose and route of a listed eMAR event' END AS note
FROM stage_emar_detail;

-- icu/inputevents (optional) -> medication_administrations, by itemid (mimic_input_items.csv):
-- IV Mg and Ca given in the ICU. starttime is the administration time, amount/amountuom the
-- dose. Obstetric MgSO4 (227524) and CRRT citrate calcium (227525) are listed but excluded.
-- statusdescription 'Rewritten' marks a charting correction that replaced the row: skipped.
CREATE OR REPLACE TEMP VIEW mimic_inputs_classified AS
SELECT
    CAST(i.subject_id AS VARCHAR) AS subject_id,
    CAST(i.hadm_id AS VARCHAR) AS encounter_id,
    TRY_CAST(i.starttime AS TIMESTAMP) AS time,
    k.ingredient,
    TRY_CAST(i.amount AS DOUBLE) AS dose,
    nullif(trim(CAST(i.amountuom AS VARCHAR)), '') AS dose_unit,
    'iv' AS route,
    true AS given,
    'MIMIC-IV:inputevents:' || trim(CAST(i.itemid AS VARCHAR)) AS source_code,
    CASE
        WHEN k.itemid IS NULL THEN 'itemid not in code list'
        WHEN coalesce(k.ingredient, '') = '' THEN 'itemid excluded: ' || k.exclude_reason
        WHEN trim(CAST(i.statusdescription AS VARCHAR)) = 'Rewritten'
            THEN 'rewritten (charting correction)'
        WHEN i.subject_id IS NULL THEN 'no subject_id'
        WHEN TRY_CAST(i.starttime AS TIMESTAMP) IS NULL THEN 'starttime missing or unparseable'
    END AS skip_reason,
    CAST(NULL AS VARCHAR) AS note
FROM src_inputevents AS i
LEFT JOIN ref_mimic_input_items AS k
    ON k.itemid = trim(CAST(i.itemid AS VARCHAR));
