-- medication_harmonised: every medication row with its ingredient's role and, for magnesium
-- and calcium salts, the elemental amount; mg_repletion and calcium_supplementation, the
-- magnesium and calcium doses actually given.
--
-- Reads:  medication_administrations, ingredients, unit_conversions (analyte
--         'medication_dose'), all from the canonical input and sql/reference/*.csv.
-- Writes: medication_harmonised (one row per medication_administrations row),
--         mg_repletion (one row per given administration whose ingredient role is
--         'mg_repletion', with elemental_mg_mmol),
--         calcium_supplementation (one row per given administration whose role is
--         'calcium_supplement', with elemental_ca_mmol).
--
-- The ingredient is matched to ingredients.csv after trimming and lower casing (role and
-- drug_class null when not listed). Roles (ingredients.csv): mg_repletion, calcium_supplement,
-- vitamin_d_analogue (calcitriol, alfacalcidol, ...), and the covariates ppi, loop_diuretic,
-- thiazide (incl. thiazide-like), mg_wasting (renal Mg wasting nephrotoxins: cisplatin,
-- aminoglycosides, amphotericin B, calcineurin inhibitors; drug_class names which).
-- The route is trimmed and lower cased (route_normalised: 'iv', 'oral', 'other', ...).
-- The dose unit is normalised like lab units (lower case, no spaces, µ -> u) and looked up
-- among the 'medication_dose' rows of unit_conversions.
-- elemental_mmol (Mg or Ca salts only):
--   mass units (g, mg, ...) -> dose x factor_to_si (to grams) x ingredients.elemental_mmol_per_g
--                              (MgSO4.7H2O 4.06, MgO 24.8 (400 mg tablet = 9.92), Ca
--                              gluconate 2.23, CaCl2.2H2O 6.8 mmol/g: clinical.md; CaCO3
--                              9.99 mmol/g from its molar mass)
--   mmol                    -> kept as recorded
--   mEq                     -> dose / ingredients.valence (2 for Mg and Ca)
-- rounded to 6 decimals (floating-point noise only); null when the dose or its unit is
-- missing or unknown.
-- Only rows with given = true are doses: ordered-but-not-given rows never count as exposure
-- or as covariates (data_quality counts them as not_given). A given Mg or Ca dose of unknown
-- amount still counts as a dose (data_quality: elemental_dose_unknown).

CREATE OR REPLACE TABLE medication_harmonised AS
WITH
medications AS (
    SELECT
        m.*,
        lower(trim(m.ingredient)) AS ingredient_normalised,
        replace(replace(replace(lower(trim(m.dose_unit)), ' ', ''), 'µ', 'u'), 'μ', 'u')
            AS dose_unit_normalised
    FROM medication_administrations AS m
)

SELECT
    m.subject_id,
    m.encounter_id,
    m.time,
    m.ingredient_normalised AS ingredient,
    ing.role,
    ing.drug_class,
    m.dose,
    m.dose_unit,
    m.dose_unit_normalised,
    du.unit IS NOT NULL AS dose_unit_known,
    round(
        CASE du.si_unit
            WHEN 'g' THEN m.dose * du.factor_to_si * ing.elemental_mmol_per_g
            WHEN 'mmol' THEN m.dose * du.factor_to_si
            WHEN 'meq' THEN m.dose * du.factor_to_si / ing.valence
        END,
        6
    ) AS elemental_mmol,
    m.route,
    m.given,
    m.source_code,
    lower(trim(m.route)) AS route_normalised
FROM medications AS m
LEFT JOIN ingredients AS ing
    ON ing.ingredient = m.ingredient_normalised
LEFT JOIN unit_conversions AS du
    ON du.analyte = 'medication_dose'
    AND du.unit = m.dose_unit_normalised;

CREATE OR REPLACE TABLE mg_repletion AS
SELECT
    subject_id,
    encounter_id,
    time,
    ingredient,
    route,
    dose,
    dose_unit,
    elemental_mmol AS elemental_mg_mmol,
    source_code,
    route_normalised
FROM medication_harmonised
WHERE role = 'mg_repletion' AND given;

CREATE OR REPLACE TABLE calcium_supplementation AS
SELECT
    subject_id,
    encounter_id,
    time,
    ingredient,
    route,
    dose,
    dose_unit,
    elemental_mmol AS elemental_ca_mmol,
    source_code,
    route_normalised
FROM medication_harmonised
WHERE role = 'calcium_supplement' AND given;
