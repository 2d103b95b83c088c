"""One `predict_step` for every backend, around a backend-neutral decoding hook."""

import keras


class PredictOutputsMixin:
    """Makes `predict`/`predict_on_batch` return `predict_outputs(x, logits)`.

    Put it before `keras.Model` in the bases and write `predict_outputs` in
    `keras.ops`: the tagger decodes tag ids there, the classifier turns
    logits into probabilities.

    Why a mixin: TensorFlow's and torch's trainers call `predict_step(data)`
    and read the variables themselves, while JAX's calls the stateless
    `predict_step(state, data)` and expects `(outputs, non_trainable_variables)`
    back, as `keras.src.backend.jax.trainer.JAXTrainer.predict_step` returns.
    The backend is fixed when Keras is imported, so the matching signature is
    picked once, here, and the decoding is written once, in the hook.
    """

    def predict_outputs(self, x, logits):
        """Prediction outputs of a batch from the model's outputs; keras.ops only."""
        raise NotImplementedError

    if keras.backend.backend() == "jax":

        def predict_step(self, state, data):
            # As JAXTrainer.predict_step, plus the hook. The hook reads layer
            # weights (the CRF transitions), so it runs in a StatelessScope
            # mapped to `state`: a plain variable read would be baked into the
            # jitted function as a constant (stale after training steps), and
            # `predict()` purges the variables' own values while it runs.
            trainable_variables, non_trainable_variables = state
            kwargs = {"training": False} if self._call_has_training_arg else {}
            x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
            logits, non_trainable_variables = self.stateless_call(
                trainable_variables, non_trainable_variables, x, **kwargs
            )
            mapping = list(zip(self.trainable_variables, trainable_variables)) + list(
                zip(self.non_trainable_variables, non_trainable_variables)
            )
            with keras.StatelessScope(state_mapping=mapping):
                outputs = self.predict_outputs(x, logits)
            return outputs, non_trainable_variables

    else:

        def predict_step(self, data):
            x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
            return self.predict_outputs(x, self(x, training=False))
