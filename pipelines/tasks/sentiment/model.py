"""The sentiment model hooks: building the classifier, probabilities, attention weights."""

import keras
import numpy as np

from pipelines.core.predicting import predict_in_order


def build_model(model_cfg, vocab):
    from models.classifier import TextClassifier

    return TextClassifier(vocab_size=len(vocab["words"]), num_classes=len(vocab["labels"]), **model_cfg)


def load_model(path):
    import models.classifier  # noqa: F401  registers the custom layers

    return keras.saving.load_model(path)


def predict_probabilities(model, features, batch_size=256):
    """(N, C) class probabilities in input order."""
    return np.stack(predict_in_order(model, features, batch_size)).astype(np.float32)


def attention_for_text(model, encoder, text):
    """(token, weight) pairs of an attention-pooling model for one raw text."""
    import keras

    tokens = encoder.tokens(text)
    ids = encoder.word_ids(tokens)[None]
    weights = keras.ops.convert_to_numpy(model.attention({"words": ids}))[0]
    return list(zip(tokens or [""], weights.tolist()))
