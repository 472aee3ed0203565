"""reinforce_lab.stats against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from reinforce_lab import stats


def test_iqm_is_the_mean_of_the_middle_half():
    assert stats.iqm(np.arange(1, 9)) == pytest.approx(4.5)  # mean(3, 4, 5, 6)
    # Outliers at both ends are cut; order does not matter.
    assert stats.iqm([1000, 2, 7, 3, -500, 5, 6, 4]) == pytest.approx(4.5)  # mean(3, 4, 5, 6)
    assert stats.iqm([3, 4, 4, 10]) == pytest.approx(4.0)  # n=4: one cut from each end
    assert stats.iqm([1, 2, 9]) == pytest.approx(4.0)  # n<4: nothing cut, the mean
    assert np.isnan(stats.iqm([]))


def test_moving_average_is_trailing_and_partial_at_the_start():
    assert_allclose(stats.moving_average([1, 2, 3, 4], 2), [1, 1.5, 2.5, 3.5])
    assert_allclose(stats.moving_average([3, 6, 9], 100), [3, 4.5, 6])


def test_episodes_to_target_uses_full_windows_like_the_trainer():
    returns = [0, 1, 2, 3, 4]  # window-3 means after episodes 3, 4, 5: 1, 2, 3
    assert stats.episodes_to_target(returns, 2, window=3) == 4
    assert stats.episodes_to_target(returns, 3, window=3) == 5
    assert stats.episodes_to_target(returns, 3.01, window=3) is None
    assert stats.episodes_to_target([5, 5, 5], 5, window=3) == 3  # reached exactly, at the first full window
    assert stats.episodes_to_target([9, 9], 1, window=3) is None  # never a full window
    assert stats.episodes_to_target([0, 4, 0, 0], 2, window=1) == 2


def test_area_under_curve_is_the_mean_height():
    assert stats.area_under_curve([0, 10], [0, 10]) == pytest.approx(5.0)
    x = np.array([0, 1, 3, 4])  # uneven steps: y = 2x + 1, mean over [0, 4] is 5
    assert stats.area_under_curve(x, 2 * x + 1) == pytest.approx(5.0)
    # Piecewise: 0 → 2 over [0, 2], then flat at 2 over [2, 4]: area 2 + 4 = 6 over 4.
    assert stats.area_under_curve([0, 2, 4], [0, 2, 2]) == pytest.approx(1.5)
    assert stats.area_under_curve([7], [3.0]) == 3.0
    with pytest.raises(ValueError):
        stats.area_under_curve([0, 2, 1], [0, 0, 0])


def test_bootstrap_ci_contains_the_iqm_and_is_deterministic():
    x = np.random.default_rng(1).normal(10, 2, size=12)
    low, high = stats.bootstrap_ci(x, stats.iqm, seed=3)
    assert low < stats.iqm(x) < high
    assert stats.bootstrap_ci(x, stats.iqm, seed=3) == (low, high)
    assert stats.bootstrap_ci(x, stats.iqm, seed=4) != (low, high)


def test_bootstrap_ci_shrinks_with_more_runs():
    rng = np.random.default_rng(0)
    small, large = rng.normal(0, 1, size=5), rng.normal(0, 1, size=200)
    width = [np.subtract(*stats.bootstrap_ci(x, np.mean, n_boot=1000)[::-1]) for x in (small, large)]
    assert width[1] < width[0] / 2  # about sqrt(200 / 5) narrower, give or take the samples' spread


def test_bootstrap_ci_degenerate_inputs():
    assert stats.bootstrap_ci([4.2]) == (4.2, 4.2)
    assert stats.bootstrap_ci([3, 3, 3]) == (3.0, 3.0)
    assert all(np.isnan(stats.bootstrap_ci([])))


def test_bootstrap_backends_agree_and_rliable_is_seeded():
    pytest.importorskip("rliable.library")
    x = np.random.default_rng(2).normal(0, 1, size=20)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a = stats.bootstrap_ci(x, stats.iqm, n_boot=2000, backend="rliable")
    assert np.array_equal(np.random.get_state()[1], before)  # the global generator is left alone
    assert stats.bootstrap_ci(x, stats.iqm, n_boot=2000, backend="rliable") == a
    b = stats.bootstrap_ci(x, stats.iqm, n_boot=2000, backend="scipy")
    assert_allclose(a, b, atol=0.1)  # the same estimator: Monte-Carlo noise only


def test_mean_curve_with_ci():
    curves = np.array([[0.0, 1.0, 2.0], [2.0, 3.0, 4.0], [1.0, 2.0, 3.0]])
    mean, low, high = stats.mean_curve_with_ci(curves)
    assert_allclose(mean, [1, 2, 3])
    assert np.all(low <= mean) and np.all(mean <= high)
    assert np.all(low >= curves.min(0)) and np.all(high <= curves.max(0))
    mean, low, high = stats.mean_curve_with_ci(curves[:1])
    assert_allclose([mean, low, high], [[0, 1, 2]] * 3)
    # NaN means "no data for this run here": left out of the mean.
    mean, _, _ = stats.mean_curve_with_ci(np.array([[1.0, np.nan], [3.0, 5.0]]))
    assert_allclose(mean, [2, 5])


def test_resample_curve_holds_the_last_value():
    assert_allclose(stats.resample_curve(np.array([0, 10]), np.array([0, 10]), np.array([0, 5, 10, 20])),
                    [0, 5, 10, 10])
    assert np.isnan(stats.resample_curve(np.zeros(0), np.zeros(0), np.array([1.0]))).all()
