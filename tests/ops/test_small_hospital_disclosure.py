"""Disclosure by subtraction on a small, unbalanced hospital: no small count can be worked out
from two shown counts that add up.

A 600-stay ward-regime null world (seed 5) gives about 25 eligible episodes, one arm of fewer
than 11: the situation in which a count hidden in one table came back from another. The real
`mgca run` (subprocess, its own Prefect home) writes results.json; the test then checks the
sums a reader could do:

- an entry with a shown total ``n`` never shows one arm while the other is hidden;
- an entry fitted over every eligible episode (IPCW: ``missing_outcome_handling``) shows no
  count when the attrition hides the eligible total (that total minus the analysed episodes
  is the small number of episodes without an outcome);
- the missing-outcome counts never show one arm's eligible or measured count while the other
  arm's is hidden (they add up to attrition totals);
- the any-draw per-arm rows never show one arm's episodes while the other's are hidden.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers.run_helpers import mgca

pytestmark = pytest.mark.slow

ARMS = ("n_exposed", "n_unexposed")


def _eligible_total_hidden(attrition: list[dict[str, Any]]) -> bool:
    outcome = next(i for i, r in enumerate(attrition) if r["step"].startswith("analysed episodes"))
    return attrition[outcome - 1]["n"] is None


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("small")
    data, out, home = root / "data", root / "run", root / "prefect-home"
    made = mgca(
        [
            "synth",
            "--world",
            "null",
            "--regime",
            "ward",
            "--stays",
            "600",
            "--seed",
            "5",
            "--out",
            str(data),
        ],
        home,
    )
    assert made.returncode == 0, made.stdout[-2000:]
    done = mgca(["run", "--source", "synthetic", "--path", str(data), "--out", str(out)], home)
    assert done.returncode == 0, done.stdout[-3000:]
    return json.loads((out / "results.json").read_text(encoding="utf-8"))


def test_the_world_is_small_enough_to_hide_an_arm(results: dict[str, Any]) -> None:
    # the premise: otherwise the checks below check nothing
    primary = next(e for e in results["estimates"] if e["name"] == "primary")
    assert primary["suppressed_why"].get("n_unexposed") == "small"
    assert _eligible_total_hidden(results["attrition"])


def test_no_entry_shows_one_arm_beside_a_shown_total_and_a_hidden_arm(
    results: dict[str, Any],
) -> None:
    entries = [
        *results["estimates"],
        *results["secondary"],
        *(results.get("sensitivity") or {}).get("analyses", []),
        *results.get("negative_controls", []),
    ]
    for e in entries:
        shown = [e.get(k) is not None for k in ARMS if k in e]
        assert all(shown) or not any(shown), (e["name"], {k: e.get(k) for k in ("n", *ARMS)})


def test_eligible_episode_entries_hide_their_counts_with_the_eligible_total(
    results: dict[str, Any],
) -> None:
    ipcw = [
        e
        for e in (*results["estimates"], *results["secondary"])
        if e.get("missing_outcome_handling")
    ]
    assert ipcw  # the primary at least
    for e in ipcw:
        assert all(e.get(k) is None for k in ("n", *ARMS, "n_clusters")), e["name"]


def test_missing_outcome_and_any_draw_arms_hide_together(results: dict[str, Any]) -> None:
    counts = results["missing_outcomes"]["counts"]
    for key in ("n_eligible", "n_measured"):
        values = [r[key] for r in counts]
        assert all(v is None for v in values) or None not in values, (key, values)
    for e in results["secondary"]:
        if e.get("by_arm"):
            values = [r["n"] for r in e["by_arm"]]
            assert all(v is None for v in values) or None not in values, (e["name"], values)
