"""The classifier's "wide" side: a linear model over n-gram ids, mixed with the recurrent logits."""

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="bilstm")
class NgramLinear(layers.Layer):
    """`mix[0] * deep_logits + mix[1] * (sum of table rows of the ids + bias)`.

    Inputs: `deep_logits` (batch, L) and `ids` (batch, n), int n-gram ids where
    0 is padding (its row never counts). Every weight is non-trainable: the
    table and bias come from a linear model fitted outside gradient descent
    (pipelines/tasks/sentiment/linear.py) and `mix` is chosen on validation.
    A new layer has mix (1, 0), so it passes the deep logits through, which is
    what training the recurrent part sees.

    Args:
        num_features: int, number of n-gram ids (the table has num_features + 1 rows).
        num_logits: int, L.
    """

    def __init__(self, num_features, num_logits, **kwargs):
        super().__init__(**kwargs)
        self.num_features = int(num_features)
        self.num_logits = int(num_logits)

    def build(self, deep_logits_shape, ids_shape=None):
        self.table = self.add_weight(name="table", shape=(self.num_features + 1, self.num_logits),
                                     initializer="zeros", trainable=False)
        self.bias = self.add_weight(name="bias", shape=(self.num_logits,), initializer="zeros", trainable=False)
        self.mix = self.add_weight(name="mix", shape=(2,), trainable=False,
                                   initializer=keras.initializers.Constant([1.0, 0.0]))

    def wide_logits(self, ids):
        ids = ops.cast(ids, "int32")
        rows = ops.take(self.table, ids, axis=0)  # (batch, n, L)
        present = ops.cast(ops.expand_dims(ops.not_equal(ids, 0), -1), rows.dtype)
        return ops.sum(rows * present, axis=1) + self.bias

    def call(self, deep_logits, ids):
        deep_logits = ops.cast(deep_logits, "float32")
        return self.mix[0] * deep_logits + self.mix[1] * self.wide_logits(ids)

    def compute_output_shape(self, deep_logits_shape, ids_shape=None):
        return deep_logits_shape

    def get_config(self):
        return {**super().get_config(), "num_features": self.num_features, "num_logits": self.num_logits}
