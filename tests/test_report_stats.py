"""Cell summaries and paired tests, against scipy and hand-computed values."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from sa2c.report.stats import paired_test, summarize, wilcoxon_p


def _by_pair(values):
    index = pd.MultiIndex.from_tuples([(f, s) for f in range(3) for s in range(2)], names=["fold", "seed"])
    return pd.Series(values, index=index, dtype=float)


def test_summary_is_mean_sample_std_and_count_of_defined_values():
    s = summarize([0.1, 0.2, float("nan"), 0.6])
    assert s.n == 3
    assert s.mean == pytest.approx(0.3)
    assert s.std == pytest.approx(statistics.stdev([0.1, 0.2, 0.6]))
    one = summarize([0.4])
    assert one.n == 1 and one.mean == 0.4 and math.isnan(one.std)
    assert summarize([float("nan")]).n == 0


def test_paired_tests_equal_scipy_on_hand_chosen_pairs():
    base = [0.20, 0.21, 0.19, 0.22, 0.20, 0.21]
    better = [0.23, 0.235, 0.225, 0.25, 0.228, 0.242]
    test = paired_test(_by_pair(better), _by_pair(base))
    assert test.n_pairs == 6
    assert test.mean_diff == pytest.approx(np.mean(np.subtract(better, base)))
    assert test.p_ttest == pytest.approx(scipy_stats.ttest_rel(better, base).pvalue, rel=1e-12)
    assert test.p_wilcoxon == pytest.approx(scipy_stats.wilcoxon(better, base).pvalue, rel=1e-12)
    # All six differences positive: the exact two-sided signed-rank p is 2 / 2**6.
    assert test.p_wilcoxon == pytest.approx(2 / 64)
    assert test.improves(0.05)
    assert not paired_test(_by_pair(base), _by_pair(better)).improves(0.05)  # significant, but worse


def test_pairs_are_matched_by_fold_and_seed_not_position():
    a = _by_pair([1.0, 2.0, 3.0, 4.0, 5.0, 6.5])
    b = _by_pair([0.5, 1.0, 2.0, 3.5, 4.0, 6.0])
    assert paired_test(a, b).p_ttest == pytest.approx(paired_test(a.iloc[::-1], b).p_ttest)


def test_wilcoxon_with_ties_and_zeros_equals_scipy():
    rng = np.random.default_rng(3)
    for _ in range(20):
        diff = np.round(rng.normal(0.01, 0.02, size=int(rng.integers(3, 10))), 2)  # rounded: ties and zeros
        if not np.any(diff != 0):
            continue
        assert wilcoxon_p(diff) == pytest.approx(scipy_stats.wilcoxon(diff).pvalue, rel=1e-9), diff


def test_degenerate_pairs_give_nan_not_an_error():
    same = paired_test(_by_pair([0.2] * 6), _by_pair([0.2] * 6))
    assert math.isnan(same.p_ttest) and math.isnan(same.p_wilcoxon) and not same.improves(0.05)
    single = paired_test(pd.Series([0.3], index=[(0, 0)]), pd.Series([0.2], index=[(0, 0)]))
    assert single.n_pairs == 1 and math.isnan(single.p_ttest)
    with_undefined = paired_test(_by_pair([0.3, float("nan"), 0.3, 0.4, 0.5, 0.6]), _by_pair([0.2] * 6))
    assert with_undefined.n_pairs == 5
