"""The NER model hooks: building the tagger, decoding tags, entity F1 on validation."""

import keras
from seqeval.metrics import f1_score

from pipelines.core.errors import ParamsError
from pipelines.core.predicting import predict_in_order
from pipelines.tasks.ner.encoding import decode_names, to_iob2


def build_model(model_cfg, vocab):
    from models.tagger import SequenceTagger

    return SequenceTagger(
        word_vocab_size=len(vocab["words"]),
        char_vocab_size=len(vocab["chars"]),
        num_tags=len(vocab["tags"]),
        **model_cfg,
    )


def check_runtime(runtime, model_cfg):
    if runtime.backend == "tensorflow" and runtime.jit_compile is True and model_cfg.get("use_crf", True):
        # The CRF's loops have no static bound, which TensorFlow's XLA refuses.
        raise ParamsError("ner.train.jit_compile: true does not work with TensorFlow and the CRF (XLA needs "
                          "loops of static length); use auto or false, or KERAS_BACKEND=jax, where XLA is on")


def load_model(path):
    import models.tagger  # noqa: F401  registers the custom layers

    return keras.saving.load_model(path)


def predict_tag_ids(model, features, batch_size=256):
    """Decoded tag ids per sentence, in input order, each as long as its sentence."""
    return predict_in_order(model, features, batch_size, per_token=True)


class EntityF1Callback(keras.callbacks.Callback):
    """Adds validation entity-level F1 (seqeval, conlleval mode) to the epoch logs."""

    def __init__(self, features, gold_tags, tag_names, scheme, batch_size=256, name="val_f1"):
        super().__init__()
        self.features = features
        self.gold = to_iob2(gold_tags, scheme)
        self.tag_names = tag_names
        self.scheme = scheme
        self.batch_size = batch_size
        self.name = name

    def on_epoch_end(self, epoch, logs=None):
        ids = predict_tag_ids(self.model, self.features, self.batch_size)
        pred = to_iob2(decode_names(ids, self.tag_names), self.scheme)
        score = f1_score(self.gold, pred)
        if logs is not None:
            logs[self.name] = float(score)
        print(f" - {self.name}: {score:.4f}")
