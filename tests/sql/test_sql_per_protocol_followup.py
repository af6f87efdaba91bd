"""per_protocol_followup / per_protocol_clones: the clone-censor-weight follow-up rows.

Five stays share the qualifying labs of the exposure stories: Mg 0.55 at d1 08:00, total Ca
1.90 + albumin 30 at d1 10:00 (index d1 10:00, corrected Ca 2.10), creatinine at 06:00,
outcome corrected Ca at d3 10:00 (48 h). Grace period 6 h, intervals of 2 h (the defaults),
so intervals 1-3 make the grace period and interval 24 ends at the outcome draw.
  e1  MgSO4 at d1 13:00 (3 h, interval 2)       -> Mg-in-grace clone follows; no-Mg clone
                                                  censored at 3 h; at risk in intervals 1-2
  e2  MgSO4 at d1 16:30 (6.5 h, interval 4)     -> both clones censored (6 h and 6.5 h)
  e3  MgSO4 at d3 10:00, the outcome draw's minute -> not a dose before the outcome: no-Mg
                                                  clone follows, 24 intervals at risk
  e4  MgSO4 at d1 16:00 (6 h, last grace interval) -> Mg-in-grace clone follows
  e5  no Mg; re-check Mg 0.80 and total Ca 2.10 + albumin 30 (corrected 2.30) at d1 14:00
      -> the latest values change from interval 3 (start 4 h) on
"""

from __future__ import annotations

from helpers.stories import assert_rows, build, expect

STAYS = ["e1", "e2", "e3", "e4", "e5"]
ENCOUNTERS = "encounter_id | subject_id | admit_time | discharge_time | age_years\n" + "".join(
    f"{e} | p{e[1:]} | d1 00:00 | d9 00:00 | 70\n" for e in STAYS
)
LABS = (
    "subject_id | encounter_id | time | analyte | value | unit\n"
    + "".join(
        f"""
    p{e[1:]} | {e} | d1 06:00 | creatinine    | 90   | umol/L
    p{e[1:]} | {e} | d1 08:00 | magnesium     | 0.55 | mmol/L
    p{e[1:]} | {e} | d1 10:00 | calcium_total | 1.90 | mmol/L
    p{e[1:]} | {e} | d1 10:00 | albumin       | 30   | g/L
    p{e[1:]} | {e} | d3 10:00 | calcium_total | 2.20 | mmol/L
    p{e[1:]} | {e} | d3 10:00 | albumin       | 30   | g/L
    """
        for e in STAYS
    )
    + """
    p5 | e5 | d1 14:00 | magnesium     | 0.80 | mmol/L
    p5 | e5 | d1 14:00 | calcium_total | 2.10 | mmol/L
    p5 | e5 | d1 14:00 | albumin       | 30   | g/L
    """
)
MEDS = """
subject_id | encounter_id | time     | ingredient        | dose | dose_unit
p1         | e1           | d1 13:00 | magnesium_sulfate | 2    | g
p2         | e2           | d1 16:30 | magnesium_sulfate | 2    | g
p3         | e3           | d3 10:00 | magnesium_sulfate | 2    | g
p4         | e4           | d1 16:00 | magnesium_sulfate | 2    | g
"""
FOLLOWUP = [
    "encounter_id",
    "interval_number",
    "interval_start_hours",
    "interval_end_hours",
    "in_grace",
    "last_grace_interval",
    "mg_started",
    "latest_mg_mmol_l",
    "latest_ca_corrected_mmol_l",
]


def _story():
    return build(encounters=ENCOUNTERS, labs=LABS, meds=MEDS)


def test_each_clone_is_censored_where_its_data_leave_its_strategy() -> None:
    story = _story()
    assert_rows(
        story.rows(
            "per_protocol_clones",
            ["encounter_id", "clone", "follows_strategy", "censored_at_hours", "mg_start_interval"],
        ),
        expect("""
        encounter_id | clone            | follows_strategy | censored_at_hours | mg_start_interval
        e1           | mg_within_grace  | true             | -                 | 2
        e1           | no_mg_to_outcome | false            | 3.0               | 2
        e2           | mg_within_grace  | false            | 6.0               | 4
        e2           | no_mg_to_outcome | false            | 6.5               | 4
        e3           | mg_within_grace  | false            | 6.0               | -
        e3           | no_mg_to_outcome | true             | -                 | -
        e4           | mg_within_grace  | true             | -                 | 3
        e4           | no_mg_to_outcome | false            | 6.0               | 3
        e5           | mg_within_grace  | false            | 6.0               | -
        e5           | no_mg_to_outcome | true             | -                 | -
        """),
    )


def test_follow_up_rows_run_while_no_mg_has_started_with_the_latest_rechecks() -> None:
    story = _story()
    rows = story.rows("per_protocol_followup", [*FOLLOWUP, "latest_mg_hours_from_index"])
    counts = {e: sum(r["encounter_id"] == e for r in rows) for e in STAYS}
    assert counts == {"e1": 2, "e2": 4, "e3": 24, "e4": 3, "e5": 24}
    assert_rows(
        [{k: r[k] for k in FOLLOWUP} for r in rows if r["encounter_id"] in ("e2", "e4")],
        expect("""
        encounter_id | interval_number | interval_start_hours | interval_end_hours | in_grace | last_grace_interval | mg_started | latest_mg_mmol_l | latest_ca_corrected_mmol_l
        e2           | 1               | 0.0                  | 2.0                | true     | false               | false      | 0.55             | 2.10
        e2           | 2               | 2.0                  | 4.0                | true     | false               | false      | 0.55             | 2.10
        e2           | 3               | 4.0                  | 6.0                | true     | true                | false      | 0.55             | 2.10
        e2           | 4               | 6.0                  | 8.0                | false    | false               | true       | 0.55             | 2.10
        e4           | 1               | 0.0                  | 2.0                | true     | false               | false      | 0.55             | 2.10
        e4           | 2               | 2.0                  | 4.0                | true     | false               | false      | 0.55             | 2.10
        e4           | 3               | 4.0                  | 6.0                | true     | true                | true       | 0.55             | 2.10
        """),  # noqa: E501
    )
    e5 = [r for r in rows if r["encounter_id"] == "e5"]
    assert [
        (r["latest_mg_mmol_l"], r["latest_mg_hours_from_index"], r["latest_ca_corrected_mmol_l"])
        for r in e5[:4]
    ] == [(0.55, -2.0, 2.10), (0.55, -2.0, 2.10), (0.80, 4.0, 2.30), (0.80, 4.0, 2.30)]
    assert e5[-1]["interval_end_hours"] == 48.0 and not any(r["mg_started"] for r in e5)


def test_no_analysed_episode_gives_no_rows() -> None:
    story = build(encounters=None)
    assert story.rows("per_protocol_followup") == []
    assert story.rows("per_protocol_clones") == []
