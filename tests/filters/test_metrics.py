import numpy as np
import pytest

from tools.metrics import roc_auc


def test_roc_auc_matches_the_pairwise_definition():
    rng = np.random.default_rng(0)
    scores = np.round(rng.normal(size=200), 1)  # many ties
    positive = rng.random(200) < 0.3
    pos, neg = scores[positive], scores[~positive]
    pairwise = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert roc_auc(scores, positive) == pytest.approx(pairwise)
    assert roc_auc([0.1, 0.9], [False, True]) == 1.0
    assert roc_auc([0.9, 0.1], [False, True]) == 0.0
    with pytest.raises(ValueError):
        roc_auc([0.1, 0.2], [True, True])
