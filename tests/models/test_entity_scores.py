"""Entity confidences of a decoded path against brute-force enumeration of every tag path."""

import itertools

import numpy as np
import pytest
from keras import ops

from models.crf import CRF
from models.entity_scores import crf_entity_scores, softmax_entity_scores
from pipelines.tasks.ner.labels import get_spans
from pipelines.tasks.ner.model import tag_descriptions

IOB2 = ["O", "B-A", "I-A", "B-B", "I-B"]
IOBES = ["O", "B-A", "I-A", "E-A", "S-A", "S-B"]


def tagwise_iob2(names):
    return [{"S": "B", "E": "I"}.get(t[0], t[0]) + t[1:] for t in names]


def crf_with_weights(num_tags, rng):
    crf = CRF(num_tags)
    crf.build((None, None, num_tags))
    crf.transitions.assign(rng.normal(size=(num_tags, num_tags)).astype("float32"))
    crf.start_transitions.assign(rng.normal(size=num_tags).astype("float32"))
    crf.end_transitions.assign(rng.normal(size=num_tags).astype("float32"))
    return crf


def path_log_score(crf, em, path):
    trans, start, end = (ops.convert_to_numpy(w) for w in crf._weights_float32())
    score = start[path[0]] + end[path[-1]] + sum(em[t, y] for t, y in enumerate(path))
    return score + sum(trans[a, b] for a, b in zip(path, path[1:]))


def brute_force(crf, em, decoded, names):
    """Per entity of `decoded` (type, first, last): the probability mass of the paths that
    carry its exact tags on its tokens and whose next tag does not continue it."""
    n, k = em.shape
    paths = list(itertools.product(range(k), repeat=n))
    log_scores = np.array([path_log_score(crf, em, p) for p in paths])
    probs = np.exp(log_scores - np.logaddexp.reduce(log_scores))
    iob2 = tagwise_iob2(names)
    out = {}
    for label, first, last in get_spans([iob2[t] for t in decoded], "IOB2"):
        def ok(p):
            if list(p[first:last]) != list(decoded[first:last]):
                return False
            return last == n or iob2[p[last]] != "I-" + label
        out[first] = sum(pr for p, pr in zip(paths, probs) if ok(p))
    return out


@pytest.mark.parametrize("names", [IOB2, IOBES], ids=["IOB2", "IOBES"])
def test_crf_entity_scores_are_segment_marginals(names):
    rng = np.random.default_rng(0)
    k, n = len(names), 4
    crf = crf_with_weights(k, rng)
    span_types, begins = tag_descriptions(names)
    em = rng.normal(size=(6, n, k)).astype("float32") * 2
    # Decoded paths with entities of every shape: at the start, the end, adjacent, stray I-.
    a, ia, b = names.index("B-A"), names.index("I-A"), names.index("B-B") if "B-B" in names else names.index("S-B")
    decoded = np.array([[a, ia, ia, 0], [0, a, a, ia], [ia, ia, b, 0], [b, b, 0, a],
                        [0, 0, 0, 0], [a, ia, ia, ia]], dtype="int32")
    lengths = [4, 4, 3, 4, 2, 4]
    mask = np.arange(n)[None] < np.array(lengths)[:, None]
    decoded = np.where(mask, decoded, 0)
    scores = ops.convert_to_numpy(crf_entity_scores(crf, em, mask, decoded, span_types, begins))
    for row, length in enumerate(lengths):
        expected = brute_force(crf, em[row, :length], decoded[row, :length], names)
        want = np.zeros(n)
        for first, p in expected.items():
            want[first] = p
        np.testing.assert_allclose(scores[row], want, atol=2e-5, err_msg=f"row {row}")


def test_softmax_entity_scores_are_products_of_token_probabilities():
    rng = np.random.default_rng(1)
    span_types, begins = tag_descriptions(IOB2)
    logits = rng.normal(size=(1, 5, 5)).astype("float32")
    decoded = np.array([[1, 2, 0, 4, 3]], dtype="int32")  # A at 0-1, stray I-B at 3, B at 4
    mask = np.array([[True] * 5])
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    got = ops.convert_to_numpy(softmax_entity_scores(logits, mask, decoded, span_types, begins))[0]
    want = [probs[0, 0, 1] * probs[0, 1, 2], 0, 0, probs[0, 3, 4], probs[0, 4, 3]]
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_scores_inside_a_tf_function_with_dynamic_shapes():
    tf = pytest.importorskip("tensorflow")
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("TensorFlow backend only")
    rng = np.random.default_rng(2)
    crf = crf_with_weights(len(IOBES), rng)
    span_types, begins = tag_descriptions(IOBES)

    @tf.function(input_signature=[tf.TensorSpec([None, None, len(IOBES)], tf.float32),
                                  tf.TensorSpec([None, None], tf.bool)])
    def score(em, mask):
        return crf_entity_scores(crf, em, mask, crf.decode(em, mask), span_types, begins)

    em = rng.normal(size=(3, 7, len(IOBES))).astype("float32")
    mask = np.arange(7)[None] < np.array([7, 3, 1])[:, None]
    eager = ops.convert_to_numpy(crf_entity_scores(crf, em, mask, crf.decode(em, mask), span_types, begins))
    np.testing.assert_allclose(score(em, mask).numpy(), eager, atol=1e-6)
    assert ((eager >= 0) & (eager <= 1)).all() and (eager[~mask] == 0).all()
