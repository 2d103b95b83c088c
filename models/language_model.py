"""A forward and a backward word language model whose recurrent layers become a Bi-RNN's.

Pretraining for the classifier's first Bi-LSTM (Dai & Le 2015's LM-LSTM,
with a backward model too, as in ELMo): the forward RNN reads a window of
word ids left to right and predicts each next word, the backward RNN reads it
right to left and predicts each previous word. Both share the embedding and
the output softmax. Training uses a sampled softmax over `num_sampled`
negatives drawn once per batch from the unigram distribution raised to 0.75
(Mikolov et al. 2013), with the usual log-expected-count correction and
accidental hits removed (Jean et al. 2015); evaluation (`training=False`)
uses the full softmax, so `val_loss` is the true cross-entropy (its exp the
perplexity).

`encoder_weights` gives the arrays that `load_encoder_weights` copies into a
classifier: the word embedding and the forward/backward layers of its first
Bi-RNN. A right-to-left RNN on the reversed window is the same function as
Keras' `go_backwards` layer on the window, so the weights carry over as they
are. keras.ops only: it trains under every backend.
"""

import keras
import numpy as np
from keras import layers, ops

from models.recurrent import RNN_TYPES, ProjectedGRU, ProjectedLSTM

ENCODER_KEYS = ("embedding", "forward", "backward")


def _words(inputs):
    # The project's batchers give a dict of features; the windows are its "words".
    return inputs["words"] if isinstance(inputs, dict) else inputs


@keras.saving.register_keras_serializable(package="bilstm")
class BidirectionalLanguageModel(keras.Model):
    """Forward + backward RNN language models over word-id windows.

    Input: int array (batch, length + 1) of word ids without padding (0 is
    never a target), or a dict whose "words" is that array. Output: the two hidden-state sequences, stacked
    (2, batch, length, hidden_size). `compute_loss` gives the mean of both
    directions' cross-entropies. Call `set_unigram_counts` before training.

    Args:
        vocab_size: int, number of word ids (padding and OOV included).
        embedding_dim: int, word embedding size.
        rnn_type: "lstm" or "gru".
        hidden_size: int, units of each direction's RNN.
        num_sampled: int, negatives per batch of the sampled softmax.
        dropout: float, dropout on the embeddings and on the hidden states.
    """

    def __init__(self, vocab_size, embedding_dim=100, rnn_type="lstm", hidden_size=64, num_sampled=512,
                 dropout=0.1, seed=0, **kwargs):
        super().__init__(**kwargs)
        if rnn_type not in RNN_TYPES:
            raise ValueError(f"rnn_type must be one of {RNN_TYPES}, got {rnn_type!r}")
        if int(vocab_size) < 3:
            raise ValueError(f"vocab_size must be >= 3, got {vocab_size}")
        if int(num_sampled) < 1:
            raise ValueError(f"num_sampled must be >= 1, got {num_sampled}")
        self.vocab_size = int(vocab_size)
        self.embedding_dim = int(embedding_dim)
        self.rnn_type = rnn_type
        self.hidden_size = int(hidden_size)
        self.num_sampled = int(num_sampled)
        self.dropout = float(dropout)
        self.seed = int(seed)
        cell = ProjectedLSTM if rnn_type == "lstm" else ProjectedGRU
        self.word_embedding = layers.Embedding(self.vocab_size, self.embedding_dim, name="word_embedding")
        self.embedding_dropout = layers.Dropout(self.dropout, name="embedding_dropout")
        self.forward_rnn = cell(self.hidden_size, return_sequences=True, name="forward_rnn")
        self.backward_rnn = cell(self.hidden_size, return_sequences=True, name="backward_rnn")
        self.state_dropout = layers.Dropout(self.dropout, name="state_dropout")
        self.seed_generator = keras.random.SeedGenerator(self.seed)

    def build(self, input_shape):
        self.word_embedding.build((None, None))
        self.forward_rnn.build((None, None, self.embedding_dim))
        self.backward_rnn.build((None, None, self.embedding_dim))
        self.softmax_kernel = self.add_weight(shape=(self.vocab_size, self.hidden_size), name="softmax_kernel",
                                              initializer="glorot_uniform")
        self.softmax_bias = self.add_weight(shape=(self.vocab_size,), name="softmax_bias", initializer="zeros")
        # Sampling distribution (cumulative) and each word's probability under it.
        self.sampling_cdf = self.add_weight(shape=(self.vocab_size,), name="sampling_cdf", trainable=False,
                                            initializer=keras.initializers.Constant(1.0))
        self.sampling_probs = self.add_weight(shape=(self.vocab_size,), name="sampling_probs", trainable=False,
                                              initializer=keras.initializers.Constant(1.0 / self.vocab_size))
        self.built = True

    def set_unigram_counts(self, counts, power=0.75):
        """Negatives are drawn with probability proportional to counts ** power (padding never)."""
        if not self.built:
            self.build((None, None))
        weights = np.asarray(counts, dtype=np.float64) ** power
        weights[0] = 0.0
        weights = np.maximum(weights, 0.0)
        if weights.shape != (self.vocab_size,) or weights.sum() <= 0:
            raise ValueError(f"counts must be {self.vocab_size} non-negative values with a positive sum")
        probs = weights / weights.sum()
        cdf = np.cumsum(probs)
        cdf[-1] = 1.0
        self.sampling_probs.assign(probs.astype(np.float32))
        self.sampling_cdf.assign(cdf.astype(np.float32))

    def call(self, windows, training=False):
        windows = ops.cast(_words(windows), "int32")
        x = self.embedding_dropout(self.word_embedding(windows), training=training)
        forward = self.forward_rnn(x[:, :-1], training=training)
        backward = self.backward_rnn(ops.flip(x[:, 1:], axis=1), training=training)
        states = ops.stack([forward, backward], axis=0)
        return self.state_dropout(states, training=training)

    @staticmethod
    def targets(windows):
        """(2, batch, length) next-word targets of the forward and the backward model."""
        windows = ops.cast(_words(windows), "int32")
        return ops.stack([windows[:, 1:], ops.flip(windows[:, :-1], axis=1)], axis=0)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        states = ops.reshape(ops.cast(y_pred, "float32"), (-1, self.hidden_size))
        targets = ops.reshape(self.targets(x), (-1,))
        if training:
            loss = self._sampled_loss(states, targets)
        else:
            logits = ops.matmul(states, ops.transpose(self.softmax_kernel)) + self.softmax_bias
            loss = ops.mean(keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True))
        if self.losses:
            loss = loss + ops.sum(self.losses)
        return loss

    def _sampled_loss(self, states, targets):
        uniform = keras.random.uniform((self.num_sampled,), seed=self.seed_generator)
        negatives = ops.minimum(ops.cast(ops.searchsorted(self.sampling_cdf, uniform), "int32"),
                                self.vocab_size - 1)
        log_expected = ops.log(ops.maximum(self.num_sampled * self.sampling_probs, 1e-30))
        true_logit = (ops.sum(states * ops.take(self.softmax_kernel, targets, axis=0), axis=-1)
                      + ops.take(self.softmax_bias, targets) - ops.take(log_expected, targets))
        negative_logits = (ops.matmul(states, ops.transpose(ops.take(self.softmax_kernel, negatives, axis=0)))
                           + ops.take(self.softmax_bias, negatives) - ops.take(log_expected, negatives))
        hits = ops.equal(ops.expand_dims(targets, 1), ops.expand_dims(negatives, 0))
        negative_logits = ops.where(hits, -1e9, negative_logits)
        logits = ops.concatenate([ops.expand_dims(true_logit, 1), negative_logits], axis=1)
        return ops.mean(ops.logsumexp(logits, axis=1) - true_logit)

    def encoder_weights(self):
        """{"embedding": [matrix], "forward": [...], "backward": [...]} as NumPy arrays."""
        return {"embedding": [np.asarray(w) for w in self.word_embedding.get_weights()],
                "forward": [np.asarray(w) for w in self.forward_rnn.get_weights()],
                "backward": [np.asarray(w) for w in self.backward_rnn.get_weights()]}

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, "vocab_size": self.vocab_size,
                "embedding_dim": self.embedding_dim, "rnn_type": self.rnn_type, "hidden_size": self.hidden_size,
                "num_sampled": self.num_sampled, "dropout": self.dropout, "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def load_encoder_weights(model, weights):
    """Copies `encoder_weights()` into a model with a `word_embedding` layer and `rnn_layers`
    (Bidirectional): the embedding and the first Bi-RNN. Raises ValueError naming the
    part whose shapes differ."""
    bi_rnn = model.rnn_layers[0]
    parts = {"embedding": model.word_embedding, "forward": bi_rnn.forward_layer, "backward": bi_rnn.backward_layer}
    for key in ENCODER_KEYS:
        layer, arrays = parts[key], weights[key]
        current = layer.get_weights()
        shapes = [tuple(w.shape) for w in current]
        given = [tuple(np.shape(w)) for w in arrays]
        if shapes != given:
            raise ValueError(f"pretrained {key} weights have shapes {given}, the model's are {shapes}")
        layer.set_weights(arrays)
