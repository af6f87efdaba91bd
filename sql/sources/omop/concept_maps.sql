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

-- Ingredient concepts: RxNorm concepts whose code is an ingredient's RxNorm code in
-- ingredients.csv (several canonical names may share a code, e.g. cyclosporine/ciclosporin:
-- the first name in alphabetical order is used).
CREATE OR REPLACE TEMP VIEW omop_ingredient_concepts AS
SELECT TRY_CAST(c.concept_id AS BIGINT) AS concept_id, min(i.ingredient) AS ingredient
FROM src_concept AS c
JOIN ref_ingredients AS i ON c.vocabulary_id = 'RxNorm' AND c.concept_code = i.rxnorm
WHERE i.rxnorm IS NOT NULL
GROUP BY 1;

-- Drug concept → ingredients. With concept_ancestor (the normal CDM): every descendant drug
-- (clinical drug, branded drug, pack…) of an ingredient concept. The ingredient concept itself
-- always matches. Without concept_ancestor (a trimmed extract): fall back to the drug concept's
-- name containing the ingredient's name ('Magnesium Sulfate 500 MG/ML Injectable Solution'),
-- documented in README; drug_strength is never needed because doses keep their recorded unit.
CREATE OR REPLACE TEMP VIEW omop_drug_ingredients AS
WITH matches AS (
    SELECT ic.concept_id AS drug_concept_id, ic.ingredient
    FROM omop_ingredient_concepts AS ic
    UNION
    SELECT TRY_CAST(ca.descendant_concept_id AS BIGINT), ic.ingredient
    FROM src_concept_ancestor AS ca
    JOIN omop_ingredient_concepts AS ic
        ON ic.concept_id = TRY_CAST(ca.ancestor_concept_id AS BIGINT)
    UNION
    SELECT TRY_CAST(c.concept_id AS BIGINT), i.ingredient
    FROM src_concept AS c
    JOIN ref_ingredients AS i
        ON lower(c.concept_name) LIKE '%' || replace(i.ingredient, '_', ' ') || '%'
    CROSS JOIN omop_options AS o
    WHERE NOT o.has_concept_ancestor AND c.vocabulary_id = 'RxNorm'
)
SELECT drug_concept_id, list(DISTINCT ingredient ORDER BY ingredient) AS ingredients
FROM matches
GROUP BY drug_concept_id;
