"""analyte_trajectory_summary and trajectory_sample: aggregates and a de-identified sample."""

from __future__ import annotations

from helpers.stories import assert_rows, build, expect

from mgca.engine.derive import read_sql

# Two analysed stays, index d1 10:00 in both (Mg 0.55 at 08:00, corrected Ca 2.10 at 10:00);
# p1 exposed (MgSO4 at 12:00), p2 not. Outcome corrected Ca at d3 10:00 (+48 h).
TWO_STAYS = dict(
    encounters="""
    encounter_id | subject_id | admit_time | discharge_time | age_years
    e1           | p1         | d1 00:00   | d9 00:00       | 70
    e2           | p2         | d1 00:00   | d9 00:00       | 70
    """,
    labs="""
    subject_id | encounter_id | time     | analyte         | value | unit
    p1         | e1           | d1 06:00 | creatinine      | 90    | umol/L
    p1         | e1           | d1 08:00 | magnesium       | 0.55  | mmol/L
    p1         | e1           | d1 10:00 | calcium_total   | 1.90  | mmol/L
    p1         | e1           | d1 10:00 | albumin         | 30    | g/L
    p1         | e1           | d1 10:00 | calcium_ionized | 1.00  | mmol/L
    p1         | e1           | d1 11:00 | calcium_ionized | 1.10  | mmol/L
    p1         | e1           | d1 11:00 | pth             | 50    | pg/mL
    p1         | e1           | d1 20:00 | magnesium       | 0.95  | mmol/L
    p1         | e1           | d3 10:00 | calcium_total   | 2.20  | mmol/L
    p1         | e1           | d3 10:00 | albumin         | 30    | g/L
    p1         | e1           | d8 10:00 | magnesium       | 0.80  | mmol/L
    p2         | e2           | d1 06:00 | creatinine      | 90    | umol/L
    p2         | e2           | d1 08:00 | magnesium       | 0.55  | mmol/L
    p2         | e2           | d1 10:00 | calcium_total   | 1.90  | mmol/L
    p2         | e2           | d1 10:00 | albumin         | 30    | g/L
    p2         | e2           | d1 10:00 | calcium_ionized | 1.04  | mmol/L
    p2         | e2           | d3 09:29 | calcium_total   | 2.00  | mmol/L
    p2         | e2           | d3 09:29 | albumin         | 30    | g/L
    p2         | e2           | d3 10:00 | magnesium       | 0.65  | mmol/L
    """,
    meds="""
    subject_id | encounter_id | time     | ingredient        | dose | dose_unit
    p1         | e1           | d1 12:00 | magnesium_sulfate | 2    | g
    """,
)


def test_analyte_trajectories_average_each_episode_first() -> None:
    # Bins of 12 h from -48 h to +96 h. p1 ionized Ca 1.00 at 0 h and 1.10 at +1 h: one
    # episode, episode mean 1.05. PTH 50 pg/mL = 50 / 9.43 = 5.302... -> 5.3 pmol/L (1 dp).
    # Mg: p1 0.55 at -2 h (bin -12), 0.95 at +10 h (bin 0), 0.80 at +168 h (outside);
    # p2 0.55 at -2 h (bin -12), 0.65 at +48 h (bin 48). Corrected Ca = total + 0.02 x 10.
    # Unexposed bin -12 of Mg and exposed bin -12: one episode each, so no SD.
    story = build(**TWO_STAYS)
    assert_rows(
        story.rows(
            "analyte_trajectory_summary",
            [
                "measure",
                "unit",
                "exposed",
                "hours_bin_start",
                "n_results",
                "n_episodes",
                "mean_value",
            ],
        ),
        expect("""
        measure           | unit   | exposed | hours_bin_start | n_results | n_episodes | mean_value
        calcium_corrected | mmol/L | false   | 0               | 1         | 1          | 2.10
        calcium_corrected | mmol/L | false   | 36              | 1         | 1          | 2.20
        calcium_corrected | mmol/L | true    | 0               | 1         | 1          | 2.10
        calcium_corrected | mmol/L | true    | 48              | 1         | 1          | 2.40
        calcium_ionized   | mmol/L | false   | 0               | 1         | 1          | 1.04
        calcium_ionized   | mmol/L | true    | 0               | 2         | 1          | 1.05
        magnesium         | mmol/L | false   | -12             | 1         | 1          | 0.55
        magnesium         | mmol/L | false   | 48              | 1         | 1          | 0.65
        magnesium         | mmol/L | true    | -12             | 1         | 1          | 0.55
        magnesium         | mmol/L | true    | 0               | 1         | 1          | 0.95
        pth               | pmol/L | true    | 0               | 1         | 1          | 5.3
        """),
    )
    assert story.value("SELECT count(sd_value) FROM analyte_trajectory_summary") == 0


def test_analyte_trajectory_sd_is_over_episode_means() -> None:
    # The same two stays, both unexposed: Mg at -2 h is 0.55 in both (bin -12: mean 0.55, SD
    # 0); corrected Ca at index 2.10 in both; ionized Ca episode means 1.05 and 1.04 at bin 0:
    # mean 1.045, SD = |1.05 - 1.04| / sqrt(2) = 0.007071.
    stays = dict(TWO_STAYS, meds=None)
    story = build(**stays)
    assert_rows(
        story.rows(
            "analyte_trajectory_summary",
            ["measure", "hours_bin_start", "n_results", "n_episodes", "mean_value", "sd_value"],
            where="hours_bin_start = 0 OR hours_bin_start = -12",
        ),
        expect("""
        measure           | hours_bin_start | n_results | n_episodes | mean_value | sd_value
        calcium_corrected | 0               | 2         | 2          | 2.10       | 0.0
        calcium_ionized   | 0               | 3         | 2          | 1.045      | 0.007071
        magnesium         | -12             | 2         | 2          | 0.55       | 0.0
        magnesium         | 0               | 1         | 1          | 0.95       | -
        pth               | 0               | 1         | 1          | 5.3        | -
        """),
    )


def _resample(story, **settings: int) -> None:
    """Change sample settings in study_config and rerun the real trajectory_sample.sql."""
    for key, value in settings.items():
        story.con.execute(f"UPDATE study_config SET {key} = ?", [value])
    story.con.execute(read_sql("trajectory_sample.sql"))


def test_sample_needs_a_group_of_at_least_the_threshold() -> None:
    # Default threshold 11: each group has one episode, so nothing is sampled.
    story = build(**TWO_STAYS)
    assert story.rows("trajectory_sample") == []
    _resample(story, small_cell_threshold=1)
    # Threshold 1: both groups sampled. Times: hours from index, rounded (d3 09:29 is
    # +47.48 h -> 47); nothing from outside [-48, +96) h; no ids, no dates.
    assert_rows(
        story.rows("trajectory_sample"),
        expect("""
        exposed | sample_number | measure           | hours_from_index | value
        false   | 1             | calcium_corrected | 0                | 2.10
        false   | 1             | calcium_corrected | 47               | 2.20
        false   | 1             | magnesium         | -2               | 0.55
        false   | 1             | magnesium         | 48               | 0.65
        true    | 1             | calcium_corrected | 0                | 2.10
        true    | 1             | calcium_corrected | 48               | 2.40
        true    | 1             | magnesium         | -2               | 0.55
        true    | 1             | magnesium         | 10               | 0.95
        """),
    )
    columns = [
        r["column_name"]
        for r in story.rows(
            "information_schema.columns", ["column_name"], where="table_name = 'trajectory_sample'"
        )
    ]
    assert sorted(columns) == sorted(
        ["exposed", "sample_number", "measure", "hours_from_index", "value"]
    )
    _resample(story, trajectory_sample_size=0)
    assert story.rows("trajectory_sample") == []


def test_sample_is_seeded_and_capped_per_group() -> None:
    # Five unexposed stays like p2 (ages tell them apart in nothing that matters here).
    encounters = "encounter_id | subject_id | admit_time | discharge_time | age_years\n" + "".join(
        f"e{i} | p{i} | d1 00:00 | d9 00:00 | 70\n" for i in range(1, 6)
    )
    labs = "subject_id | encounter_id | time | analyte | value | unit\n" + "".join(
        f"p{i} | e{i} | d1 06:00 | creatinine    | 90   | umol/L\n"
        f"p{i} | e{i} | d1 08:00 | magnesium     | 0.55 | mmol/L\n"
        f"p{i} | e{i} | d1 10:00 | calcium_total | 1.{80 + i} | mmol/L\n"
        f"p{i} | e{i} | d1 10:00 | albumin       | 30   | g/L\n"
        f"p{i} | e{i} | d3 10:00 | calcium_total | 2.20 | mmol/L\n"
        f"p{i} | e{i} | d3 10:00 | albumin       | 30   | g/L\n"
        for i in range(1, 6)
    )
    story = build(encounters=encounters, labs=labs)

    def drawn(seed: int) -> list[float]:
        """Index corrected Ca of sample numbers 1, 2, 3 (identifies the episode drawn)."""
        _resample(
            story, small_cell_threshold=5, trajectory_sample_size=3, trajectory_sample_seed=seed
        )
        rows = story.rows(
            "trajectory_sample",
            ["sample_number", "value"],
            where="measure = 'calcium_corrected' AND hours_from_index = 0",
        )
        assert [r["sample_number"] for r in rows] == [1, 2, 3]
        return [r["value"] for r in rows]

    first = drawn(1)
    assert drawn(1) == first  # same seed, same episodes in the same order
    assert len(set(first)) == 3
    seeds = {tuple(drawn(seed)) for seed in range(2, 8)}
    assert len(seeds | {tuple(first)}) > 1  # the seed changes the draw
    _resample(story, small_cell_threshold=6)
    assert story.rows("trajectory_sample") == []  # 5 episodes < threshold 6
