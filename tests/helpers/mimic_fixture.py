"""A hand-written MIMIC-IV v3.1-shaped folder (hosp/*.csv.gz, icu/inputevents.csv.gz).

Headers are the real MIMIC-IV v3.1 column lists; rows are invented and small. Three adult
stays: stay 20001 has concurrent low Mg and Ca and an eMAR MgSO4 'Administered' 2 g two hours
later; stay 20002 the same labs with MgSO4 'Not Given', 'Held' and an obstetric MgSO4; stay
20003 labs without hadm_id (outpatient-style, attached by time) and an ICU MgSO4 infusion.
"""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

HEADERS = {
    "hosp/patients": "subject_id,gender,anchor_age,anchor_year,anchor_year_group,dod",
    "hosp/admissions": (
        "subject_id,hadm_id,admittime,dischtime,deathtime,admission_type,admit_provider_id,"
        "admission_location,discharge_location,insurance,language,marital_status,race,"
        "edregtime,edouttime,hospital_expire_flag"
    ),
    "hosp/d_labitems": "itemid,label,fluid,category",
    "hosp/labevents": (
        "labevent_id,subject_id,hadm_id,specimen_id,itemid,order_provider_id,charttime,"
        "storetime,value,valuenum,valueuom,ref_range_lower,ref_range_upper,flag,priority,comments"
    ),
    "hosp/emar": (
        "subject_id,hadm_id,emar_id,emar_seq,poe_id,pharmacy_id,enter_provider_id,charttime,"
        "medication,event_txt,scheduletime,storetime"
    ),
    "hosp/emar_detail": (
        "subject_id,emar_id,emar_seq,parent_field_ordinal,administration_type,pharmacy_id,"
        "barcode_type,reason_for_no_barcode,complete_dose_not_given,dose_due,dose_due_unit,"
        "dose_given,dose_given_unit,will_remainder_of_dose_be_given,product_amount_given,"
        "product_unit,product_code,product_description,product_description_other,"
        "prior_infusion_rate,infusion_rate,infusion_rate_adjustment,"
        "infusion_rate_adjustment_amount,infusion_rate_unit,route,infusion_complete,"
        "completion_interval,new_iv_bag_hung,continued_infusion_in_other_location,"
        "restart_interval,side,site,non_formulary_visual_verification"
    ),
    "hosp/prescriptions": (
        "subject_id,hadm_id,pharmacy_id,poe_id,poe_seq,order_provider_id,starttime,stoptime,"
        "drug_type,drug,formulary_drug_cd,gsn,ndc,prod_strength,form_rx,dose_val_rx,"
        "dose_unit_rx,form_val_disp,form_unit_disp,doses_per_24_hrs,route"
    ),
    "icu/inputevents": (
        "subject_id,hadm_id,stay_id,caregiver_id,starttime,endtime,storetime,itemid,amount,"
        "amountuom,rate,rateuom,orderid,linkorderid,ordercategoryname,"
        "secondaryordercategoryname,ordercomponenttypedescription,ordercategorydescription,"
        "patientweight,totalamount,totalamountuom,isopenbag,continueinnextdept,"
        "statusdescription,originalamount,originalrate"
    ),
    "icu/icustays": (
        "subject_id,hadm_id,stay_id,first_careunit,last_careunit,intime,outtime,los"
    ),
    "icu/procedureevents": (
        "subject_id,hadm_id,stay_id,caregiver_id,starttime,endtime,storetime,itemid,value,"
        "valueuom,location,locationcategory,orderid,linkorderid,ordercategoryname,"
        "ordercategorydescription,patientweight,isopenbag,continueinnextdept,"
        "statusdescription,originalamount,originalrate"
    ),
}

PATIENTS = [
    {"subject_id": 10001, "gender": "F", "anchor_age": 60, "anchor_year": 2150},
    {"subject_id": 10002, "gender": "M", "anchor_age": 70, "anchor_year": 2160},
    {"subject_id": 10003, "gender": "F", "anchor_age": 45, "anchor_year": 2139},
]
ADMISSIONS = [
    {"subject_id": 10001, "hadm_id": 20001, "admittime": "2150-03-01 08:00:00",
     "dischtime": "2150-03-08 12:00:00", "hospital_expire_flag": 0},
    {"subject_id": 10002, "hadm_id": 20002, "admittime": "2160-05-01 09:30:00",
     "dischtime": "2160-05-06 14:00:00", "hospital_expire_flag": 1},
    {"subject_id": 10003, "hadm_id": 20003, "admittime": "2140-01-01 10:00:00",
     "dischtime": "2140-01-10 10:00:00", "hospital_expire_flag": 0},
    # malformed: discharged before admission -> skipped 'dischtime before admittime'
    {"subject_id": 10001, "hadm_id": 20004, "admittime": "2151-01-05 10:00:00",
     "dischtime": "2151-01-04 10:00:00", "hospital_expire_flag": 0},
]
D_LABITEMS = [
    {"itemid": 50960, "label": "Magnesium", "fluid": "Blood", "category": "Chemistry"},
    {"itemid": 50893, "label": "Calcium, Total", "fluid": "Blood", "category": "Chemistry"},
    {"itemid": 50862, "label": "Albumin", "fluid": "Blood", "category": "Chemistry"},
]


def _lab(subject, hadm, itemid, time, value, valuenum, uom, comments=""):
    return {"subject_id": subject, "hadm_id": hadm, "itemid": itemid, "charttime": time,
            "value": value, "valuenum": valuenum, "valueuom": uom, "comments": comments}


def _stay_labs(subject, hadm, day0, day2):
    """Low Mg + low Ca (albumin 3.8 g/dL) at day0 08:00, recovered values at day2 08:00."""
    return [
        _lab(subject, hadm, 50960, f"{day0} 08:00:00", "1.2", 1.2, "mg/dL"),
        _lab(subject, hadm, 50893, f"{day0} 08:00:00", "7.4", 7.4, "mg/dL"),
        _lab(subject, hadm, 50862, f"{day0} 08:00:00", "3.8", 3.8, "g/dL"),
        _lab(subject, hadm, 50912, f"{day0} 08:00:00", "1.0", 1.0, "mg/dL"),
        _lab(subject, hadm, 50808, f"{day0} 08:05:00", "0.98", 0.98, "mmol/L"),
        _lab(subject, hadm, 50893, f"{day2} 08:00:00", "8.7", 8.7, "mg/dL"),
        _lab(subject, hadm, 50862, f"{day2} 08:00:00", "3.8", 3.8, "g/dL"),
        _lab(subject, hadm, 50960, f"{day2} 08:00:00", "1.9", 1.9, "mg/dL"),
    ]


LABEVENTS = [
    *_stay_labs(10001, 20001, "2150-03-02", "2150-03-04"),
    *_stay_labs(10002, 20002, "2160-05-02", "2160-05-04"),
    *_stay_labs(10003, "", "2140-01-02", "2140-01-04"),  # no hadm_id: attached by time
    # potassium with no numeric value: haemolysed -> mapped with value NULL, noted
    _lab(10001, 20001, 50971, "2150-03-02 08:00:00", "___", "", "mEq/L", "HEMOLYZED"),
    # a unit variant the core SQL converts (Mg in mmol/L)
    _lab(10001, 20001, 50960, "2150-03-05 08:00:00", "0.80", 0.80, "mmol/L"),
    # hematocrit: not in the code list -> skipped 'itemid not in code list'
    _lab(10001, 20001, 51221, "2150-03-02 08:00:00", "30.1", 30.1, "%"),
    # urine magnesium: listed, excluded
    _lab(10001, 20001, 51088, "2150-03-02 09:00:00", "5.0", 5.0, "mg/dL"),
    # unparseable charttime -> skipped
    _lab(10002, 20002, 50960, "not a time", "1.5", 1.5, "mg/dL"),
]
EMAR = [
    {"subject_id": 10001, "hadm_id": 20001, "emar_id": "10001-1", "emar_seq": 1,
     "charttime": "2150-03-02 10:00:00", "medication": "Magnesium Sulfate",
     "event_txt": "Administered"},
    {"subject_id": 10002, "hadm_id": 20002, "emar_id": "10002-1", "emar_seq": 1,
     "charttime": "2160-05-02 10:00:00", "medication": "Magnesium Sulfate",
     "event_txt": "Not Given"},
    {"subject_id": 10002, "hadm_id": 20002, "emar_id": "10002-2", "emar_seq": 2,
     "charttime": "2160-05-02 11:00:00", "medication": "Magnesium Sulfate",
     "event_txt": "Held"},
    {"subject_id": 10002, "hadm_id": 20002, "emar_id": "10002-3", "emar_seq": 3,
     "charttime": "2160-05-02 12:00:00", "medication": "Magnesium Sulfate (OB)",
     "event_txt": "Administered"},
    {"subject_id": 10002, "hadm_id": 20002, "emar_id": "10002-4", "emar_seq": 4,
     "charttime": "2160-05-02 12:00:00", "medication": "Acetaminophen",
     "event_txt": "Administered"},
    {"subject_id": 10001, "hadm_id": 20001, "emar_id": "10001-2", "emar_seq": 2,
     "charttime": "2150-03-01 09:00:00", "medication": "Pantoprazole",
     "event_txt": "Administered"},
    {"subject_id": 10001, "hadm_id": 20001, "emar_id": "10001-3", "emar_seq": 3,
     "charttime": "2150-03-02 11:00:00", "medication": "Magnesium Sulfate",
     "event_txt": "Stopped"},
]
EMAR_DETAIL = [
    # parent row (parent_field_ordinal empty) holds the dose; a component row holds the product
    {"subject_id": 10001, "emar_id": "10001-1", "emar_seq": 1, "parent_field_ordinal": "",
     "dose_due": "2", "dose_due_unit": "gm", "dose_given": "2", "dose_given_unit": "gm",
     "route": "IV"},
    {"subject_id": 10001, "emar_id": "10001-1", "emar_seq": 1, "parent_field_ordinal": "1.1",
     "product_amount_given": "50", "product_unit": "mL", "route": ""},
    {"subject_id": 10002, "emar_id": "10002-1", "emar_seq": 1, "parent_field_ordinal": "",
     "dose_due": "2", "dose_due_unit": "gm", "dose_given": "", "dose_given_unit": "",
     "route": "IV"},
    {"subject_id": 10001, "emar_id": "10001-2", "emar_seq": 2, "parent_field_ordinal": "",
     "dose_given": "40", "dose_given_unit": "mg", "route": "PO"},
    {"subject_id": 10002, "emar_id": "10002-4", "emar_seq": 4, "parent_field_ordinal": "",
     "dose_given": "650", "dose_given_unit": "mg", "route": "PO"},
]
PRESCRIPTIONS = [
    {"subject_id": 10001, "hadm_id": 20001, "starttime": "2150-03-02 09:00:00",
     "drug": "Magnesium Sulfate", "dose_val_rx": "2", "dose_unit_rx": "g", "route": "IV"},
    {"subject_id": 10002, "hadm_id": 20002, "starttime": "2160-05-02 09:00:00",
     "drug": "Magnesium Sulfate", "dose_val_rx": "2", "dose_unit_rx": "g", "route": "IV"},
]
INPUTEVENTS = [
    {"subject_id": 10003, "hadm_id": 20003, "stay_id": 30003, "starttime": "2140-01-02 09:00:00",
     "endtime": "2140-01-02 10:00:00", "itemid": 222011, "amount": "2", "amountuom": "grams",
     "statusdescription": "FinishedRunning"},
    {"subject_id": 10002, "hadm_id": 20002, "stay_id": 30002, "starttime": "2160-05-02 13:00:00",
     "endtime": "2160-05-02 14:00:00", "itemid": 227524, "amount": "4", "amountuom": "grams",
     "statusdescription": "FinishedRunning"},
    {"subject_id": 10003, "hadm_id": 20003, "stay_id": 30003, "starttime": "2140-01-02 09:00:00",
     "endtime": "2140-01-02 10:00:00", "itemid": 221456, "amount": "1", "amountuom": "grams",
     "statusdescription": "Rewritten"},
    {"subject_id": 10003, "hadm_id": 20003, "stay_id": 30003, "starttime": "2140-01-02 09:00:00",
     "endtime": "2140-01-02 10:00:00", "itemid": 225158, "amount": "100", "amountuom": "ml",
     "statusdescription": "FinishedRunning"},
]

ICUSTAYS = [
    # patient 10001 in an ICU across its index (a severity proxy)
    {"subject_id": 10001, "hadm_id": 20001, "stay_id": 30001, "first_careunit": "MICU",
     "last_careunit": "MICU", "intime": "2150-03-01 20:00:00", "outtime": "2150-03-04 12:00:00",
     "los": "2.7"},
]
PROCEDUREEVENTS = [
    # CRRT for patient 10002 (already excluded for obstetric MgSO4); a line insertion: skipped
    {"subject_id": 10002, "hadm_id": 20002, "stay_id": 30002, "starttime": "2160-05-02 08:00:00",
     "endtime": "2160-05-02 20:00:00", "itemid": 225802},
    {"subject_id": 10001, "hadm_id": 20001, "stay_id": 30001, "starttime": "2150-03-01 21:00:00",
     "endtime": "2150-03-01 21:30:00", "itemid": 224275},
]

TABLES = {
    "hosp/patients": PATIENTS,
    "hosp/admissions": ADMISSIONS,
    "hosp/d_labitems": D_LABITEMS,
    "hosp/labevents": LABEVENTS,
    "hosp/emar": EMAR,
    "hosp/emar_detail": EMAR_DETAIL,
    "hosp/prescriptions": PRESCRIPTIONS,
    "icu/inputevents": INPUTEVENTS,
    "icu/icustays": ICUSTAYS,
    "icu/procedureevents": PROCEDUREEVENTS,
}


def csv_text(name: str, rows: list[dict], delimiter: str = ",") -> str:
    """The table as MIMIC-IV writes it: full header, quoted where needed, empty = missing."""
    header = HEADERS[name].split(",")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, header, delimiter=delimiter, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        unknown = set(row) - set(header)
        assert not unknown, f"{name}: fixture columns {unknown} not in the MIMIC header"
        writer.writerow({k: row.get(k, "") for k in header})
    return buffer.getvalue()


def write_mimic(root: Path, *, skip: tuple[str, ...] = (), gz: bool = True) -> Path:
    """Write the fixture under ``root`` (``hosp/…``, ``icu/…``); leave out tables in ``skip``."""
    for name, rows in TABLES.items():
        if name in skip:
            continue
        path = root / f"{name}.csv{'.gz' if gz else ''}"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = csv_text(name, rows).encode()
        path.write_bytes(gzip.compress(data) if gz else data)
    return root
