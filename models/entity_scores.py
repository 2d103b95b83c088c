"""Confidence of each entity of a decoded tag path, in `keras.ops` (every backend, and inside
the SavedModel's graph).

Entities are read off the path as conlleval reads IOB2 tags: an entity starts at a tag that
always begins one (B-, or S- of IOBES) or whose type differs from the previous tag's, and
goes on while the next tag is a non-beginning tag of the same type (I-, or E- of IOBES).
Each tag id is described by two arrays: `span_types[tag]`, the entity type index (-1 for O),
and `begins[tag]`.

With a CRF, an entity's confidence is the probability that exactly its tokens carry exactly
its tags, and that the tag after it does not continue it (the segment marginal, by
forward-backward). With a softmax it is the product of its tokens' tag probabilities. The
score of an entity is written at its first token; other positions hold 0. A temperature
(fitted on validation after training) divides every score first, which calibrates the
confidences without changing the decoded path.
Assumes right padding (a prefix mask per row), as every batch of this project has.
"""

from keras import ops

NEG = -1e30


def _entity_bounds(tag_ids, mask, span_types, begins):
    """Per position: starts an entity, ends one, and the index of the end of the entity
    that starts there (the k-th start pairs with the k-th end)."""
    types = ops.where(mask, ops.take(span_types, tag_ids), -ops.ones_like(tag_ids))
    begin = ops.logical_and(mask, ops.take(begins, tag_ids))
    inside = types >= 0
    prev_types = ops.pad(types[:, :-1], [[0, 0], [1, 0]], constant_values=-1)
    starts = ops.logical_and(inside, ops.logical_or(begin, ops.not_equal(types, prev_types)))
    # The next position continues this entity: same type and not a beginning tag.
    next_types = ops.pad(types[:, 1:], [[0, 0], [0, 1]], constant_values=-1)
    next_begin = ops.pad(begin[:, 1:], [[0, 0], [0, 1]], constant_values=True)
    continued = ops.logical_and(ops.equal(next_types, types), ops.logical_not(next_begin))
    ends = ops.logical_and(inside, ops.logical_not(continued))
    time = ops.shape(tag_ids)[1]
    steps = ops.arange(time, dtype="int32")[None]
    end_positions = ops.argsort(ops.where(ends, steps, steps + time), axis=1)  # ends first, in order
    rank = ops.cumsum(ops.cast(starts, "int32"), axis=1) - 1
    end_of_start = ops.take_along_axis(end_positions, ops.maximum(rank, 0), axis=1)
    return types, starts, ends, end_of_start


def softmax_entity_scores(logits, mask, tag_ids, span_types, begins, temperature=1.0):
    """(batch, time) float32: the product of the entity's token probabilities at its start."""
    _, starts, _, end_of_start = _entity_bounds(tag_ids, mask, span_types, begins)
    log_probs = ops.log_softmax(ops.cast(logits, "float32") / temperature, axis=-1)
    path = ops.take_along_axis(log_probs, tag_ids[..., None], axis=-1)[..., 0]
    path = ops.where(mask, path, ops.zeros_like(path))
    before = ops.cumsum(path, axis=1) - path  # sum over positions < t
    total = ops.cumsum(path, axis=1)
    log_score = ops.take_along_axis(total, end_of_start, axis=1) - before
    return ops.where(starts, ops.exp(log_score), ops.zeros_like(log_score))


def crf_entity_scores(crf, emissions, mask, tag_ids, span_types, begins, temperature=1.0):
    """(batch, time) float32: each entity's segment marginal under `crf` with every score
    divided by `temperature`, at its start."""
    types, starts, _, end_of_start = _entity_bounds(tag_ids, mask, span_types, begins)
    emissions = ops.cast(emissions, "float32")
    log_alpha, log_beta, log_z = crf.forward_backward(emissions, mask, temperature)
    trans, _, end = crf._weights_float32()
    emissions, trans, end = emissions / temperature, trans / temperature, end / temperature
    num_tags = crf.num_tags

    # Path score inside the segment: emissions and transitions from its second token on.
    path_em = ops.take_along_axis(emissions, tag_ids[..., None], axis=-1)[..., 0]
    prev_ids = ops.pad(tag_ids[:, :-1], [[0, 0], [1, 0]])
    links = ops.take(ops.reshape(trans, (-1,)), prev_ids * num_tags + tag_ids)
    step = ops.where(mask, path_em + links, ops.zeros_like(path_em))
    cumulative = ops.cumsum(step, axis=1)

    # What may follow the segment's last token t: the tag at t+1 must not continue the
    # entity (same type, not a beginning tag); after the last real token, the end transition.
    alpha_at = ops.take_along_axis(log_alpha, tag_ids[..., None], axis=-1)[..., 0]
    next_em = ops.pad(emissions[:, 1:], [[0, 0], [0, 1], [0, 0]])
    next_beta = ops.pad(log_beta[:, 1:], [[0, 0], [0, 1], [0, 0]])
    out_of = ops.take(trans, tag_ids, axis=0)  # (batch, time, to): trans[y_t, k]
    onward = out_of + next_em + next_beta
    continues = ops.logical_and(
        ops.equal(ops.take(span_types, ops.arange(num_tags, dtype="int32"))[None, None], types[..., None]),
        ops.logical_not(ops.take(begins, ops.arange(num_tags, dtype="int32")))[None, None],
    )
    allowed = ops.logsumexp(ops.where(continues, ops.full_like(onward, NEG), onward), axis=-1)
    next_real = ops.pad(mask[:, 1:], [[0, 0], [0, 1]], constant_values=False)
    after = ops.where(next_real, allowed, ops.take(end, tag_ids))

    at_end = cumulative + after  # per candidate end position t
    log_score = (alpha_at - cumulative) + ops.take_along_axis(at_end, end_of_start, axis=1) - log_z[:, None]
    score = ops.exp(ops.minimum(log_score, 0.0))
    return ops.where(starts, score, ops.zeros_like(score))
