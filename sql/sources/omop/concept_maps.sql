-- OMOP CDM v5.3/5.4 → mgca: concept look-ups (which source concepts mean which canonical code).
-- Reads the src_* views the adapter binds (lower-case column names; optional columns NULL;
-- text when read from CSV, typed when read from DuckDB or Parquet, so every concept id is cast
-- to BIGINT here) and the code lists ref_* from sql/reference/sources/ and
-- sql/reference/ingredients.csv.

-- Laboratory concepts: a measurement_concept_id maps to an analyte when its concept is a
-- LOINC code of lab_codes.csv (standard concepts are found by code, never by a hard-coded id).
CREATE OR REPLACE TEMP VIEW omop_lab_concepts AS
SELECT TRY_CAST(c.concept_id AS BIGINT) AS concept_id, min(l.analyte) AS analyte,
       min(c.concept_code) AS loinc_code
FROM src_concept AS c
JOIN ref_lab_codes AS l ON l.vocabulary = 'LOINC' AND c.vocabulary_id = 'LOINC'
    AND c.concept_code = l.code
GROUP BY 1;

-- Units: unit_concept_id → the UCUM code of its concept (e.g. 8840 → 'mg/dL'); unit spellings
-- are then harmonised by the core SQL (sql/reference/unit_conversions.csv).
CREATE OR REPLACE TEMP VIEW omop_unit_concepts AS
SELECT TRY_CAST(concept_id AS BIGINT) AS concept_id, min(concept_code) AS ucum_code
FROM src_concept WHERE vocabulary_id = 'UCUM'
GROUP BY 1;

-- Routes: route_concept_id → SNOMED route code → iv / oral (drug_route_codes.csv).
CREATE OR REPLACE TEMP VIEW omop_route_concepts AS
SELECT TRY_CAST(c.concept_id AS BIGINT) AS concept_id, min(r.route) AS route
FROM src_concept AS c
JOIN ref_drug_route_codes AS r ON r.vocabulary = c.vocabulary_id AND r.code = c.concept_code
GROUP BY 1;

-- Ingredient concepts: RxNorm (or RxNorm Extension) concepts whose code is an ingredient's
-- RxNorm code in ingredients.csv, whose concept_id is its OMOP standard id there, or the
-- Ingredient-class concept of the same name ('Calcium Gluconate'). Several
-- canonical names may share a code (cyclosporine/ciclosporin): the first in alphabetical
-- order is used.
CREATE OR REPLACE TEMP VIEW omop_ingredient_concepts AS
SELECT TRY_CAST(c.concept_id AS BIGINT) AS concept_id, min(i.ingredient) AS ingredient
FROM src_concept AS c
JOIN ref_ingredients AS i
    ON c.vocabulary_id IN ('RxNorm', 'RxNorm Extension')
    AND ((coalesce(i.rxnorm, '') <> '' AND c.vocabulary_id = 'RxNorm'
          AND c.concept_code = i.rxnorm)
      OR TRY_CAST(c.concept_id AS BIGINT) = TRY_CAST(i.omop_concept_id AS BIGINT)
      OR (coalesce(c.concept_class_id, 'Ingredient') = 'Ingredient'
          AND lower(trim(c.concept_name)) = replace(i.ingredient, '_', ' ')))
GROUP BY 1;

-- Drug concept → ingredients, by the first route that finds any:
--   1. the ingredient concept itself, and every descendant drug (clinical drug, branded drug,
--      pack…) of it in concept_ancestor (the normal CDM);
--   2. for a drug concept not found so, concept_relationship: a relationship of
--      omop_drug_relationships.csv to the ingredient ('RxNorm has ing'), directly or after one
--      hop between drugs ('Consists of', 'Maps to', …);
--   3. for a drug concept still not found, its name containing the ingredient's name
--      ('Calcium Gluconate 100 MG/ML Injectable Solution'); RxNorm vocabularies only.
-- drug_strength is never needed because doses keep their recorded unit.
CREATE OR REPLACE TEMP VIEW omop_drug_ingredient_routes AS
WITH by_ancestor AS (
    SELECT ic.concept_id AS drug_concept_id, ic.ingredient
    FROM omop_ingredient_concepts AS ic
    UNION
    SELECT TRY_CAST(ca.descendant_concept_id AS BIGINT), ic.ingredient
    FROM src_concept_ancestor AS ca
    JOIN omop_ingredient_concepts AS ic
        ON ic.concept_id = TRY_CAST(ca.ancestor_concept_id AS BIGINT)
),
relationships AS (
    SELECT TRY_CAST(cr.concept_id_1 AS BIGINT) AS concept_id_1,
           TRY_CAST(cr.concept_id_2 AS BIGINT) AS concept_id_2, r.hop
    FROM src_concept_relationship AS cr
    JOIN ref_omop_drug_relationships AS r ON r.relationship_id = cr.relationship_id
),
by_relationship AS (
    SELECT r.concept_id_1 AS drug_concept_id, ic.ingredient
    FROM relationships AS r
    JOIN omop_ingredient_concepts AS ic ON ic.concept_id = r.concept_id_2
    WHERE r.hop = 'to_ingredient'
    UNION
    SELECT r1.concept_id_1, ic.ingredient
    FROM relationships AS r1
    JOIN relationships AS r2 ON r2.concept_id_1 = r1.concept_id_2 AND r2.hop = 'to_ingredient'
    JOIN omop_ingredient_concepts AS ic ON ic.concept_id = r2.concept_id_2
    WHERE r1.hop = 'between_drugs'
),
by_name AS (
    SELECT TRY_CAST(c.concept_id AS BIGINT) AS drug_concept_id, i.ingredient
    FROM src_concept AS c
    JOIN ref_ingredients AS i
        ON contains(lower(c.concept_name), replace(i.ingredient, '_', ' '))
    WHERE c.vocabulary_id IN ('RxNorm', 'RxNorm Extension')
)
SELECT drug_concept_id, ingredient, 'concept_ancestor' AS route FROM by_ancestor
UNION ALL
SELECT drug_concept_id, ingredient, 'concept_relationship' FROM by_relationship AS r
WHERE NOT EXISTS (SELECT 1 FROM by_ancestor AS a WHERE a.drug_concept_id = r.drug_concept_id)
UNION ALL
SELECT drug_concept_id, ingredient, 'concept_name' FROM by_name AS n
WHERE NOT EXISTS (SELECT 1 FROM by_ancestor AS a WHERE a.drug_concept_id = n.drug_concept_id)
  AND NOT EXISTS (SELECT 1 FROM by_relationship AS r
                  WHERE r.drug_concept_id = n.drug_concept_id);

CREATE OR REPLACE TEMP VIEW omop_drug_ingredients AS
SELECT drug_concept_id, list(DISTINCT ingredient ORDER BY ingredient) AS ingredients,
       min(route) AS route
FROM omop_drug_ingredient_routes
WHERE drug_concept_id IS NOT NULL
GROUP BY drug_concept_id;

-- Carrier fluids (sql/sources/common/carrier_fluids.sql): drug concepts mapped to an ingredient
-- whose name is a carrier fluid's (Lactated Ringer's → calcium chloride), with the carried
-- ingredients they lose and the reason source_rows gives.
CREATE OR REPLACE TEMP VIEW omop_carrier_drugs AS
SELECT di.drug_concept_id,
       carrier_ingredients(min(c.concept_name)) AS carried,
       carrier_reason(min(c.concept_name)) AS carrier_reason
FROM omop_drug_ingredients AS di
JOIN src_concept AS c ON TRY_CAST(c.concept_id AS BIGINT) = di.drug_concept_id
WHERE carrier_fluid(c.concept_name) IS NOT NULL
GROUP BY di.drug_concept_id;
