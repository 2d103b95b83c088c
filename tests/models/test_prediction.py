"""PredictOutputsMixin: predict_step returns the models' predict_outputs (TensorFlow, in process).

The JAX signature is checked in tests/models/test_jax_backend.py, in a
subprocess, since the backend is fixed when Keras is imported.
"""

import inspect

import keras
import numpy as np
import pytest

from models.classifier import TextClassifier
from models.prediction import PredictOutputsMixin
from models.tagger import SequenceTagger


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1)


def _inputs(with_chars, seed=0):
    rng = np.random.default_rng(seed)
    words = rng.integers(2, 30, size=(3, 6)).astype("int32")
    words[1, 4:] = 0
    words[2, 2:] = 0
    x = {"words": words}
    if with_chars:
        chars = rng.integers(1, 15, size=(3, 6, 4)).astype("int32")
        chars[words == 0] = 0
        x["chars"] = chars
    return x


MODELS = {
    "tagger_crf": lambda: SequenceTagger(30, 15, 5, word_dim=6, char_dim=4, char_filters=5, hidden_size=7),
    "tagger_softmax": lambda: SequenceTagger(30, 15, 5, word_dim=6, char_encoder="none", hidden_size=7,
                                             use_crf=False),
    "sigmoid": lambda: TextClassifier(30, 2, embedding_dim=6, hidden_size=5),
    "softmax": lambda: TextClassifier(30, 3, embedding_dim=6, hidden_size=5, pooling="attention"),
}


def test_predict_step_takes_data_only_outside_jax():
    assert keras.backend.backend() == "tensorflow"
    for cls in (SequenceTagger, TextClassifier):
        assert issubclass(cls, PredictOutputsMixin)
        assert list(inspect.signature(cls.predict_step).parameters) == ["self", "data"]
        assert cls.predict_step is PredictOutputsMixin.predict_step


@pytest.mark.parametrize("name", list(MODELS))
def test_predict_step_and_predict_on_batch_return_predict_outputs(name):
    model = MODELS[name]()
    x = _inputs(with_chars=isinstance(model, SequenceTagger))
    want = keras.ops.convert_to_numpy(model.predict_outputs(x, model(x, training=False)))
    if isinstance(model, SequenceTagger):
        np.testing.assert_array_equal(want, keras.ops.convert_to_numpy(model.decode(model(x), x["words"] > 0)))
    else:
        np.testing.assert_allclose(want, keras.ops.convert_to_numpy(model.probabilities(model(x))), rtol=1e-6)
    labels = np.zeros(3, "int32")
    for data in ((x,), (x, labels), (x, labels, np.ones(3, "float32"))):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(model.predict_step(data)), want, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(model.predict_on_batch(x)), want, rtol=1e-5, atol=1e-6)


def test_a_model_without_the_hook_says_so():
    class Plain(PredictOutputsMixin, keras.Model):
        pass

    inputs = keras.Input((2,))
    model = Plain(inputs=inputs, outputs=keras.layers.Dense(1)(inputs))
    with pytest.raises(NotImplementedError):
        model.predict_on_batch(np.zeros((1, 2), "float32"))
