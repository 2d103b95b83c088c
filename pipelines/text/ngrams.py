"""Word n-grams of normalised tokens, and their vocabulary (built from the train split only).

An n-gram is its words joined by one space; tokens never contain whitespace,
so the join is unambiguous. The SavedModel builds the same strings with
`tf.strings.ngrams(..., separator=" ")`.

The NB-weighted linear classifier below (Wang & Manning, 2012) is the sentiment
model's "wide" side and the evaluate stage's baseline. Features are binary
n-gram presence scaled by the naive Bayes log-count ratio
r = log((p / |p|_1) / (q / |q|_1)), p and q the smoothed (alpha = 1) feature
counts of the class and of the other classes; a logistic regression
(liblinear) is fitted on them, one-vs-rest for more than two classes. Its
scores are `X @ (coef * r) + intercept`, which is what the model's NgramLinear
layer computes from n-gram ids.
"""

import time
from collections import Counter

import numpy as np


def ngrams(tokens, max_n):
    """Every n-gram of `tokens` for n = 1..max_n, in order of n then position."""
    tokens = list(tokens)
    grams = list(tokens)
    for n in range(2, max_n + 1):
        grams += [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return grams


def build_ngram_vocabulary(token_lists, max_n, min_df=1, max_size=None):
    """N-grams in at least `min_df` documents, most documents first (ties alphabetically)."""
    df = Counter()
    for tokens in token_lists:
        df.update(set(ngrams(tokens, max_n)))
    items = sorted(((g, c) for g, c in df.items() if c >= min_df), key=lambda x: (-x[1], x[0]))
    if max_size is not None:
        items = items[: int(max_size)]
    return [g for g, _ in items]


class NgramIndex:
    """N-gram string -> id, 1-based (0 is padding and unknown n-grams)."""

    def __init__(self, grams, max_n):
        self.grams = list(grams)
        self.max_n = int(max_n)
        self.ids = {g: i for i, g in enumerate(self.grams, start=1)}

    def __len__(self):
        return len(self.grams)

    def document_ids(self, normalized_tokens):
        """Sorted distinct ids of a document's known n-grams (binary features: presence only)."""
        get = self.ids.get
        return sorted({i for i in map(get, ngrams(normalized_tokens, self.max_n)) if i is not None})



def presence_matrix(id_lists, num_features):
    """CSR (documents, num_features + 1) of 1s at the 1-based ids; column 0 stays empty."""
    import scipy.sparse as sp

    indptr = np.zeros(len(id_lists) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(ids) for ids in id_lists])
    indices = np.fromiter((i for ids in id_lists for i in ids), dtype=np.int32, count=int(indptr[-1]))
    data = np.ones(len(indices), dtype=np.float32)
    return sp.csr_matrix((data, indices, indptr), shape=(len(id_lists), num_features + 1))


def fit_nb_linear(X, y, num_classes, num_scores, C=1.0, alpha=1.0):
    """(weights (F, num_scores), intercept (num_scores,), seconds) of the NB-weighted logistic regression.

    num_scores 1: one binary classifier (class 1 against class 0); else one per
    class against the rest. Row 0 (padding) of the weights is zero.
    """
    from sklearn.linear_model import LogisticRegression

    start = time.perf_counter()
    y = np.asarray(y)
    targets = [1] if num_scores == 1 else range(num_classes)
    weights = np.zeros((X.shape[1], num_scores), dtype=np.float32)
    intercept = np.zeros(num_scores, dtype=np.float32)
    for column, positive in enumerate(targets):
        is_positive = y == positive
        p = np.asarray(X[is_positive].sum(axis=0)).ravel() + alpha
        q = np.asarray(X[~is_positive].sum(axis=0)).ravel() + alpha
        r = np.log((p / p.sum()) / (q / q.sum())).astype(np.float32)
        r[0] = 0.0
        if is_positive.all() or not is_positive.any():  # a class absent from train: never predicted
            intercept[column] = -1e3 if not is_positive.any() else 1e3
            continue
        clf = LogisticRegression(C=C, solver="liblinear", max_iter=1000)
        clf.fit(X.multiply(r).tocsr(), is_positive.astype(np.int32))
        weights[:, column] = clf.coef_[0] * r
        intercept[column] = clf.intercept_[0]
    return weights, intercept, time.perf_counter() - start


def scores(X, weights, intercept):
    return np.asarray(X @ weights, dtype=np.float32) + intercept


def predicted_classes(score_matrix):
    """Class ids from scores: the sign of a single binary score, else the best one-vs-rest score."""
    if score_matrix.shape[1] == 1:
        return (score_matrix[:, 0] > 0).astype(np.int64)
    return score_matrix.argmax(axis=1)
