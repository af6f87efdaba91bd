"""Per-protocol effect by clone-censor-weighting (results.json ``per_protocol``).

The initiation contrast of the primary keeps later Mg in the unexposed arm. This secondary
analysis estimates the per-protocol contrast of two sustained strategies instead:

- ``mg_within_grace``: Mg started within the grace period (usual care afterwards);
- ``no_mg_to_outcome``: no Mg from time zero until the outcome draw.

Every analysed episode is cloned at time zero into both strategies; a clone is censored where
its data leave its strategy (sql/per_protocol_followup.sql: ``per_protocol_clones``). The
clones still following their strategy at the outcome draw are weighted by the inverse of
their probability of having stayed uncensored, from one pooled logistic model of starting Mg
in each follow-up interval (``per_protocol_followup``: the intervals in which an episode has
not started Mg yet) on

- the pre-index adjustment set of the primary (:data:`~mgca.analysis.estimation.models.
  ADJUSTMENT_SET`, rare flags dropped by the same rule; creatinine on the log scale, sex as an
  indicator),
- the latest Mg and corrected Ca (mmol/L) drawn at or before the interval start (the re-checks;
  the index values when none is newer, the baseline values when the stay has none), whether
  each is below the study's lower limit (``mg_low_mmol_l``, ``ca_corrected_low_mmol_l``),
  whether the latest Mg was drawn within the last interval (usual care decides when a result
  arrives) and that freshness times a low Mg,
- time: one indicator per grace-period interval, and after the grace period a post-grace
  indicator with linear and quadratic hours from index (per 24 h);
- the re-check terms again times the post-grace indicator: the decision on the index result
  and the later ones on re-checks have their own slopes (the pre-index covariates share
  theirs, to keep the model small: an overfitted initiation model pulls the weights of the
  clones that follow "no Mg" towards 1 and the estimate towards the unweighted contrast).

With ``h_k`` the fitted probability of starting Mg in interval ``k`` given no Mg before it:

- a ``no_mg_to_outcome`` clone that follows its strategy has weight ``prod_k 1 / (1 - h_k)``
  over its intervals up to the outcome draw (re-checks inside and after the grace period
  enter through the latest values);
- a ``mg_within_grace`` clone can only be censored at the grace period's end; a clone that
  follows it has weight ``1 / p0``, ``p0`` the probability of starting Mg within the grace
  period given the time-zero information (a logistic model of the episode level on the same
  pre-index covariates and the index Mg and corrected Ca). Weighting this arm at the last
  grace interval only (Cain et al., Int J Biostat 2010;6:18) needs Mg to be started in that
  interval by some of every kind of patient; usual care gives almost all grace-period doses
  within 3 h of the index result, so that positivity fails and the arm would stay the
  unweighted exposed episodes. The price: a re-check inside the grace period that stops Mg
  is not in this arm's model (the report's caveat says so).

Each arm's weights are truncated at ``per_protocol.weight_truncation_percentile``. The estimate
is the difference of the weighted (Hájek) mean outcomes, ``mg_within_grace`` minus
``no_mg_to_outcome`` (albumin-corrected Ca at the primary horizon, mmol/L). Its 95 % interval
is the percentile interval of a patient-cluster bootstrap (whole patients resampled, the
initiation model refitted in every resample; pre-specified, seeded). The logistic model is
fitted by Newton-Raphson with frequency weights (the bootstrap's patient counts) and a small
ridge (:data:`RIDGE`) that keeps intervals in which nobody starts Mg finite; otherwise it is
maximum likelihood like statsmodels' GLM, and fast enough to refit a few hundred times.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mgca.analysis.estimation.models import (
    ADJUSTMENT_SET,
    BASELINE_CA,
    CLUSTER,
    LOG_COVARIATES,
    OUTCOME,
    InsufficientDataError,
    prepare_adjusted,
    recorded_covariates,
    usable_covariates,
)
from mgca.analysis.finite import finite_or_none
from mgca.analysis.privacy import (
    COMPLEMENTARY,
    SUPPRESSED_WHY_KEY,
    mark_hidden,
    suppress_record,
)
from mgca.analysis.text import per_protocol_words
from mgca.config import MgcaConfig, StudyConfig

CLONES: tuple[str, str] = ("mg_within_grace", "no_mg_to_outcome")
"""The two strategies (clone names of sql/per_protocol_followup.sql), contrast first − second."""

LATEST_MG = "latest_mg_mmol_l"
LATEST_CA = "latest_ca_corrected_mmol_l"
LATEST_MG_HOURS = "latest_mg_hours_from_index"
TIME_VARYING: tuple[str, str] = (LATEST_MG, LATEST_CA)
"""The re-checks the initiation model reads at each interval start (mmol/L)."""

COUNT_KEYS: tuple[str, ...] = (
    "n",
    "n_clusters",
    "n_mg_within_grace_followed",
    "n_mg_within_grace_censored",
    "n_no_mg_to_outcome_followed",
    "n_no_mg_to_outcome_censored",
)
"""Episode counts of the block, each hidden by the count rule when small."""

GROUP_KEYS: tuple[str, str] = ("n_mg_within_grace_followed", "n_no_mg_to_outcome_followed")
"""A hidden uncensored-clone count withholds the estimate (a mean over few episodes)."""

STAT_KEYS: tuple[str, ...] = (
    "estimate",
    "ci_low",
    "ci_high",
    "mean_mg_within_grace",
    "mean_no_mg_to_outcome",
)
"""The block's statistics (mmol/L), withheld together."""

PROBABILITY_FLOOR = 1e-6
"""Fitted probabilities are kept in [floor, 1 − floor] (floating-point safety only)."""


@dataclass(frozen=True)
class _Data:
    """Everything one fit needs, row-aligned arrays (rows: at-risk intervals)."""

    X: np.ndarray  # design of the initiation model (rows: at-risk intervals)
    started: np.ndarray  # 1.0 when Mg started in the interval
    row_episode: np.ndarray  # episode position of each row
    no_mg_follows: np.ndarray  # per episode: no_mg_to_outcome clone uncensored
    mg_follows: np.ndarray  # per episode: mg_within_grace clone uncensored
    X0: np.ndarray  # per episode: time-zero design of the grace-period model
    outcome: np.ndarray  # per episode, mmol/L
    cluster: np.ndarray  # per episode: patient position
    n_clusters: int
    covariates: list[str]


def _design(
    followup: pd.DataFrame,
    base: pd.DataFrame,
    covariates: list[str],
    grace_intervals: int,
    study: StudyConfig,
    interval_hours: int,
) -> np.ndarray:
    """Initiation-model design: intercept, grace-interval indicators, post-grace time, the
    pre-index covariates and the latest re-checks (see the module docstring)."""
    rows = followup.merge(base, on="encounter_id", how="left", validate="many_to_one")
    cols: list[np.ndarray] = [np.ones(len(rows))]
    k = rows["interval_number"].to_numpy()
    for j in range(2, grace_intervals + 1):  # interval 1 is the intercept's reference
        cols.append((k == j).astype(float))
    post = (~rows["in_grace"].astype(bool)).to_numpy().astype(float)
    t = rows["interval_start_hours"].to_numpy(dtype=float) / 24.0
    cols += [post, post * t, post * t * t]
    for col in covariates:
        values = rows[col]
        if col == "sex":
            cols.append((values.astype(str) == "M").to_numpy(dtype=float))
        elif col in LOG_COVARIATES:
            cols.append(np.log(pd.to_numeric(values).to_numpy(dtype=float)))
        else:
            cols.append(pd.to_numeric(values).astype(float).to_numpy())
    latest = {}
    for col, fallback in ((LATEST_MG, "baseline_mg_mmol_l"), (LATEST_CA, BASELINE_CA)):
        values = pd.to_numeric(rows[col]).astype(float)
        latest[col] = values.fillna(pd.to_numeric(rows[fallback]).astype(float)).to_numpy()
        cols.append(latest[col])
    # usual care acts on a result when it arrives and on whether it is low: a result newer
    # than one interval, the latest Mg / corrected Ca below the study's lower limits, and a
    # fresh low Mg
    drawn = pd.to_numeric(rows[LATEST_MG_HOURS]).astype(float).to_numpy()
    fresh = (rows["interval_start_hours"].to_numpy(dtype=float) - drawn) < interval_hours
    low_mg = latest[LATEST_MG] < study.mg_low_mmol_l
    low_ca = latest[LATEST_CA] < study.ca_corrected_low_mmol_l
    cols += [fresh.astype(float), low_mg.astype(float), low_ca.astype(float)]
    cols.append((fresh & low_mg).astype(float))
    X = np.column_stack(cols)
    # the decision on the index result and the later ones on re-checks are different
    # decisions: the re-check terms (the last six columns) have their own slopes after the
    # grace period; the pre-index covariates share theirs (fewer parameters: an overfitted
    # initiation model pulls the weights of the clones that follow "no Mg" towards 1)
    X = np.column_stack([X, X[:, -6:] * post[:, None]])
    keep = [0] + [i for i in range(1, X.shape[1]) if np.ptp(X[:, i]) > 0]
    X = X[:, keep]
    # centre and scale the non-constant columns (the fit is invariant; Newton is steadier)
    centre = X[:, 1:].mean(axis=0)
    scale = X[:, 1:].std(axis=0)
    X[:, 1:] = (X[:, 1:] - centre) / np.where(scale > 0, scale, 1.0)
    return X


def _prepare(
    cohort: pd.DataFrame, followup: pd.DataFrame, clones: pd.DataFrame, config: MgcaConfig
) -> _Data:
    adjusted = prepare_adjusted(cohort, "the per-protocol estimate")
    episodes = adjusted.data.reset_index(drop=True)
    covariates, _ = usable_covariates(episodes, recorded_covariates(episodes, ADJUSTMENT_SET)[0])
    ids = episodes["encounter_id"].astype(str)
    position = pd.Series(np.arange(len(episodes)), index=ids)
    fu = followup[followup["encounter_id"].astype(str).isin(position.index)].copy()
    fu["encounter_id"] = fu["encounter_id"].astype(str)
    fu = fu.sort_values(["encounter_id", "interval_number"]).reset_index(drop=True)
    base_cols = ["encounter_id", *covariates, "baseline_mg_mmol_l", BASELINE_CA]
    base = episodes[list(dict.fromkeys(base_cols))].assign(encounter_id=ids)
    grace_intervals = config.study.grace_hours // config.per_protocol.interval_hours
    X = _design(
        fu, base, covariates, grace_intervals, config.study, config.per_protocol.interval_hours
    )
    cl = clones.assign(encounter_id=clones["encounter_id"].astype(str))
    cl = cl[cl["encounter_id"].isin(position.index)]
    follows = cl.pivot(index="encounter_id", columns="clone", values="follows_strategy")
    follows = follows.reindex(ids).fillna(False).astype(bool)
    row_episode = position[fu["encounter_id"]].to_numpy()
    started = fu["mg_started"].astype(bool).to_numpy()
    first = fu[fu["interval_number"] == 1]
    if len(first) != len(episodes):
        raise InsufficientDataError("an analysed episode has no follow-up row at time zero")
    X0 = _design(
        first.reset_index(drop=True),
        base,
        covariates,
        1,
        config.study,
        config.per_protocol.interval_hours,
    )
    codes, _ = pd.factorize(episodes[CLUSTER])
    return _Data(
        X=X,
        started=started.astype(float),
        row_episode=row_episode,
        no_mg_follows=follows[CLONES[1]].to_numpy(),
        mg_follows=follows[CLONES[0]].to_numpy(),
        X0=X0[np.argsort(position[first["encounter_id"]].to_numpy())],
        outcome=episodes[OUTCOME].to_numpy(dtype=float),
        cluster=codes,
        n_clusters=int(codes.max()) + 1 if len(codes) else 0,
        covariates=covariates,
    )


RIDGE = 1e-3
"""Penalty on every coefficient but the intercept (columns standardised), in log-likelihood
units: keeps an interval in which nobody ever starts Mg (its indicator separates) from
driving a coefficient to infinity; a regular coefficient on hundreds of rows barely moves."""


def _logistic(
    X: np.ndarray, y: np.ndarray, freq: np.ndarray, start: np.ndarray | None = None
) -> np.ndarray:
    """Logistic coefficients with frequency weights: Newton-Raphson on the log-likelihood
    with a small ridge (:data:`RIDGE`), converged when the penalised deviance stops moving.

    Rows of weight 0 (patients a bootstrap resample left out, about 37 % of them) add
    nothing to the deviance, gradient or Hessian and are dropped before iterating; the
    Hessian is ``Xs' Xs`` with ``Xs`` the rows scaled by the square root of their weight,
    which BLAS computes as one symmetric rank-k update (half the products of ``X' W X``).
    Both change only the order of floating-point sums."""
    if not np.all(freq > 0):
        live = freq > 0
        X, y, freq = X[live], y[live], freq[live]
    beta = np.zeros(X.shape[1]) if start is None else start.copy()
    ridge = np.full(X.shape[1], RIDGE)
    ridge[0] = 0.0
    previous = np.inf
    for _ in range(100):
        eta = np.clip(X @ beta, -30, 30)
        p = 1.0 / (1.0 + np.exp(-eta))
        loss = -np.sum(freq * (y * eta - np.log1p(np.exp(eta)))) + 0.5 * ridge @ beta**2
        if abs(previous - loss) <= 1e-9 * (1.0 + abs(loss)):
            return beta
        previous = loss
        grad = X.T @ (freq * (y - p)) - ridge * beta
        Xs = X * np.sqrt(freq * p * (1 - p))[:, None]
        hess = Xs.T @ Xs + np.diag(ridge)
        beta = beta + np.linalg.solve(hess, grad)
    raise InsufficientDataError(
        "the per-protocol initiation model did not converge in 100 Newton steps"
    )


def _weights(
    d: _Data, h: np.ndarray, p0: np.ndarray, freq_episode: np.ndarray, pct: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-episode weights of the uncensored clones (0 for a censored clone), truncated:
    ``h`` the interval probabilities of starting Mg, ``p0`` each episode's probability of
    starting it within the grace period given its time-zero information."""
    n = d.outcome.size
    log_stay = np.bincount(d.row_episode, weights=np.log1p(-h), minlength=n)
    w_no = np.where(d.no_mg_follows, np.exp(-log_stay), 0.0)
    w_mg = np.where(d.mg_follows, 1.0 / p0, 0.0)
    out = []
    for w in (w_mg, w_no):
        live = (w > 0) & (freq_episode > 0)
        if pct < 100 and live.any():
            cap = np.percentile(np.repeat(w[live], freq_episode[live].astype(int)), pct)
            w = np.minimum(w, cap)
        out.append(w)
    return out[0], out[1]


def _probabilities(X: np.ndarray, beta: np.ndarray) -> np.ndarray:
    p = 1.0 / (1.0 + np.exp(-np.clip(X @ beta, -30, 30)))
    return np.clip(p, PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)


def _estimate(
    d: _Data,
    freq_rows: np.ndarray,
    freq_episode: np.ndarray,
    pct: float,
    start: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[float, float, float, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    beta = _logistic(d.X, d.started, freq_rows, None if start is None else start[0])
    gamma = _logistic(
        d.X0, d.mg_follows.astype(float), freq_episode, None if start is None else start[1]
    )
    h = _probabilities(d.X, beta)
    w_mg, w_no = _weights(d, h, _probabilities(d.X0, gamma), freq_episode, pct)
    fw_mg, fw_no = w_mg * freq_episode, w_no * freq_episode
    if fw_mg.sum() <= 0 or fw_no.sum() <= 0:
        raise InsufficientDataError("a clone arm has no episode following its strategy")
    mean_mg = float(np.sum(fw_mg * d.outcome) / fw_mg.sum())
    mean_no = float(np.sum(fw_no * d.outcome) / fw_no.sum())
    return mean_mg - mean_no, mean_mg, mean_no, w_mg, w_no, (beta, gamma)


def _weight_summary(w: np.ndarray) -> dict[str, float | None]:
    live = w[w > 0]
    if live.size == 0:
        return {"mean": None, "max": None, "p99": None, "ess": None}
    return {
        "mean": finite_or_none(float(live.mean())),
        "max": finite_or_none(float(live.max())),
        "p99": finite_or_none(float(np.percentile(live, 99))),
        "ess": finite_or_none(float(live.sum() ** 2 / np.sum(live**2))),
    }


def per_protocol_estimate(
    cohort: pd.DataFrame,
    followup: pd.DataFrame,
    clones: pd.DataFrame,
    config: MgcaConfig,
    *,
    bootstrap_replicates: int | None = None,
) -> dict[str, Any]:
    """results.json ``per_protocol`` (counts not yet suppressed: see :func:`suppress_block`).

    ``cohort``: the analytic table; ``followup``/``clones``: sql/per_protocol_followup.sql's
    tables. ``bootstrap_replicates`` overrides the config's count (benchmarks). Keys: the
    estimand words (``estimand``, ``cohort``, ``exposure_strategies``, ``outcome``,
    ``outcome_window``, ``adjustment_set``, ``method``), ``estimate``, ``ci_low``, ``ci_high``
    (mmol/L), ``mean_mg_within_grace``, ``mean_no_mg_to_outcome`` (weighted means, mmol/L),
    the counts of :data:`COUNT_KEYS`, ``weights`` (per clone arm: mean, max, 99th percentile
    and Kish effective sample size of the uncensored clones' weights), ``bootstrap``
    (replicates, failed, seed), ``notes``, and ``reason`` (why there is no estimate, else
    None).
    """
    pp = config.per_protocol
    words = per_protocol_words(config)
    out: dict[str, Any] = {
        **words,
        "adjustment_set": [*ADJUSTMENT_SET, *TIME_VARYING],
        "unit": "mmol/L",
        "estimate": None,
        "ci_low": None,
        "ci_high": None,
        "mean_mg_within_grace": None,
        "mean_no_mg_to_outcome": None,
        **dict.fromkeys(COUNT_KEYS),
        "weights": {},
        "bootstrap": {},
        "notes": [],
        "reason": None,
    }
    try:
        d = _prepare(cohort, followup, clones, config)
    except (InsufficientDataError, KeyError, ValueError) as exc:
        out["reason"] = f"no per-protocol estimate: {exc}"
        return out
    n = d.outcome.size
    out.update(
        n=n,
        n_clusters=d.n_clusters,
        n_mg_within_grace_followed=int(d.mg_follows.sum()),
        n_mg_within_grace_censored=int(n - d.mg_follows.sum()),
        n_no_mg_to_outcome_followed=int(d.no_mg_follows.sum()),
        n_no_mg_to_outcome_censored=int(n - d.no_mg_follows.sum()),
        adjustment_set=[*d.covariates, *TIME_VARYING],
    )
    ones_rows, ones_ep = np.ones(d.started.size), np.ones(n)
    try:
        est, m_mg, m_no, w_mg, w_no, beta = _estimate(
            d, ones_rows, ones_ep, pp.weight_truncation_percentile
        )
    except (InsufficientDataError, np.linalg.LinAlgError) as exc:
        out["reason"] = f"no per-protocol estimate: {exc}"
        return out
    reps = pp.bootstrap_replicates if bootstrap_replicates is None else bootstrap_replicates
    rng = np.random.default_rng(pp.bootstrap_seed)
    draws: list[float] = []
    failed = 0
    for _ in range(reps):
        counts = np.bincount(rng.integers(0, d.n_clusters, d.n_clusters), minlength=d.n_clusters)
        freq_ep = counts[d.cluster].astype(float)
        try:
            b = _estimate(d, freq_ep[d.row_episode], freq_ep, pp.weight_truncation_percentile, beta)
        except (InsufficientDataError, np.linalg.LinAlgError):
            failed += 1
            continue
        draws.append(b[0])
    out.update(
        estimate=finite_or_none(est),
        mean_mg_within_grace=finite_or_none(m_mg),
        mean_no_mg_to_outcome=finite_or_none(m_no),
        weights={CLONES[0]: _weight_summary(w_mg), CLONES[1]: _weight_summary(w_no)},
        bootstrap={"replicates": reps, "failed": failed, "seed": pp.bootstrap_seed},
    )
    if len(draws) >= max(20, reps // 2):
        lo, hi = np.percentile(draws, [2.5, 97.5])
        out.update(ci_low=finite_or_none(float(lo)), ci_high=finite_or_none(float(hi)))
    else:
        out["notes"].append(
            f"no interval: {failed} of {reps} bootstrap refits of the initiation model failed"
        )
    if failed:
        out["notes"].append(f"{failed} of {reps} bootstrap resamples failed and were skipped")
    return out


def suppress_block(block: dict[str, Any], threshold: int, rounding: str = "none") -> dict[str, Any]:
    """Copy of a ``per_protocol`` block with the count rule applied: small counts hidden (the
    rest rounded by ``rounding``), a clone arm's followed/censored pair hidden together (they
    add up to ``n``), and the statistics withheld when an uncensored-clone count is hidden
    (a weighted mean over a few episodes is itself disclosive)."""
    out = suppress_record(block, COUNT_KEYS, threshold, rounding)
    why = dict(out.get(SUPPRESSED_WHY_KEY) or {})
    for clone in CLONES:
        pair = (f"n_{clone}_followed", f"n_{clone}_censored")
        for key, other in (pair, pair[::-1]):
            if key in why and other not in why:
                why[other] = COMPLEMENTARY
    if why:
        mark_hidden(out, why, threshold)
    if set(why) & set(GROUP_KEYS):
        for key in STAT_KEYS:
            out[key] = None
        out["weights"] = {}
        out["withheld"] = f"a clone arm has fewer than {threshold} episodes following it"
    return out
