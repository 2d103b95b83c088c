"""Bi-RNN text classifier (many-to-one) with max, mean, last or attention pooling."""

import keras
from keras import layers, ops

from models.ngram_linear import NgramLinear
from models.prediction import PredictOutputsMixin
from models.recurrent import RNN_TYPES, bidirectional
from models.runtime import scale_loss_for_replicas
from models.sequence_pooling import POOLING_MODES, SequencePooling
from models.word_dropout import WordDropout


@keras.saving.register_keras_serializable(package="bilstm")
class TextClassifier(PredictOutputsMixin, keras.Model):
    """Word Bi-RNN document classifier; one label per sequence.

    The input is a dict with `words`, a right-padded int array (batch, time)
    with 0 for padding and `oov_id` for unknown words. The words go through
    word dropout, an embedding, dropout, `num_layers` stacked bidirectional
    LSTM/GRU layers (masked at padding), a masked `SequencePooling`, dropout
    and a dense layer. The model outputs logits: one per example when
    `num_classes == 2` and `sigmoid_for_binary` (a sigmoid/binary
    cross-entropy classifier), else `num_classes` (softmax/sparse categorical
    cross-entropy). `compute_loss` picks the matching loss, so compile with
    an optimizer only, plus `metrics=[model.accuracy_metric()]`, which is
    `keras.metrics.SparseCategoricalAccuracy(name="accuracy")` for the
    softmax case and `keras.metrics.BinaryAccuracy(name="accuracy",
    threshold=0.0)` for the one-logit case (threshold 0 since the outputs are
    logits). Labels are int class ids (batch,).

    `predict` / `predict_on_batch` return class probabilities (batch,
    num_classes) in both cases; `probabilities` turns logits into them and
    `attention` returns the attention weights of a batch.

    Args:
        vocab_size: int, number of word ids (padding and OOV included).
        num_classes: int >= 2, number of classes.
        embedding_dim: int, word embedding size.
        rnn_type: "lstm" or "gru".
        hidden_size: int, units per direction of each Bi-RNN layer.
        num_layers: int >= 1, number of stacked Bi-RNN layers.
        pooling: "max", "mean", "last" or "attention".
        attention_units: int, attention hidden size (pooling="attention").
        dropout: float, dropout on the embeddings and on the pooled vector.
        word_dropout: float, probability of replacing a word by OOV in training.
        sigmoid_for_binary: bool, one sigmoid logit instead of two softmax
            logits when `num_classes == 2`.
        oov_id: int, id of the unknown word.
        rnn_mask: bool, pass the padding mask to the recurrent layers; False
            is only correct on batches without padding and lets the Bi-RNNs
            use cuDNN under JAX and torch (the pooling is masked either way).
        ngram_features: int, 0 or the size of an n-gram vocabulary: then the
            model has a second input `ngrams` (distinct n-gram ids, 0-padded)
            and a "wide" `NgramLinear` side whose scores are mixed into the
            logits. Its weights are not trained by `fit`; `wide` gives the
            layer, whose mix starts at (1, 0) (the recurrent logits only).

    Example:
    >>> model = TextClassifier(vocab_size=1000, num_classes=2, pooling="attention")
    >>> model.compile(optimizer="adam", metrics=[model.accuracy_metric()])
    >>> model.fit({"words": words}, labels)
    >>> probs = model.predict({"words": words})   # (batch, 2)
    >>> weights = model.attention({"words": words})  # (batch, time)
    """

    def __init__(
        self,
        vocab_size,
        num_classes,
        embedding_dim=100,
        rnn_type="lstm",
        hidden_size=64,
        num_layers=1,
        pooling="max",
        attention_units=64,
        dropout=0.3,
        word_dropout=0.0,
        sigmoid_for_binary=True,
        oov_id=1,
        rnn_mask=True,
        ngram_features=0,
        **kwargs,
    ):
        if rnn_type not in RNN_TYPES:
            raise ValueError(f"rnn_type must be one of {RNN_TYPES}, got {rnn_type!r}")
        if pooling not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {POOLING_MODES}, got {pooling!r}")
        if int(num_classes) < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        if int(num_layers) < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if int(vocab_size) < 2:
            raise ValueError(f"vocab_size must be >= 2, got {vocab_size}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        num_logits = 1 if int(num_classes) == 2 and sigmoid_for_binary else int(num_classes)

        # === Layers ===
        word_dropout_layer = WordDropout(word_dropout, oov_id=oov_id, name="word_dropout")
        embedding = layers.Embedding(int(vocab_size), int(embedding_dim), name="word_embedding")
        embedding_dropout = layers.Dropout(dropout, name="embedding_dropout")
        rnn_layers = [
            bidirectional(rnn_type, int(hidden_size), f"bi_{rnn_type}_{i}")
            for i in range(int(num_layers))
        ]
        pooling_layer = SequencePooling(
            pooling, bidirectional=True, attention_units=attention_units, name="pooling"
        )
        pooled_dropout = layers.Dropout(dropout, name="pooling_dropout")
        logits_layer = layers.Dense(num_logits, dtype="float32", name="logits")

        # === Functional model ===
        words = keras.Input(shape=(None,), dtype="int32", name="words")
        mask = ops.not_equal(words, 0)
        x = embedding_dropout(embedding(word_dropout_layer(words)))
        for rnn in rnn_layers:
            x = rnn(x, mask=mask if rnn_mask else None)
        x = pooled_dropout(pooling_layer(x, mask=mask))
        logits = logits_layer(x)
        inputs = {"words": words}
        wide = None
        if int(ngram_features) > 0:
            inputs["ngrams"] = keras.Input(shape=(None,), dtype="int32", name="ngrams")
            wide = NgramLinear(int(ngram_features), num_logits, dtype="float32", name="wide")
            logits = wide(logits, inputs["ngrams"])
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

        # === Config ===
        self.vocab_size = int(vocab_size)
        self.num_classes = int(num_classes)
        self.embedding_dim = int(embedding_dim)
        self.rnn_type = rnn_type
        self.hidden_size = int(hidden_size)
        self.num_layers = int(num_layers)
        self.pooling = pooling
        self.attention_units = int(attention_units)
        self.dropout = float(dropout)
        self.word_dropout = float(word_dropout)
        self.sigmoid_for_binary = bool(sigmoid_for_binary)
        self.oov_id = int(oov_id)
        self.num_logits = num_logits
        self.rnn_mask = bool(rnn_mask)
        self.ngram_features = int(ngram_features)

        # === Layer references (for `attention`) ===
        self.word_dropout_layer = word_dropout_layer
        self.word_embedding = embedding
        self.embedding_dropout = embedding_dropout
        self.rnn_layers = rnn_layers
        self.pooling_layer = pooling_layer
        self.logits_layer = logits_layer
        self.wide = wide

    @property
    def uses_sigmoid(self):
        """True when the model has one logit (binary sigmoid classifier)."""
        return self.num_logits == 1

    @staticmethod
    def token_mask(inputs):
        words = inputs["words"] if isinstance(inputs, dict) else inputs
        return ops.not_equal(words, 0)

    def probabilities(self, logits):
        """Class probabilities (batch, num_classes) from the model's logits."""
        logits = ops.cast(logits, "float32")
        if self.uses_sigmoid:
            positive = ops.sigmoid(logits[:, 0])
            return ops.stack([1.0 - positive, positive], axis=-1)
        return ops.softmax(logits, axis=-1)

    def accuracy_metric(self):
        """A new accuracy metric (name "accuracy") that reads this model's logits."""
        if self.uses_sigmoid:
            return keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0)
        return keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    def attention(self, inputs):
        """Attention weights (batch, time) of a batch: 0 at padding, sum 1 per row."""
        if self.pooling != "attention":
            raise ValueError(
                f"attention needs pooling='attention', this model has {self.pooling!r}"
            )
        words = inputs["words"] if isinstance(inputs, dict) else inputs
        words = ops.convert_to_tensor(words, dtype="int32")
        mask = ops.not_equal(words, 0)
        x = self.word_dropout_layer(words, training=False)
        x = self.embedding_dropout(self.word_embedding(x), training=False)
        for rnn in self.rnn_layers:
            x = rnn(x, mask=mask if self.rnn_mask else None, training=False)
        return self.pooling_layer.attention_weights(x, mask)

    def logit_parts(self):
        """A functional model sharing these layers: the inputs -> (model logits, recurrent logits,
        wide logits), concatenated (batch, 3 * num_logits). Without a wide side the last part is 0."""
        deep = self.logits_layer.output
        if self.wide is None:
            wide = layers.Lambda(lambda t: ops.zeros_like(t), name="no_wide")(deep)
            parts = [deep, deep, wide]
        else:
            wide = layers.Lambda(lambda i: self.wide.wide_logits(i), name="wide_logits")(self.input["ngrams"])
            parts = [self.output, deep, wide]
        return keras.Model(self.input, layers.Concatenate(axis=-1, dtype="float32")(parts), name="logit_parts")

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        y_pred = ops.cast(y_pred, "float32")
        labels = ops.reshape(y, (-1,))
        if self.uses_sigmoid:
            targets = ops.expand_dims(ops.cast(labels, "float32"), -1)
            per_example = keras.losses.binary_crossentropy(targets, y_pred, from_logits=True)
        else:
            per_example = keras.losses.sparse_categorical_crossentropy(
                ops.cast(labels, "int32"), y_pred, from_logits=True
            )
        if sample_weight is not None:
            per_example = per_example * ops.reshape(
                ops.cast(sample_weight, per_example.dtype), (-1,)
            )
        # Mean over the batch, as Keras' default "sum_over_batch_size".
        loss = ops.mean(per_example)
        if self.losses:
            loss = loss + ops.sum(self.losses)
        return scale_loss_for_replicas(loss)

    def predict_outputs(self, x, logits):
        """Class probabilities: what `predict` and `predict_on_batch` return."""
        return self.probabilities(logits)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "vocab_size": self.vocab_size,
            "num_classes": self.num_classes,
            "embedding_dim": self.embedding_dim,
            "rnn_type": self.rnn_type,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "pooling": self.pooling,
            "attention_units": self.attention_units,
            "dropout": self.dropout,
            "word_dropout": self.word_dropout,
            "sigmoid_for_binary": self.sigmoid_for_binary,
            "oov_id": self.oov_id,
            "rnn_mask": self.rnn_mask,
            "ngram_features": self.ngram_features,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
