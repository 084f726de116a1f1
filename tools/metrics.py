"""Small evaluation helpers shared by the toy zoo's training and the tests that prove scores mean something."""

from __future__ import annotations

import numpy as np


def roc_auc(scores, positive) -> float:
    """Probability that a random positive scores higher than a random negative (ties count half)."""
    scores, positive = np.asarray(scores, float), np.asarray(positive, bool)
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)
    ranks = (upper - (counts - 1) / 2)[inverse]  # average rank of each tie group, 1-based
    n_pos, n_neg = positive.sum(), (~positive).sum()
    if n_pos == 0 or n_neg == 0:
        raise ValueError("roc_auc needs both positives and negatives")
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
