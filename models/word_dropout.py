"""Word dropout: replaces whole tokens by the OOV id while training."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="bilstm")
class WordDropout(keras.layers.Layer):
    """Replaces non-padding token ids by `oov_id` with probability `rate`, and ids in
    `rare_ids` (start, stop) with probability `rare_rate` instead.

    Training on a few artificial unknown words teaches the tagger to rely on
    characters and context for the words it will not know at test time. The
    rare ids are the words seen once in training (Lample et al. 2016 replace
    them by the unknown word half the time): they are the most like the
    words a test set brings that training never had.

    Args:
        rate: float in [0, 1), probability of replacing a token.
        oov_id: int, id that replaced tokens get.
        padding_id: int, id that is never replaced.
        seed: optional int for the random generator.
        rare_ids: (start, stop), the ids start <= id < stop get `rare_rate`.
        rare_rate: float in [0, 1), their probability of being replaced.

    Call arguments:
        inputs: int tensor of token ids, any shape.
        training: bool; the layer is the identity when not training.

    Example:
    >>> layer = WordDropout(rate=0.1, oov_id=1)
    >>> ids = layer(keras.ops.array([[5, 6, 0]]), training=True)
    """

    def __init__(self, rate, oov_id=1, padding_id=0, seed=None, rare_ids=(0, 0), rare_rate=0.0, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("rate", rate), ("rare_rate", rare_rate)):
            if not 0.0 <= float(value) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value}")
        if len(rare_ids) != 2 or int(rare_ids[0]) > int(rare_ids[1]):
            raise ValueError(f"rare_ids must be (start, stop) with start <= stop, got {rare_ids!r}")
        self.rate = float(rate)
        self.rare_rate = float(rare_rate)
        self.rare_ids = (int(rare_ids[0]), int(rare_ids[1]))
        self.oov_id = int(oov_id)
        self.padding_id = int(padding_id)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def call(self, inputs, training=False):
        has_rare = self.rare_rate > 0.0 and self.rare_ids[1] > self.rare_ids[0]
        if not training or (self.rate == 0.0 and not has_rare):
            return inputs
        noise = keras.random.uniform(ops.shape(inputs), seed=self.seed_generator)
        rate = self.rate
        if has_rare:
            rare = ops.logical_and(inputs >= self.rare_ids[0], inputs < self.rare_ids[1])
            rate = ops.where(rare, self.rare_rate, self.rate)
        drop = ops.logical_and(noise < rate, ops.not_equal(inputs, self.padding_id))
        return ops.where(drop, ops.cast(self.oov_id, inputs.dtype), inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            rate=self.rate, oov_id=self.oov_id, padding_id=self.padding_id, seed=self.seed,
            rare_ids=list(self.rare_ids), rare_rate=self.rare_rate,
        )
        return config
