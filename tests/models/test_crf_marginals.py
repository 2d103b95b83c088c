"""CRF marginals and span (segment) probabilities against brute-force enumeration."""

import itertools

import keras
import numpy as np
import pytest
from keras import ops

from models.crf import NEG

NEG32 = np.float32(NEG)  # what float32 results hold
from tests.models.test_crf import K, T, _inputs, _path_score, _random_crf


def _posterior(crf, em_row, mask_row):
    """Real positions, every tag path over them and its probability."""
    positions = np.flatnonzero(mask_row)
    paths = np.array(list(itertools.product(range(K), repeat=len(positions))), dtype=int)
    if not len(positions):
        return positions, paths.reshape(1, 0), np.ones(1)
    scores = np.array([_path_score(crf, em_row, positions, p) for p in paths])
    return positions, paths, np.exp(scores - np.logaddexp.reduce(scores))


def _brute_marginals(crf, emissions, mask):
    out = np.zeros(emissions.shape)
    for b, (em_row, mask_row) in enumerate(zip(emissions, mask)):
        positions, paths, probs = _posterior(crf, em_row, mask_row)
        for i, t in enumerate(positions):
            out[b, t] = np.bincount(paths[:, i], weights=probs, minlength=K)
    return out


def _brute_span(crf, emissions, mask, row, start, end, tags, forbidden):
    positions, paths, probs = _posterior(crf, emissions[row], mask[row])
    inside = [i for i, t in enumerate(positions) if start <= t < end]
    if not inside:
        return None
    hit = np.all(paths[:, inside] == tags[positions[inside] - start], axis=1)
    after = [i for i, t in enumerate(positions) if t >= end]
    if after and forbidden is not None:
        hit &= ~forbidden[paths[:, after[0]]]
    return probs[hit].sum()


def _inputs_with_empty_row():
    emissions, _, mask = _inputs()
    emissions = np.concatenate([emissions, emissions[:1]])
    mask = np.concatenate([mask, np.zeros((1, T), bool)])
    return emissions, mask


def test_marginals_match_brute_force():
    crf = _random_crf()
    emissions, mask = _inputs_with_empty_row()
    marginals = ops.convert_to_numpy(crf.marginals(emissions, mask))
    assert marginals.shape == (6, T, K) and marginals.dtype == np.float32
    np.testing.assert_allclose(marginals, _brute_marginals(crf, emissions, mask), atol=1e-5, rtol=0)


def test_marginals_sum_to_one_at_real_steps_and_vanish_elsewhere():
    crf = _random_crf(seed=4)
    emissions, mask = _inputs_with_empty_row()
    marginals = ops.convert_to_numpy(crf.marginals(5.0 * emissions, mask))
    np.testing.assert_allclose(marginals.sum(axis=-1)[mask], 1.0, atol=1e-5)
    assert np.all(marginals[~mask] == 0)
    assert np.all(marginals[-1] == 0)  # the row without real tokens


def test_forward_backward_log_z_and_masked_fill():
    crf = _random_crf()
    emissions, mask = _inputs_with_empty_row()
    log_alpha, log_beta, log_z = (ops.convert_to_numpy(x) for x in crf.forward_backward(emissions, mask))
    expected = []
    for em_row, mask_row in zip(emissions, mask):
        positions = np.flatnonzero(mask_row)
        paths = itertools.product(range(K), repeat=len(positions))
        expected.append(np.logaddexp.reduce([_path_score(crf, em_row, positions, p) for p in paths])
                        if len(positions) else 0.0)
    np.testing.assert_allclose(log_z, expected, atol=1e-5, rtol=1e-5)
    # At every real step, alpha + beta sums to Z over the tags.
    lse = np.logaddexp.reduce(log_alpha + log_beta, axis=-1)
    np.testing.assert_allclose(lse[mask], np.broadcast_to(log_z[:, None], mask.shape)[mask], atol=1e-5)
    assert np.all(log_alpha[~mask] == NEG32) and np.all(log_beta[~mask] == NEG32)


def _all_spans(mask, seed=5):
    """Every span with a real token, random tags, random forbidden-next sets."""
    rng = np.random.default_rng(seed)
    spans = [(b, s, e) for b in range(len(mask)) for s in range(T) for e in range(s + 1, T + 1)
             if mask[b, s:e].any()]
    rows, starts, ends = (np.array(x, dtype="int32") for x in zip(*spans))
    tags = rng.integers(0, K, size=(len(spans), T)).astype("int32")
    tags[np.arange(T)[None] >= (ends - starts)[:, None]] = -1  # padding entries are ignored
    forbidden = rng.random((len(spans), K)) < 0.4
    return rows, starts, ends, tags, forbidden


@pytest.mark.parametrize("with_forbidden", [False, True])
def test_span_log_probs_match_brute_force(with_forbidden):
    crf = _random_crf()
    emissions, _, mask = _inputs()  # right padding, padding on both sides, a hole
    rows, starts, ends, tags, forbidden = _all_spans(mask)
    got = ops.convert_to_numpy(crf.span_log_probs(
        emissions, mask, rows, starts, ends, tags, forbidden if with_forbidden else None))
    assert got.shape == (len(rows),) and got.dtype == np.float32
    expected = [_brute_span(crf, emissions, mask, r, s, e, np.where(t < 0, 0, t),
                            f if with_forbidden else None)
                for r, s, e, t, f in zip(rows, starts, ends, tags, forbidden)]
    np.testing.assert_allclose(np.exp(got), expected, atol=1e-5, rtol=0)
    assert np.all(got <= 0)


def test_span_without_real_tokens_and_shared_lattice():
    crf = _random_crf()
    emissions, mask = _inputs_with_empty_row()
    lattice = crf.forward_backward(emissions, mask)
    # Row 3 is masked at step 0; row 5 has no real token.
    rows, starts, ends = np.array([3, 5, 0]), np.array([0, 1, 1]), np.array([1, 3, 3])
    tags = np.array([[1, 0], [0, 0], [2, 1]])
    got = ops.convert_to_numpy(
        crf.span_log_probs(emissions, mask, rows, starts, ends, tags, lattice=lattice))
    assert got[0] == NEG32 and got[1] == NEG32
    fresh = ops.convert_to_numpy(crf.span_log_probs(emissions, mask, rows, starts, ends, tags))
    np.testing.assert_array_equal(got, fresh)
    none = crf.span_log_probs(emissions, mask, np.zeros(0, "int32"), np.zeros(0, "int32"),
                              np.zeros(0, "int32"), np.zeros((0, 0), "int32"))
    assert tuple(none.shape) == (0,)


def test_entity_segment_marginals_add_up_to_the_begin_marginal():
    # Tags O, B, I. An entity starting at s ends at exactly one e, so the
    # probabilities of "B I..I on [s, e), then no I" over e sum to p(y_s = B).
    crf = _random_crf(seed=6)
    emissions, _, mask = _inputs()
    mask = mask[:3]  # full, right-padded and one-token rows
    emissions = emissions[:3]
    marginals = ops.convert_to_numpy(crf.marginals(emissions, mask))
    lengths = mask.sum(axis=1)
    spans = [(b, s, e) for b in range(3)
             for s in range(lengths[b]) for e in range(s + 1, lengths[b] + 1)]
    rows, starts, ends = (np.array(x, dtype="int32") for x in zip(*spans))
    tags = np.full((len(spans), T), 2, "int32")
    tags[:, 0] = 1
    not_inside = np.array([False, False, True])
    log_probs = crf.span_log_probs(emissions, mask, rows, starts, ends, tags, not_inside)
    probs = np.exp(ops.convert_to_numpy(log_probs))
    total = np.zeros((3, T))
    np.add.at(total, (rows, starts), probs)
    np.testing.assert_allclose(total[mask], marginals[..., 1][mask], atol=1e-5)


def test_padding_invariance_and_mask_none():
    crf = _random_crf()
    emissions, _, mask = _inputs()
    rows, starts, ends, tags, forbidden = _all_spans(mask)
    padded_em = np.concatenate([emissions, 10.0 * np.ones((5, 2, K), "float32")], axis=1)
    padded_mask = np.concatenate([mask, np.zeros((5, 2), bool)], axis=1)
    np.testing.assert_allclose(
        ops.convert_to_numpy(crf.marginals(padded_em, padded_mask))[:, :T],
        ops.convert_to_numpy(crf.marginals(emissions, mask)), atol=1e-6)
    spans = (rows, starts, ends, tags, forbidden)
    np.testing.assert_allclose(
        ops.convert_to_numpy(crf.span_log_probs(padded_em, padded_mask, *spans)),
        ops.convert_to_numpy(crf.span_log_probs(emissions, mask, *spans)), atol=1e-5)
    full = np.ones((5, T), "int32")
    np.testing.assert_allclose(ops.convert_to_numpy(crf.marginals(emissions)),
                               ops.convert_to_numpy(crf.marginals(emissions, full)), atol=1e-7)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_emissions_compute_in_float32(dtype):
    crf = _random_crf()
    emissions, _, mask = _inputs()
    half = ops.cast(emissions, dtype)
    rows, starts, ends, tags, forbidden = _all_spans(mask)
    for fn in (lambda e: crf.marginals(e, mask),
               lambda e: crf.span_log_probs(e, mask, rows, starts, ends, tags, forbidden)):
        got = fn(half)
        assert keras.backend.standardize_dtype(got.dtype) == "float32"
        want = fn(ops.cast(half, "float32"))
        np.testing.assert_allclose(ops.convert_to_numpy(got), ops.convert_to_numpy(want),
                                   rtol=1e-6, atol=1e-6)


def test_marginals_and_spans_under_tf_function_with_dynamic_shapes():
    import tensorflow as tf

    crf = _random_crf()
    emissions, _, mask = _inputs()
    rows, starts, ends, tags, forbidden = _all_spans(mask)
    marginals = tf.function(crf.marginals, input_signature=[
        tf.TensorSpec((None, None, K), tf.float32), tf.TensorSpec((None, None), tf.bool)])
    spans = tf.function(crf.span_log_probs, input_signature=[
        tf.TensorSpec((None, None, K), tf.float32), tf.TensorSpec((None, None), tf.bool),
        *[tf.TensorSpec((None,), tf.int32)] * 3, tf.TensorSpec((None, None), tf.int32),
        tf.TensorSpec((None, K), tf.bool)])
    for cut in (T, 2, 1):
        em, m = emissions[:, :cut], mask[:, :cut]
        np.testing.assert_allclose(marginals(em, m).numpy(), ops.convert_to_numpy(crf.marginals(em, m)),
                                   atol=1e-6)
        keep = ends <= cut
        args = (rows[keep], starts[keep], ends[keep], tags[keep, :cut], forbidden[keep])
        np.testing.assert_allclose(spans(em, m, *args).numpy(),
                                   ops.convert_to_numpy(crf.span_log_probs(em, m, *args)), atol=1e-6)
    # No spans at all, as for a batch without entities.
    empty = spans(emissions, mask, *[np.zeros(0, "int32")] * 3, np.zeros((0, 0), "int32"),
                  np.zeros((0, K), bool))
    assert empty.shape == (0,)
