import itertools

import keras
import numpy as np
import pytest
from keras import ops

from models.crf import CRF

K = 3
T = 4


def _random_crf(seed=0, num_tags=K):
    rng = np.random.default_rng(seed)
    crf = CRF(num_tags)
    crf.build((None, None, num_tags))
    crf.set_weights(
        [
            rng.normal(size=(num_tags, num_tags)).astype("float32"),
            rng.normal(size=(num_tags,)).astype("float32"),
            rng.normal(size=(num_tags,)).astype("float32"),
        ]
    )
    return crf


def _inputs(seed=1):
    rng = np.random.default_rng(seed)
    emissions = rng.normal(size=(5, T, K)).astype("float32")
    tags = rng.integers(0, K, size=(5, T)).astype("int32")
    mask = np.array(
        [
            [1, 1, 1, 1],  # full length
            [1, 1, 1, 0],  # right-padded
            [1, 0, 0, 0],  # length 1
            [0, 1, 1, 0],  # padding on both sides
            [1, 0, 1, 1],  # a hole: transitions link the real tokens around it
        ],
        dtype=bool,
    )
    return emissions, tags, mask


def _path_score(crf, em_row, positions, path):
    trans, start, end = (np.asarray(w, dtype="float64") for w in crf.get_weights())
    score = start[path[0]] + end[path[-1]]
    score += sum(em_row[p, t] for p, t in zip(positions, path))
    score += sum(trans[a, b] for a, b in zip(path[:-1], path[1:]))
    return score


def _brute_force(crf, emissions, tags, mask):
    """Per row: log Z, gold score and best path, by enumerating all paths."""
    results = []
    for em_row, tag_row, mask_row in zip(emissions, tags, mask):
        positions = np.flatnonzero(mask_row)
        paths = list(itertools.product(range(K), repeat=len(positions)))
        scores = np.array([_path_score(crf, em_row, positions, p) for p in paths])
        log_z = np.logaddexp.reduce(scores)
        gold = _path_score(crf, em_row, positions, tuple(tag_row[positions]))
        best = np.zeros(len(mask_row), dtype="int32")
        best[positions] = paths[int(np.argmax(scores))]
        results.append((log_z, gold, best))
    return results


def test_log_likelihood_matches_brute_force():
    crf = _random_crf()
    emissions, tags, mask = _inputs()
    ll = ops.convert_to_numpy(crf.log_likelihood(emissions, tags, mask))
    assert ll.shape == (5,)
    expected = [gold - log_z for log_z, gold, _ in _brute_force(crf, emissions, tags, mask)]
    np.testing.assert_allclose(ll, expected, rtol=1e-5, atol=1e-5)


def test_probabilities_sum_to_one():
    crf = _random_crf()
    emissions, _, mask = _inputs()
    for em_row, mask_row in zip(emissions, mask):
        positions = np.flatnonzero(mask_row)
        paths = list(itertools.product(range(K), repeat=len(positions)))
        all_tags = np.zeros((len(paths), T), dtype="int32")
        all_tags[:, positions] = paths
        batch_em = np.repeat(em_row[None], len(paths), axis=0)
        batch_mask = np.repeat(mask_row[None], len(paths), axis=0)
        ll = ops.convert_to_numpy(crf.log_likelihood(batch_em, all_tags, batch_mask))
        np.testing.assert_allclose(np.exp(ll).sum(), 1.0, rtol=1e-5)


def test_loss_is_mean_negative_log_likelihood():
    crf = _random_crf()
    emissions, tags, mask = _inputs()
    ll = ops.convert_to_numpy(crf.log_likelihood(emissions, tags, mask))
    loss = ops.convert_to_numpy(crf.loss(emissions, tags, mask))
    assert loss.shape == ()
    np.testing.assert_allclose(loss, -ll.mean(), rtol=1e-6)


def test_decode_matches_brute_force_and_zeroes_padding():
    crf = _random_crf()
    emissions, tags, mask = _inputs()
    decoded = ops.convert_to_numpy(crf.decode(emissions, mask))
    assert decoded.shape == (5, T)
    assert decoded.dtype == np.int32
    expected = np.stack([best for _, _, best in _brute_force(crf, emissions, tags, mask)])
    np.testing.assert_array_equal(decoded, expected)
    assert np.all(decoded[~mask] == 0)


def test_decode_uses_transitions():
    # Emissions favour tag 0 everywhere, but 0 -> 0 is forbidden in effect.
    crf = CRF(2)
    crf.build((None, None, 2))
    trans = np.array([[-100.0, 0.0], [0.0, 0.0]], dtype="float32")
    crf.set_weights([trans, np.zeros(2, "float32"), np.zeros(2, "float32")])
    emissions = np.array([[[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]], dtype="float32")
    decoded = ops.convert_to_numpy(crf.decode(emissions, np.ones((1, 3), bool)))
    np.testing.assert_array_equal(decoded, [[0, 1, 0]])


def test_padding_invariance():
    crf = _random_crf()
    emissions, tags, mask = _inputs()
    rng = np.random.default_rng(2)
    extra = 3
    padded_em = np.concatenate(
        [emissions, 10.0 * rng.normal(size=(5, extra, K)).astype("float32")], axis=1
    )
    # Labels at padding are ignored, even out-of-range ones.
    padded_tags = np.concatenate([tags, np.full((5, extra), -1, "int32")], axis=1)
    padded_mask = np.concatenate([mask, np.zeros((5, extra), bool)], axis=1)

    ll = ops.convert_to_numpy(crf.log_likelihood(emissions, tags, mask))
    padded_ll = ops.convert_to_numpy(crf.log_likelihood(padded_em, padded_tags, padded_mask))
    np.testing.assert_allclose(padded_ll, ll, rtol=1e-5, atol=1e-5)

    decoded = ops.convert_to_numpy(crf.decode(emissions, mask))
    padded_decoded = ops.convert_to_numpy(crf.decode(padded_em, padded_mask))
    np.testing.assert_array_equal(padded_decoded[:, :T], decoded)
    assert np.all(padded_decoded[:, T:] == 0)


def test_mask_none_means_no_padding_and_accepts_int_mask():
    crf = _random_crf()
    emissions, tags, _ = _inputs()
    full = np.ones((5, T), dtype="int32")
    np.testing.assert_allclose(
        ops.convert_to_numpy(crf.log_likelihood(emissions, tags)),
        ops.convert_to_numpy(crf.log_likelihood(emissions, tags, full)),
        rtol=1e-6,
    )
    np.testing.assert_array_equal(
        ops.convert_to_numpy(crf.decode(emissions)),
        ops.convert_to_numpy(crf.decode(emissions, full)),
    )


def test_all_padding_row_is_finite():
    crf = _random_crf()
    emissions, tags, mask = _inputs()
    mask = mask.copy()
    mask[0] = False
    ll = ops.convert_to_numpy(crf.log_likelihood(emissions, tags, mask))
    assert np.all(np.isfinite(ll))
    assert np.all(ops.convert_to_numpy(crf.decode(emissions, mask))[0] == 0)


def test_half_precision_emissions_compute_in_float32():
    crf = _random_crf()
    emissions, tags, mask = _inputs()
    half = emissions.astype("float16")
    loss = crf.loss(half, tags, mask)
    assert keras.backend.standardize_dtype(loss.dtype) == "float32"
    expected = crf.loss(half.astype("float32"), tags, mask)
    np.testing.assert_allclose(
        ops.convert_to_numpy(loss), ops.convert_to_numpy(expected), rtol=1e-6
    )


def test_call_is_identity_and_output_shape():
    crf = CRF(K)
    emissions, _, mask = _inputs()
    out = crf(emissions, mask=mask)
    np.testing.assert_array_equal(ops.convert_to_numpy(out), emissions)
    assert crf.compute_output_shape((None, None, K)) == (None, None, K)
    assert [w.shape for w in crf.weights] == [(K, K), (K,), (K,)]


def test_get_config_round_trip():
    crf = CRF(7, name="my_crf")
    config = crf.get_config()
    assert config["num_tags"] == 7
    restored = CRF.from_config(config)
    assert restored.num_tags == 7
    assert restored.name == "my_crf"
    assert restored.get_config() == config


def _functional_model(seed=0):
    inputs = keras.Input(shape=(None, 5))
    logits = keras.layers.Dense(K, name="logits")(inputs)
    outputs = CRF(K, name="crf")(logits)
    model = keras.Model(inputs, outputs)
    crf_weights = _random_crf(seed).get_weights()
    model.get_layer("crf").set_weights(crf_weights)
    return model


def test_keras_save_load_round_trip(tmp_path):
    model = _functional_model()
    x = np.random.default_rng(3).normal(size=(2, 6, 5)).astype("float32")
    mask = np.array([[1] * 6, [1, 1, 1, 0, 0, 0]], dtype=bool)
    decoded = ops.convert_to_numpy(model.get_layer("crf").decode(model(x), mask))

    path = tmp_path / "crf_model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    crf = loaded.get_layer("crf")
    assert isinstance(crf, CRF)
    for a, b in zip(model.get_layer("crf").get_weights(), crf.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ops.convert_to_numpy(crf.decode(loaded(x), mask)), decoded)


class ToyTagger(keras.Model):
    def __init__(self, num_tags, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(num_tags)
        self.crf = CRF(num_tags)

    def call(self, x):
        return self.crf(self.dense(x))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return self.crf.loss(y_pred, y, self.token_mask(x))

    @staticmethod
    def token_mask(x):
        # Padding tokens are all-zero feature vectors.
        return ops.any(ops.not_equal(x, 0), axis=-1)


def test_training_step_learns_tags():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    vocab, batch, time = 6, 16, 5
    token_ids = rng.integers(1, vocab, size=(batch, time))
    lengths = rng.integers(2, time + 1, size=batch)
    mask = np.arange(time)[None] < lengths[:, None]
    token_ids = np.where(mask, token_ids, 0)
    x = np.eye(vocab, dtype="float32")[token_ids]
    x[~mask] = 0.0
    y = np.where(mask, token_ids % K, 0).astype("int32")

    model = ToyTagger(K)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.1))
    history = model.fit(x, y, batch_size=batch, epochs=30, verbose=0, shuffle=False)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.25 * losses[0]

    decoded = ops.convert_to_numpy(model.crf.decode(model(x), mask))
    np.testing.assert_array_equal(decoded, y)


@pytest.mark.parametrize("num_tags", [0, -1, 2.5, "3", None, True])
def test_bad_num_tags_raises(num_tags):
    with pytest.raises(ValueError, match="num_tags"):
        CRF(num_tags)


def test_build_rejects_wrong_emission_size():
    with pytest.raises(ValueError, match="last dimension"):
        CRF(3).build((None, None, 4))


def test_one_step_sequences_and_empty_rows():
    # A batch of one-token sentences runs the forward loop zero times.
    crf = _random_crf()
    emissions, tags, _ = _inputs()
    one = emissions[:, :1]
    ll = ops.convert_to_numpy(crf.log_likelihood(one, tags[:, :1]))
    trans, start, end = crf.get_weights()
    scores = start[None] + one[:, 0] + end[None]
    expected = scores[np.arange(5), tags[:, 0]] - np.logaddexp.reduce(scores, axis=1)
    np.testing.assert_allclose(ll, expected, rtol=1e-5, atol=1e-5)

    empty = np.zeros((5, 1), bool)
    empty[1] = True
    ll = ops.convert_to_numpy(crf.log_likelihood(one, tags[:, :1], empty))
    assert ll[0] == 0 and ll[2] == 0 and ll[1] == pytest.approx(expected[1], abs=1e-5)


def test_log_likelihood_under_tf_function_with_dynamic_time():
    import tensorflow as tf

    crf = _random_crf()
    emissions, tags, mask = _inputs()
    fn = tf.function(crf.log_likelihood, input_signature=[
        tf.TensorSpec((None, None, K), tf.float32), tf.TensorSpec((None, None), tf.int32),
        tf.TensorSpec((None, None), tf.bool)])
    for cut in (T, 2, 1):
        np.testing.assert_allclose(
            fn(emissions[:, :cut], tags[:, :cut], mask[:, :cut]).numpy(),
            ops.convert_to_numpy(crf.log_likelihood(emissions[:, :cut], tags[:, :cut], mask[:, :cut])),
            rtol=1e-5, atol=1e-5)


def _member_crfs(seed=3, members=2):
    """A CRF of `members` members and the single CRFs holding each member's weights."""
    rng = np.random.default_rng(seed)
    weights = [rng.normal(size=(members,) + shape).astype("float32") for shape in ((K, K), (K,), (K,))]
    ensemble = CRF(K, members=members)
    ensemble.build((None, None, members, K))
    ensemble.set_weights(weights)
    singles = []
    for m in range(members):
        single = CRF(K)
        single.build((None, None, K))
        single.set_weights([w[m] for w in weights])
        singles.append(single)
    return ensemble, singles, weights


def test_members_loss_is_the_sum_of_each_members_own_loss():
    ensemble, singles, _ = _member_crfs()
    rng = np.random.default_rng(4)
    _, tags, mask = _inputs()
    emissions = rng.normal(size=(5, T, 2, K)).astype("float32")
    expected = sum(float(s.loss(emissions[:, :, m], tags, mask)) for m, s in enumerate(singles))
    np.testing.assert_allclose(float(ensemble.loss(emissions, tags, mask)), expected, rtol=1e-5)
    # Each member's gradient reaches only its own transitions: the loss is separable.
    assert ensemble.get_weights()[0].shape == (2, K, K)


def test_members_decode_the_mean_scores_with_the_mean_transitions():
    ensemble, _, weights = _member_crfs(members=3)
    emissions, _, mask = _inputs()
    combined = CRF(K)
    combined.build((None, None, K))
    combined.set_weights([w.mean(axis=0) for w in weights])
    for a, b in zip(ensemble._weights_float32(), combined._weights_float32()):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(ensemble.decode(emissions, mask)),
                                  np.asarray(combined.decode(emissions, mask)))
    _, tags, _ = _inputs()
    np.testing.assert_allclose(np.asarray(ensemble.log_likelihood(emissions, tags, mask)),
                               np.asarray(combined.log_likelihood(emissions, tags, mask)), rtol=1e-5)


def test_members_round_trip_and_older_configs_load(tmp_path):
    ensemble, _, _ = _member_crfs()
    config = ensemble.get_config()
    assert config["members"] == 2 and CRF.from_config(config).members == 2
    assert "members" not in CRF(K).get_config()  # a single CRF saves what it always saved


@pytest.mark.parametrize("members", [0, 1.5, True, "2"])
def test_bad_members_raises(members):
    with pytest.raises(ValueError, match="members"):
        CRF(K, members=members)
