"""Summaries over the (fold, seed) runs of a table cell, and paired tests between two cells.

Two cells of a table are compared on the same (fold, seed) pairs: both methods were trained and tested on the same
data split with the same seed, so the paired differences remove the between-fold variation. Both tests are
two-sided; a cell is an *improvement* when its mean difference is positive and p < the significance level.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

# The smallest number of non-zero paired differences for which a two-sided Wilcoxon signed-rank test can reach
# p < 0.05 (its smallest exact p is 2 / 2**n: n=5 gives 0.0625, n=6 gives 0.03125).
WILCOXON_MIN_N_FOR_005 = 6


@dataclass(frozen=True)
class Summary:
    mean: float
    std: float  # sample standard deviation (ddof=1); NaN for a single run
    n: int  # runs with a defined value


def summarize(values: pd.Series | np.ndarray) -> Summary:
    """Mean, sample std and count of the defined (non-NaN) values."""
    arr = np.asarray(values, dtype=float)
    arr = arr[~np.isnan(arr)]
    n = int(arr.size)
    if n == 0:
        return Summary(float("nan"), float("nan"), 0)
    return Summary(float(arr.mean()), float(arr.std(ddof=1)) if n > 1 else float("nan"), n)


@dataclass(frozen=True)
class PairedTest:
    n_pairs: int
    mean_diff: float  # mean of (cell - reference) over the pairs
    p_ttest: float  # scipy.stats.ttest_rel, two-sided; NaN when not computable (n < 2 or no variation)
    p_wilcoxon: float  # scipy.stats.wilcoxon, two-sided; NaN when not computable

    def improves(self, alpha: float) -> bool:
        """Significantly better than the reference by the paired t-test at level alpha."""
        return self.mean_diff > 0 and not math.isnan(self.p_ttest) and self.p_ttest < alpha


def paired_test(cell: pd.Series, reference: pd.Series) -> PairedTest:
    """Paired tests of `cell` against `reference`, both indexed by (fold, seed); only pairs defined in both count."""
    joined = pd.concat({"a": cell, "b": reference}, axis=1, join="inner").dropna()
    a = joined["a"].to_numpy(dtype=float)
    b = joined["b"].to_numpy(dtype=float)
    n = int(a.size)
    if n == 0:
        return PairedTest(0, float("nan"), float("nan"), float("nan"))
    diff = a - b
    p_t = p_w = float("nan")
    with warnings.catch_warnings():
        # scipy warns on degenerate input (identical pairs, n = 1); those give NaN below.
        warnings.simplefilter("ignore", RuntimeWarning)
        if n >= 2 and np.any(diff != 0):
            p_t = float(stats.ttest_rel(a, b).pvalue)
        if np.any(diff != 0):
            p_w = wilcoxon_p(diff)
    return PairedTest(n, float(diff.mean()), p_t, p_w)


# Up to this many non-zero differences the exact null distribution is enumerated (2**n sign patterns).
EXACT_MAX_N = 16


def wilcoxon_p(diff: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired differences, as scipy.stats.wilcoxon(diff) computes it.

    Zero differences are dropped (zero_method="wilcox"). Tied |differences| (frequent for HR, a count over a
    fixed number of events) make scipy fall back to a permutation test that costs ~25 ms a call; its exact
    version, enumerating every sign pattern of the average ranks, is computed here directly instead.
    """
    diff = np.asarray(diff, dtype=float)
    diff = diff[diff != 0]
    n = diff.size
    if n == 0:
        return float("nan")
    ranks = stats.rankdata(np.abs(diff))
    if n > EXACT_MAX_N or np.unique(ranks).size == n:
        return float(stats.wilcoxon(diff).pvalue)  # no ties: scipy's exact distribution (or its normal approximation)
    observed = ranks[diff > 0].sum()
    signs = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
    null = signs @ ranks  # the positive-rank sum of every sign pattern
    tol = 1e-9 * ranks.sum()
    less = np.mean(null <= observed + tol)
    greater = np.mean(null >= observed - tol)
    return float(min(1.0, 2 * min(less, greater)))
