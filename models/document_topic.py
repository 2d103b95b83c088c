"""A document's topic, from the mean of its word embeddings, beside every token."""

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="bilstm")
class DocumentTopic(keras.layers.Layer):
    """The mean of a document's word vectors through a tanh layer, repeated per token.

    Whether a document is a sports results table or a political report
    decides many ORG/LOC choices ("Leeds 2 Chelsea 1" are clubs); one
    sentence rarely shows it. The word vectors come in with their gradient
    stopped by the caller, so the topic trains only this layer's weights and
    a batch still updates only its own sentences' embedding rows.

    Args:
        units: int, size of the topic vector.

    Call arguments:
        words: int (batch, time), the sentence's word ids (0: padding); gives the output length.
        doc_vectors: float (batch, length, dim), the document's word vectors.
        doc_words: int (batch, length), their ids (0: padding, left out of the mean).

    Returns:
        float (batch, time, units).

    Example:
    >>> layer = DocumentTopic(units=50)
    >>> topic = layer(words, doc_vectors, doc_words)
    """

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        if int(units) < 1:
            raise ValueError(f"units must be >= 1, got {units}")
        self.units = int(units)
        self.dense = layers.Dense(self.units, activation="tanh", name="dense")

    def build(self, words_shape, doc_vectors_shape, doc_words_shape=None):
        self.dense.build(tuple(doc_vectors_shape[:1]) + tuple(doc_vectors_shape[2:]))
        self.built = True

    def call(self, words, doc_vectors, doc_words):
        weights = ops.cast(ops.not_equal(doc_words, 0), doc_vectors.dtype)[:, :, None]
        mean = ops.sum(doc_vectors * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0)
        topic = self.dense(mean)
        steps = ops.cast(ops.ones_like(words), topic.dtype)[:, :, None]
        return steps * topic[:, None, :]

    def compute_output_shape(self, words_shape, doc_vectors_shape=None, doc_words_shape=None):
        return tuple(words_shape) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units)
        return config
