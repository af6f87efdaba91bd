-- Orphan-code candidates (sql/sources/common/orphan_codes.sql aggregates them): every
-- measurement and drug_exposure row with its concept's vocabulary code and name (else the
-- site's source value when the concept is 0 or not in the concept table), whether its concept
-- is in the code lists, and what it was mapped to.
CREATE OR REPLACE TEMP VIEW omop_concept_names AS
SELECT TRY_CAST(concept_id AS BIGINT) AS concept_id, min(vocabulary_id) AS vocabulary_id,
       min(concept_code) AS concept_code, min(concept_name) AS concept_name
FROM src_concept GROUP BY 1;

CREATE OR REPLACE TEMP MACRO omop_orphan_code(concept_id, vocabulary_id, concept_code,
                                              source_value) AS
    CASE WHEN concept_code IS NOT NULL AND concept_id <> 0
         THEN vocabulary_id || ':' || concept_code || ' (OMOP ' || CAST(concept_id AS VARCHAR)
              || ')'
         ELSE 'source:' || coalesce(source_value, 'OMOP ' || coalesce(CAST(concept_id AS VARCHAR),
                                                                     'no concept'))
    END;

CREATE OR REPLACE TEMP VIEW orphan_candidates AS
SELECT
    'omop' AS source_kind,
    'measurement' AS source_table,
    'lab' AS domain,
    omop_orphan_code(r.concept_id, c.vocabulary_id, c.concept_code, r.source_value) AS code,
    CASE WHEN r.concept_id <> 0 THEN c.concept_name ELSE r.source_value END AS display,
    r.unit,
    r.value,
    r.encounter_id,
    r.analyte IS NOT NULL AS listed,
    CASE WHEN r.skip_reason IS NULL THEN r.analyte END AS canonical
FROM omop_lab_rows AS r
LEFT JOIN omop_concept_names AS c ON c.concept_id = r.concept_id
UNION ALL
SELECT
    'omop', 'drug_exposure', 'drug',
    omop_orphan_code(r.concept_id, c.vocabulary_id, c.concept_code, r.source_value),
    CASE WHEN r.concept_id <> 0 THEN c.concept_name ELSE r.source_value END,
    r.dose_unit,
    r.dose,
    r.encounter_id,
    r.listed,
    CASE WHEN r.skip_reason IS NULL THEN r.ingredient END
-- one row per ingredient the drug row was mapped to (a carrier fluid's carried salt removed)
FROM (SELECT *, unnest(coalesce(ingredients, [CAST(NULL AS VARCHAR)])) AS ingredient
      FROM omop_drug_rows) AS r
LEFT JOIN omop_concept_names AS c ON c.concept_id = r.concept_id;
