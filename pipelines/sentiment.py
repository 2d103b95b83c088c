"""Sentiment task: encoding, training, evaluation, export and prediction.

The stage modules (train, evaluate, export, predict) dispatch here for
`sentiment`; the machinery they share with NER (batcher, resumable fit, model
selection, params, ExportArchive serving) lives in their own modules.
"""

import csv
import time

import numpy as np

from pipelines.predict import ServedModel
from pipelines.tokenizer import clean_markup, normalize_word, tokenize
from pipelines.vocab import Vocabulary, load_json, save_json


def truncate_tokens(tokens, max_tokens, policy):
    """Same rule as prepare: head, tail, or head_tail (first max//2 and the rest from the end)."""
    from pipelines.documents import truncate_tokens as rule

    return rule(tokens, max_tokens, policy)


class DocumentEncoder:
    """Word ids for documents, with the normalisation and length policy of prepare."""

    def __init__(self, vocab):
        self.vocab = vocab
        self.words = Vocabulary.from_list(vocab["words"])
        self.lowercase = bool(vocab["lowercase"])
        self.digits_to_zero = bool(vocab["digits_to_zero"])
        self.max_tokens = int(vocab["max_tokens"])
        self.truncate = vocab["truncate"]
        self.labels = list(vocab["labels"])

    @classmethod
    def from_vocab_file(cls, path):
        return cls(load_json(path))

    def normalize(self, token):
        return normalize_word(token, self.lowercase, self.digits_to_zero)

    def tokens(self, text):
        """Raw text -> the tokens the model sees (cleaned, tokenised, truncated)."""
        return truncate_tokens(tokenize(clean_markup(text)), self.max_tokens, self.truncate)

    def word_ids(self, tokens):
        # An empty document is one unknown word, so no row is made only of padding.
        ids = self.words.lookup(self.normalize(t) for t in tokens) or [self.words.oov_id]
        return np.array(ids, dtype=np.int32)

    def encode(self, token_lists):
        return {"words": [self.word_ids(t) for t in token_lists]}


def load_documents(data_dir, split):
    import datasets

    ds = datasets.load_from_disk(str(data_dir))[split]
    return ds["id"], ds["tokens"], np.asarray(ds["label"], dtype=np.int32), ds


def predict_probabilities(model, features, batch_size=256):
    """(N, C) class probabilities in input order."""
    import keras

    from pipelines.batching import BucketBatcher

    # A model trained padding-free (rnn_mask False) is only right on unpadded batches.
    batcher = BucketBatcher(features, None, batch_size=batch_size, shuffle=False,
                            exact_lengths=not getattr(model, "rnn_mask", True))
    out = None
    for i in range(len(batcher)):
        (x,) = batcher[i]
        probs = keras.ops.convert_to_numpy(model.predict_on_batch(x))
        if out is None:
            out = np.zeros((batcher.size, probs.shape[1]), dtype=np.float32)
        out[batcher.batch_indices[i]] = probs
    return out


def attention_for_text(model, encoder, text):
    """(token, weight) pairs of an attention-pooling model for one raw text."""
    import keras

    tokens = encoder.tokens(text)
    ids = encoder.word_ids(tokens)[None]
    weights = keras.ops.convert_to_numpy(model.attention({"words": ids}))[0]
    return list(zip(tokens or [""], weights.tolist()))


def build_model(model_cfg, vocab):
    from models.classifier import TextClassifier

    return TextClassifier(vocab_size=len(vocab["words"]), num_classes=len(vocab["labels"]), **model_cfg)


def train_sentiment(params, out):
    from pipelines.batching import BucketBatcher
    from pipelines.train import init_embeddings
    from pipelines.training import (fit_resumable, make_optimizer, median_throughput, save_inference_model,
                                    seed_everything, training_runtime)
    from pipelines.tune import tuned_settings

    model_cfg, cfg, source = tuned_settings(params, "sentiment", out, params["sentiment"]["model"],
                                            params["sentiment"]["train"])
    seed = params["seed"]
    seed_everything(seed, deterministic=cfg.get("jit_compile") is not True)  # TF refuses XLA otherwise
    encoder = DocumentEncoder.from_vocab_file(out / "vocab.json")
    _, train_tokens, train_y, _ = load_documents(out / "data", "train")
    _, val_tokens, val_y, _ = load_documents(out / "data", "validation")
    with training_runtime(cfg) as runtime:
        batches = BucketBatcher(encoder.encode(train_tokens), train_y, batch_size=cfg["batch_size"], shuffle=True,
                                seed=seed, exact_lengths=runtime.padding_free)
        val_batches = BucketBatcher(encoder.encode(val_tokens), val_y, batch_size=cfg["eval_batch_size"],
                                    exact_lengths=runtime.padding_free)
        with runtime.scope():
            model = build_model({**model_cfg, "rnn_mask": not runtime.padding_free}, encoder.vocab)
            embeddings_found = None
            if cfg.get("embeddings_file"):
                embeddings_found = init_embeddings(model, cfg["embeddings_file"], encoder, seed)
            model.compile(optimizer=make_optimizer(cfg, len(batches)), metrics=[model.accuracy_metric()],
                          jit_compile=runtime.jit_compile)
            runtime.jit_compile = model.jit_compile  # what Keras resolved "auto" to
        monitor = cfg.get("monitor", "val_accuracy")
        start = time.perf_counter()
        selector, timer, history = fit_resumable(
            model, batches, cfg["epochs"], out / "train_state", monitor, cfg["patience"],
            mode="min" if "loss" in monitor else "max", validation_data=val_batches,
        )
        wall = time.perf_counter() - start
    save_inference_model(selector.checkpoint, runtime, out / "model.keras")
    n_tokens = sum(len(t) for t in train_tokens)
    summary = {
        "best_epoch": selector.state["best_epoch"],
        f"best_{monitor}": selector.state["best"],
        "epochs_run": len(history),
        "train_seconds": round(wall, 1),
        "train_tokens_per_second": round(median_throughput(n_tokens, timer.seconds)),
        "embeddings_found": embeddings_found,
        "hyperparameters": {**model_cfg, **{k: cfg.get(k) for k in
                                            ("optimizer", "learning_rate", "lr_decay", "clipnorm", "batch_size")}},
        "hyperparameters_source": source,
        "runtime": runtime.summary(),
    }
    save_json(summary, out / "train.json")
    curves = [
        {"epoch": int(r["epoch"]) + 1, "loss": float(r["loss"]), "val_loss": float(r["val_loss"]),
         "accuracy": float(r["accuracy"]), "val_accuracy": float(r["val_accuracy"]),
         "epoch_seconds": float(r["epoch_seconds"])}
        for r in history
    ]
    save_json(curves, out / "history.json")
    from pipelines.plots import line_chart

    epochs = [c["epoch"] for c in curves]
    line_chart(epochs, {"loss": [c["loss"] for c in curves], "validation loss": [c["val_loss"] for c in curves],
                        "validation accuracy": [c["val_accuracy"] for c in curves]},
               out / "history.png", "Sentiment training", "epoch")
    return summary


def classification_metrics(gold, probs, labels):
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support, roc_auc_score

    pred = probs.argmax(axis=1)
    p, r, f, s = precision_recall_fscore_support(gold, pred, labels=range(len(labels)), zero_division=0)
    mp, mr, mf, _ = precision_recall_fscore_support(gold, pred, average="macro", zero_division=0)
    metrics = {
        "accuracy": round(float(accuracy_score(gold, pred)), 5),
        "macro_precision": round(float(mp), 5),
        "macro_recall": round(float(mr), 5),
        "macro_f1": round(float(mf), 5),
        "per_class": {
            name: {"precision": round(float(p[i]), 5), "recall": round(float(r[i]), 5),
                   "f1": round(float(f[i]), 5), "support": int(s[i])}
            for i, name in enumerate(labels)
        },
        "documents": int(len(gold)),
    }
    if len(labels) == 2 and len(set(gold.tolist())) == 2:
        metrics["roc_auc"] = round(float(roc_auc_score(gold, probs[:, 1])), 5)
    return metrics, pred


def thin(xs, ys, points=400):
    """At most `points` points of a curve, always keeping both ends."""
    if len(xs) <= points:
        return xs, ys
    idx = np.unique(np.linspace(0, len(xs) - 1, points).round().astype(int))
    return xs[idx], ys[idx]


def evaluate_sentiment(params, out):
    import keras
    from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve

    import models.classifier  # noqa: F401  registers the custom layers
    from pipelines.plots import bar_chart, confusion_heatmap, line_chart

    cfg = params["sentiment"]["evaluate"]
    encoder = DocumentEncoder.from_vocab_file(out / "vocab.json")
    labels = encoder.labels
    model = keras.saving.load_model(out / "model.keras")
    ids, tokens, gold, _ = load_documents(out / "data", "test")
    probs = predict_probabilities(model, encoder.encode(tokens), cfg["batch_size"])
    metrics, pred = classification_metrics(gold, probs, labels)
    save_json(metrics, out / "metrics.json")

    plots = out / "plots"
    plots.mkdir(exist_ok=True)
    with open(plots / "confusion.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["gold", "predicted"])
        w.writerows((labels[g], labels[p]) for g, p in zip(gold, pred))
    confusion_heatmap(labels, confusion_matrix(gold, pred, labels=range(len(labels))), plots / "confusion.png",
                      f"Test confusion (accuracy {metrics['accuracy']:.4f})")
    bar_chart(labels, [metrics["per_class"][n]["f1"] for n in labels], plots / "per_class_f1.png",
              "Test F1 per class", "F1")
    if "roc_auc" in metrics:
        fpr, tpr, _ = roc_curve(gold, probs[:, 1])
        precision, recall, _ = precision_recall_curve(gold, probs[:, 1])
        fpr, tpr = thin(fpr, tpr)
        recall, precision = thin(recall, precision)
        with open(plots / "roc.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["fpr", "tpr"])
            w.writerows(zip(fpr.round(5), tpr.round(5)))
        with open(plots / "precision_recall.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["recall", "precision"])
            w.writerows(zip(recall.round(5), precision.round(5)))
        line_chart(fpr, {f"ROC (AUC {metrics['roc_auc']:.4f})": tpr}, plots / "roc.png", "Test ROC", "false positive rate")
        line_chart(recall, {"precision-recall": precision}, plots / "precision_recall.png", "Test precision-recall",
                   "recall")
    with open(out / "predictions.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "gold", "predicted"] + [f"p_{n}" for n in labels])
        for i, g, p, row in zip(ids, gold, pred, probs):
            w.writerow([i, labels[g], labels[p]] + [f"{x:.5f}" for x in row])
    return metrics


def tf_truncate(tokens, max_tokens, policy):
    """TensorFlow twin of truncate_tokens on a ragged (batch, None) tensor."""
    import tensorflow as tf

    lengths = tokens.row_lengths()
    positions = tf.ragged.range(lengths)
    ends = tf.expand_dims(lengths, 1)
    if policy == "head":
        keep = positions < max_tokens
    elif policy == "tail":
        keep = positions >= ends - max_tokens
    elif policy == "head_tail":
        head = max_tokens // 2
        keep = (positions < head) | (positions >= ends - (max_tokens - head)) | (ends <= max_tokens)
    else:
        raise ValueError(f"unknown truncate policy {policy!r}")
    return tf.ragged.boolean_mask(tokens, keep)


def build_sentiment_archive(model, vocab):
    """ExportArchive whose `serving_default` maps raw text to a label name and probabilities."""
    import keras
    import tensorflow as tf

    from pipelines.tf_tokenizer import tf_clean_markup, tf_normalize_words, tf_tokenize

    words = vocab["words"]
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(words[2:]), tf.range(2, len(words), dtype=tf.int64)),
        default_value=1,
    )
    label_names = tf.constant(vocab["labels"])

    def serve(text):
        tokens = tf_tokenize(tf_clean_markup(text))
        tokens = tf_truncate(tokens, vocab["max_tokens"], vocab["truncate"])
        normed = tf_normalize_words(tokens, vocab["lowercase"], vocab["digits_to_zero"])
        ids = tf.cast(tf.ragged.map_flat_values(table.lookup, normed), tf.int32).to_tensor(0)
        ids = tf.pad(ids, [[0, 0], [0, tf.maximum(0, 1 - tf.shape(ids)[1])]])
        # An empty document is one unknown word, as in DocumentEncoder.
        empty = tf.equal(tokens.row_lengths(), 0)[:, None]
        ids = tf.concat([tf.where(empty, tf.ones_like(ids[:, :1]), ids[:, :1]), ids[:, 1:]], axis=1)
        probs = model.probabilities(model({"words": ids}, training=False))
        best = tf.argmax(probs, axis=1, output_type=tf.int32)
        # `classes` names the columns of `probabilities`, so the model is self-describing.
        classes = tf.tile(label_names[None], [tf.shape(probs)[0], 1])
        return {"label": tf.gather(label_names, best), "probabilities": probs, "classes": classes,
                "num_tokens": tf.cast(tokens.row_lengths(), tf.int32)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(table)
    archive.add_endpoint("serving_default", serve, input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    return archive


def check_parity(saved_dir, model, encoder, texts, batch_size, atol=1e-5):
    """Mismatch descriptions between the SavedModel on raw text and Python + in-memory model."""
    import tensorflow as tf

    serve = tf.saved_model.load(str(saved_dir)).signatures["serving_default"]
    expected = predict_probabilities(model, encoder.encode([encoder.tokens(t) for t in texts]), batch_size)
    mismatches = []
    for start in range(0, len(texts), batch_size):
        batch = texts[start : start + batch_size]
        out = serve(text=tf.constant(batch))
        probs = out["probabilities"].numpy()
        labels = [x.decode("utf-8") for x in out["label"].numpy()]
        for row, text in enumerate(batch):
            want = expected[start + row]
            if len(encoder.tokens(text)) != out["num_tokens"].numpy()[row]:
                mismatches.append(f"token count differs for {text[:80]!r}")
            elif not np.allclose(probs[row], want, atol=atol) or labels[row] != encoder.labels[int(want.argmax())]:
                mismatches.append(f"probabilities differ for {text[:80]!r}: {probs[row]} vs {want}")
    return mismatches


def export_sentiment(params, out):
    import keras

    import models.classifier  # noqa: F401
    from pipelines.export import write_and_check

    cfg = params["sentiment"]["export"]
    encoder = DocumentEncoder.from_vocab_file(out / "vocab.json")
    model = keras.saving.load_model(out / "model.keras")
    _, _, _, ds = load_documents(out / "data", "test")
    texts = ds["text"]
    limit = cfg.get("parity_documents")
    if limit:
        texts = texts[: int(limit)]
    return write_and_check(
        build_sentiment_archive(model, encoder.vocab), out, "test_documents_checked",
        lambda saved_dir: (len(texts), check_parity(saved_dir, model, encoder, texts, cfg["batch_size"])),
    )


class SentimentPredictor(ServedModel):
    """Label and probabilities per text from the classifier SavedModel."""

    def predict(self, texts):
        results = []
        for batch, out in self.batches(texts):
            probs, classes = out["probabilities"].numpy(), out["classes"].numpy()
            for row, text in enumerate(batch):
                names = [c.decode("utf-8") for c in classes[row]]
                results.append({"text": text, "label": out["label"].numpy()[row].decode("utf-8"),
                                "probabilities": {n: round(float(p), 6) for n, p in zip(names, probs[row])}})
        return results
