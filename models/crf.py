"""Linear-chain conditional random field (CRF) output layer."""

import operator

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="bilstm")
class CRF(keras.layers.Layer):
    """Linear-chain CRF over per-token tag scores (Lample et al., 2016).

    The layer holds the tag transition scores. Calling it returns the
    emissions unchanged, so it can sit at the end of a functional model; the
    training loss (`loss`, `log_likelihood`) and Viterbi decoding (`decode`)
    are separate methods that take the emissions, tags and mask. The score of
    a tag path is the sum of its emissions, `start_transitions[first tag]`,
    `transitions[from_tag, to_tag]` between consecutive real tokens and
    `end_transitions[last tag]`. Masked steps are skipped wherever they are
    (padding need not be on the right). Computation is in float32 whatever
    the emissions dtype. Written with `keras.ops` only, so it runs on every
    backend and with a dynamic time length.

    Args:
        num_tags: int >= 1, number of tags.
        **kwargs: standard `keras.layers.Layer` arguments (`name`, `dtype`...).

    Call arguments:
        emissions: float tensor (batch, time, num_tags) of unnormalised scores.
        mask: optional bool tensor (batch, time); accepted and ignored by
            `call`, which is the identity.

    Returns:
        `emissions`, unchanged.

    Example:
    >>> crf = CRF(num_tags=3)
    >>> emissions = keras.random.normal((2, 4, 3))
    >>> mask = keras.ops.array([[1, 1, 1, 1], [1, 1, 0, 0]], dtype="bool")
    >>> emissions = crf(emissions)
    >>> loss = crf.loss(emissions, keras.ops.zeros((2, 4), "int32"), mask)
    >>> tuple(crf.decode(emissions, mask).shape)
    (2, 4)
    """

    def __init__(self, num_tags, **kwargs):
        super().__init__(**kwargs)
        try:
            valid = not isinstance(num_tags, bool) and operator.index(num_tags) >= 1
        except TypeError:
            valid = False
        if not valid:
            raise ValueError(f"num_tags must be an int >= 1, got {num_tags!r}")
        self.num_tags = operator.index(num_tags)
        self.supports_masking = True

    def build(self, input_shape):
        if input_shape[-1] is not None and input_shape[-1] != self.num_tags:
            raise ValueError(
                f"Expected emissions with last dimension {self.num_tags}, "
                f"got shape {input_shape}"
            )
        # Zeros: a uniform prior over paths; symmetry breaking comes from the
        # emissions.
        self.transitions = self.add_weight(
            shape=(self.num_tags, self.num_tags), initializer="zeros",
            name="transitions",
        )
        self.start_transitions = self.add_weight(
            shape=(self.num_tags,), initializer="zeros", name="start_transitions"
        )
        self.end_transitions = self.add_weight(
            shape=(self.num_tags,), initializer="zeros", name="end_transitions"
        )
        self.built = True

    def call(self, emissions, mask=None):
        return emissions

    def compute_output_shape(self, input_shape):
        return input_shape

    def _weights_float32(self):
        return (
            ops.cast(self.transitions, "float32"),
            ops.cast(self.start_transitions, "float32"),
            ops.cast(self.end_transitions, "float32"),
        )

    def _time_major(self, emissions, mask):
        emissions = ops.cast(emissions, "float32")
        if mask is None:
            mask = ops.ones_like(emissions[..., 0], dtype="bool")
        mask = ops.cast(mask, "bool")
        return ops.transpose(emissions, (1, 0, 2)), ops.transpose(mask, (1, 0))

    # Keras' TensorFlow `scan` fails on several `xs` of dynamic length, so the
    # per-step inputs travel as one float32 tensor (tag ids < 2**24 are exact).
    def _pack(self, em, mask_t, tags_t=None):
        parts = [em, ops.cast(mask_t, "float32")[..., None]]
        if tags_t is not None:
            parts.append(ops.cast(tags_t, "float32")[..., None])
        return ops.concatenate(parts, axis=-1)

    def _unpack(self, inputs, with_tags):
        k = self.num_tags
        em_t = inputs[:, :k]
        m_t = inputs[:, k] > 0.5
        tag_t = ops.cast(inputs[:, k + 1], "int32") if with_tags else None
        return em_t, tag_t, m_t

    def log_likelihood(self, emissions, tags, mask=None):
        """Log-probability of `tags` under the CRF, one value per sequence.

        Args:
            emissions: float tensor (batch, time, num_tags).
            tags: int tensor (batch, time) of gold tag ids; values at masked
                positions are ignored.
            mask: bool or 0/1 tensor (batch, time); None means no padding.

        Returns:
            float32 tensor (batch,): score(tags) - log Z; 0 for a row
            without real tokens.
        """
        emissions = ops.cast(emissions, "float32")
        if mask is None:
            mask = ops.ones_like(emissions[..., 0], dtype="bool")
        mask = ops.cast(mask, "bool")
        time = ops.shape(mask)[1]
        steps = ops.arange(time, dtype="int32")[None]
        # Real steps first, in their order: every mask becomes a prefix mask,
        # so the gold score needs no loop and the loop only runs the forward
        # algorithm. Keys are distinct, so argsort needs no stability.
        order = ops.argsort(ops.where(mask, steps, steps + time), axis=1)
        lengths = ops.sum(ops.cast(mask, "int32"), axis=1)
        real = steps < lengths[:, None]
        em = ops.take_along_axis(emissions, order[..., None], axis=1)
        # Padding labels may be anything (e.g. -1); keep the gathers in range.
        tags = ops.take_along_axis(ops.cast(tags, "int32"), order, axis=1)
        tags = ops.where(real, tags, ops.zeros_like(tags))
        trans, start, end = self._weights_float32()
        zeros = ops.zeros_like(em[..., 0])

        gold_em = ops.take_along_axis(em, tags[..., None], axis=2)[..., 0]
        links = ops.take(ops.reshape(trans, (-1,)), tags[:, :-1] * self.num_tags + tags[:, 1:])
        last_tag = ops.take_along_axis(tags, ops.maximum(lengths - 1, 0)[:, None], axis=1)[:, 0]
        score = (
            ops.sum(ops.where(real, gold_em, zeros), axis=1)
            + ops.sum(ops.where(real[:, 1:], links, zeros[:, 1:]), axis=1)
            + ops.take(start, tags[:, 0])
            + ops.take(end, last_tag)
        )

        def step(alpha, inputs):
            em_t, _, real_t = self._unpack(inputs, with_tags=False)
            # Forward algorithm: alpha[b, j] = log-sum over paths ending in j.
            nxt = ops.logsumexp(alpha[:, :, None] + trans[None], axis=1) + em_t
            alpha = ops.where(real_t[:, None], nxt, alpha)
            return alpha, alpha  # the TensorFlow scan needs ys shaped like the carry

        em_t, real_t = ops.transpose(em, (1, 0, 2)), ops.transpose(real, (1, 0))
        alpha, _ = ops.scan(step, start[None] + em_t[0], self._pack(em_t[1:], real_t[1:]))
        log_z = ops.logsumexp(alpha + end[None], axis=1)
        return ops.where(lengths > 0, score - log_z, ops.zeros_like(score))

    def loss(self, emissions, tags, mask=None):
        """Mean negative log-likelihood over the batch (a float32 scalar)."""
        return -ops.mean(self.log_likelihood(emissions, tags, mask))

    def decode(self, emissions, mask=None):
        """Viterbi-best tag path.

        Args:
            emissions: float tensor (batch, time, num_tags).
            mask: bool or 0/1 tensor (batch, time); None means no padding.

        Returns:
            int32 tensor (batch, time) of tag ids, 0 at masked positions.
        """
        em, mask_t = self._time_major(emissions, mask)
        trans, start, end = self._weights_float32()
        identity = ops.arange(self.num_tags, dtype="int32")[None]

        def forward(carry, inputs):
            delta, _, started = carry
            em_t, _, m_t = self._unpack(inputs, with_tags=False)
            scores = delta[:, :, None] + trans[None]  # (batch, from, to)
            best_prev = ops.cast(ops.argmax(scores, axis=1), "int32")
            nxt = ops.max(scores, axis=1) + em_t
            new_delta = ops.where(started[:, None], nxt, start[None] + em_t)
            # Identity back-pointers where there is no previous real token, so
            # the back-trace passes through padding and the first token as is.
            linked = ops.logical_and(m_t, started)[:, None]
            backptr = ops.where(linked, best_prev, identity)
            delta = ops.where(m_t[:, None], new_delta, delta)
            started = ops.logical_or(started, m_t)
            carry = (delta, backptr, started)
            return carry, carry

        init = (
            ops.zeros_like(em[0]),
            ops.zeros_like(em[0], dtype="int32"),
            ops.zeros_like(mask_t[0]),
        )
        (delta, _, _), (_, backptrs, _) = ops.scan(forward, init, self._pack(em, mask_t))
        last = ops.cast(ops.argmax(delta + end[None], axis=1), "int32")

        def backward(tag, backptr):
            # `tag` is the tag at this step; emit it and step to the previous.
            prev = ops.take_along_axis(backptr, tag[:, None], axis=1)[:, 0]
            return prev, tag

        _, path = ops.scan(backward, last, backptrs, reverse=True)
        path = ops.transpose(path, (1, 0))
        mask = ops.transpose(mask_t, (1, 0))
        return ops.where(mask, path, ops.zeros_like(path))

    def get_config(self):
        config = super().get_config()
        config.update(num_tags=self.num_tags)
        return config
