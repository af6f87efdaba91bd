"""The informative_censoring threat: stays end early after a hypomagnesaemic result, more
often with a milder deficit and without IV Mg, and nothing is recorded after the new end."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mgca.synthetic import generate
from mgca.synthetic.threats import threat_world


def _tables(root: Path, threat: bool) -> dict[str, pd.DataFrame]:
    world = threat_world("informative_censoring") if threat else "effect"
    out = generate(root / f"t{threat}", n_stays=600, world=world, seed=3)
    return {
        name: pd.read_parquet(out / f"{name}.parquet")
        for name in ("encounters", "lab_results", "medication_administrations")
    }


def test_stays_end_earlier_with_deaths_and_nothing_after_the_end(tmp_path: Path) -> None:
    off, on = _tables(tmp_path, False), _tables(tmp_path, True)
    enc_off = off["encounters"].set_index("encounter_id")
    enc_on = on["encounters"].set_index("encounter_id")
    shorter = enc_on["discharge_time"] < enc_off.loc[enc_on.index, "discharge_time"]
    assert 0.05 < shorter.mean() < 0.6  # a share of stays end early
    assert (enc_on["discharge_time"] <= enc_off.loc[enc_on.index, "discharge_time"]).all()
    assert enc_on.loc[shorter, "died_in_hospital"].any()
    assert not enc_on.loc[shorter, "died_in_hospital"].all()
    for table in ("lab_results", "medication_administrations"):
        rows = on[table].join(enc_on["discharge_time"], on="encounter_id")
        assert (rows["time"] <= rows["discharge_time"]).all(), table
    # admission and everything before the new end are as without the threat
    assert enc_on["admit_time"].equals(enc_off.loc[enc_on.index, "admit_time"])
