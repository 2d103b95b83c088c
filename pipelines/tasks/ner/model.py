"""The NER model hooks: building the tagger, decoding tags, entity F1 on validation."""

import contextlib

import keras
from seqeval.metrics import f1_score

from pipelines.core.errors import ParamsError
from pipelines.core.predicting import predict_in_order
from pipelines.tasks.ner.encoding import decode_names, to_iob2


def build_model(model_cfg, vocab):
    from models.tagger import SequenceTagger

    members = model_cfg.get("members", 1)
    if isinstance(members, bool) or not isinstance(members, int) or members < 1:
        raise ParamsError(f"ner.model.members must be an int >= 1, got {members!r}")
    return SequenceTagger(
        word_vocab_size=len(vocab["words"]),
        char_vocab_size=len(vocab["chars"]),
        num_tags=len(vocab["tags"]),
        document_features=vocab.get("document_features", ()),
        singleton_ids=vocab.get("singleton_words", (0, 0)),
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


# Document label consistency: the mentions of one name in one document get one type.
#
# A name is usually the same kind of entity wherever it appears in a document,
# but the tagger decides each sentence alone. After tagging, each entity's
# confidence is a vote for its type by its exact words (case kept) in its
# document; an entity whose type has a minority of its name's votes takes the
# majority type when that type holds more than `min_share` of them. A close vote
# changes nothing: two confident mentions of different types are usually two
# different things with one name (Jordan the country, Jordan the player).
#
# The same TensorFlow function runs in the SavedModel (a served text is one
# document) and in evaluation, so both give the same tags.

VOTE_CANDIDATES = (0.55, 0.6, 0.65, 0.7, 0.8, 0.9)


def entity_types(tag_names):
    """The entity types of a tag set, sorted ("B-PER", "S-LOC" -> ["LOC", "PER"])."""
    return sorted({t[2:] for t in tag_names if t != "O"})


def document_vote(groups, tokens, tags, scores, breaks, types, min_share):
    """Flat tensors over the tokens of several documents, in reading order: `groups` (int64,
    the document of each token), `tokens` and IOB2 `tags` (strings), `scores` (float32, each
    entity's confidence at its first token), `breaks` (bool, a sentence starts here: no
    entity crosses it); `types`, the entity types. Returns (tags, scores) after the vote; a
    relabelled entity's score is its new type's share of the vote."""
    import tensorflow as tf

    if not types:  # only "O" tags: nothing to vote on
        return tags, scores
    n = tf.size(tags)
    is_o = tf.equal(tags, "O")
    prefix = tf.strings.substr(tags, 0, 1)
    token_types = tf.where(is_o, "", tf.strings.regex_replace(tags, "^[^-]*-", ""))
    previous_types = tf.concat([[""], token_types], 0)[:n]
    # As conlleval reads IOB2: an I-X continues only an X entity of the same sentence.
    continues = tf.equal(prefix, "I") & tf.equal(previous_types, token_types) & ~breaks
    starts = ~is_o & ~continues
    span_of = tf.cumsum(tf.cast(starts, tf.int32)) - 1
    first = tf.where(starts)[:, 0]
    num_spans = tf.size(first)
    inside = tf.where(~is_o)[:, 0]
    words = tf.RaggedTensor.from_value_rowids(
        tf.gather(tokens, inside), tf.cast(tf.gather(span_of, inside), tf.int64), nrows=tf.cast(num_spans, tf.int64))
    names = tf.strings.reduce_join(words, axis=1, separator=" ")
    keys = tf.strings.join([tf.strings.as_string(tf.gather(groups, first)), names], separator="\x1f")
    type_table = tf.constant(list(types), tf.string)
    num_types = len(types)
    span_types = tf.cast(tf.argmax(tf.cast(
        tf.equal(tf.gather(token_types, first)[:, None], type_table[None, :]), tf.int32), axis=1), tf.int32)
    span_scores = tf.gather(scores, first)

    unique_keys, key_of = tf.unique(keys)
    num_keys = tf.size(unique_keys)
    votes = tf.reshape(tf.math.unsorted_segment_sum(span_scores, key_of * num_types + span_types,
                                                    num_keys * num_types), [num_keys, num_types])
    total = tf.reduce_sum(votes, axis=1)
    best = tf.cast(tf.argmax(votes, axis=1), tf.int32)
    share = tf.math.divide_no_nan(tf.reduce_max(votes, axis=1), total)
    span_best, span_share = tf.gather(best, key_of), tf.gather(share, key_of)
    flip = tf.not_equal(span_best, span_types) & (span_share > min_share)
    new_types = tf.where(flip, span_best, span_types)

    # Per token: its entity's index, or one past the last (a padding entry) outside entities.
    at = tf.where(is_o, num_spans, span_of)
    token_flip = tf.gather(tf.concat([flip, [False]], 0), at)
    # A relabelled entity, or one right after it, begins with B- so that it cannot merge with
    # its neighbour.
    previous_flip = tf.concat([[False], token_flip], 0)[:n] & ~breaks
    begin = starts & (token_flip | previous_flip)
    new_prefix = tf.where(begin, "B", prefix)
    token_types = tf.gather(type_table, tf.gather(tf.concat([new_types, [0]], 0), at))
    new_tags = tf.where(is_o, tags, tf.strings.join([new_prefix, token_types], separator="-"))
    new_scores = tf.where(starts & token_flip, tf.gather(tf.concat([span_share, [0.0]], 0), at), scores)
    return new_tags, new_scores


def vote_documents(docs, token_lists, tag_lists, score_lists, types, min_share):
    """`document_vote` over sentences: docs (a document id per sentence), tokens, IOB2 tags and
    entity scores per sentence. Returns (tags, scores) per sentence, in order."""
    import numpy as np
    import tensorflow as tf

    lengths = [len(t) for t in token_lists]
    flat = lambda rows: [x for row in rows for x in row]  # noqa: E731
    groups = np.repeat(np.asarray(docs, dtype=np.int64), lengths)
    breaks = np.zeros(sum(lengths), dtype=bool)
    breaks[np.cumsum([0] + lengths[:-1])[np.asarray(lengths) > 0]] = True
    scores = np.concatenate([np.asarray(s, np.float32) for s in score_lists]) if lengths else np.zeros(0, np.float32)
    new_tags, new_scores = document_vote(
        tf.constant(groups), tf.constant(flat(token_lists), tf.string), tf.constant(flat(tag_lists), tf.string),
        tf.constant(scores), tf.constant(breaks), types, tf.constant(float(min_share)))
    new_tags = [t.decode("utf-8") for t in new_tags.numpy()]
    new_scores = new_scores.numpy()
    out_tags, out_scores, at = [], [], 0
    for n in lengths:
        out_tags.append(new_tags[at : at + n])
        out_scores.append(new_scores[at : at + n])
        at += n
    return out_tags, out_scores


def document_vote_setting(cfg):
    """ner.train.document_vote: "auto" (chosen on validation), a share in [0.5, 1), or null /
    false (off). Returns "auto" or a float (0.0: off)."""
    value = cfg.get("document_vote", "auto")
    if value is None or value is False:
        return 0.0
    if value == "auto":
        return "auto"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.5 <= value < 1.0:
        raise ParamsError(f"params: ner.train.document_vote must be auto, null or a number in [0.5, 1), "
                          f"got {value!r}")
    return float(value)


def choose_document_vote(model, encoder, val_split, cfg):
    """Sets the model's `document_vote` (`document_vote`): the share given, or
    with "auto" the one of `VOTE_CANDIDATES` (or off) with the best validation entity F1, a
    larger share or off on ties. Returns {"document_vote", "val_f1" per candidate}."""
    import sys

    from pipelines.core.progress import heartbeat
    setting = document_vote_setting(cfg)
    if setting != "auto":
        model.document_vote = setting
        return {"document_vote": setting}
    try:
        import tensorflow  # noqa: F401  the vote is TensorFlow string ops, as in the SavedModel
    except ImportError:
        print("train: TensorFlow is not installed, so no document vote (ner.train.document_vote: auto)")
        model.document_vote = 0.0
        return {"document_vote": 0.0, "skipped": "no TensorFlow"}
    vocab = encoder.vocab
    with heartbeat("train: choosing the document vote on validation", stream=sys.stdout):
        ids, scores = predict_tags_and_scores(model, val_split.features(encoder), vocab["tags"],
                                              cfg.get("eval_batch_size", 256))
        pred = to_iob2(decode_names(ids, vocab["tags"]), vocab["tag_scheme"])
        gold = to_iob2(val_split.extra["tags"], vocab["tag_scheme"])
        docs, tokens, types = val_split.context["docs"], [list(t) for t in val_split.tokens], entity_types(vocab["tags"])
        found = {0.0: float(f1_score(gold, pred))}
        for share in sorted(VOTE_CANDIDATES, reverse=True):
            found[share] = float(f1_score(gold, vote_documents(docs, tokens, pred, scores, types, share)[0]))
    best = max(found, key=lambda s: (found[s], s == 0.0, s))
    model.document_vote = best
    print(f"train: document vote chosen on validation: "
          f"{'off' if best == 0.0 else f'share > {best}'} (validation F1 {found[0.0]:.4f} -> {found[best]:.4f})")
    return {"document_vote": best, "val_f1": {("off" if s == 0.0 else str(s)): round(f, 5) for s, f in found.items()}}


def finish_model(model, encoder, train_split, val_split, cfg):
    """After training: the confidence temperature, then the document vote (it weighs
    mentions by their calibrated confidence)."""
    record = {"calibration": fit_score_temperature(model, encoder, train_split, val_split, cfg)}
    record.update(choose_document_vote(model, encoder, val_split, cfg))
    return record
