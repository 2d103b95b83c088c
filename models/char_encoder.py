"""Character-level word encoder: one vector per token from its characters."""

import keras
from keras import layers, ops

from models.recurrent import bidirectional

ENCODER_TYPES = ("cnn", "lstm")


@keras.saving.register_keras_serializable(package="bilstm")
class CharEncoder(keras.layers.Layer):
    """Encodes each token's characters into a fixed-size vector.

    `cnn` is a convolution followed by a max over the token's characters (Ma
    and Hovy, 2016); `lstm` is a Bi-LSTM whose final states are concatenated
    (Lample et al., 2016). Character id 0 is padding.

    Args:
        vocab_size: int, number of character ids including padding and OOV.
        embedding_dim: int, size of the character embeddings.
        encoder: "cnn" or "lstm".
        filters: int, number of CNN filters (output size for "cnn").
        kernel_size: int, CNN window in characters.
        hidden_size: int, LSTM units per direction ("lstm" output is twice this).
        dropout: float, dropout on character embeddings while training.

    Call arguments:
        inputs: int tensor (batch, time, chars) of character ids.
        training: bool.

    Returns:
        float tensor (batch, time, output_dim).

    Example:
    >>> enc = CharEncoder(vocab_size=50, encoder="cnn", filters=30)
    >>> enc(keras.ops.ones((2, 5, 7), dtype="int32")).shape
    (2, 5, 30)
    """

    def __init__(
        self,
        vocab_size,
        embedding_dim=30,
        encoder="cnn",
        filters=50,
        kernel_size=3,
        hidden_size=25,
        dropout=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if encoder not in ENCODER_TYPES:
            raise ValueError(f"encoder must be one of {ENCODER_TYPES}, got {encoder!r}")
        if int(vocab_size) < 2:
            raise ValueError(f"vocab_size must be >= 2, got {vocab_size}")
        self.vocab_size = int(vocab_size)
        self.embedding_dim = int(embedding_dim)
        self.encoder = encoder
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.hidden_size = int(hidden_size)
        self.dropout = float(dropout)
        self.embedding = layers.Embedding(
            self.vocab_size, self.embedding_dim, name="char_embedding"
        )
        self.embedding_dropout = layers.Dropout(self.dropout)
        if encoder == "cnn":
            self.conv = layers.Conv1D(
                self.filters, self.kernel_size, padding="same", activation="tanh",
                name="char_conv",
            )
        else:
            self.rnn = bidirectional("lstm", self.hidden_size, "char_lstm", return_sequences=False)

    @property
    def output_dim(self):
        return self.filters if self.encoder == "cnn" else 2 * self.hidden_size

    def build(self, input_shape):
        flat = (None, input_shape[-1], self.embedding_dim)
        self.embedding.build((None, input_shape[-1]))
        if self.encoder == "cnn":
            self.conv.build(flat)
        else:
            self.rnn.build(flat)
        self.built = True

    def call(self, inputs, training=False):
        shape = ops.shape(inputs)
        batch, time, chars = shape[0], shape[1], shape[2]
        flat_ids = ops.reshape(inputs, (-1, chars))
        char_mask = ops.not_equal(flat_ids, 0)
        x = self.embedding(flat_ids)
        x = self.embedding_dropout(x, training=training)
        if self.encoder == "cnn":
            # Zero the padding characters' embeddings so the convolution sees
            # the same zeros as its own "same" padding: appending padding
            # columns must not change a token's vector.
            x = x * ops.cast(ops.expand_dims(char_mask, -1), x.dtype)
            x = self.conv(x)
            # Padding characters must not win the max.
            x = ops.where(ops.expand_dims(char_mask, -1), x, ops.full_like(x, -1e4))
            x = ops.max(x, axis=1)
            # Padding tokens (no characters) get zeros instead of -1e4.
            has_chars = ops.any(char_mask, axis=1, keepdims=True)
            x = ops.where(has_chars, x, ops.zeros_like(x))
        else:
            # Padding tokens would be all-mask rows: give them one visible char
            # so every backend's LSTM sees at least one step.
            first = ops.arange(chars) == 0
            safe_mask = ops.logical_or(char_mask, ops.expand_dims(first, 0))
            x = self.rnn(x, mask=safe_mask, training=training)
        return ops.reshape(x, (batch, time, self.output_dim))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:2]) + (self.output_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            embedding_dim=self.embedding_dim,
            encoder=self.encoder,
            filters=self.filters,
            kernel_size=self.kernel_size,
            hidden_size=self.hidden_size,
            dropout=self.dropout,
        )
        return config
