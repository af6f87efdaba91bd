-- drug_exposure → medication_administrations: administration records only. A row is an
-- administration when drug_type_concept_id is in omop_drug_types.csv (38000180 inpatient
-- administration, 32818 EHR administration record); prescriptions, dispensings and claims are
-- counted as skipped, never as exposure. One canonical row per matched ingredient, without the
-- ingredients a carrier fluid carries (omop_carrier_drugs: Lactated Ringer's is not calcium
-- co-treatment); a carrier row left with no ingredient is skipped as 'carrier fluid: …', one
-- that keeps an ingredient says so in carrier_note.
-- Dose: quantity with dose_unit_source_value as recorded (OMOP has no administered-dose column;
-- a dose without a mass or amount unit leaves the elemental amount unknown in the core SQL).
CREATE OR REPLACE TEMP VIEW omop_drug_rows AS
SELECT
    CAST(d.person_id AS VARCHAR) AS subject_id,
    CAST(d.visit_occurrence_id AS VARCHAR) AS encounter_id,
    coalesce(TRY_CAST(d.drug_exposure_start_datetime AS TIMESTAMP),
             CAST(TRY_CAST(d.drug_exposure_start_date AS DATE) AS TIMESTAMP)) AS "time",
    CASE WHEN cd.drug_concept_id IS NULL THEN di.ingredients
         ELSE without_carried(di.ingredients, cd.carried) END AS ingredients,
    TRY_CAST(d.quantity AS DOUBLE) AS dose,
    nullif(trim(CAST(d.dose_unit_source_value AS VARCHAR)), '') AS dose_unit,
    CASE WHEN d.route_concept_id IS NULL OR TRY_CAST(d.route_concept_id AS BIGINT) = 0 THEN NULL
         ELSE coalesce(rc.route, 'other') END AS route,
    true AS given,
    'OMOP:' || CAST(d.drug_concept_id AS VARCHAR) AS source_code,
    CASE
        WHEN di.ingredients IS NULL THEN 'drug_concept_id not a listed ingredient'
        WHEN cd.drug_concept_id IS NOT NULL AND without_carried(di.ingredients, cd.carried) IS NULL
            THEN cd.carrier_reason
        WHEN dt.drug_type_concept_id IS NULL THEN 'drug_type_concept_id not an administration'
        WHEN d.person_id IS NULL THEN 'person_id missing'
        WHEN coalesce(TRY_CAST(d.drug_exposure_start_datetime AS TIMESTAMP),
                      CAST(TRY_CAST(d.drug_exposure_start_date AS DATE) AS TIMESTAMP)) IS NULL
            THEN 'drug_exposure start missing or unparseable'
    END AS skip_reason,
    di.route AS ingredient_route,
    TRY_CAST(d.drug_concept_id AS BIGINT) AS concept_id,
    nullif(trim(CAST(d.drug_source_value AS VARCHAR)), '') AS source_value,
    di.ingredients IS NOT NULL AS listed,
    CASE WHEN cd.drug_concept_id IS NOT NULL
              AND without_carried(di.ingredients, cd.carried) IS NOT NULL
         THEN replace(replace(cd.carrier_reason, ' is not a supplement)',
                              ' dropped, not a supplement)'),
                      ' are not supplements)', ' dropped, not supplements)')
    END AS carrier_note
FROM src_drug_exposure AS d
LEFT JOIN omop_drug_ingredients AS di ON di.drug_concept_id = TRY_CAST(d.drug_concept_id AS BIGINT)
LEFT JOIN ref_omop_drug_types AS dt
    ON dt.drug_type_concept_id = CAST(d.drug_type_concept_id AS VARCHAR)
    AND dt.is_administration = 'true'
LEFT JOIN omop_route_concepts AS rc ON rc.concept_id = TRY_CAST(d.route_concept_id AS BIGINT)
LEFT JOIN omop_carrier_drugs AS cd ON cd.drug_concept_id = TRY_CAST(d.drug_concept_id AS BIGINT);

-- One row per (administration, ingredient): what export_canonical writes.
CREATE OR REPLACE TEMP VIEW omop_medication_rows AS
SELECT subject_id, encounter_id, "time", unnest(ingredients) AS ingredient, dose, dose_unit,
       route, given, source_code, skip_reason
FROM omop_drug_rows
WHERE skip_reason IS NULL;
