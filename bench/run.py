"""Benchmark mgca stage by stage on a synthetic dataset of about ``--rows`` lab rows.

    python bench/run.py --rows 1000000 [--world effect] [--seed 0] [--cache-dir bench/cache]
                        [--memory-limit 8GB] [--skip-pandas]

What it does (see bench/README.md):

1. Finds or makes the dataset ``<cache-dir>/<rows>-<world>-<seed>/`` (canonical Parquet from
   :func:`mgca.synthetic.generate`; the number of stays comes from the lab rows per stay
   measured on a small pilot dataset of the same world and seed). A later run reuses it.
2. Times the real mgca stages on it, each separately, in this process and by the functions a
   run calls: ``load`` (:func:`mgca.run.study.load_database` into a fresh DuckDB file),
   ``derive`` (:func:`mgca.run.study.derive_tables`, timed file by file through its
   ``progress`` callback), ``read`` (the analytic table, the report's tables of
   :func:`mgca.engine.registry.report_tables` and the secondary tables), ``models`` (every
   model a run fits, :func:`mgca.run.study.fit_all`, then the sensitivity analyses with their
   re-derived windows) and ``report`` (:func:`mgca.run.results.assemble_results`, Table 1,
   figures and HTML by :func:`mgca.run.stages.render_stage`).
3. Times ``bench/pandas_reference.py`` (the same episode derivation in plain pandas) on the
   same files and compares the analysed episodes of the two.

For every stage it prints seconds, lab rows per second (input lab rows / stage seconds, for
every stage, so the figures compare) and the process's peak resident memory during the stage.
The last line is ``rows=N total_s=… peak_mb=… pandas_ratio=…``: N as requested, total_s the
sum of the mgca stages, peak_mb the highest per-stage peak of the mgca stages, pandas_ratio
the pandas seconds over the mgca load + derive seconds (``nan`` with ``--skip-pandas``).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

os.environ.setdefault("MPLBACKEND", "Agg")

import pandas as pd
import pandas_reference  # bench/pandas_reference.py: bench/ is sys.path[0] for a script

from mgca.analysis.estimation.analyses import sensitivity_block
from mgca.config import MgcaConfig, load_config
from mgca.engine import registry
from mgca.run import stages, study
from mgca.run.results import assemble_results
from mgca.synthetic import GENERATOR_VERSION

psutil: ModuleType | None
try:  # optional: only used for RSS sampling; /proc is used without it
    import psutil  # type: ignore[import-not-found, no-redef]
except ImportError:
    psutil = None

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_CACHE_DIR = BENCH_DIR / "cache"
PILOT_STAYS = 2000
"""Stays of the pilot dataset that measures lab rows per stay before generating."""
BENCH_STAGES = 2
"""What the stages cover; runs.jsonl compares only runs of the same value. 2: ``models``
holds every model the flow fits (1: study.fit_estimates only)."""
SAMPLE_INTERVAL_S = 0.01
MB = 1024 * 1024


# ---------------------------------------------------------------------------------------------
# peak memory


def _rss_bytes() -> int:
    """Current resident set size of this process."""
    if psutil is not None:
        return int(psutil.Process().memory_info().rss)
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _vm_hwm_bytes() -> int | None:
    """The kernel's RSS high-water mark (``VmHWM``), or None where /proc is unavailable."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_vm_hwm() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux ≥ 4.0: write 5 to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


def _ru_maxrss_bytes() -> int:
    """Lifetime peak RSS from getrusage (kilobytes on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class PeakMemory:
    """Peak RSS of the process between :meth:`reset` and :meth:`peak_bytes`.

    Three sources, the largest wins: the kernel's ``VmHWM`` reset at each :meth:`reset`
    (exact, where /proc/self/clear_refs is writable); a thread sampling RSS every
    ``interval_s`` (psutil if installed, else /proc/self/statm; can miss short spikes); and
    ``getrusage`` ``ru_maxrss``, which counts only when the interval set a new lifetime peak.
    """

    def __init__(self, interval_s: float = SAMPLE_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self.can_reset_hwm = _reset_vm_hwm() and _vm_hwm_bytes() is not None
        self._lock = threading.Lock()
        self._sampled = _rss_bytes()
        self._ru_at_reset = _ru_maxrss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)
        self._thread.start()

    def describe(self) -> str:
        """How peaks are measured on this machine (printed with the figures)."""
        parts = ["VmHWM reset per stage (/proc/self/clear_refs)"] if self.can_reset_hwm else []
        parts.append(
            f"RSS sampled every {self.interval_s * 1000:.0f} ms via "
            + ("psutil" if psutil is not None else "/proc/self/statm")
        )
        parts.append("getrusage ru_maxrss")
        return ", ".join(parts)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            rss = _rss_bytes()
            with self._lock:
                self._sampled = max(self._sampled, rss)

    def reset(self) -> None:
        """Start a new interval."""
        if self.can_reset_hwm:
            _reset_vm_hwm()
        with self._lock:
            self._sampled = _rss_bytes()
        self._ru_at_reset = _ru_maxrss_bytes()

    def peak_bytes(self) -> int:
        """Peak RSS since the last :meth:`reset`."""
        rss = _rss_bytes()
        with self._lock:
            self._sampled = max(self._sampled, rss)
            peaks = [self._sampled]
        if self.can_reset_hwm:
            peaks.append(_vm_hwm_bytes() or 0)
        ru = _ru_maxrss_bytes()
        if ru > self._ru_at_reset:
            peaks.append(ru)
        return max(peaks)

    def close(self) -> None:
        """Stop the sampling thread."""
        self._stop.set()
        self._thread.join()


# ---------------------------------------------------------------------------------------------
# timing


def _cpu_seconds() -> float:
    """User + system CPU time of this process so far, all threads (DuckDB's included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


HEADER = f"{'stage':<46} {'seconds':>9} {'cpu s':>8} {'lab rows/s':>13} {'peak MB':>9}"


@dataclass
class Stage:
    """One timed stage (or sub-step, ``level`` 1) and its figures."""

    name: str
    seconds: float
    cpu_seconds: float
    peak_bytes: int
    level: int = 0

    def line(self, lab_rows: int) -> str:
        """The stage as one table row (see :data:`HEADER`)."""
        label = ("  " * self.level + self.name)[:46]
        rate = lab_rows / self.seconds if self.seconds > 0 else math.inf
        return (
            f"{label:<46} {self.seconds:>9.3f} {self.cpu_seconds:>8.2f} {rate:>13,.0f} "
            f"{self.peak_bytes / MB:>9.1f}"
        )


@dataclass
class Timer:
    """Times stages and sub-steps, with the peak RSS of each."""

    memory: PeakMemory
    stages: list[Stage] = field(default_factory=list)

    @contextmanager
    def stage(self, name: str) -> Iterator[list[Stage]]:
        """Time the ``with`` block as stage ``name``; sub-steps recorded inside it (appended to
        the yielded list) are printed under it."""
        gc.collect()
        substeps: list[Stage] = []
        self.memory.reset()
        started, cpu_started = time.perf_counter(), _cpu_seconds()
        yield substeps
        seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu_started
        peak = max([self.memory.peak_bytes(), *(s.peak_bytes for s in substeps)])
        self.stages.append(Stage(name, seconds, cpu, peak))
        self.stages.extend(substeps)

    def stepper(self, substeps: list[Stage]) -> tuple[Callable[[str], None], Callable[[], None]]:
        """A ``(mark, finish)`` pair: ``mark(name)`` starts sub-step ``name`` (ending the one
        before), ``finish()`` ends the last. Fits callbacks called before each step."""
        current: dict[str, Any] = {}

        def close_current() -> None:
            if current:
                substeps.append(
                    Stage(
                        current["name"],
                        time.perf_counter() - current["started"],
                        _cpu_seconds() - current["cpu_started"],
                        self.memory.peak_bytes(),
                        level=1,
                    )
                )
                current.clear()

        def mark(name: str) -> None:
            close_current()
            self.memory.reset()
            current.update(name=name, started=time.perf_counter(), cpu_started=_cpu_seconds())

        return mark, close_current


# ---------------------------------------------------------------------------------------------
# dataset


@dataclass(frozen=True)
class Dataset:
    """A cached synthetic dataset and how it was obtained."""

    path: Path
    lab_rows: int
    n_stays: int
    reused: bool
    seconds: float


def _manifest(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _usable(manifest: dict[str, Any] | None, world: str, seed: int) -> bool:
    return (
        manifest is not None
        and manifest.get("generator_version") == GENERATOR_VERSION
        and manifest.get("world") == world
        and manifest.get("seed") == seed
    )


def _generate(out_dir: Path, n_stays: int, world: str, seed: int) -> dict[str, Any]:
    """Run :func:`mgca.synthetic.generate` in a child Python process (so that the generator's
    memory never counts in the stages' peaks) and return the dataset's manifest."""
    code = (
        "import sys; from pathlib import Path; from mgca.synthetic import generate; "
        "generate(Path(sys.argv[1]), n_stays=int(sys.argv[2]), world=sys.argv[3], "
        "seed=int(sys.argv[4]))"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(out_dir), str(n_stays), world, str(seed)], check=True
    )
    manifest = _manifest(out_dir)
    if manifest is None:
        raise RuntimeError(f"the generator wrote no readable manifest.json in {out_dir}")
    return manifest


def stays_for_rows(rows: int, world: str, seed: int, scratch: Path) -> tuple[int, float]:
    """Stays needed for about ``rows`` lab rows, from a pilot dataset of :data:`PILOT_STAYS`
    stays of the same world and seed; returns (stays, measured lab rows per stay)."""
    pilot = scratch / f".pilot-{uuid.uuid4().hex[:8]}"
    try:
        manifest = _generate(pilot, PILOT_STAYS, world, seed)
        per_stay = manifest["row_counts"]["lab_results"] / PILOT_STAYS
    finally:
        shutil.rmtree(pilot, ignore_errors=True)
    return max(10, round(rows / per_stay)), per_stay


def ensure_dataset(cache_dir: Path, rows: int, world: str, seed: int) -> Dataset:
    """The dataset ``<cache_dir>/<rows>-<world>-<seed>``: reused when present and made by this
    generator version, otherwise generated (the pilot sizes it)."""
    path = cache_dir / f"{rows}-{world}-{seed}"
    manifest = _manifest(path)
    if _usable(manifest, world, seed) and manifest is not None:
        return Dataset(path, manifest["row_counts"]["lab_results"], manifest["n_stays"], True, 0.0)
    cache_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    n_stays, per_stay = stays_for_rows(rows, world, seed, cache_dir)
    print(
        f"generating {path} ({n_stays:,} stays at {per_stay:.2f} lab rows per stay, "
        "measured on a pilot)",
        flush=True,
    )
    manifest = _generate(path, n_stays, world, seed)
    seconds = time.perf_counter() - started
    return Dataset(path, manifest["row_counts"]["lab_results"], n_stays, False, seconds)


# ---------------------------------------------------------------------------------------------
# the mgca stages


def bench_config(memory_limit: str) -> MgcaConfig:
    """The shipped default config with the DuckDB memory limit of the benchmark (validated)."""
    raw = load_config().model_dump(mode="json")
    raw["engine"]["duckdb_memory_limit"] = memory_limit
    return MgcaConfig.model_validate(raw)


@dataclass
class MgcaOutcome:
    """What the mgca stages produced that the comparison needs."""

    n_analysed: int
    cohort: pd.DataFrame
    notes: list[str]


def run_mgca(timer: Timer, data_dir: Path, work: Path, config: MgcaConfig) -> MgcaOutcome:
    """Time load, derive (per SQL file), read, models and report on ``data_dir``, each by the
    function a run calls (:mod:`mgca.run.study`, :mod:`mgca.run.stages`,
    :func:`mgca.run.results.assemble_results`): the benchmark measures the run's own code."""
    db_path = work / "mgca.duckdb"

    with timer.stage("load (study.load_database)"):
        study.load_database(data_dir, db_path, config)

    with timer.stage("derive (study.derive_tables)") as substeps:
        mark, finish = timer.stepper(substeps)
        # progress is called before each file: "derive 3/13: low_value_episodes.sql"
        n_analysed = study.derive_tables(
            db_path, config, progress=lambda line: mark(line.rsplit(": ", 1)[-1])
        )
        finish()

    with timer.stage("read (cohort + report and secondary tables)"):
        cohort = study.read_cohort(db_path)
        tables = {
            t.report_name: study.read_table(db_path, t.select())
            for t in registry.report_tables()
            if t.report_name is not None
        }
        secondary_tables = study.read_secondary_tables(db_path)

    # the models the run fits (its fit and sensitivity stages), each a sub-step
    with timer.stage("models (every estimate the run fits)") as substeps:
        mark, finish = timer.stepper(substeps)
        mark("estimates, gate, diagnostics, secondary (study.fit_all)")
        fitted = study.fit_all(cohort, secondary_tables, config)
        mark("sensitivity (3 refits, 4 re-derived windows)")
        primary = next((e for e in fitted["estimates"] if e["name"] == "primary"), None)
        sensitivity = sensitivity_block(
            cohort,
            kidney=secondary_tables["index_kidney_function"],
            primary=primary,
            config=config,
            cohort_for=study.cohort_for(config.engine.name, db_path, work),
        )
        finish()

    with timer.stage("report (results.json, table one, figures, html)"):
        results = assemble_results(
            fitted=fitted, sensitivity=sensitivity, tables=tables, truth=None, config=config
        )
        results["provenance"] = {"source": "synthetic (bench)"}
        cohort_path = work / "cohort.parquet"
        cohort.to_parquet(cohort_path, index=False)
        results["table_one"] = stages.render_stage(
            str(work),
            results,
            str(cohort_path),
            tables["trajectory"],
            config,
            figures=fitted["figures"],
            analyte_trajectory=tables["analyte_trajectory"],
            trajectory_sample=tables["trajectory_sample"],
        )

    return MgcaOutcome(int(n_analysed), cohort, fitted["notes"])


def run_pandas(timer: Timer, data_dir: Path, config: MgcaConfig) -> pd.DataFrame:
    """Time the plain pandas episode derivation (bench/pandas_reference.py), step by step."""
    with timer.stage("pandas reference (read + derive)") as substeps:
        mark, finish = timer.stepper(substeps)
        episodes = pandas_reference.derive_episodes(data_dir, config.study, on_step=mark)
        finish()
    return episodes


# ---------------------------------------------------------------------------------------------
# comparison and output


def compare_episodes(mgca_cohort: pd.DataFrame, pandas_cohort: pd.DataFrame) -> list[str]:
    """Lines comparing the analysed episodes of the two implementations."""
    n_mgca, n_pandas = len(mgca_cohort), len(pandas_cohort)
    lines = [
        f"analysed episodes: mgca {n_mgca:,}, pandas {n_pandas:,} "
        f"(difference pandas - mgca = {n_pandas - n_mgca:+,})"
    ]
    both = mgca_cohort.merge(
        pandas_cohort,
        on=["encounter_id", "index_time"],
        how="inner",
        suffixes=("", "_pandas"),
    )
    exposure_agrees = int((both["exposed"] == both["exposed_pandas"]).sum())
    diff = (both["outcome_ca_corrected_mmol_l"] - both["outcome_ca_corrected_mmol_l_pandas"]).abs()
    max_diff = float(diff.max()) if len(diff) else 0.0
    lines.append(
        f"  same stay and index time: {len(both):,}; exposure agrees: {exposure_agrees:,} "
        f"(exposed: mgca {int(mgca_cohort['exposed'].sum()):,}, "
        f"pandas {int(pandas_cohort['exposed'].sum()):,}); "
        f"largest outcome difference {max_diff:.6f} mmol/L"
    )
    if n_mgca != n_pandas or len(both) != n_mgca:
        lines.append(
            "  EPISODES DISAGREE: see the known rule differences in bench/pandas_reference.py"
        )
    else:
        lines.append("  episodes agree: same count, same stays and index times")
    return lines


def episodes_agree(mgca_cohort: pd.DataFrame, pandas_cohort: pd.DataFrame) -> bool:
    """True when both implementations analyse the same stays at the same index times."""
    keys = ["encounter_id", "index_time"]
    both = mgca_cohort[keys].merge(pandas_cohort[keys], on=keys, how="inner")
    return len(mgca_cohort) == len(pandas_cohort) == len(both)


# ---------------------------------------------------------------------------------------------
# targets and cost growth


@dataclass(frozen=True)
class Targets:
    """The speed targets of one dataset size (``--rows``): whole-pipeline seconds, the lowest
    ``pandas_ratio`` (None: not judged at this size) and the highest peak MB (the peak
    measured before the targets were set: the speed work may not cost memory)."""

    max_total_s: float
    min_pandas_ratio: float | None
    max_peak_mb: float
    memory_limit: str | None = None
    """The DuckDB memory limit the targets hold for (None: any)."""


TARGETS: dict[int, Targets] = {
    10_000_000: Targets(max_total_s=15.0, min_pandas_ratio=10.0, max_peak_mb=2353.0),
    100_000_000: Targets(
        max_total_s=150.0, min_pandas_ratio=None, max_peak_mb=8147.0, memory_limit="8GB"
    ),
}
"""The targets by --rows (bench/README.md): 1e7 lab rows end to end in under 15 s and at least
10x faster than the plain pandas reference; 1e8 in under 150 s with --memory-limit 8GB; peak
memory no higher than measured on the quiet machine before the speed work (2,353 MB at 1e7,
8,147 MB at 1e8)."""


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def target_lines(
    rows: int, total_s: float, peak_mb: float, ratio: float, memory_limit: str
) -> list[str]:
    """One line per target of this run's size, each ``met`` or ``MISSED`` with the figure
    (none below 1e7). ``ratio`` is nan when the pandas reference was skipped."""
    targets = TARGETS.get(rows)
    if targets is None:
        return []
    size = f"{rows:.0e} lab rows"
    if targets.memory_limit is not None and memory_limit != targets.memory_limit:
        return [
            f"targets at {size} hold for --memory-limit {targets.memory_limit}; this run used "
            f"{memory_limit}: not judged"
        ]
    lines = [
        f"target at {size}: whole pipeline < {targets.max_total_s:.0f} s: "
        f"{_verdict(total_s < targets.max_total_s)} ({total_s:.1f} s)",
        f"target at {size}: peak <= {targets.max_peak_mb:,.0f} MB: "
        f"{_verdict(peak_mb <= targets.max_peak_mb)} ({peak_mb:,.0f} MB)",
    ]
    if targets.min_pandas_ratio is not None:
        if math.isnan(ratio):
            lines.append(
                f"target at {size}: pandas_ratio >= {targets.min_pandas_ratio:.0f}: not "
                "measured (--skip-pandas)"
            )
        else:
            lines.append(
                f"target at {size}: pandas_ratio >= {targets.min_pandas_ratio:.0f}: "
                f"{_verdict(ratio >= targets.min_pandas_ratio)} ({ratio:.2f})"
            )
    return lines


def record_run(cache_dir: Path, record: dict[str, Any]) -> list[dict[str, Any]]:
    """Append this run to ``<cache_dir>/runs.jsonl``; return the latest run of each size made
    on this machine with the same mgca version, stage definition (BENCH_STAGES), world, seed
    and memory limit (smallest first)."""
    log = cache_dir / "runs.jsonl"
    with log.open("a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")
    latest: dict[int, dict[str, Any]] = {}
    for line in log.read_text(encoding="utf-8").splitlines():
        try:
            run = json.loads(line)
        except ValueError:
            continue
        same = all(
            run.get(k) == record[k] for k in ("mgca", "bench", "world", "seed", "memory_limit")
        )
        if same and run.get("lab_rows"):
            latest[run["lab_rows"]] = run
    return [latest[n] for n in sorted(latest)]


def _exponent(lo_rows: float, lo_s: float, hi_rows: float, hi_s: float) -> float:
    """Exponent k of t ~ n^k between two runs."""
    return math.log(hi_s / lo_s) / math.log(hi_rows / lo_rows)


def _nlogn_exponent(lo_rows: float, hi_rows: float) -> float:
    """The exponent n log n has between two sizes (a little above 1)."""
    return math.log((hi_rows * math.log(hi_rows)) / (lo_rows * math.log(lo_rows))) / math.log(
        hi_rows / lo_rows
    )


GROWTH_TOLERANCE = 0.05
"""Allowance on the exponent for run-to-run noise (about 12 % on a tenfold step)."""


def growth_lines(runs: list[dict[str, Any]]) -> list[str]:
    """Seconds per million lab rows at each size run, the exponent k of t ~ n^k between each
    pair of successive sizes (judged against n log n's exponent over the same step), and the
    least-squares exponent over all sizes.

    The verdict is on the step between the two largest sizes: fixed costs (imports, Prefect-free
    setup, model fitting on few episodes) flatten the small steps and the all-size fit, while a
    step that spills to disk shows up at the top."""
    if not runs:
        return []
    lines = [
        "cost growth (latest run of each size, this cache): "
        + "; ".join(
            f"{r['lab_rows']:.1e} rows {r['total_s']:.1f} s = "
            f"{r['total_s'] / r['lab_rows'] * 1e6:.2f} s per 1e6 rows"
            for r in runs
        )
    ]
    if len(runs) < 2:
        return lines
    steps = []
    for lo, hi in itertools.pairwise(runs):
        k = _exponent(lo["lab_rows"], lo["total_s"], hi["lab_rows"], hi["total_s"])
        steps.append(
            f"{lo['lab_rows']:.0e}->{hi['lab_rows']:.0e} k={k:.2f} "
            f"(n log n {_nlogn_exponent(lo['lab_rows'], hi['lab_rows']):.2f})"
        )
    lines.append("exponent k of total_s ~ rows^k per step: " + "; ".join(steps))
    if all(r.get("total_cpu_s") for r in (runs[-2], runs[-1])):
        # CPU seconds move less than wall time when other jobs share the machine
        k_cpu = _exponent(
            runs[-2]["lab_rows"],
            runs[-2]["total_cpu_s"],
            runs[-1]["lab_rows"],
            runs[-1]["total_cpu_s"],
        )
        lines.append(
            f"CPU seconds (all threads) {runs[-2]['total_cpu_s']:.1f} -> "
            f"{runs[-1]['total_cpu_s']:.1f}: k={k_cpu:.2f} over the largest step"
        )
    xs = [math.log(r["lab_rows"]) for r in runs]
    ys = [math.log(r["total_s"]) for r in runs]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    k_fit = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )
    lo, hi = runs[-2], runs[-1]
    k_top = _exponent(lo["lab_rows"], lo["total_s"], hi["lab_rows"], hi["total_s"])
    nlogn_top = _nlogn_exponent(lo["lab_rows"], hi["lab_rows"])
    verdict = (
        "no worse than n log n" if k_top <= nlogn_top + GROWTH_TOLERANCE else "WORSE than n log n"
    )
    lines.append(
        f"fitted exponent over all sizes: {k_fit:.2f}; largest step "
        f"{lo['lab_rows']:.0e}->{hi['lab_rows']:.0e}: k={k_top:.2f} against n log n "
        f"{nlogn_top:.2f} (+{GROWTH_TOLERANCE} noise allowance): {verdict}"
    )
    return lines


def _mgca_version() -> str:
    """The installed mgca distribution's version (the code under test)."""
    try:
        return metadata.version("mgca")
    except metadata.PackageNotFoundError:
        return "(not installed)"


def _load_average() -> str:
    """1-minute load average: other work on the machine slows the stages down."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "unknown"


def _fmt(x: float, digits: int) -> str:
    return "nan" if math.isnan(x) else f"{x:.{digits}f}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    parser = argparse.ArgumentParser(
        description="Time mgca's stages (and a plain pandas reference) on synthetic data."
    )
    parser.add_argument("--rows", type=int, required=True, help="lab rows wanted (about)")
    parser.add_argument("--world", choices=("effect", "null"), default="effect")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=DEFAULT_CACHE_DIR,
        help=f"where datasets are cached (default {DEFAULT_CACHE_DIR}, git-ignored)",
    )
    parser.add_argument("--memory-limit", default="8GB", help="DuckDB memory_limit (default 8GB)")
    parser.add_argument(
        "--skip-pandas", action="store_true", help="do not run the pandas reference"
    )
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be positive")
    if args.seed < 0:
        parser.error("--seed must be non-negative")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures; the last line is the summary line."""
    args = parse_args(argv)
    try:
        config = bench_config(args.memory_limit)
    except ValueError as exc:  # pydantic's ValidationError names the key and the rule
        print(f"--memory-limit {args.memory_limit!r} is not usable: {exc}", file=sys.stderr)
        return 2
    dataset = ensure_dataset(args.cache_dir, args.rows, args.world, args.seed)
    lab_rows = dataset.lab_rows
    print(
        f"dataset {dataset.path}: {lab_rows:,} lab rows, {dataset.n_stays:,} stays "
        f"(world {args.world}, seed {args.seed}; "
        + ("reused from cache)" if dataset.reused else f"generated in {dataset.seconds:.1f} s)")
    )
    print(f"mgca {_mgca_version()} from {Path(study.__file__).parent}")
    print(
        f"python {sys.version.split()[0]}, pandas {pd.__version__}, "
        f"duckdb memory_limit {config.engine.duckdb_memory_limit}, "
        f"threads {config.engine.duckdb_threads}, cpus {os.cpu_count()}, "
        f"load average before {_load_average()}"
    )

    memory = PeakMemory()
    timer = Timer(memory)
    work = Path(tempfile.mkdtemp(prefix=".work-", dir=args.cache_dir))
    try:
        print(
            f"baseline RSS before the stages: {_rss_bytes() / MB:.1f} MB; peaks: "
            f"{memory.describe()}"
        )
        mgca = run_mgca(timer, dataset.path, work, config)
        n_mgca_rows = len(timer.stages)
        pandas_cohort = None if args.skip_pandas else run_pandas(timer, dataset.path, config)
    finally:
        memory.close()
        shutil.rmtree(work, ignore_errors=True)

    mgca_rows, pandas_rows = timer.stages[:n_mgca_rows], timer.stages[n_mgca_rows:]
    mgca_stages = [s for s in mgca_rows if s.level == 0]
    total_s = sum(s.seconds for s in mgca_stages)
    total_cpu = sum(s.cpu_seconds for s in mgca_stages)
    peak_mb = max(s.peak_bytes for s in mgca_stages) / MB
    print()
    print(HEADER)
    for stage in mgca_rows:
        print(stage.line(lab_rows))
    print(
        Stage("mgca total (load .. report)", total_s, total_cpu, int(peak_mb * MB)).line(lab_rows)
    )
    for stage in pandas_rows:
        print(stage.line(lab_rows))
    for note in mgca.notes:
        print(f"model note: {note}")
    print(f"load average after: {_load_average()}")

    ratio = math.nan
    if pandas_cohort is not None:
        pandas_s = pandas_rows[0].seconds
        mgca_s = sum(s.seconds for s in mgca_stages[:2])  # load + derive
        ratio = pandas_s / mgca_s
        print()
        for line in compare_episodes(mgca.cohort, pandas_cohort):
            print(line)
        print(
            "pandas_ratio = pandas seconds / mgca seconds for the episode derivation "
            f"(load + derive) = {pandas_s:.3f} / {mgca_s:.3f} = {ratio:.2f}"
        )
    else:
        print(f"analysed episodes: mgca {mgca.n_analysed:,} (pandas reference skipped)")
    agree = pandas_cohort is None or episodes_agree(mgca.cohort, pandas_cohort)
    for line in target_lines(args.rows, total_s, peak_mb, ratio, config.engine.duckdb_memory_limit):
        print(line)
    runs = record_run(
        args.cache_dir,
        {
            "rows": args.rows,
            "lab_rows": lab_rows,
            "total_s": round(total_s, 3),
            "total_cpu_s": round(total_cpu, 3),
            "peak_mb": round(peak_mb, 1),
            "pandas_ratio": None if math.isnan(ratio) else round(ratio, 3),
            "mgca": _mgca_version(),
            "bench": BENCH_STAGES,
            "world": args.world,
            "seed": args.seed,
            "memory_limit": config.engine.duckdb_memory_limit,
            "load_average_after": _load_average(),
        },
    )
    for line in growth_lines(runs):
        print(line)
    print(
        f"rows={args.rows} total_s={_fmt(total_s, 3)} peak_mb={_fmt(peak_mb, 1)} "
        f"pandas_ratio={_fmt(ratio, 2)}"
    )
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
