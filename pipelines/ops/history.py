"""Run history: every run folder under a reports root is kept and listed.

After each run, ``update_index`` rewrites two files in the reports root (``reports/`` by
default) from the ``results.json`` of every run folder there:

- ``history.json``: one entry per run (run id, UTC start time, source, analysed episodes,
  primary estimate with CI, cache key, config and input fingerprints), newest first;
- ``index.html``: the same as one self-contained page linking each run's report.

Before a run publishes, ``compare_with_previous`` writes the ``comparison_with_previous``
block of its results.json: did the primary estimate move, did the cohort change, did the
config, input or code change, against the most recent earlier run in the same root.

Everything here reads results.json only: aggregates, small counts already suppressed. Both
files are written through a temporary file and an atomic rename while holding an exclusive
lock on ``.history.lock``, so concurrent runs never interleave or lose an entry.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from mgca.analysis.privacy import (
    SUPPRESSED_KEY,
    CountRule,
    display_record_count,
    rule_words,
    suppress_count,
)
from mgca.run.outputs import to_json, write_text_atomic

HISTORY_JSON = "history.json"
INDEX_HTML = "index.html"
LOCK_FILE = ".history.lock"
DEFAULT_THRESHOLD = 11
PREVIOUS_SUFFIX = ".previous"  # mgca.run.outputs.publish renames a replaced run folder to this


@contextmanager
def history_lock(reports_root: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``<reports_root>/.history.lock`` (POSIX ``flock``)."""
    reports_root.mkdir(parents=True, exist_ok=True)
    with open(reports_root / LOCK_FILE, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_results(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / "results.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None  # a folder that is not a complete run (or is being replaced)


def _primary(results: dict[str, Any]) -> dict[str, Any] | None:
    return next((e for e in results.get("estimates", []) if e.get("name") == "primary"), None)


def _analysed_row(results: dict[str, Any]) -> dict[str, Any] | None:
    """The attrition record "analysed episodes …" (not its exposed/unexposed split)."""
    return next(
        (
            a
            for a in results.get("attrition") or []
            if str(a.get("step", "")).startswith("analysed episodes") and ":" not in a["step"]
        ),
        None,
    )


def n_analysed(results: dict[str, Any]) -> tuple[int | None, bool]:
    """Analysed episodes (the attrition step "analysed episodes …", not its exposed/unexposed
    split) and whether that count was suppressed."""
    row = _analysed_row(results)
    if row is None:
        return None, False
    return row.get("n"), row.get("n") is None and SUPPRESSED_KEY in row


def _privacy(results: dict[str, Any]) -> tuple[int, str]:
    """The run's small-cell threshold and rounding rule, from its results.json config."""
    privacy = (results.get("config") or {}).get("privacy", {})
    return privacy.get("small_cell_threshold", DEFAULT_THRESHOLD), privacy.get("rounding", "none")


def n_analysed_text(results: dict[str, Any]) -> str:
    """Analysed episodes as display text under the run's own disclosure rule: the number,
    ``<threshold`` when it is small, ``suppressed`` when hidden for another reason, ``–``
    when the run recorded no such step."""
    row = _analysed_row(results)
    if row is None:
        return "–"
    threshold, rounding = _privacy(results)
    text = display_record_count(row, "n", threshold, rounding)
    return "–" if text == "—" else text


def run_summary(folder: Path, results: dict[str, Any]) -> dict[str, Any]:
    """One history entry (aggregates only) from a run folder's results.json."""
    provenance = results.get("provenance", {})
    primary = _primary(results)
    n, n_suppressed = n_analysed(results)
    comparison = results.get("comparison_with_previous") or {}
    return {
        "run_id": folder.name,
        "started_at_utc": provenance.get("started_at_utc"),
        "source": provenance.get("source"),
        "n_analysed": n,
        "n_analysed_suppressed": n_suppressed,
        "n_analysed_text": n_analysed_text(results),
        "count_rule": rule_words(*_privacy(results)),
        "primary": None
        if primary is None
        else {k: primary.get(k) for k in ("estimate", "ci_low", "ci_high", "n", "horizon_hours")},
        "config_sha256": provenance.get("config_sha256"),
        "input_fingerprint": provenance.get("input_fingerprint"),
        "mgca_version": provenance.get("mgca_version"),
        "git_commit": provenance.get("git_commit"),
        "cache_key": (provenance.get("cache") or {}).get("key"),
        "threshold": (results.get("config") or {})
        .get("privacy", {})
        .get("small_cell_threshold", DEFAULT_THRESHOLD),
        "estimate_change": comparison.get("primary_estimate_change"),
        "report": f"{folder.name}/report.html",
    }


def list_runs(reports_root: Path) -> list[dict[str, Any]]:
    """Every complete run folder directly under ``reports_root``, newest first."""
    runs = []
    if not reports_root.is_dir():
        return runs
    for folder in reports_root.iterdir():
        if not folder.is_dir() or folder.name.startswith(".") or folder.name.endswith(
            PREVIOUS_SUFFIX
        ):
            continue  # caches, staging folders, a replaced run being swapped out
        results = _read_results(folder)
        if results is not None:
            runs.append(run_summary(folder, results))
    runs.sort(key=lambda r: (r["started_at_utc"] or "", r["run_id"]), reverse=True)
    return runs


def _difference(a: Any, b: Any) -> float | None:
    if a is None or b is None:
        return None
    return round(float(a) - float(b), 6)


def compare_with_previous(
    reports_root: Path, out_dir: Path, results: dict[str, Any]
) -> dict[str, Any] | None:
    """Compare this run (its results dict, not yet published) with the most recent earlier run
    in ``reports_root``; ``None`` when there is none. A run published into the same folder
    before is its own previous run."""
    current = run_summary(out_dir, results)
    started = current["started_at_utc"] or ""
    earlier = [
        r for r in list_runs(reports_root) if (r["started_at_utc"] or "") <= started
    ]
    if not earlier:
        return None
    prev = dict(earlier[0])
    # the previous run's counts, republished here, follow THIS run's count rule
    rule = CountRule(*_privacy(results))
    prev["n_analysed"] = suppress_count(prev["n_analysed"], rule)
    if prev["primary"]:
        prev["primary"] = {**prev["primary"], "n": suppress_count(prev["primary"].get("n"), rule)}
    cur_p, prev_p = current["primary"] or {}, prev["primary"] or {}
    overlap = None
    if None not in (
        cur_p.get("ci_low"), cur_p.get("ci_high"), prev_p.get("ci_low"), prev_p.get("ci_high")
    ):
        overlap = cur_p["ci_low"] <= prev_p["ci_high"] and prev_p["ci_low"] <= cur_p["ci_high"]
    outside = None
    if cur_p.get("estimate") is not None and None not in (
        prev_p.get("ci_low"), prev_p.get("ci_high")
    ):
        outside = not prev_p["ci_low"] <= cur_p["estimate"] <= prev_p["ci_high"]
    prev_results = _read_results(reports_root / prev["run_id"]) or {}
    prev_steps = {a.get("step"): a.get("n") for a in prev_results.get("attrition", [])}
    changed_steps = [
        a.get("step")
        for a in results.get("attrition", [])
        if a.get("step") not in prev_steps or prev_steps[a.get("step")] != a.get("n")
    ]
    return {
        "previous_run": prev["run_id"],
        "previous_started_at_utc": prev["started_at_utc"],
        "previous_primary": prev["primary"],
        "primary_estimate_change": _difference(cur_p.get("estimate"), prev_p.get("estimate")),
        "ci_overlap": overlap,
        "estimate_outside_previous_ci": outside,
        "n_analysed_previous": prev["n_analysed"],
        "n_analysed_change": _difference(current["n_analysed"], prev["n_analysed"]),
        "attrition_steps_changed": changed_steps,
        "cohort_changed": bool(changed_steps) or current["n_analysed"] != prev["n_analysed"],
        "config_changed": current["config_sha256"] != prev["config_sha256"],
        "input_changed": current["input_fingerprint"] != prev["input_fingerprint"],
        "code_changed": (current["mgca_version"], current["git_commit"])
        != (prev["mgca_version"], prev["git_commit"]),
    }


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(
            lambda name: resources.files("mgca.templates").joinpath(name).read_text("utf-8")
        ),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def _fmt(value: float | None, signed: bool = True) -> str:
    if value is None:
        return "–"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def render_index(runs: list[dict[str, Any]]) -> str:
    """``index.html``: a self-contained page (inline CSS, no scripts, relative links)."""
    env = _environment()
    env.filters["fmt"] = _fmt
    return env.get_template("index.html.j2").render(runs=runs)


def update_index(reports_root: Path) -> Path:
    """Rewrite ``history.json`` and ``index.html`` under ``reports_root``; return the index."""
    reports_root = Path(reports_root).resolve()
    with history_lock(reports_root):
        runs = list_runs(reports_root)
        write_text_atomic(reports_root / HISTORY_JSON, to_json({"runs": runs}))
        index = reports_root / INDEX_HTML
        write_text_atomic(index, render_index(runs))
    return index
