"""BucketBatcher: coverage, padding, bucketing, shuffling, shapes Keras can consume."""

import keras
import numpy as np
import pytest

from pipelines.core.batching import BucketBatcher, fit_data, pad_batch


def make_data(lengths, char_lengths=None):
    """Per-example arrays whose values identify the example (index + 1)."""
    char_lengths = char_lengths or [3] * len(lengths)
    words = [np.full((t,), i + 1, dtype=np.int32) for i, t in enumerate(lengths)]
    chars = []
    for i, (t, c) in enumerate(zip(lengths, char_lengths)):
        a = np.zeros((t, c), dtype=np.int32)
        a[:, :] = i + 1
        a[0, :] = np.arange(1, c + 1)  # the longest word first; others vary below
        chars.append(a)
    labels = [np.arange(1, t + 1, dtype=np.int32) * 100 + i for i, t in enumerate(lengths)]
    return {"words": words, "chars": chars}, labels


def batch_shapes(batcher, index):
    x, y = batcher[index]
    return x["words"].shape[1:] + x["chars"].shape[1:] + y.shape[1:]


def epochs(batcher, n):
    """batch_indices of n consecutive epochs."""
    out = []
    for _ in range(n):
        out.append([list(b) for b in batcher.batch_indices])
        batcher.on_epoch_end()
    return out


RAGGED = [5, 1, 9, 3, 3, 7, 2, 8, 4, 6, 1, 2, 9, 5, 3, 3, 6, 4, 7, 2, 2, 8, 5]


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("batch_size", [1, 4, 7, 23, 50])
def test_every_example_exactly_once_per_epoch(shuffle, batch_size):
    features, labels = make_data(RAGGED)
    b = BucketBatcher(features, labels, batch_size=batch_size, shuffle=shuffle, seed=3)
    assert len(b) == -(-len(RAGGED) // batch_size)
    for _ in range(3):
        seen = []
        for i in range(len(b)):
            x, y = b[i]
            assert 1 <= len(x["words"]) <= batch_size
            seen += (x["words"][:, 0] - 1).tolist()
        assert sorted(seen) == list(range(len(RAGGED)))
        assert sorted(i for batch in b.batch_indices for i in batch) == list(range(len(RAGGED)))
        b.on_epoch_end()


@pytest.mark.parametrize("shuffle", [False, True])
def test_right_padding_with_zeros_and_aligned_labels(shuffle):
    char_lengths = [(i * 7) % 5 + 1 for i in range(len(RAGGED))]
    features, labels = make_data(RAGGED, char_lengths)
    b = BucketBatcher(features, labels, batch_size=4, shuffle=shuffle, seed=1)
    for k in range(len(b)):
        x, y = b[k]
        idx = list(b.batch_indices[k])
        T = max(RAGGED[i] for i in idx)
        C = max(char_lengths[i] for i in idx)
        assert x["words"].shape == (len(idx), T)
        assert x["chars"].shape == (len(idx), T, C)
        assert y.shape == (len(idx), T)
        assert x["words"].dtype == x["chars"].dtype == y.dtype == np.int32
        for row, i in enumerate(idx):
            t, c = RAGGED[i], char_lengths[i]
            np.testing.assert_array_equal(x["words"][row, :t], features["words"][i])
            assert not x["words"][row, t:].any()
            np.testing.assert_array_equal(x["chars"][row, :t, :c], features["chars"][i])
            assert not x["chars"][row, t:].any() and not x["chars"][row, :, c:].any()
            np.testing.assert_array_equal(y[row, :t], labels[i])
            assert not y[row, t:].any()


def test_pad_batch():
    out = pad_batch([np.array([1, 2]), np.array([3, 4, 5]), np.array([6])])
    assert out.tolist() == [[1, 2, 0], [3, 4, 5], [6, 0, 0]]
    out = pad_batch([np.ones((1, 2)), np.ones((2, 1))], dtype="float32")
    assert out.dtype == np.float32
    assert out.tolist() == [[[1, 1], [0, 0]], [[1, 0], [1, 0]]]


def test_pad_batch_keeps_floats_as_float32_and_ints_as_int32():
    floats = pad_batch([np.array([[0.25, 1.5]]), np.array([[0.5, 0.75], [2.0, 0.125]])])  # float64 in
    assert floats.dtype == np.float32
    assert floats.tolist() == [[[0.25, 1.5], [0, 0]], [[0.5, 0.75], [2.0, 0.125]]]
    assert pad_batch([np.array([0.5], "float16")]).dtype == np.float32
    assert pad_batch([np.zeros((0, 7), "float32"), np.zeros((0, 7), "float32")]).shape == (2, 0, 7)
    for dtype in ("int64", "int16", "uint8", "bool"):
        out = pad_batch([np.array([1, 0, 1], dtype), np.array([1], dtype)])
        assert out.dtype == np.int32, dtype
        assert out.tolist() == [[1, 0, 1], [1, 0, 0]]
    # An explicit dtype still wins.
    assert pad_batch([np.array([0.5, 1.5])], dtype="int32").tolist() == [[0, 1]]


@pytest.mark.parametrize("shuffle", [False, True])
def test_float_features_survive_batches_ints_stay_int32(shuffle):
    """A float feature (the tagger's case_evidence: shares in [0, 1]) is batched as float32, not
    truncated to int32; the int features and labels stay int32."""
    features, labels = make_data(RAGGED)
    rng = np.random.default_rng(0)
    features["evidence"] = [rng.uniform(0, 1, size=(t, 7)).astype("float32") for t in RAGGED]
    features["doc_words"] = [np.arange(1, 3 * t + 1, dtype=np.int64) for t in RAGGED]  # int64, another length
    b = BucketBatcher(features, labels, batch_size=4, shuffle=shuffle, seed=2)
    for k in range(len(b)):
        x, y = b[k]
        idx = list(b.batch_indices[k])
        assert x["evidence"].dtype == np.float32
        assert x["words"].dtype == x["chars"].dtype == x["doc_words"].dtype == y.dtype == np.int32
        assert x["evidence"].shape == (len(idx), max(RAGGED[i] for i in idx), 7)
        assert x["doc_words"].shape == (len(idx), 3 * max(RAGGED[i] for i in idx))
        for row, i in enumerate(idx):
            t = RAGGED[i]
            np.testing.assert_array_equal(x["evidence"][row, :t], features["evidence"][i])
            assert not x["evidence"][row, t:].any()
            np.testing.assert_array_equal(x["doc_words"][row, : 3 * t], features["doc_words"][i])
    # The tf.data path declares and yields the same dtypes.
    import tensorflow as tf

    dataset = b.to_tf_dataset()
    x_spec, y_spec = dataset.element_spec
    assert x_spec["evidence"].dtype == tf.float32 and x_spec["words"].dtype == tf.int32
    assert x_spec["doc_words"].dtype == tf.int32 and y_spec.dtype == tf.int32
    (batches,) = dataset_passes(dataset, 1)
    values = np.concatenate([bx["evidence"][bx["words"] != 0] for bx, _ in batches])
    assert np.any((values > 0) & (values < 1)) and values.dtype == np.float32


@pytest.mark.parametrize("shuffle", [False, True])
def test_batches_cover_disjoint_length_ranges(shuffle):
    features, labels = make_data(RAGGED)
    b = BucketBatcher(features, labels, batch_size=4, shuffle=shuffle, seed=5)
    for batches in epochs(b, 4):
        ranges = sorted((min(RAGGED[i] for i in bt), max(RAGGED[i] for i in bt)) for bt in batches)
        for (_, hi), (lo, _) in zip(ranges, ranges[1:]):
            assert hi <= lo, ranges


@pytest.mark.parametrize("seed", range(4))
def test_jitter_never_mixes_lengths_when_buckets_fit_exactly(seed):
    lengths = [t for t in range(1, 7) for _ in range(4)]
    rng = np.random.default_rng(seed)
    lengths = rng.permutation(lengths).tolist()
    features, labels = make_data(lengths)
    b = BucketBatcher(features, labels, batch_size=4, shuffle=True, seed=seed)
    for batches in epochs(b, 3):
        for bt in batches:
            assert len({lengths[i] for i in bt}) == 1


def test_without_shuffle_batches_follow_length_order_and_stay():
    lengths = [3, 1, 2, 5, 4, 6, 2]
    features, labels = make_data(lengths)
    b = BucketBatcher(features, labels, batch_size=3, shuffle=False)
    # Sorted lengths 1 2 2 | 3 4 5 | 6: only 3 batches with distinct shapes, kept in order.
    assert [list(x) for x in b.batch_indices] == [[1, 2, 6], [0, 4, 3], [5]]
    first = [list(x) for x in b.batch_indices]
    b.on_epoch_end()
    assert [list(x) for x in b.batch_indices] == first


def test_shuffle_same_seed_same_order_different_seeds_differ():
    features, labels = make_data(RAGGED)
    a = epochs(BucketBatcher(features, labels, batch_size=3, shuffle=True, seed=11), 3)
    b = epochs(BucketBatcher(features, labels, batch_size=3, shuffle=True, seed=11), 3)
    c = epochs(BucketBatcher(features, labels, batch_size=3, shuffle=True, seed=12), 3)
    assert a == b
    assert a != c
    assert a[0] != a[1] != a[2]  # reshuffled every epoch


def padded_shapes(b):
    return [batch_shapes(b, i) for i in range(len(b))]


def check_first_two_differ(b):
    shapes = np.array(padded_shapes(b))
    varying = np.any(shapes != shapes[0], axis=0)
    assert varying.any()
    assert np.all((shapes[0] != shapes[1]) | ~varying), shapes[:2]


def test_first_two_batches_differ_in_every_varying_dimension():
    # Sorted by length, the first two batches would both be (T=3, C=4).
    lengths = [3, 3, 3, 3, 5, 5, 7, 7]
    char_lengths = [4, 4, 4, 4, 2, 2, 6, 6]
    features, labels = make_data(lengths, char_lengths)
    b = BucketBatcher(features, labels, batch_size=2, shuffle=False)
    assert batch_shapes(b, 0) != batch_shapes(b, 1)
    check_first_two_differ(b)
    assert sorted(i for bt in b.batch_indices for i in bt) == list(range(8))


def test_first_two_batches_differ_when_the_first_has_no_partner():
    # Batches (T, C): (2, 3), (2, 5), (4, 3): batch 0 shares a dimension with
    # every other one, so the pair (2, 5), (4, 3) must lead.
    features, labels = make_data([2, 2, 2, 2, 4, 4], [3, 1, 5, 2, 3, 2])
    b = BucketBatcher(features, labels, batch_size=2, shuffle=False)
    assert [sorted(x) for x in b.batch_indices] == [[2, 3], [4, 5], [0, 1]]
    check_first_two_differ(b)


@pytest.mark.parametrize("seed", range(6))
def test_first_two_batches_differ_after_shuffling(seed):
    char_lengths = [(i * 7) % 5 + 1 for i in range(len(RAGGED))]
    features, labels = make_data(RAGGED, char_lengths)
    b = BucketBatcher(features, labels, batch_size=3, shuffle=True, seed=seed)
    for _ in range(3):
        check_first_two_differ(b)
        b.on_epoch_end()


def test_labels_variants():
    features, labels = make_data([3, 1, 2, 2])
    one_d = np.array([10, 11, 12, 13])
    b = BucketBatcher(features, one_d, batch_size=2)
    for k in range(len(b)):
        x, y = b[k]
        assert y.shape == (2,)
        np.testing.assert_array_equal(y, one_d[b.batch_indices[k]])
        np.testing.assert_array_equal(y - 9, x["words"][:, 0])
    b = BucketBatcher(features, None, batch_size=2)
    out = b[0]
    assert isinstance(out, tuple) and len(out) == 1
    assert set(out[0]) == {"words", "chars"}


def test_errors():
    features, labels = make_data([3, 1, 2])
    with pytest.raises(ValueError, match="features is empty"):
        BucketBatcher({}, None)
    with pytest.raises(ValueError, match="no examples"):
        BucketBatcher({"words": [], "chars": []}, None)
    with pytest.raises(ValueError, match="feature 'chars' has 2 examples, expected 3"):
        BucketBatcher({"words": features["words"], "chars": features["chars"][:2]}, None)
    with pytest.raises(ValueError, match="2 labels for 3 examples"):
        BucketBatcher(features, labels[:2])
    with pytest.raises(ValueError, match="4 labels for 3 examples"):
        BucketBatcher(features, np.zeros(4))


def tiny_tagger():
    words = keras.Input((None,), dtype="int32", name="words")
    chars = keras.Input((None, None), dtype="int32", name="chars")
    w = keras.layers.Embedding(40, 4)(words)
    c = keras.layers.Embedding(40, 4)(chars)
    c = keras.ops.max(c, axis=2)
    h = keras.layers.Concatenate()([w, c])
    out = keras.layers.Dense(3)(h)
    model = keras.Model({"words": words, "chars": chars}, out)
    model.compile(
        optimizer="sgd",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False,
    )
    return model


def test_model_fit_consumes_batches_of_different_shapes():
    lengths = [3, 3, 3, 3, 5, 5, 7, 7, 4, 4]
    char_lengths = [4, 4, 4, 4, 2, 2, 6, 6, 3, 5]
    features, _ = make_data(lengths, char_lengths)
    labels = [np.arange(t, dtype=np.int32) % 3 for t in lengths]
    # Without the reordering, Keras would fix T=3 and C=4 from the first two batches.
    naive = [np.argsort(lengths, kind="stable")[i : i + 2] for i in range(0, 10, 2)]
    assert max(lengths[i] for i in naive[0]) == max(lengths[i] for i in naive[1])
    assert max(char_lengths[i] for i in naive[0]) == max(char_lengths[i] for i in naive[1])

    model = tiny_tagger()
    for shuffle in (False, True):
        b = BucketBatcher(features, labels, batch_size=2, shuffle=shuffle, seed=0)
        shapes = {s for s in padded_shapes(b)}
        assert len({s[0] for s in shapes}) > 1 and len({s[2] for s in shapes}) > 1
        history = model.fit(b, epochs=2, verbose=0)
        assert len(history.history["loss"]) == 2
        assert np.all(np.isfinite(history.history["loss"]))
    loss = model.evaluate(BucketBatcher(features, labels, batch_size=2), verbose=0)
    assert np.isfinite(loss)


def test_exact_lengths_batches_have_no_padding():
    features, labels = make_data(RAGGED)
    batcher = BucketBatcher(features, labels, batch_size=3, shuffle=True, seed=5, exact_lengths=True)
    for epoch in epochs(batcher, 3):
        seen = sorted(i for batch in epoch for i in batch)
        assert seen == list(range(len(RAGGED)))
        for batch in epoch:
            assert 1 <= len(batch) <= 3
            assert len({RAGGED[i] for i in batch}) == 1, batch
    # Ceil(count / batch_size) batches per distinct length.
    counts = np.bincount(RAGGED)
    assert len(batcher) == sum(-(-c // 3) for c in counts if c)
    for index in range(len(batcher)):
        x, y = batcher[index]
        assert np.all(x["words"] != 0) and np.all(y != 0)


def test_exact_lengths_changes_batches_between_epochs():
    features, labels = make_data(RAGGED * 4)
    batcher = BucketBatcher(features, labels, batch_size=3, shuffle=True, seed=5, exact_lengths=True)
    first, second = epochs(batcher, 2)
    assert first != second
    assert sorted(map(sorted, first)) != sorted(map(sorted, second))  # members change, not just order


def test_exact_lengths_without_shuffle_keeps_length_order():
    features, _ = make_data(RAGGED)
    batcher = BucketBatcher(features, None, batch_size=4, exact_lengths=True)
    lengths = [RAGGED[b[0]] for b in batcher.batch_indices]
    assert lengths == sorted(lengths)


def dataset_passes(dataset, n):
    """The batches of n passes over a tf.data dataset, as NumPy (x, y) pairs."""
    return [[keras.tree.map_structure(np.asarray, batch) for batch in dataset] for _ in range(n)]


def assert_same_batches(got, expected):
    assert len(got) == len(expected)
    for (gx, gy), (ex, ey) in zip(got, expected):
        for name in ex:
            np.testing.assert_array_equal(gx[name], ex[name])
        np.testing.assert_array_equal(gy, ey)


@pytest.mark.parametrize("exact_lengths", [False, True])
def test_tf_dataset_gives_the_pydataset_batches_and_reshuffles_per_pass(exact_lengths):
    features, labels = make_data(RAGGED, [2, 3, 4] * 7 + [5, 1])
    kwargs = dict(batch_size=4, shuffle=True, seed=3, exact_lengths=exact_lengths)
    reference = BucketBatcher(features, labels, **kwargs)
    expected = []
    for _ in range(3):
        expected.append([reference[i] for i in range(len(reference))])
        reference.on_epoch_end()

    dataset = BucketBatcher(features, labels, **kwargs).to_tf_dataset()
    assert int(dataset.cardinality()) == len(reference)
    passes = dataset_passes(dataset, 3)
    for got, want in zip(passes, expected):
        assert_same_batches(got, want)
    assert [b[0]["words"].shape for b in passes[0]] != [b[0]["words"].shape for b in passes[1]]


@pytest.mark.parametrize("exact_lengths", [False, True])
def test_an_epochs_batches_depend_only_on_seed_and_epoch(exact_lengths):
    """What makes a resumed run see the batches of the run it replaces."""
    features, labels = make_data(RAGGED, [2, 3, 4] * 7 + [5, 1])
    kwargs = dict(batch_size=4, shuffle=True, seed=3, exact_lengths=exact_lengths)
    reference = BucketBatcher(features, labels, **kwargs)
    for _ in range(2):
        reference.on_epoch_end()
    resumed = BucketBatcher(features, labels, **kwargs)
    resumed.start_at(2)
    assert_same_batches([resumed[i] for i in range(len(resumed))], [reference[i] for i in range(len(reference))])
    reference.on_epoch_end()
    expected = [reference[i] for i in range(len(reference))]
    dataset = BucketBatcher(features, labels, **kwargs)
    tf_dataset = dataset.to_tf_dataset()
    dataset.start_at(3)  # after building the dataset, as fit_resumable does
    (got,) = dataset_passes(tf_dataset, 1)
    assert_same_batches(got, expected)


def test_tf_dataset_runs_without_the_autotuner():
    """tf.data's autotuning thread sleeps up to a minute between rounds and destroying an
    epoch's iterator waits for it: with it on, an epoch's first step on full IMDB waited
    50-57 s (a native stack showed ~IteratorResource waiting on Model::OptimizeLoop)."""
    features, labels = make_data(RAGGED)
    dataset = BucketBatcher(features, labels, batch_size=4, shuffle=True).to_tf_dataset()
    assert dataset.options().autotune.enabled is False


def test_tf_dataset_of_unlabelled_and_one_label_per_example_batches():
    features, _ = make_data([3, 1, 4, 1, 5])
    (only,) = dataset_passes(BucketBatcher(features, None, batch_size=2).to_tf_dataset(), 1)
    assert [len(b) for b in only] == [1, 1, 1]
    np.testing.assert_array_equal(only[0][0]["words"], [[2], [4]])

    labels = np.array([0, 1, 0, 1, 1])
    (pairs,) = dataset_passes(BucketBatcher(features, labels, batch_size=2).to_tf_dataset(), 1)
    np.testing.assert_array_equal(np.concatenate([y for _, y in pairs]), labels[[1, 3, 0, 2, 4]])


def test_fit_data_uses_tf_data_under_tensorflow_only_for_batchers():
    import tensorflow as tf

    features, labels = make_data(RAGGED)
    batcher = BucketBatcher(features, labels, batch_size=4)
    assert isinstance(fit_data(batcher), tf.data.Dataset)
    assert fit_data(None) is None
    other = [1, 2]
    assert fit_data(other) is other


def test_model_fit_on_the_tf_dataset_sees_every_example_each_epoch():
    lengths = [3, 3, 3, 3, 5, 5, 7, 7, 4, 4]
    features, _ = make_data(lengths, [4, 4, 4, 4, 2, 2, 6, 6, 3, 5])
    labels = [np.arange(t, dtype=np.int32) % 3 for t in lengths]
    batcher = BucketBatcher(features, labels, batch_size=3, shuffle=True, seed=1)
    seen = []

    class Count(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(0)

        def on_train_batch_end(self, batch, logs=None):
            seen[-1] += 1

    model = tiny_tagger()
    history = model.fit(fit_data(batcher), epochs=3, shuffle=False, verbose=0, callbacks=[Count()])
    assert seen == [len(batcher)] * 3
    assert np.all(np.isfinite(history.history["loss"]))
