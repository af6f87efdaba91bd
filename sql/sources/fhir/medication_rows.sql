-- MedicationAdministration → medication_administrations. Status completed = given
-- (fhir_statuses.csv); not-done, stopped, on-hold, entered-in-error… are counted as skipped.
-- Ingredient: medicationCodeableConcept.coding with the RxNorm system whose code is an
-- ingredient's RxNorm code (ingredients.csv), else the concept's text or a coding display
-- containing the ingredient's name ('Magnesium sulfate 2 g in 50 mL'). A medicationReference
-- (a separate Medication resource) is not resolved and is counted as skipped. A carrier fluid
-- (sql/sources/common/carrier_fluids.sql: Lactated Ringer's, Plasma-Lyte) loses the ingredient
-- it carries; left with none, it is skipped as 'carrier fluid: …'.
-- Dose: dosage.dose.value with dosage.dose.code (UCUM) or .unit; route: dosage.route coding
-- (SNOMED, drug_route_codes.csv) or its text; a route that matches nothing is 'other'.
CREATE OR REPLACE TEMP VIEW fhir_medication AS
SELECT
    json ->> '$.id' AS id,
    json ->> '$.status' AS status,
    fhir_codings(json -> '$.medicationCodeableConcept.coding') AS codings,
    lower(json ->> '$.medicationCodeableConcept.text') AS med_text,
    (json -> '$.medicationReference') IS NOT NULL AS has_reference,
    fhir_ref(json ->> '$.subject.reference', 'Patient') AS subject_id,
    fhir_ref(json ->> '$.context.reference', 'Encounter') AS encounter_id,
    coalesce(fhir_time(json ->> '$.effectiveDateTime'),
             fhir_time(json ->> '$.effectivePeriod.start')) AS "time",
    TRY_CAST(json -> '$.dosage.dose.value' AS DOUBLE) AS dose,
    coalesce(json ->> '$.dosage.dose.code', json ->> '$.dosage.dose.unit') AS dose_unit,
    fhir_codings(json -> '$.dosage.route.coding') AS route_codings,
    lower(trim(json ->> '$.dosage.route.text')) AS route_text
FROM fhir_medicationadministration_raw;

CREATE OR REPLACE TEMP VIEW fhir_drug_rows AS
WITH matched AS (
    SELECT m.*,
        (SELECT list(DISTINCT i.ingredient ORDER BY i.ingredient) FROM ref_ingredients AS i
         WHERE i.rxnorm IS NOT NULL AND list_contains(
             list_transform(list_filter(m.codings,
                 lambda x: x.system = 'http://www.nlm.nih.gov/research/umls/rxnorm'), lambda x: x.code),
             i.rxnorm)) AS by_code,
        (SELECT list(DISTINCT i.ingredient ORDER BY i.ingredient) FROM ref_ingredients AS i
         WHERE contains(coalesce(m.med_text, '') || ' ' || lower(coalesce(array_to_string(
             list_transform(m.codings, lambda x: x.display), ' '), '')),
             replace(i.ingredient, '_', ' '))) AS by_name,
        (SELECT min(r.route) FROM ref_drug_route_codes AS r
         WHERE (r.vocabulary = 'SNOMED' AND list_contains(list_transform(list_filter(
                    m.route_codings, lambda x: x.system = 'http://snomed.info/sct'), lambda x: x.code),
                    r.code))
            OR (r.vocabulary = 'text' AND r.code = m.route_text)) AS mapped_route
    FROM fhir_medication AS m
),
named AS (
    SELECT *,
        coalesce(nullif(by_code, []), nullif(by_name, [])) AS all_ingredients,
        coalesce(med_text, '') || ' ' || lower(coalesce(array_to_string(
            list_transform(codings, lambda x: x.display), ' '), '')) AS drug_name
    FROM matched
),
carried AS (
    SELECT *, carrier_ingredients(drug_name) AS carried, carrier_reason(drug_name) AS carrier_why
    FROM named
)
SELECT
    subject_id, encounter_id, "time",
    without_carried(all_ingredients, carried) AS ingredients,
    dose, dose_unit,
    CASE WHEN mapped_route IS NOT NULL THEN mapped_route
         WHEN len(coalesce(route_codings, [])) > 0 OR route_text IS NOT NULL THEN 'other'
    END AS route,
    true AS given,
    coalesce('RxNorm:' || list_transform(list_filter(codings,
        lambda x: x.system = 'http://www.nlm.nih.gov/research/umls/rxnorm'), lambda x: x.code)[1],
        'text:' || med_text) AS source_code,
    CASE
        WHEN has_reference AND codings IS NULL AND med_text IS NULL
            THEN 'medicationReference not resolved (Medication resources not read)'
        WHEN all_ingredients IS NULL THEN 'medication not a listed ingredient'
        WHEN without_carried(all_ingredients, carried) IS NULL THEN carrier_why
        WHEN fhir_status_skip('MedicationAdministration', status) IS NOT NULL
            THEN fhir_status_skip('MedicationAdministration', status)
        WHEN subject_id IS NULL THEN 'MedicationAdministration.subject not a Patient reference'
        WHEN "time" IS NULL THEN 'MedicationAdministration.effective[x] missing or partial'
    END AS skip_reason,
    -- for the orphan-code diagnostics (orphan_codes.sql)
    coalesce(med_text, list_filter(list_transform(codings, lambda x: x.display),
                                   lambda d: d IS NOT NULL)[1]) AS display,
    all_ingredients IS NOT NULL AS listed
FROM carried;

CREATE OR REPLACE TEMP VIEW fhir_medication_rows AS
SELECT subject_id, encounter_id, "time", unnest(ingredients) AS ingredient, dose, dose_unit,
       route, given, source_code, skip_reason
FROM fhir_drug_rows
WHERE skip_reason IS NULL;
