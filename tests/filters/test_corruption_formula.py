"""The corruption formula's pieces against cases whose answers are known."""

import numpy as np
import pytest

from pairsmith.filters import corruption as cx


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_percentiles_of_a_histogram_match_the_ranks_of_the_values():
    values = np.random.default_rng(0).uniform(-0.5, 0.9, 5000)
    counts = cx.histogram(values)
    probes = np.array([-0.4, 0.0, 0.3, 0.8, np.nan])
    want = [(values < p).mean() for p in probes[:-1]]
    got = cx.percentiles(probes, counts)
    assert np.allclose(got[:-1], want, atol=0.002) and np.isnan(got[-1])
    assert cx.quantile_of(counts, 0.5) == pytest.approx(np.median(values), abs=0.001)


def test_block_ranks_are_zero_for_matched_pairs_and_decoys_meet_what_a_swap_meets():
    rng = np.random.default_rng(1)
    images = _unit(rng.normal(size=(33, 16)))
    texts = _unit(images + 0.05 * rng.normal(size=images.shape))  # each caption closest to its image
    signals = cx.block_signals(images, texts)
    assert np.all(signals["caption_rank"] == 0) and np.all(signals["image_rank"] == 0)
    # a decoy is a random pair: its ranks are spread over [0, 1], its cosine is a random pair's
    assert np.all(signals["decoy_partner"] >= 0) and np.all(signals["decoy_partner"] != np.arange(33))
    assert 0.3 < np.mean(signals["decoy_caption_rank"]) < 0.7
    assert 0.3 < np.mean(signals["decoy_image_rank"]) < 0.7
    assert np.abs(signals["decoy_cosine"]).max() < 0.8
    # swapping two captions makes both rows look like their decoys
    swapped = texts.copy()
    swapped[[0, 1]] = swapped[[1, 0]]
    after = cx.block_signals(images, swapped)
    assert after["caption_rank"][0] > 0 and after["image_rank"][1] > 0


def test_a_duplicate_row_does_not_outrank_its_twin_by_a_rounding_error():
    # Duplicate rows have equal similarities, which a float32 matrix product rounds apart by a few
    # units in the last place, in a direction that depends on the BLAS build: the ranks must not.
    rng = np.random.default_rng(2)
    images = _unit(rng.normal(size=(33, 16))).astype(np.float32)
    texts = _unit(images + 0.05 * rng.normal(size=images.shape)).astype(np.float32)
    images[1], texts[1] = images[0], texts[0]  # row 1 duplicates row 0
    for nudge in (np.inf, -np.inf):  # row 1's caption a rounding error above, then below, its twin's
        nudged = texts.copy()
        nudged[1] = np.nextafter(texts[1], nudge * np.sign(images[0]))
        signals = cx.block_signals(images, nudged)
        assert signals["caption_rank"][0] == 0 and signals["image_rank"][0] == 0
        assert signals["caption_rank"][1] == 0 and signals["image_rank"][1] == 0


def test_decoys_skip_rows_with_the_same_caption_and_tiny_blocks_have_no_ranks():
    texts = _unit(np.array([[1.0, 0, 0], [1.0, 0, 0], [0, 1.0, 0]]))
    assert cx.decoy_partners(texts).tolist() == [2, 2, 0]
    assert cx.decoy_partners(texts[:2]).tolist() == [-1, -1]
    assert np.isnan(cx.block_signals(texts[:2], texts[:2])["caption_rank"]).all()


def test_evidence_weights_and_the_optional_recaption():
    e = cx.evidence([1.0, 0.0], [0.0, 1.0], [0.0, 1.0])
    assert e.tolist() == [0.0, 1.0]
    assert cx.evidence([0.5], [0.0], [0.0]).tolist() == [0.25]  # clip counts twice
    with_recaption = cx.evidence([1.0, 1.0], [0.0, 0.0], [0.0, 0.0], [0.0, np.nan])
    assert with_recaption.tolist() == [0.2, 0.0]  # the recaption disagrees in row 0 only


def _mixture(ratio: float, n: int, seed: int):
    """Evidence of a dataset with `ratio` mismatched rows: mismatched and decoys share one law."""
    rng = np.random.default_rng(seed)
    mismatched = rng.random(n) < ratio
    observed = np.where(mismatched, rng.beta(6, 3, n), rng.beta(2, 16, n))  # true pairs rarely look random
    decoys = rng.beta(6, 3, n)
    return observed, decoys, mismatched


@pytest.mark.parametrize("ratio", [0.0, 0.025, 0.1, 0.3])
def test_ratio_estimate_and_posterior_are_calibrated_on_a_known_mixture(ratio):
    observed, decoys, mismatched = _mixture(ratio, 20000, seed=int(ratio * 1000))
    o, d = cx.evidence_histogram(observed), cx.evidence_histogram(decoys)
    estimate = cx.estimate_ratio(o, d)
    assert estimate["ratio"] == pytest.approx(mismatched.mean(), abs=0.01)
    table = cx.posterior_table(o, d, estimate["ratio"])
    assert np.all(np.diff(table) >= 0) and table.min() >= 0 and table.max() <= 1
    scores = cx.posterior(observed, table)
    assert scores.mean() == pytest.approx(mismatched.mean(), abs=0.01)
    if ratio:
        confident = scores >= 0.9
        assert mismatched[confident].mean() >= 0.9  # what it calls mismatched is mismatched


@pytest.mark.parametrize("seed", range(5))
def test_on_a_small_set_the_mean_score_is_the_estimate(seed):
    # 400 rows, 40 mismatched: bins hold a few rows each, so ratio * f_decoy / f is noisy and clipping
    # it at 1 used to lose mass (the mean score fell ~2 points under the estimate)
    observed, decoys, _ = _mixture(0.1, 400, seed=seed)
    o, d = cx.evidence_histogram(observed), cx.evidence_histogram(decoys)
    ratio = cx.estimate_ratio(o, d)["ratio"]
    table = cx.posterior_table(o, d, ratio)
    assert np.all(np.diff(table) >= 0) and table.min() >= 0 and table.max() <= 1
    assert cx.posterior(observed, table).mean() == pytest.approx(ratio, abs=0.002)


def test_pool_adjacent_violators_gives_the_weighted_monotone_fit():
    fit = cx.pool_adjacent_violators(np.array([0.0, 0.5, 0.3, 1.0]), np.array([1.0, 1.0, 3.0, 1.0]))
    assert fit.tolist() == pytest.approx([0.0, 0.35, 0.35, 1.0])


def test_flags_fire_where_a_signal_alone_looks_like_a_random_pair():
    assert cx.signal_flags(0.1, 0.5, 0.0, None, 0.2, None) == ["clip_low", "caption_not_retrieved"]
    assert cx.signal_flags(0.3, 0.0, 0.0, 0.1, 0.2, 0.15) == ["recaption_disagrees"]
    assert cx.signal_flags(0.3, 0.0, 0.03, None, 0.2, None) == []


def test_rewrite_takes_captions_from_other_clusters_reproducibly():
    captions = [f"caption {i}" for i in range(200)]
    clusters = [i % 4 for i in range(200)]
    new, changed = cx.rewrite_captions(captions, clusters, 0.1, np.random.default_rng(5))
    assert sum(changed) == 20
    for i in np.flatnonzero(changed):
        source = captions.index(new[i])
        assert clusters[source] != clusters[i] and new[i] != captions[i]
    again = cx.rewrite_captions(captions, clusters, 0.1, np.random.default_rng(5))
    assert again == (new, changed)
    with pytest.raises(ValueError, match="two semantic clusters"):
        cx.rewrite_captions(captions, [0] * 200, 0.1, np.random.default_rng(5))
