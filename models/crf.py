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
            float32 tensor (batch,): score(tags) - log Z.
        """
        em, mask_t = self._time_major(emissions, mask)
        tags_t = ops.transpose(ops.cast(tags, "int32"), (1, 0))
        # Padding labels may be anything (e.g. -1); keep the gathers in range.
        tags_t = ops.where(mask_t, tags_t, ops.zeros_like(tags_t))
        trans, start, end = self._weights_float32()
        trans_flat = ops.reshape(trans, (-1,))
        num_tags = self.num_tags

        def step(carry, inputs):
            alpha, score, prev_tag, started = carry
            em_t, tag_t, m_t = self._unpack(inputs, with_tags=True)
            # Forward algorithm: alpha[b, j] = log-sum over paths ending in j.
            nxt = ops.logsumexp(alpha[:, :, None] + trans[None], axis=1) + em_t
            new_alpha = ops.where(started[:, None], nxt, start[None] + em_t)
            # Gold path score; the transition links to the previous *real* tag.
            gold_em = ops.take_along_axis(em_t, tag_t[:, None], axis=1)[:, 0]
            gold_link = ops.where(
                started,
                ops.take(trans_flat, prev_tag * num_tags + tag_t),
                ops.take(start, tag_t),
            )
            # Masked steps carry the state through unchanged.
            alpha = ops.where(m_t[:, None], new_alpha, alpha)
            score = score + ops.where(m_t, gold_em + gold_link, ops.zeros_like(score))
            prev_tag = ops.where(m_t, tag_t, prev_tag)
            started = ops.logical_or(started, m_t)
            carry = (alpha, score, prev_tag, started)
            # The TensorFlow scan needs ys shaped like the carry.
            return carry, carry

        init = (
            ops.zeros_like(em[0]),
            ops.zeros_like(em[0, :, 0]),
            ops.zeros_like(tags_t[0]),
            ops.zeros_like(mask_t[0]),
        )
        (alpha, score, last_tag, started), _ = ops.scan(
            step, init, self._pack(em, mask_t, tags_t)
        )
        log_z = ops.logsumexp(alpha + end[None], axis=1)
        score = score + ops.where(
            started, ops.take(end, last_tag), ops.zeros_like(score)
        )
        return score - log_z

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
