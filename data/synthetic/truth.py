"""Known-truth replay: the true effect of Mg repletion for any cohort the pipeline picks.

For each requested (stay, index_time) the stay is re-simulated from admission twice, with the
very same pre-drawn random numbers (see :mod:`mgca.synthetic.draws`):

- **treat**: IV MgSO4 ordered and given at the first clinician decision point strictly after
  ``index_time`` (for an index draw, its result time = draw + 1 h) with the dose and delay usual
  care would choose there (4 g if the measured Mg < 0.5 mmol/L, else 2 g); usual care
  otherwise;
- **control**: no Mg of any kind administered in ``(index_time, index_time + grace_hours]``;
  usual care before and after.

The true effect of a pair is latent albumin-corrected Ca (mmol/L) at ``index_time +
horizon_hours`` under treat minus under control (linear interpolation between grid hours).
Before the index both arms are identical. In the null world the Ca dynamics never read Mg and
no decision that touches Ca (calcium gluconate) reads Mg, so every pair's difference is
exactly 0.0.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mgca.synthetic.draws import batch_inputs
from mgca.synthetic.exclusions import draw_membership
from mgca.synthetic.population import US_PER_HOUR, Population, make_population
from mgca.synthetic.simulate import Intervention, simulate
from mgca.synthetic.world import GENERATOR_VERSION, STAY_GRID_HOURS, World

_KIND_NAMES = np.array(["magnesium_sulfate", "magnesium_oxide", "calcium_gluconate"])


@dataclass(frozen=True)
class TrueEffect:
    """The simulator's true average effect for a set of (stay, index_time) pairs.

    ``mean``: mean over pairs of [treat − control] latent corrected Ca at the horizon (mmol/L);
    ``per_pair``: those differences in the order of the pairs given; ``n``: number of pairs.
    """

    mean: float
    per_pair: np.ndarray
    n: int
    description: str


@dataclass(frozen=True)
class Replay:
    """Both arms of every pair: outcomes (mmol/L) and the administrations each arm received.

    ``events`` columns: ``pair`` (position in the input), ``arm`` (treat / control),
    ``hours_from_index``, ``ingredient``, ``dose``, ``given``.
    """

    ca_treat: np.ndarray
    ca_control: np.ndarray
    mg_treat: np.ndarray
    mg_control: np.ndarray
    index_hours: np.ndarray  # index_time - admit_time, hours
    events: pd.DataFrame


@dataclass(frozen=True)
class _Dataset:
    world: World
    seed: int
    batch_size: int
    pop: Population


def _load(data_dir: Path) -> _Dataset:
    path = Path(data_dir) / "manifest.json"
    if not path.is_file():
        raise ValueError(f"{path} not found: true_effect needs a folder written by generate()")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    version = manifest.get("generator_version")
    if version != GENERATOR_VERSION:
        raise ValueError(
            f"{path} was written by generator version {version}, this is {GENERATOR_VERSION}; "
            "the random draws cannot be replayed. Regenerate the dataset."
        )
    world = World.from_dict(manifest["parameters"])
    if world.kind != manifest["world"]:
        raise ValueError(f"{path}: world {manifest['world']!r} disagrees with its parameters")
    seed = int(manifest["seed"])
    pop = make_population(world, int(manifest["n_stays"]), seed)
    enc = pq.read_table(
        Path(data_dir) / "encounters.parquet", columns=["encounter_id", "admit_time"]
    )
    ids = np.asarray(enc.column("encounter_id").to_pylist(), dtype=object)
    admit = enc.column("admit_time").cast("int64").to_numpy()
    if ids.size != pop.n_stays or not (
        np.array_equal(ids, pop.encounter_ids) and np.array_equal(admit, pop.admit_us)
    ):
        raise ValueError(
            f"{data_dir}: encounters.parquet does not match what its manifest regenerates; "
            "the folder was edited or mixed with another dataset. Regenerate it."
        )
    return _Dataset(world=world, seed=seed, batch_size=int(manifest["batch_size"]), pop=pop)


def _index_us(values: pd.Series) -> np.ndarray:
    times = pd.to_datetime(values)
    if getattr(times.dt, "tz", None) is not None:
        raise ValueError("index_time must be naive timestamps (the source's own clock)")
    if times.isna().any():
        raise ValueError("index_time has missing values")
    return times.to_numpy().astype("datetime64[us]").astype(np.int64)


def _check_against_records(
    data_dir: Path, enc: np.ndarray, idx_us: np.ndarray, replayed: pd.DataFrame
) -> None:
    """Both arms share the history up to the index: it must equal the recorded one.

    Compares every magnesium result (time and reported value) up to each index_time in
    lab_results with the replay, so a change to the simulation code without a generator
    version bump is caught instead of silently giving a wrong truth.
    """
    wanted = pa.array(sorted(set(enc)), pa.string())
    table = pq.read_table(
        data_dir / "lab_results.parquet",
        columns=["encounter_id", "time", "analyte", "value"],
        filters=[("analyte", "=", "magnesium")],
    )
    table = table.filter(pc.is_in(table.column("encounter_id"), value_set=wanted))
    recorded = pd.DataFrame(
        {
            "encounter_id": table.column("encounter_id").to_numpy(zero_copy_only=False),
            "time_us": table.column("time").cast(pa.int64()).to_numpy(),
            "value": table.column("value").to_numpy(zero_copy_only=False),
        }
    ).drop_duplicates()
    pairs = pd.DataFrame({"pair": np.arange(enc.size), "encounter_id": enc, "index_us": idx_us})
    recorded = pairs.merge(recorded, on="encounter_id")
    recorded = recorded.loc[recorded["time_us"] <= recorded["index_us"], replayed.columns]
    keys = list(replayed.columns)
    both = recorded.fillna({"value": -1.0}).merge(
        replayed.fillna({"value": -1.0}), on=keys, how="outer", indicator=True
    )
    bad = both[both["_merge"] != "both"]
    if not bad.empty:
        first = enc[int(bad["pair"].iloc[0])]
        raise ValueError(
            f"{data_dir}: the replay does not reproduce the recorded magnesium results of "
            f"encounter_id {first!r} ({bad['pair'].nunique()} pairs differ); the data or the "
            "generator code changed since it was written. Regenerate the dataset."
        )


def replay_arms(
    data_dir: Path,
    pairs: pd.DataFrame,
    grace_hours: float,
    horizon_hours: float,
    extra_treat_dose_hours_after_index: float | None = None,
    control_block_hours: float | None = None,
) -> Replay:
    """Replay every (encounter_id, index_time) pair under the treat and control strategies.

    ``extra_treat_dose_hours_after_index`` (tests): also give 2 g IV MgSO4 in the treat arm at
    the first grid hour at or after index + this many hours. ``control_block_hours``: the
    control arm gets no Mg in (index, index + this many hours] (default ``grace_hours``: the
    initiation contrast; ``horizon_hours``: "no Mg until the outcome", the per-protocol one).
    """
    for col in ("encounter_id", "index_time"):
        if col not in pairs.columns:
            raise ValueError(f"pairs needs columns encounter_id and index_time; {col} is missing")
    if not grace_hours > 0 or not horizon_hours > 0:
        raise ValueError(
            f"grace_hours and horizon_hours must be > 0, got {grace_hours}, {horizon_hours}"
        )
    ds = _load(Path(data_dir))
    pop = ds.pop
    position = {e: i for i, e in enumerate(pop.encounter_ids)}
    enc = pairs["encounter_id"].astype(str).to_numpy()
    unknown = [e for e in enc if e not in position]
    if unknown:
        raise ValueError(
            f"unknown encounter_id {unknown[0]!r} ({len(unknown)} unknown in total) in {data_dir}"
        )
    stay = np.array([position[e] for e in enc], dtype=np.int64)
    idx_us = _index_us(pairs["index_time"])
    outside = (idx_us < pop.admit_us[stay]) | (idx_us > pop.discharge_us[stay])
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise ValueError(
            f"index_time {pd.Timestamp(idx_us[i], unit='us')} of encounter_id {enc[i]!r} is "
            f"outside its stay ({pd.Timestamp(pop.admit_us[stay[i]], unit='us')} to "
            f"{pd.Timestamp(pop.discharge_us[stay[i]], unit='us')})"
        )
    x = (idx_us - pop.admit_us[stay]) / US_PER_HOUR
    n = stay.size
    ca_t, ca_c = np.full(n, np.nan), np.full(n, np.nan)
    mg_t, mg_c = np.full(n, np.nan), np.full(n, np.nan)
    frames: list[pd.DataFrame] = []
    checks: list[pd.DataFrame] = []
    batch_of = stay // ds.batch_size
    for b in np.unique(batch_of):
        sel = np.flatnonzero(batch_of == b)
        xs = x[sel]
        t_out = xs + horizon_hours
        n_hours = max(STAY_GRID_HOURS, math.ceil(float(t_out.max())) + 2)
        inp = batch_inputs(ds.world, pop, ds.seed, int(b), ds.batch_size, n_hours)
        cols = stay[sel] - int(b) * ds.batch_size
        k = sel.size
        sub = inp.take(np.r_[cols, cols])
        nan = np.full(k, np.nan)
        extra: tuple[tuple[int, int, float], ...] = ()
        if extra_treat_dose_hours_after_index is not None:
            hours = np.ceil(xs + extra_treat_dose_hours_after_index).astype(int)
            extra = tuple((i, int(h), 2.0) for i, h in enumerate(hours))
        iv = Intervention(
            force_after_hours=np.r_[xs, nan],
            block_from_hours=np.r_[nan, xs],
            block_to_hours=np.r_[
                nan, xs + (grace_hours if control_block_hours is None else control_block_hours)
            ],
            extra_mg_sulfate_g=extra,
        )
        sim = simulate(ds.world, sub, iv)
        lo = np.floor(t_out).astype(np.int64)
        hi = np.ceil(t_out).astype(np.int64)
        frac = t_out - lo
        both = np.r_[np.arange(k), np.arange(k)]
        lo2, hi2, frac2 = np.r_[lo, lo], np.r_[hi, hi], np.r_[frac, frac]
        cols2 = np.arange(2 * k)
        ca = sim.ca[lo2, cols2] + (sim.ca[hi2, cols2] - sim.ca[lo2, cols2]) * frac2
        mg = sim.mg[lo2, cols2] + (sim.mg[hi2, cols2] - sim.mg[lo2, cols2]) * frac2
        ca_t[sel], ca_c[sel] = ca[:k], ca[k:]
        mg_t[sel], mg_c[sel] = mg[:k], mg[k:]
        h_grid = np.arange(sim.draw.shape[0])[:, None]
        hh, cc = np.nonzero(sim.draw[:, :k] & (h_grid <= xs[None, :]))
        checks.append(
            pd.DataFrame(
                {
                    "pair": sel[cc],
                    "time_us": pop.admit_us[stay[sel[cc]]] + hh * US_PER_HOUR,
                    "value": sim.rep_mg[hh, cc],
                }
            )
        )
        ev = sim.events
        pair_local = both[ev.col]
        frames.append(
            pd.DataFrame(
                {
                    "pair": sel[pair_local],
                    "arm": np.where(ev.col < k, "treat", "control"),
                    "hours_from_index": ev.hour - xs[pair_local],
                    "ingredient": _KIND_NAMES[ev.kind],
                    "dose": ev.dose,
                    "given": ev.given,
                }
            )
        )
    if checks:
        _check_against_records(Path(data_dir), enc, idx_us, pd.concat(checks, ignore_index=True))
    events = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(
            columns=["pair", "arm", "hours_from_index", "ingredient", "dose", "given"]
        )
    )
    return Replay(
        ca_treat=ca_t, ca_control=ca_c, mg_treat=mg_t, mg_control=mg_c, index_hours=x, events=events
    )


def true_effect(
    data_dir: Path, pairs: pd.DataFrame, grace_hours: float, horizon_hours: float
) -> TrueEffect:
    """Mean over pairs of latent corrected Ca at index + horizon, treat minus control (mmol/L).

    ``pairs``: columns ``encounter_id`` (str) and ``index_time`` (naive datetime) of any
    cohort. Raises ValueError for an unknown encounter_id or an index_time outside its stay.
    Exactly 0.0 in the null world.
    """
    replay = replay_arms(data_dir, pairs, grace_hours, horizon_hours)
    per_pair = replay.ca_treat - replay.ca_control
    n = int(per_pair.size)
    mean = float(per_pair.mean()) if n else float("nan")
    manifest = json.loads((Path(data_dir) / "manifest.json").read_text(encoding="utf-8"))
    description = (
        f"true mean difference in latent albumin-corrected Ca (mmol/L) at index + "
        f"{horizon_hours:g} h: IV MgSO4 at the first decision point after index (usual-care "
        f"dose) vs no Mg in (index, index + {grace_hours:g} h], usual care otherwise; "
        f"{n} pairs; world={manifest['world']}, regime={manifest.get('regime', 'default')}, "
        f"seed={manifest['seed']}"
    )
    return TrueEffect(mean=mean, per_pair=per_pair, n=n, description=description)


def true_per_protocol_effect(
    data_dir: Path, pairs: pd.DataFrame, grace_hours: float, horizon_hours: float
) -> TrueEffect:
    """The per-protocol truth: mean over pairs of latent corrected Ca at index + horizon
    (mmol/L) with IV MgSO4 at the first decision point after index (usual-care dose, usual
    care afterwards) minus with no Mg of any kind from index to index + horizon (the
    sustained "no Mg until the outcome" strategy). Exactly 0.0 in the null world."""
    replay = replay_arms(
        data_dir, pairs, grace_hours, horizon_hours, control_block_hours=horizon_hours
    )
    per_pair = replay.ca_treat - replay.ca_control
    n = int(per_pair.size)
    manifest = json.loads((Path(data_dir) / "manifest.json").read_text(encoding="utf-8"))
    description = (
        f"true per-protocol mean difference in latent albumin-corrected Ca (mmol/L) at index "
        f"+ {horizon_hours:g} h: IV MgSO4 at the first decision point after index (within "
        f"{grace_hours:g} h; usual care afterwards) vs no Mg from index to index + "
        f"{horizon_hours:g} h; {n} pairs; world={manifest['world']}, "
        f"regime={manifest.get('regime', 'default')}, seed={manifest['seed']}"
    )
    return TrueEffect(
        mean=float(per_pair.mean()) if n else float("nan"),
        per_pair=per_pair,
        n=n,
        description=description,
    )


EXCLUDED_POPULATIONS = ("obstetric", "crrt", "dialysis")
"""The simulator's populations a clinician excludes (:mod:`mgca.synthetic.exclusions`), in
the order of their eligibility steps (obstetric MgSO4, citrate CRRT, dialysis)."""


def excluded_stays(data_dir: Path) -> pd.DataFrame:
    """Which stays of a generated folder belong to an excluded population, rebuilt from its
    manifest: columns ``encounter_id`` and ``population`` (one of
    :data:`EXCLUDED_POPULATIONS`), one row per member stay; empty when the switch is off.
    The truth of an analysis that keeps these stays (a source that does not record them)
    is a different population's truth than the eligible one."""
    ds = _load(Path(data_dir))
    pop = ds.pop
    frames = []
    for b in range(-(-pop.n_stays // ds.batch_size)):
        stay = np.arange(b * ds.batch_size, min((b + 1) * ds.batch_size, pop.n_stays))
        members = draw_membership(ds.world, pop, stay, ds.seed, b)
        for name, member in zip(EXCLUDED_POPULATIONS, members, strict=True):
            frames.append(
                pd.DataFrame({"encounter_id": pop.encounter_ids[stay[member]], "population": name})
            )
    return pd.concat(frames, ignore_index=True)
