"""Aggregate statistics over independent training runs, after Agarwal et al. (2021).

Agarwal, Schwarzer, Castro, Courville & Bellemare, "Deep Reinforcement Learning at the
Edge of the Statistical Precipice", NeurIPS 2021: with a handful of seeds, report the
interquartile mean (IQM) with a stratified-bootstrap confidence interval rather than a
bare mean or median. With one task, the stratified bootstrap is the ordinary percentile
bootstrap over runs.

Every function here is pure (NumPy arrays in, numbers or arrays out) and deterministic
given its ``seed``; ``report.py`` builds the tables and figures on top of them.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Literal

import numpy as np
from scipy import stats as _sps

Statistic = Callable[..., Any]  # scores [runs] -> number (optionally with an ``axis`` argument)


def iqm(x: np.ndarray | list[float], axis: int | None = None) -> Any:
    """Interquartile mean: the mean of the middle 50% of the values.

    As in Agarwal et al. (2021) (and rliable's ``aggregate_iqm``), this is
    ``scipy.stats.trim_mean(x, 0.25)``: ``floor(n / 4)`` values are cut from each end, so
    with fewer than 4 runs nothing is cut and the IQM equals the mean. Robust to outlier
    runs, yet less noisy than the median.

    Args:
        x: scores, one per run.
        axis: the runs' axis of a batch of score sets; None: all values are one set.
            (With ``axis``, ``scipy.stats.bootstrap`` evaluates every resample at once.)

    Returns:
        The interquartile mean (NaN for no values); an array of them when ``axis`` is given.
    """
    if axis is not None:
        return _sps.trim_mean(np.asarray(x, dtype=float), 0.25, axis=axis)
    x = np.asarray(x, dtype=float).ravel()
    return float(_sps.trim_mean(x, 0.25)) if x.size else float("nan")


def bootstrap_ci(x: np.ndarray | list[float], statistic: Statistic = iqm, n_boot: int = 2000,
                 confidence: float = 0.95, seed: int = 0,
                 backend: Literal["scipy", "rliable"] = "scipy") -> tuple[float, float]:
    """Percentile bootstrap confidence interval of ``statistic`` over runs.

    This is the stratified bootstrap of Agarwal et al. (2021) for a single task: runs
    are resampled with replacement ``n_boot`` times and the interval is the
    ``(1 ± confidence) / 2`` percentiles of the resampled statistic.

    The default backend is ``scipy.stats.bootstrap(method="percentile")``. ``"rliable"``
    runs the paper's reference code (``rliable.library.get_interval_estimates``) for
    cross-checks; it is not the default because rliable 1.2.0 draws its resamples from
    NumPy's *global* generator whatever ``random_state`` it is given (so it is seeded here
    by swapping the global state in and out), and its dependency ``arch`` fails to import
    under pandas 3. Both backends compute the same estimator; their bounds differ only by
    Monte-Carlo noise.

    Args:
        x: scores, one per run.
        statistic: maps a 1-D array of scores to a number (default :func:`iqm`); if it
            takes an ``axis`` argument, like :func:`iqm` and ``np.mean``, the scipy
            backend evaluates all resamples in one call.
        n_boot: bootstrap replications.
        confidence: coverage of the interval, e.g. 0.95.
        seed: seed of the resampling; the same seed gives the same interval.
        backend: ``"scipy"`` or ``"rliable"``.

    Returns:
        ``(low, high)``. With one run, or all runs equal, there is nothing to resample
        and the interval is ``(statistic(x), statistic(x))``; with none, ``(nan, nan)``.
    """
    x = np.asarray(x, dtype=float).ravel()
    if x.size == 0:
        return float("nan"), float("nan")
    if x.size == 1 or np.ptp(x) == 0:
        point = float(statistic(x))
        return point, point
    if backend == "rliable":
        return _ci_rliable(x, statistic, n_boot, confidence, seed)
    if backend != "scipy":
        raise ValueError(f"backend must be 'scipy' or 'rliable', not {backend!r}")
    res = _sps.bootstrap((x,), statistic, n_resamples=n_boot, confidence_level=confidence,
                         method="percentile", random_state=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _ci_rliable(x: np.ndarray, statistic: Statistic, n_boot: int, confidence: float,
                seed: int) -> tuple[float, float]:
    from rliable import library as rly

    saved = np.random.get_state()
    np.random.seed(seed)  # rliable's StratifiedBootstrap.update_indices uses np.random.choice
    try:
        with warnings.catch_warnings():
            # arch (under rliable) warns that RandomState is deprecated; it is still what rliable takes.
            warnings.simplefilter("ignore", FutureWarning)
            _, intervals = rly.get_interval_estimates(
                {"x": x.reshape(-1, 1)},  # [runs, tasks=1]
                lambda scores: np.array([statistic(scores[:, 0])]),
                method="percentile", reps=n_boot, confidence_interval_size=confidence,
                random_state=np.random.RandomState(seed))
    finally:
        np.random.set_state(saved)  # leave the caller's global generator as it was
    low, high = intervals["x"][:, 0]
    return float(low), float(high)


def moving_average(x: np.ndarray | list[float], window: int) -> np.ndarray:
    """Trailing moving average; the first ``window - 1`` entries average what exists so far.

    Entry ``i`` is ``mean(x[max(0, i - window + 1) : i + 1])``, what the trainer logs as
    ``train/return_mean_100`` after episode ``i + 1``.

    Args:
        x: per-episode values in episode order.
        window: number of episodes averaged (at least 1).

    Returns:
        An array as long as ``x``.
    """
    x = np.asarray(x, dtype=float).ravel()
    window = max(int(window), 1)
    csum = np.concatenate([[0.0], np.cumsum(x)])
    idx = np.arange(1, x.size + 1)
    start = np.maximum(idx - window, 0)
    return (csum[idx] - csum[start]) / (idx - start)


def episodes_to_target(returns: np.ndarray | list[float], target: float, window: int = 100) -> int | None:
    """First episode at which the mean of the last ``window`` returns reaches ``target``.

    The same rule as the trainer's ``solved_at_episode`` (and gymnasium's "solved"):
    only full windows count, so nothing is solved before episode ``window``.

    Args:
        returns: per-episode returns in episode order.
        target: the return to reach (``>=``).
        window: episodes in the moving average.

    Returns:
        The 1-based episode number, or None if the target is never reached.
    """
    x = np.asarray(returns, dtype=float).ravel()
    window = max(int(window), 1)
    if x.size < window:
        return None
    means = np.lib.stride_tricks.sliding_window_view(x, window).mean(axis=1)  # means[k]: episodes k+1..k+window
    hits = np.flatnonzero(means >= target)
    return int(hits[0]) + window if hits.size else None


def area_under_curve(steps: np.ndarray | list[float], returns: np.ndarray | list[float]) -> float:
    """Normalised area under a learning curve: its mean return over the x-range.

    The trapezoid area divided by ``steps[-1] - steps[0]``, so the result is in units of
    return and curves over different budgets stay comparable. A summary of sample
    efficiency: a run that learns sooner has a larger area.

    Args:
        steps: increasing x values (env steps or episodes).
        returns: the curve's y value at each step.

    Returns:
        The mean height of the curve; the single value for a one-point curve; NaN for none.
    """
    x = np.asarray(steps, dtype=float).ravel()
    y = np.asarray(returns, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"steps and returns differ in length: {x.size} vs {y.size}")
    if x.size == 0:
        return float("nan")
    if x.size == 1 or x[-1] == x[0]:
        return float(y.mean())
    if np.any(np.diff(x) < 0):
        raise ValueError("steps must be increasing")
    area = np.sum((y[1:] + y[:-1]) / 2 * np.diff(x))  # trapezoid rule
    return float(area / (x[-1] - x[0]))


def mean_curve_with_ci(curves: np.ndarray, confidence: float = 0.95, n_boot: int = 2000,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean of several runs' curves on a common x grid, with a pointwise bootstrap CI.

    Runs (rows) are resampled with replacement ``n_boot`` times, the same resample for
    every x so each bootstrap curve is a coherent mean curve; the band is the
    ``(1 ± confidence) / 2`` percentiles of those means at each x (percentile bootstrap,
    as in Agarwal et al. 2021, applied to the mean). NaN marks "no data for this run at
    this x" and is left out of the means. With one run the band collapses onto the curve.

    Args:
        curves: ``[runs, points]`` values on a shared x grid.
        confidence: coverage of the band.
        n_boot: bootstrap replications.
        seed: seed of the resampling.

    Returns:
        ``(mean, low, high)``, each ``[points]``.
    """
    curves = np.atleast_2d(np.asarray(curves, dtype=float))  # [R, P]
    valid = np.isfinite(curves)
    values = np.where(valid, curves, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = values.sum(0) / valid.sum(0)
    if curves.shape[0] == 1:
        return mean, mean.copy(), mean.copy()
    # A resample is a count per run; weighted sums give every bootstrap mean curve at once
    # without materialising [n_boot, runs, points].
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(curves.shape[0], np.full(curves.shape[0], 1 / curves.shape[0]), size=n_boot)  # [B, R]
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = (counts @ values) / (counts @ valid)  # [B, P]; NaN where a resample has no data
    alpha = (1 - confidence) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns stay NaN
        low, high = np.nanpercentile(boot, [100 * alpha, 100 * (1 - alpha)], axis=0)
    return mean, low, high


def resample_curve(x: np.ndarray, y: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """A curve's values on ``grid`` by linear interpolation, held flat outside its x-range.

    Holding the last value matters for runs that stop early once they reach the target
    return: their curve stays at its final level instead of dropping out of the mean
    (which would leave only the slower runs at the right end of a plot).

    Args:
        x: increasing x values of the curve.
        y: its values.
        grid: where to evaluate it.

    Returns:
        ``[len(grid)]`` values (all NaN for an empty curve).
    """
    x = np.asarray(x, dtype=float)
    if x.size == 0:
        return np.full(len(grid), np.nan)
    return np.interp(grid, x, np.asarray(y, dtype=float))
