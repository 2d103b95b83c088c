"""Word dropout: replaces whole tokens by the OOV id while training."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="bilstm")
class WordDropout(keras.layers.Layer):
    """Replaces non-padding token ids by `oov_id` with probability `rate`.

    Training on a few artificial unknown words teaches the tagger to rely on
    characters and context for the words it will not know at test time.

    Args:
        rate: float in [0, 1), probability of replacing a token.
        oov_id: int, id that replaced tokens get.
        padding_id: int, id that is never replaced.
        seed: optional int for the random generator.

    Call arguments:
        inputs: int tensor of token ids, any shape.
        training: bool; the layer is the identity when not training.

    Example:
    >>> layer = WordDropout(rate=0.1, oov_id=1)
    >>> ids = layer(keras.ops.array([[5, 6, 0]]), training=True)
    """

    def __init__(self, rate, oov_id=1, padding_id=0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"rate must be in [0, 1), got {rate}")
        self.rate = float(rate)
        self.oov_id = int(oov_id)
        self.padding_id = int(padding_id)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def call(self, inputs, training=False):
        if not training or self.rate == 0.0:
            return inputs
        noise = keras.random.uniform(ops.shape(inputs), seed=self.seed_generator)
        drop = ops.logical_and(noise < self.rate, ops.not_equal(inputs, self.padding_id))
        return ops.where(drop, ops.cast(self.oov_id, inputs.dtype), inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            rate=self.rate, oov_id=self.oov_id, padding_id=self.padding_id, seed=self.seed
        )
        return config
