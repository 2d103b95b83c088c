"""Linear-chain conditional random field (CRF) output layer."""

import operator

import keras
from keras import ops

# log(0) that stays finite: no inf - inf NaNs in values or gradients.
NEG = -1e30


@keras.saving.register_keras_serializable(package="bilstm")
class CRF(keras.layers.Layer):
    """Linear-chain CRF over per-token tag scores (Lample et al., 2016).

    The layer holds the tag transition scores. Calling it returns the
    emissions unchanged, so it can sit at the end of a functional model; the
    training loss (`loss`, `log_likelihood`) and Viterbi decoding (`decode`)
    are separate methods that take the emissions, tags and mask, and so are
    the exact posteriors by forward-backward (`marginals`, `span_log_probs`
    for entity confidences, and `forward_backward` under both). The score of
    a tag path is the sum of its emissions, `start_transitions[first tag]`,
    `transitions[from_tag, to_tag]` between consecutive real tokens and
    `end_transitions[last tag]`. Masked steps are skipped wherever they are
    (padding need not be on the right). Computation is in float32 whatever
    the emissions dtype. Written with `keras.ops` only, so it runs on every
    backend and with a dynamic time length.

    Args:
        num_tags: int >= 1, number of tags.
        members: int >= 1. Above 1 the layer holds one set of transitions per
            member of an ensemble: `loss` takes emissions (batch, time,
            members, num_tags) and sums the members' own losses, while
            decoding and the posteriors take the combined emissions (their
            mean over members) with the mean transitions.
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
    >>> tuple(crf.marginals(emissions, mask).shape)
    (2, 4, 3)
    """

    def __init__(self, num_tags, members=1, **kwargs):
        super().__init__(**kwargs)
        try:
            valid = not isinstance(num_tags, bool) and operator.index(num_tags) >= 1
        except TypeError:
            valid = False
        if not valid:
            raise ValueError(f"num_tags must be an int >= 1, got {num_tags!r}")
        self.num_tags = operator.index(num_tags)
        if isinstance(members, bool) or not isinstance(members, int) or members < 1:
            raise ValueError(f"members must be an int >= 1, got {members!r}")
        self.members = members
        self.supports_masking = True

    def build(self, input_shape):
        if input_shape[-1] is not None and input_shape[-1] != self.num_tags:
            raise ValueError(
                f"Expected emissions with last dimension {self.num_tags}, "
                f"got shape {input_shape}"
            )
        # Zeros: a uniform prior over paths; symmetry breaking comes from the
        # emissions.
        lead = (self.members,) if self.members > 1 else ()
        self.transitions = self.add_weight(
            shape=lead + (self.num_tags, self.num_tags), initializer="zeros",
            name="transitions",
        )
        self.start_transitions = self.add_weight(
            shape=lead + (self.num_tags,), initializer="zeros", name="start_transitions"
        )
        self.end_transitions = self.add_weight(
            shape=lead + (self.num_tags,), initializer="zeros", name="end_transitions"
        )
        self.built = True

    def call(self, emissions, mask=None):
        return emissions

    def compute_output_shape(self, input_shape):
        return input_shape

    def _member_weights(self):
        """(transitions, start, end) float32, with a leading members axis above 1 member."""
        return (
            ops.cast(self.transitions, "float32"),
            ops.cast(self.start_transitions, "float32"),
            ops.cast(self.end_transitions, "float32"),
        )

    def _weights_float32(self):
        weights = self._member_weights()
        if self.members > 1:
            # The ensemble's CRF: averaging the members' scores is the normalised
            # product of their distributions (a geometric mean), decoded exactly.
            weights = tuple(ops.mean(w, axis=0) for w in weights)
        return weights

    def _time_major(self, emissions, mask):
        emissions = ops.cast(emissions, "float32")
        if mask is None:
            mask = ops.ones_like(emissions[..., 0], dtype="bool")
        mask = ops.cast(mask, "bool")
        return ops.transpose(emissions, (1, 0, 2)), ops.transpose(mask, (1, 0))

    def _real_steps_first(self, emissions, mask):
        """Moves each row's real steps, in their order, to a prefix.

        Returns (emissions float32 with rows reordered, bool mask, order,
        lengths, real): `order[b, i]` is the original step at packed step i,
        `real` the prefix mask of the packed rows.
        """
        emissions = ops.cast(emissions, "float32")
        if mask is None:
            mask = ops.ones_like(emissions[..., 0], dtype="bool")
        mask = ops.cast(mask, "bool")
        time = ops.shape(mask)[1]
        steps = ops.arange(time, dtype="int32")[None]
        # Keys are distinct, so argsort needs no stability.
        order = ops.argsort(ops.where(mask, steps, steps + time), axis=1)
        lengths = ops.sum(ops.cast(mask, "int32"), axis=1)
        real = steps < lengths[:, None]
        em = ops.take_along_axis(emissions, order[..., None], axis=1)
        return em, mask, order, lengths, real

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

    def log_likelihood(self, emissions, tags, mask=None, weights=None):
        """Log-probability of `tags` under the CRF, one value per sequence.

        Args:
            emissions: float tensor (batch, time, num_tags).
            tags: int tensor (batch, time) of gold tag ids; values at masked
                positions are ignored.
            mask: bool or 0/1 tensor (batch, time); None means no padding.
            weights: (transitions, start, end) to score with instead of the
                layer's (combined) ones.

        Returns:
            float32 tensor (batch,): score(tags) - log Z; 0 for a row
            without real tokens.
        """
        # Real steps first: the gold score needs no loop, and the loop only
        # runs the forward algorithm.
        em, _, order, lengths, real = self._real_steps_first(emissions, mask)
        # Padding labels may be anything (e.g. -1); keep the gathers in range.
        tags = ops.take_along_axis(ops.cast(tags, "int32"), order, axis=1)
        tags = ops.where(real, tags, ops.zeros_like(tags))
        trans, start, end = self._weights_float32() if weights is None else weights
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
        """Mean negative log-likelihood over the batch (a float32 scalar); with several
        members, emissions are (batch, time, members, num_tags) and the members' losses,
        each with its own transitions, are summed, so each learns as if alone."""
        if self.members == 1:
            return -ops.mean(self.log_likelihood(emissions, tags, mask))
        trans, start, end = self._member_weights()
        return sum(
            -ops.mean(self.log_likelihood(emissions[:, :, m], tags, mask, (trans[m], start[m], end[m])))
            for m in range(self.members))

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

    def forward_backward(self, emissions, mask=None, temperature=1.0):
        """Forward and backward log-scores of every tag at every step.

        Both recursions run in one `scan` over the steps (the backward one
        reads them from the end), on the real steps moved to a prefix as in
        `log_likelihood`, so masked steps are skipped wherever they are.

        Args:
            emissions: float tensor (batch, time, num_tags).
            mask: bool or 0/1 tensor (batch, time); None means no padding.
            temperature: positive float; every score (emissions and
                transitions) is divided by it, which flattens (> 1) or
                sharpens (< 1) the posteriors and leaves the Viterbi path as is.

        Returns:
            (log_alpha, log_beta, log_z), float32, on the original time axis:
            - log_alpha (batch, time, num_tags): at a real step t, the
              log-sum of the scores of the paths over the real steps up to t
              that end in tag j (start transition and emission at t included);
            - log_beta (batch, time, num_tags): the log-sum of the scores of
              what follows tag j at t (the later real steps' emissions and
              transitions and the end transition; not the emission at t);
            - log_z (batch,): the log-partition; 0 for a row without real
              tokens.
            At masked steps log_alpha and log_beta are NEG (-1e30), so
            exp(log_alpha + log_beta - log_z) is the marginal everywhere.
        """
        em, mask, order, lengths, real = self._real_steps_first(emissions, mask)
        trans, start, end = self._weights_float32()
        # A tensor temperature (a compiled caller's argument) is always applied.
        if not isinstance(temperature, (int, float)) or temperature != 1.0:
            em, trans, start, end = (x / temperature for x in (em, trans, start, end))
        em_t, real_t = ops.transpose(em, (1, 0, 2)), ops.transpose(real, (1, 0))
        # Steps 1.., then a padding step: the scan is never empty (TensorFlow
        # cannot stack an empty list of dynamic shape), and read backwards its
        # first step yields beta at the last step.
        steps = self._pack(em_t[1:], real_t[1:])
        steps = ops.concatenate([steps, ops.zeros_like(self._pack(em_t[:1], real_t[:1]))], axis=0)
        # At scan step i the forward pass reads step i + 1 and the backward
        # pass step time - i: one loop of `time` iterations for both.
        width = self.num_tags + 1
        xs = ops.concatenate([steps, ops.flip(steps, axis=0)], axis=-1)
        end_beta = end[None] + ops.zeros_like(em_t[0])

        def step(carry, inputs):
            alpha, beta = carry
            em_f, real_f = inputs[:, : width - 1], inputs[:, width - 1] > 0.5
            em_b, real_b = inputs[:, width:-1], inputs[:, -1] > 0.5
            nxt = ops.logsumexp(alpha[:, :, None] + trans[None], axis=1) + em_f
            alpha = ops.where(real_f[:, None], nxt, alpha)
            # beta[i, j] from beta[i + 1]; the last real step has only the
            # end transition after it (and so do the padding steps, unused).
            prev = ops.logsumexp(trans[None] + (em_b + beta)[:, None, :], axis=2)
            beta = ops.where(real_b[:, None], prev, end_beta)
            return (alpha, beta), (alpha, beta)

        init = (start[None] + em_t[0], end_beta)
        (last_alpha, _), (alphas, betas) = ops.scan(step, init, xs)
        alphas = ops.concatenate([init[0][None], alphas[:-1]], axis=0)
        betas = ops.flip(betas, axis=0)
        log_z = ops.logsumexp(last_alpha + end[None], axis=1)
        log_z = ops.where(lengths > 0, log_z, ops.zeros_like(log_z))

        # Back to the original steps: the inverse permutation of `order`.
        inverse = ops.argsort(order, axis=1)[..., None]
        fill = ops.full_like(em, NEG)
        keep = mask[..., None]
        log_alpha = ops.take_along_axis(ops.transpose(alphas, (1, 0, 2)), inverse, axis=1)
        log_beta = ops.take_along_axis(ops.transpose(betas, (1, 0, 2)), inverse, axis=1)
        return ops.where(keep, log_alpha, fill), ops.where(keep, log_beta, fill), log_z

    def marginals(self, emissions, mask=None):
        """Posterior tag probabilities p(y_t = j | x), by forward-backward.

        Args:
            emissions: float tensor (batch, time, num_tags).
            mask: bool or 0/1 tensor (batch, time); None means no padding.

        Returns:
            float32 tensor (batch, time, num_tags): sums to 1 over the tags
            at real steps; 0 at masked steps and in rows without real tokens.
        """
        if mask is None:
            mask = ops.ones_like(emissions[..., 0], dtype="bool")
        mask = ops.cast(mask, "bool")
        log_alpha, log_beta, log_z = self.forward_backward(emissions, mask)
        probs = ops.exp(ops.minimum(log_alpha + log_beta - log_z[:, None, None], 0.0))
        return ops.where(mask[..., None], probs, ops.zeros_like(probs))

    def span_log_probs(self, emissions, mask, rows, starts, ends, tags,
                       forbidden_next=None, lattice=None):
        """Log-probability that a span of tokens carries exactly given tags.

        The segment marginal of NER confidence: for an entity B-X I-X ... I-X
        on tokens [start, end), pass those tags and forbid I-X after it, so
        the span is exactly that entity. Vectorised over a dynamic number of
        spans (gathers only), so it runs inside a graph.

        Args:
            emissions: float tensor (batch, time, num_tags).
            mask: bool or 0/1 tensor (batch, time); None means no padding.
            rows: int tensor (spans,): the batch row of each span.
            starts, ends: int tensors (spans,): each span is the steps
                [start, end) of the original time axis, 0 <= start < end <=
                time. Masked steps inside it are skipped, as everywhere in
                the layer, and the step after it is the next real step.
            tags: int tensor (spans, width), width >= end - start:
                `tags[s, i]` is the tag of step `starts[s] + i`; entries past
                the span or at masked steps are ignored.
            forbidden_next: optional bool tensor broadcastable to
                (spans, num_tags): tags the real step right after the span
                must not carry. A span ending at the row's last real step
                has nothing after it and is not affected. None: no condition.
            lattice: optional `forward_backward(emissions, mask)` already
                computed, to share one pass with `marginals` or other calls.

        Returns:
            float32 tensor (spans,): log p(tags on the span, and no forbidden
            tag after it | x), at most 0; NEG (-1e30) for a span without
            real tokens.
        """
        emissions = ops.cast(emissions, "float32")
        if mask is None:
            mask = ops.ones_like(emissions[..., 0], dtype="bool")
        mask = ops.cast(mask, "bool")
        if lattice is None:
            lattice = self.forward_backward(emissions, mask)
        log_alpha, log_beta, log_z = lattice
        trans, _, end = self._weights_float32()
        k = self.num_tags
        time = ops.shape(mask)[1]
        rows, starts, ends = (ops.cast(x, "int32") for x in (rows, starts, ends))
        # One more column, so that width 0 (no tags at all) still gathers.
        tags = ops.cast(tags, "int32")
        width = ops.shape(tags)[1]
        tags = ops.pad(tags, [[0, 0], [0, 1]])
        offsets = ops.arange(width + 1, dtype="int32")[None]

        # Flat (row, step) indices of the span's steps, real ones first.
        positions = starts[:, None] + offsets
        in_span = ops.logical_and(
            offsets < ops.minimum(ends - starts, width)[:, None], positions < time)
        flat_steps = rows[:, None] * time + ops.clip(positions, 0, time - 1)
        real = ops.logical_and(in_span, ops.take(ops.reshape(mask, (-1,)), flat_steps))
        order = ops.argsort(ops.where(real, offsets, offsets + width + 1), axis=1)
        count = ops.sum(ops.cast(real, "int32"), axis=1)
        real = offsets < count[:, None]
        tags = ops.where(real, ops.take_along_axis(tags, order, axis=1), ops.zeros_like(tags))
        flat_steps = ops.take_along_axis(flat_steps, order, axis=1)

        # alpha at the first token holds everything up to it; then the
        # emissions and links of the others.
        first = ops.take(ops.reshape(log_alpha, (-1,)), flat_steps[:, 0] * k + tags[:, 0])
        path_em = ops.take(ops.reshape(emissions, (-1,)), flat_steps[:, 1:] * k + tags[:, 1:])
        links = ops.take(ops.reshape(trans, (-1,)), tags[:, :-1] * k + tags[:, 1:])
        inner = ops.sum(ops.where(real[:, 1:], path_em + links, ops.zeros_like(links)), axis=1)
        last = ops.maximum(count - 1, 0)[:, None]
        last_tag = ops.take_along_axis(tags, last, axis=1)[:, 0]
        last_step = ops.take_along_axis(flat_steps, last, axis=1)[:, 0]

        if forbidden_next is None:
            after = ops.take(ops.reshape(log_beta, (-1,)), last_step * k + last_tag)
        else:
            # The next real step: the first after the real steps before `end`.
            # The sum runs over the allowed tags only, rather than subtracting
            # the forbidden mass from beta, which would cancel.
            steps = ops.arange(time, dtype="int32")[None]
            row_order = ops.argsort(ops.where(mask, steps, steps + time), axis=1)
            counts = ops.cumsum(ops.cast(mask, "int32"), axis=1)
            counts = ops.pad(counts, [[0, 0], [1, 0]])
            before_end = ops.take(
                ops.reshape(counts, (-1,)), rows * (time + 1) + ops.clip(ends, 0, time))
            has_next = before_end < ops.take(counts[:, -1], rows)
            next_step = rows * time + ops.take(
                ops.reshape(row_order, (-1,)), rows * time + ops.minimum(before_end, time - 1))
            onward = (
                ops.take(trans, last_tag, axis=0)
                + ops.take(ops.reshape(emissions, (-1, k)), next_step, axis=0)
                + ops.take(ops.reshape(log_beta, (-1, k)), next_step, axis=0)
            )
            forbidden = ops.cast(forbidden_next, "bool")
            allowed = ops.logsumexp(ops.where(forbidden, NEG, onward), axis=-1)
            after = ops.where(has_next, allowed, ops.take(end, last_tag))

        log_p = ops.minimum(first + inner + after - ops.take(log_z, rows), 0.0)
        return ops.where(count > 0, log_p, ops.full_like(log_p, NEG))

    def get_config(self):
        config = super().get_config()
        config.update(num_tags=self.num_tags)
        if self.members > 1:  # older saved models have no such key
            config.update(members=self.members)
        return config
