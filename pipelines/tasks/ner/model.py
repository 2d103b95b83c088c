"""The NER model hooks: building the tagger, decoding tags, entity F1 on validation."""

import contextlib

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
        document_features=vocab.get("document_features", ()),
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


def tag_descriptions(tag_names):
    """(span_types, begins) of the model's tags for models/entity_scores.py: the entity type
    index of each tag (-1 for O) and whether it always begins an entity (B-, S-)."""
    import numpy as np

    types = sorted({t[2:] for t in tag_names if t != "O"})
    span_types = np.array([types.index(t[2:]) if t != "O" else -1 for t in tag_names], dtype=np.int32)
    begins = np.array([t[:2] in ("B-", "S-") for t in tag_names], dtype=bool)
    return span_types, begins


@contextlib.contextmanager
def scoring_entities(model, tag_names):
    """Inside the block the model's predictions carry entity scores. Many
    `predict_tags_and_scores` calls in one block share one compiled predict function
    (rebuilding it costs seconds: a trace of the CRF's loops)."""
    if model.entity_tags is not None:  # an enclosing block already set it up
        yield
        return
    model.entity_tags = tag_descriptions(tag_names)
    model.predict_function = None  # rebuilt with the scores
    try:
        yield
    finally:
        model.entity_tags = None
        model.predict_function = None


def predict_tags_and_scores(model, features, tag_names, batch_size=256):
    """(tag ids, entity scores) per sentence in input order; a score sits at each entity's
    first token (0 elsewhere)."""
    import numpy as np

    with scoring_entities(model, tag_names):
        rows = predict_in_order(model, features, batch_size, per_token=True)
    return [r[:, 0].astype(np.int32) for r in rows], [r[:, 1].astype(np.float32) for r in rows]


def predicted_entities(ids, gold_tags, vocab):
    """(first token, correct) of each entity one sentence's tag ids predict: whether gold has
    exactly that span and type (IOB2 spans, as conlleval reads them)."""
    from pipelines.tasks.ner.labels import get_spans

    pred = to_iob2(decode_names([ids], vocab["tags"]), vocab["tag_scheme"])[0]
    gold_spans = set(get_spans(to_iob2([gold_tags], vocab["tag_scheme"])[0], "IOB2"))
    return [(span[1], span in gold_spans) for span in get_spans(pred, "IOB2")]


def entity_confidences(model, encoder, split, batch_size=256):
    """(scores, correct) of every predicted entity of a split: its confidence, and whether
    it is right (`predicted_entities`)."""
    vocab = encoder.vocab
    ids, scores = predict_tags_and_scores(model, split.features(encoder), vocab["tags"], batch_size)
    confidences, correct = [], []
    for row_ids, gold, s in zip(ids, split.extra["tags"], scores):
        for start, right in predicted_entities(row_ids, gold, vocab):
            confidences.append(float(s[start]))
            correct.append(right)
    return confidences, correct


class EntityScorer:
    """`scorer(temperature)` -> (scores, correct) of a split's predicted entities, as
    `entity_confidences` gives them at that temperature, from one pass of the network.

    The temperature changes neither the emissions nor the decoded tags, so both are kept
    per batch; each call reruns only the CRF's forward-backward on them (a quarter of a
    full prediction's time on CoNLL-2003 validation).
    """

    def __init__(self, model, encoder, split, batch_size=256):
        import numpy as np

        from pipelines.core.batching import BucketBatcher
        from pipelines.core.runtime import compiled

        vocab = encoder.vocab
        self.model, self.tags = model, tag_descriptions(vocab["tags"])
        # Compiled: eagerly, the CRF's recursions step through time op by op, and the search
        # scores every batch 13 times (CoNLL-2003 validation, 2-core CPU: 50 s eager, 10 s).
        self._entity_scores = compiled(
            lambda logits, mask, ids, t: model.entity_scores(logits, mask, ids, *self.tags, temperature=t))

        def forward(x):
            logits = model(x, training=False)
            mask = model.token_mask(x)
            return logits, mask, model.decode(logits, mask)

        forward = compiled(forward)
        batcher = BucketBatcher(split.features(encoder), None, batch_size=batch_size, shuffle=False,
                                exact_lengths=not getattr(model, "rnn_mask", True))
        self.batches, self.starts, self.correct = [], [], []
        for i in range(len(batcher)):
            (x,) = batcher[i]
            logits, mask, ids = forward(x)
            self.batches.append((logits, mask, ids))
            ids = keras.ops.convert_to_numpy(ids)
            starts = []
            for row, j in enumerate(batcher.batch_indices[i]):
                for start, right in predicted_entities(ids[row, : batcher.lengths[j]], split.extra["tags"][j], vocab):
                    starts.append((row, start))
                    self.correct.append(right)
            self.starts.append(np.asarray(starts, dtype=np.int64).reshape(-1, 2))

    def __call__(self, temperature):
        import numpy as np

        t = keras.ops.convert_to_tensor(float(temperature), "float32")
        scores = []
        for (logits, mask, ids), starts in zip(self.batches, self.starts):
            s = keras.ops.convert_to_numpy(self._entity_scores(logits, mask, ids, t))
            scores.append(s[starts[:, 0], starts[:, 1]])
        return [float(v) for v in np.concatenate(scores)], list(self.correct)


def log_loss(scores, correct):
    import numpy as np

    p = np.clip(np.asarray(scores, dtype=np.float64), 1e-7, 1 - 1e-7)
    y = np.asarray(correct, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))) if len(p) else 0.0


def fit_score_temperature(model, encoder, train_split, val_split, cfg):
    """Sets the tagger's score temperature to the one whose entity confidences have the
    lowest log loss on validation (golden-section search over log T); the decoded tags do
    not change. Returns what it found, or None when `calibrate_scores` is off."""
    import math
    import sys

    from pipelines.core.calibration import expected_calibration_error, reliability_bins
    from pipelines.core.progress import heartbeat

    if not cfg.get("calibrate_scores", True):
        return None
    seen = {}

    with heartbeat("train: calibrating entity confidences on validation", stream=sys.stdout):
        scorer = EntityScorer(model, encoder, val_split, cfg.get("eval_batch_size", 256))

        def loss_at(log_t):
            seen[log_t] = scorer(math.exp(log_t))
            return log_loss(*seen[log_t])

        before = loss_at(0.0)
        low, high = math.log(0.25), math.log(8.0)
        ratio = (math.sqrt(5) - 1) / 2
        a, b = high - ratio * (high - low), low + ratio * (high - low)
        fa, fb = loss_at(a), loss_at(b)
        for _ in range(10):
            if fa < fb:
                high, b, fb = b, a, fa
                a = high - ratio * (high - low)
                fa = loss_at(a)
            else:
                low, a, fa = a, b, fb
                b = low + ratio * (high - low)
                fb = loss_at(b)
        best = min((f, t) for f, t in ((before, 0.0), (fa, a), (fb, b)))[1]
    model.score_temperature = float(math.exp(best))

    def ece(log_t):
        return round(expected_calibration_error(reliability_bins(*seen[log_t])), 5)

    record = {"score_temperature": round(model.score_temperature, 4),
              "val_log_loss": {"before": round(before, 5), "after": round(log_loss(*seen[best]), 5)},
              "val_ece": {"before": ece(0.0), "after": ece(best)}, "entities": len(seen[best][0])}
    print(f"train: entity confidences calibrated on validation: temperature {model.score_temperature:.3f}, "
          f"ECE {record['val_ece']['before']:.4f} -> {record['val_ece']['after']:.4f}")
    return record


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
