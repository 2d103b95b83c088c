"""N-gram features and the NB-weighted linear classifier, and the TensorFlow twin of the ids."""

import numpy as np
import pytest

from pipelines.text.ngrams import (NgramIndex, build_ngram_vocabulary, fit_nb_linear, ngrams, predicted_classes,
                                   presence_matrix, scores)


def test_ngrams_in_order_of_n_then_position():
    assert ngrams(["a", "b", "c"], 3) == ["a", "b", "c", "a b", "b c", "a b c"]
    assert ngrams(["a"], 3) == ["a"]
    assert ngrams([], 2) == []


def test_vocabulary_counts_documents_not_occurrences():
    docs = [["good", "good", "film"], ["good", "film"], ["bad"]]
    grams = build_ngram_vocabulary(docs, 2, min_df=2)
    assert grams == ["film", "good", "good film"]  # "good good" is in one document only
    assert build_ngram_vocabulary(docs, 1, max_size=1) == ["film"]  # ties: alphabetical


def test_document_ids_are_distinct_sorted_and_known_only():
    index = NgramIndex(["film", "good", "good film"], 2)
    assert index.document_ids(["film", "good", "good", "unknown"]) == [1, 2]
    assert index.document_ids(["good", "film", "good", "film"]) == [1, 2, 3]
    assert index.document_ids([]) == []


def test_presence_matrix_and_scores():
    X = presence_matrix([[1, 3], [], [2]], 3)
    assert X.shape == (3, 4) and X.toarray().tolist() == [[0, 1, 0, 1], [0, 0, 0, 0], [0, 0, 1, 0]]
    w = np.array([[0.0], [1.0], [-2.0], [0.5]], dtype=np.float32)
    np.testing.assert_allclose(scores(X, w, np.array([0.25])), [[1.75], [0.25], [-1.75]])


@pytest.mark.parametrize("num_classes, num_scores", [(2, 1), (3, 3)])
def test_fit_separates_classes_by_their_words(num_classes, num_scores):
    rng = np.random.default_rng(0)
    y = rng.integers(0, num_classes, 300)
    # Feature c + 1 marks class c (with 10% noise); features 4..20 are noise.
    ids = [sorted({int(c) + 1 if rng.random() > 0.1 else int(rng.integers(1, 4))}
                  | set(rng.integers(4, 21, 3).tolist())) for c in y]
    X = presence_matrix(ids, 20)
    weights, intercept, _ = fit_nb_linear(X, y, num_classes, num_scores)
    assert weights.shape == (21, num_scores) and not weights[0].any()
    assert np.mean(predicted_classes(scores(X, weights, intercept)) == y) > 0.85


def test_a_class_missing_from_train_is_never_predicted():
    y = np.array([0, 1, 0, 1])
    X = presence_matrix([[1], [2], [1], [2]], 2)
    weights, intercept, _ = fit_nb_linear(X, y, 3, 3)
    assert set(predicted_classes(scores(X, weights, intercept)).tolist()) == {0, 1}


def test_tensorflow_ids_give_the_same_sums_as_python():
    tf = pytest.importorskip("tensorflow")
    from pipelines.tasks.sentiment.serving import tf_ngram_ids

    grams = ["not", "good", "not good", "very", "very good", "good good"]
    index = NgramIndex(grams, 3)
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(grams), tf.range(1, len(grams) + 1, dtype=tf.int64)), 0)
    docs = [["not", "good", "not", "good"], ["very", "good", "good", "good"], [], ["unknown"]]
    ids = tf_ngram_ids(tf.ragged.constant(docs, dtype=tf.string), table, 3).numpy()
    weights = np.arange(len(grams) + 1, dtype=np.float64) ** 2
    for row, doc in zip(ids, docs):
        assert sorted(i for i in row if i) == index.document_ids(doc)
        assert weights[row[row > 0]].sum() == weights[index.document_ids(doc)].sum()
