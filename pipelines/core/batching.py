"""Length-bucketing batches of right-padded NumPy arrays, shared by both tasks."""

import itertools

import keras
import numpy as np


def pad_batch(arrays, dtype=None):
    """Right-pads a list of 1-D (time,) or 2-D (time, chars) arrays with 0; `dtype`: float32
    for float arrays, else int32."""
    first = arrays[0]
    dtype = dtype or ("float32" if first.dtype.kind == "f" else "int32")
    shape = (len(arrays),) + tuple(
        max(a.shape[d] for a in arrays) for d in range(first.ndim)
    )
    out = np.zeros(shape, dtype=dtype)
    for i, a in enumerate(arrays):
        out[(i,) + tuple(slice(0, n) for n in a.shape)] = a
    return out


class BucketBatcher(keras.utils.PyDataset):
    """Batches examples of similar length so little padding is computed.

    Examples are sorted by length (with seeded jitter when shuffling, so
    batches change between epochs) and cut into batches; the batch order is
    shuffled. An epoch's batches depend only on (seed, epoch), so a resumed
    run (`start_at`) sees the batches the interrupted one would have. Without shuffling, batches follow length order and
    `batch_indices[i]` tells which examples batch `i` holds.

    With `exact_lengths=True` a batch only holds examples of one length, so
    its first feature has no padding at all: a model can then run its
    recurrent layers without a mask, which is what lets Keras pick the cuDNN
    kernel under JAX and torch. Rare lengths give smaller batches.

    Args:
        features: dict name -> list of per-example arrays (1-D or 2-D).
        labels: None, a list of per-example arrays (sequence labels) or a 1-D
            array (one label per example).
        batch_size: int, examples per batch.
        shuffle: bool.
        seed: int, seed of the shuffling.
        exact_lengths: bool, batches of equal-length examples only.
    """

    def __init__(self, features, labels=None, batch_size=32, shuffle=False, seed=0, exact_lengths=False,
                 **kwargs):
        super().__init__(**kwargs)
        names = list(features)
        if not names:
            raise ValueError("features is empty")
        self.size = len(features[names[0]])
        if self.size == 0:
            raise ValueError("no examples to batch")
        for name in names:
            if len(features[name]) != self.size:
                raise ValueError(f"feature {name!r} has {len(features[name])} examples, expected {self.size}")
        if labels is not None and len(labels) != self.size:
            raise ValueError(f"{len(labels)} labels for {self.size} examples")
        if labels is not None and not isinstance(labels[0], np.ndarray):
            labels = np.asarray(labels)  # one label per example
        self.features = features
        self.labels = labels
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.exact_lengths = bool(exact_lengths)
        self.seed = int(seed)
        self.epoch = 0
        self._first_epoch = 0  # of the next fit, for the tf.data generator
        self.lengths = np.array([len(a) for a in features[names[0]]])
        # Per-example shapes of every feature, to know each batch's padded shape.
        self._shapes = np.concatenate(
            [np.array([a.shape for a in features[name]]).reshape(self.size, -1) for name in names],
            axis=1,
        )
        self.batch_indices = []
        self._make_batches()

    def _make_batches(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.shuffle:
            # Jitter of under one length step keeps buckets tight but varied.
            keys = self.lengths + rng.uniform(0, 1, self.size)
        else:
            keys = self.lengths
        order = np.argsort(keys, kind="stable")
        if self.exact_lengths:
            # Jitter never reorders different lengths, so each length is a run of `order`.
            sorted_lengths = self.lengths[order]
            starts = np.flatnonzero(np.r_[True, sorted_lengths[1:] != sorted_lengths[:-1]])
            runs = np.split(order, starts[1:])
            batches = [run[i : i + self.batch_size] for run in runs for i in range(0, len(run), self.batch_size)]
        else:
            batches = [order[i : i + self.batch_size] for i in range(0, self.size, self.batch_size)]
        if self.shuffle:
            rng.shuffle(batches)
        self.batch_indices = self._distinct_shapes_first(batches)

    def _distinct_shapes_first(self, batches):
        # Keras' TensorFlow adapter fixes every dimension that is equal in the
        # first two batches; put two batches whose padded shapes differ in
        # every dimension first so all variable dimensions stay None.
        if len(batches) < 3:
            return batches
        shapes = np.stack([self._shapes[b].max(axis=0) for b in batches])
        varying = np.any(shapes != shapes[0], axis=0)
        for j in range(1, len(batches)):
            if np.all((shapes[j] != shapes[0]) | ~varying):
                batches[1], batches[j] = batches[j], batches[1]
                return batches
        for i in range(1, len(batches)):
            for j in range(len(batches)):
                if np.all((shapes[j] != shapes[i]) | ~varying):
                    first = [batches[i], batches[j]]
                    rest = [b for k, b in enumerate(batches) if k not in (i, j)]
                    return first + rest
        return batches

    def __len__(self):
        return len(self.batch_indices)

    def __getitem__(self, index):
        idx = self.batch_indices[index]
        x = {name: pad_batch([values[i] for i in idx]) for name, values in self.features.items()}
        if self.labels is None:
            return (x,)
        if isinstance(self.labels, np.ndarray) and self.labels.ndim == 1:
            return x, self.labels[idx]
        return x, pad_batch([self.labels[i] for i in idx])

    def start_at(self, epoch):
        """Makes the next pass epoch `epoch` (0-based), e.g. when a run resumes."""
        self.epoch = int(epoch)
        self._first_epoch = self.epoch
        if self.shuffle:
            self._make_batches()

    def on_epoch_end(self):
        self.epoch += 1
        if self.shuffle:
            self._make_batches()

    def to_tf_dataset(self):
        """A `tf.data.Dataset` of the same batches, reshuffled on every pass after the first.

        Keras wraps a PyDataset in tf.data behind an autotuned prefetch
        thread; on a 2-core CPU that thread competes with the training step
        and costs about a quarter of the epoch. Making a batch takes well
        under a millisecond, so this dataset makes it in the step's own time.
        """
        import tensorflow as tf

        first = self[0]
        signature = keras.tree.map_structure(
            lambda a: tf.TensorSpec((None,) * a.ndim, tf.as_dtype(a.dtype)), first
        )
        passes = itertools.count()

        def batches():
            # Keras starts a new iteration per epoch and may leave the last one unfinished.
            epoch = self._first_epoch + next(passes)
            if epoch != self.epoch:
                self.epoch = epoch - 1
                self.on_epoch_end()
            for i in range(len(self)):
                yield self[i]

        dataset = tf.data.Dataset.from_generator(batches, output_signature=signature)
        # No autotuning: there is nothing to tune here, and its model thread sleeps up to a
        # minute between rounds; destroying the last epoch's iterator waits for it to wake,
        # which stalled the first step of an epoch by up to ~60 s (seen on full IMDB).
        options = tf.data.Options()
        options.autotune.enabled = False
        return dataset.apply(tf.data.experimental.assert_cardinality(len(self))).with_options(options)


def fit_data(data):
    """`data` in the form `Model.fit` runs fastest on with the current backend."""
    if isinstance(data, BucketBatcher) and keras.backend.backend() == "tensorflow":
        return data.to_tf_dataset()
    return data
