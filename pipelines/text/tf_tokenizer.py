"""TensorFlow twin of pipelines/tokenizer.py for use inside SavedModels.

Applies the same rule list (rendered to RE2) with ``tf.strings.regex_replace``
in the same order, so tokens match the pure-Python tokenizer exactly.
"""

from __future__ import annotations

import tensorflow as tf

from pipelines.text.casing import SENTENCE_ENDS
from pipelines.text.tokenizer import markup_rules, tokenize_rules

_RE2_TOKENIZE = tokenize_rules("re2")
_RE2_MARKUP = markup_rules("re2")


def _apply(texts, rules):
    for pattern, rewrite in rules:
        texts = tf.strings.regex_replace(texts, pattern, rewrite, replace_global=True)
    return texts


def tf_tokenize(texts) -> tf.RaggedTensor:
    """tf.string (batch,) -> tf.RaggedTensor (batch, None) of tf.string tokens."""
    texts = tf.convert_to_tensor(texts, dtype=tf.string)
    texts = _apply(texts, _RE2_TOKENIZE)
    tokens = tf.strings.split(texts, sep=" ")
    # Leading/trailing/double spaces give empty pieces; drop them.
    return tf.ragged.boolean_mask(tokens, tf.strings.length(tokens) > 0)


def tf_normalize_words(tokens, lowercase: bool, digits_to_zero: bool):
    """Elementwise normalize_word(); accepts a Tensor or a RaggedTensor."""

    def norm(x):
        if lowercase:
            x = tf.strings.lower(x)  # default encoding: ASCII-only, like Python side
        if digits_to_zero:
            x = tf.strings.regex_replace(x, "[0-9]", "0", replace_global=True)
        return x

    if isinstance(tokens, tf.RaggedTensor):
        return tf.ragged.map_flat_values(norm, tokens)
    return norm(tf.convert_to_tensor(tokens, dtype=tf.string))


def tf_clean_markup(texts):
    return _apply(tf.convert_to_tensor(texts, dtype=tf.string), _RE2_MARKUP)


def tf_case_classes(tokens: tf.RaggedTensor) -> tf.Tensor:
    """pipelines.text.casing.case_classes of each row of `tokens`: int32 (batch, time),
    0 at padding."""
    padded = tokens.to_tensor("")
    valid = tf.sequence_mask(tokens.row_lengths(), tf.shape(padded)[1])
    has_upper = tf.strings.regex_full_match(padded, r"(?s).*\p{Lu}.*")
    has_lower = tf.strings.regex_full_match(padded, r"(?s).*\p{Ll}.*")
    first_upper = tf.strings.regex_full_match(padded, r"(?s)\p{Lu}.*")
    previous = tf.pad(padded[:, :-1], [[0, 0], [1, 0]])
    initial = tf.concat([tf.ones_like(valid[:, :1]), tf.zeros_like(valid[:, 1:])], axis=1)
    for end in sorted(SENTENCE_ENDS):
        initial = initial | tf.equal(previous, end)
    classes = tf.where(
        ~has_upper,
        tf.where(has_lower, 2, 1),
        tf.where(~has_lower, 4, tf.where(first_upper, tf.where(initial, 5, 3), 6)),
    )
    return tf.where(valid, classes, 0)
