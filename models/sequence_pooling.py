"""Masked pooling of a sequence of vectors into one vector (many-to-one)."""

import keras
from keras import ops

POOLING_MODES = ("last", "max", "mean", "attention")


def _large_negative(dtype):
    """A finite value far below any activation, representable in `dtype`."""
    return -6.0e4 if keras.backend.standardize_dtype(dtype) == "float16" else -1.0e9


@keras.saving.register_keras_serializable(package="bilstm")
class SequencePooling(keras.layers.Layer):
    """Pools (batch, time, features) into (batch, features), ignoring padding.

    Modes:
        "last": the state at the end of the sequence. For a bidirectional
            sequence (`[forward, backward]` halves, as `Bidirectional` with
            `merge_mode="concat"` outputs) the forward half at the last real
            token concatenated with the backward half at the first real token
            (position 0 with right padding), i.e. both directions' final
            states. With `bidirectional=False` the whole vector at the last
            real token.
        "max": feature-wise max over the real tokens.
        "mean": feature-wise mean over the real tokens.
        "attention": additive attention (Bahdanau et al., 2015; Yang et al.,
            2016): `score_t = v^T tanh(W h_t + b)`, a softmax over the real
            tokens (padding gets weight exactly 0) and the weighted sum of
            the `h_t`.

    Padding never contributes: appending padding steps with any values leaves
    the output unchanged. A sequence without real tokens pools to zeros.

    Args:
        mode: "last", "max", "mean" or "attention".
        bidirectional: bool, whether the features are `[forward, backward]`
            halves; only used by "last" (the feature size must then be even).
        attention_units: int, size of the attention hidden layer `W`.

    Call arguments:
        inputs: float tensor (batch, time, features).
        mask: optional bool tensor (batch, time), True for real tokens; None
            means every step is real.

    Returns:
        float tensor (batch, features).

    Example:
    >>> pool = SequencePooling("attention", attention_units=16)
    >>> pool(keras.ops.ones((2, 5, 8)), mask=keras.ops.ones((2, 5), "bool")).shape
    (2, 8)
    """

    def __init__(self, mode="max", bidirectional=True, attention_units=64, **kwargs):
        super().__init__(**kwargs)
        if mode not in POOLING_MODES:
            raise ValueError(f"mode must be one of {POOLING_MODES}, got {mode!r}")
        if int(attention_units) < 1:
            raise ValueError(f"attention_units must be >= 1, got {attention_units}")
        self.mode = mode
        self.bidirectional = bool(bidirectional)
        self.attention_units = int(attention_units)
        self.supports_masking = True

    def build(self, input_shape):
        features = input_shape[-1]
        if features is None:
            raise ValueError("The feature (last) dimension must be known.")
        if self.mode == "last" and self.bidirectional and features % 2:
            raise ValueError(
                f"mode='last' with bidirectional=True needs an even feature size, "
                f"got {features}"
            )
        if self.mode == "attention":
            self.attention_kernel = self.add_weight(
                name="attention_kernel",
                shape=(features, self.attention_units),
                initializer="glorot_uniform",
            )
            self.attention_bias = self.add_weight(
                name="attention_bias", shape=(self.attention_units,), initializer="zeros"
            )
            self.attention_vector = self.add_weight(
                name="attention_vector",
                shape=(self.attention_units,),
                initializer="glorot_uniform",
            )
        self.built = True

    @staticmethod
    def _mask_or_all(inputs, mask):
        if mask is None:
            return ops.ones(ops.shape(inputs)[:2], dtype="bool")
        return ops.cast(mask, "bool")

    def _attention_weights(self, inputs, mask):
        hidden = ops.tanh(ops.matmul(inputs, self.attention_kernel) + self.attention_bias)
        scores = ops.matmul(hidden, ops.expand_dims(self.attention_vector, -1))[..., 0]
        scores = ops.where(mask, scores, ops.full_like(scores, _large_negative(scores.dtype)))
        scores = scores - ops.max(scores, axis=1, keepdims=True)
        # Multiplying by the mask makes padding weights exactly 0 (and rows
        # without real tokens all zeros instead of NaN or uniform).
        weights = ops.exp(scores) * ops.cast(mask, scores.dtype)
        total = ops.sum(weights, axis=1, keepdims=True)
        return weights / ops.maximum(total, keras.config.epsilon())

    def attention_weights(self, inputs, mask=None):
        """Attention weights (batch, time): 0 at padding, sum 1 over real tokens."""
        if self.mode != "attention":
            raise ValueError(
                f"attention_weights needs mode='attention', this layer has {self.mode!r}"
            )
        inputs = ops.convert_to_tensor(inputs, dtype=self.compute_dtype)
        if not self.built:
            self.build(tuple(inputs.shape))
        return self._attention_weights(inputs, self._mask_or_all(inputs, mask))

    def call(self, inputs, mask=None):
        mask = self._mask_or_all(inputs, mask)
        real = ops.expand_dims(mask, -1)
        has_real = ops.any(mask, axis=1, keepdims=True)
        if self.mode == "max":
            filled = ops.where(real, inputs, ops.full_like(inputs, _large_negative(inputs.dtype)))
            pooled = ops.max(filled, axis=1)
            return ops.where(has_real, pooled, ops.zeros_like(pooled))
        if self.mode == "mean":
            length = ops.sum(ops.cast(real, inputs.dtype), axis=1)
            total = ops.sum(ops.where(real, inputs, ops.zeros_like(inputs)), axis=1)
            return total / ops.maximum(length, 1.0)
        if self.mode == "attention":
            weights = ops.expand_dims(self._attention_weights(inputs, mask), -1)
            weighted = ops.where(real, inputs * weights, ops.zeros_like(inputs))
            return ops.sum(weighted, axis=1)
        # "last": select by position with `where` so padding values (even
        # inf or NaN) cannot leak in.
        time = ops.shape(inputs)[1]
        steps = ops.expand_dims(ops.arange(time, dtype="int32"), 0)
        last = ops.max(ops.where(mask, steps, ops.zeros_like(steps)), axis=1, keepdims=True)
        pooled = self._select(inputs, ops.equal(steps, last))
        if self.bidirectional:
            beyond = ops.full_like(steps, 2**30)
            first = ops.min(ops.where(mask, steps, beyond), axis=1, keepdims=True)
            at_first = self._select(inputs, ops.equal(steps, first))
            half = inputs.shape[-1] // 2
            pooled = ops.concatenate([pooled[:, :half], at_first[:, half:]], axis=-1)
        return ops.where(has_real, pooled, ops.zeros_like(pooled))

    @staticmethod
    def _select(inputs, position):
        """inputs[b, t] where `position` (batch, time) is True at exactly one t."""
        chosen = ops.where(ops.expand_dims(position, -1), inputs, ops.zeros_like(inputs))
        return ops.sum(chosen, axis=1)

    def compute_mask(self, inputs, previous_mask=None):
        # The time axis is gone: nothing left to mask.
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            mode=self.mode,
            bidirectional=self.bidirectional,
            attention_units=self.attention_units,
        )
        return config
