"""NER helpers shared by the train, evaluate and export stages."""

import keras
from seqeval.metrics import f1_score

from pipelines.batching import BucketBatcher
from pipelines.conll import convert_tags


def load_trained(out):
    """(vocab, encoder, model, test tokens, test tags) of a trained NER output folder."""
    import models.tagger  # noqa: F401  registers the custom layers
    from pipelines.features import TokenEncoder
    from pipelines.vocab import load_json

    vocab = load_json(out / "vocab.json")
    encoder = TokenEncoder.from_vocab_file(out / "vocab.json")
    model = keras.saving.load_model(out / "model.keras")
    tokens, tags, _ = load_split(out / "data", "test")
    return vocab, encoder, model, tokens, tags


def load_split(data_dir, split):
    """Tokens and tag names of one split of the prepared DatasetDict."""
    import datasets

    ds = datasets.load_from_disk(str(data_dir))[split]
    names = ds.features["tags"].feature.names
    tokens = ds["tokens"]
    tags = [[names[t] for t in row] for row in ds["tags"]]
    return tokens, tags, names


def predict_tag_ids(model, features, batch_size=256):
    """Decoded tag ids per sentence, in input order, each as long as its sentence."""
    # A model trained padding-free (rnn_mask False) is only right on unpadded batches.
    batcher = BucketBatcher(features, None, batch_size=batch_size, shuffle=False,
                            exact_lengths=not getattr(model, "rnn_mask", True))
    out = [None] * batcher.size
    for i in range(len(batcher)):
        (x,) = batcher[i]
        pred = keras.ops.convert_to_numpy(model.predict_on_batch(x))
        for row, j in enumerate(batcher.batch_indices[i]):
            out[j] = pred[row, : batcher.lengths[j]]
    return out


def to_iob2(tag_seqs, scheme):
    """Reporting and conlleval use IOB2, whatever scheme the model was trained on."""
    if scheme == "IOB2":
        return [list(t) for t in tag_seqs]
    return [convert_tags(t, scheme, "IOB2") for t in tag_seqs]


def decode_names(id_seqs, tag_names):
    return [[tag_names[i] for i in ids] for ids in id_seqs]


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
