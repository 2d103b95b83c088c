"""How the other mentions of each word in its document are cased."""

import keras
import numpy as np
from keras import ops

# log(1 + mentions), looked up rather than computed: NumPy's float32 log1p (the encoder's,
# pipelines/tasks/ner/encoding.py) and a backend's can differ in the last bit, and the
# SavedModel must give the in-memory model's scores exactly. Counts beyond it are clamped.
MAX_MENTIONS = 4095
LOG_MENTIONS = np.log1p(np.arange(MAX_MENTIONS + 1, dtype=np.float32))


@keras.saving.register_keras_serializable(package="bilstm")
class CaseEvidence(keras.layers.Layer):
    """For each token, the case classes of every mention of its word in the document.

    A sentence alone often cannot tell a name from a common word: headlines
    are in capitals, sentence starts are capitalised. The same word elsewhere
    in the document usually can ("JAPAN" in the headline, "Japan" in the
    body). Matching is on word ids, so unknown words (`oov_id`) and padding
    match nothing. The output is the share of each case class among the
    mentions (the token itself included) and log(1 + mentions), mentions
    clamped at MAX_MENTIONS.

    Args:
        num_classes: int, number of case classes, padding (0) included.
        oov_id: int, the unknown word's id.

    Call arguments:
        words: int (batch, time), the sentence's word ids (0: padding).
        doc_words: int (batch, length), the word ids of the sentence's document.
        doc_case: int (batch, length), the case class of each document token.

    Returns:
        float (batch, time, num_classes): the shares of classes 1.. and the log count.

    Example:
    >>> layer = CaseEvidence(num_classes=7)
    >>> features = layer(words, doc_words, doc_case)
    """

    def __init__(self, num_classes, oov_id=1, **kwargs):
        super().__init__(**kwargs)
        if int(num_classes) < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.num_classes = int(num_classes)
        self.oov_id = int(oov_id)

    def call(self, words, doc_words, doc_case):
        known = ops.logical_and(ops.not_equal(doc_words, 0), ops.not_equal(doc_words, self.oov_id))
        known = ops.logical_and(known, ops.greater(doc_case, 0))
        same = ops.logical_and(ops.equal(words[:, :, None], doc_words[:, None, :]), known[:, None, :])
        same = ops.cast(same, self.compute_dtype)
        classes = ops.one_hot(doc_case, self.num_classes, dtype=self.compute_dtype)[:, :, 1:]
        counts = ops.einsum("btl,blc->btc", same, classes)
        total = ops.sum(counts, axis=-1, keepdims=True)
        shares = counts / ops.maximum(total, 1.0)
        mentions = ops.cast(ops.minimum(total, MAX_MENTIONS), "int32")
        log_total = ops.cast(ops.take(ops.convert_to_tensor(LOG_MENTIONS), mentions), self.compute_dtype)
        return ops.concatenate([shares, log_total], axis=-1)

    def compute_output_shape(self, words_shape, doc_words_shape=None, doc_case_shape=None):
        return tuple(words_shape) + (self.num_classes,)

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, oov_id=self.oov_id)
        return config
