"""Sentiment serving: a SavedModel that maps raw text to a label and probabilities, its
parity check against the in-memory model, and the predictor."""

import numpy as np

from pipelines.core.exporting import ServedModel
from pipelines.core.progress import Progress
from pipelines.tasks.base import ParityReport
from pipelines.tasks.sentiment.model import predict_probabilities


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


def tf_ngram_ids(normed, table, max_n):
    """TensorFlow twin of NgramIndex.document_ids: (batch, n) int32 ids, each distinct known
    n-gram once, 0 elsewhere (order and padding differ from Python's; the sums do not)."""
    import tensorflow as tf

    grams = tf.strings.ngrams(normed, ngram_width=list(range(1, max_n + 1)), separator=" ")
    ids = tf.ragged.map_flat_values(table.lookup, grams).to_tensor(0)
    ids = tf.pad(ids, [[0, 0], [0, tf.maximum(0, 1 - tf.shape(ids)[1])]])
    ids = tf.sort(ids, axis=1)
    repeated = tf.concat([tf.zeros_like(ids[:, :1], dtype=tf.bool), tf.equal(ids[:, 1:], ids[:, :-1])], axis=1)
    return tf.cast(tf.where(repeated, tf.zeros_like(ids), ids), tf.int32)


def build_archive(model, vocab):
    """ExportArchive whose `serving_default` maps raw text to a label name and probabilities."""
    import keras
    import tensorflow as tf

    from pipelines.text.tf_tokenizer import tf_clean_markup, tf_normalize_words, tf_tokenize

    words = vocab["words"]
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(words[2:]), tf.range(2, len(words), dtype=tf.int64)),
        default_value=1,
    )
    label_names = tf.constant(vocab["labels"])
    grams = (vocab.get("ngrams") or []) if getattr(model, "wide", None) is not None else []
    ngram_table = None
    if grams:
        ngram_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(grams), tf.range(1, len(grams) + 1, dtype=tf.int64)),
            default_value=0,
        )

    def serve(text):
        all_tokens = tf_tokenize(tf_clean_markup(text))
        tokens = tf_truncate(all_tokens, vocab["max_tokens"], vocab["truncate"])
        normed = tf_normalize_words(tokens, vocab["lowercase"], vocab["digits_to_zero"])
        ids = tf.cast(tf.ragged.map_flat_values(table.lookup, normed), tf.int32).to_tensor(0)
        ids = tf.pad(ids, [[0, 0], [0, tf.maximum(0, 1 - tf.shape(ids)[1])]])
        # An empty document is one unknown word, as in DocumentEncoder; `empty` tells the
        # caller that its label says nothing about the text.
        empty = tf.equal(tokens.row_lengths(), 0)
        ids = tf.concat([tf.where(empty[:, None], tf.ones_like(ids[:, :1]), ids[:, :1]), ids[:, 1:]], axis=1)
        inputs = {"words": ids}
        if ngram_table is not None:
            # "full": n-grams of the whole text, also where truncation cuts it for the recurrent side.
            gram_words = normed
            if vocab.get("ngram_text", "kept") == "full":
                gram_words = tf_normalize_words(all_tokens, vocab["lowercase"], vocab["digits_to_zero"])
            inputs["ngrams"] = tf_ngram_ids(gram_words, ngram_table, vocab["ngram_max_n"])
        probs = model.probabilities(model(inputs, training=False))
        best = tf.argmax(probs, axis=1, output_type=tf.int32)
        # `classes` names the columns of `probabilities`, so the model is self-describing.
        classes = tf.tile(label_names[None], [tf.shape(probs)[0], 1])
        return {"label": tf.gather(label_names, best), "probabilities": probs, "classes": classes,
                "num_tokens": tf.cast(tokens.row_lengths(), tf.int32), "empty": empty}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(table)
    if ngram_table is not None:
        archive.track(ngram_table)
    archive.add_endpoint("serving_default", serve, input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    return archive


def check_parity(saved_dir, model, encoder, split, cfg, atol=1e-5):
    """A ParityReport of the SavedModel on the raw test texts against Python + the in-memory model."""
    import tensorflow as tf

    texts, batch_size = split.extra["texts"], cfg["batch_size"]
    if cfg.get("parity_documents"):
        texts = texts[: int(cfg["parity_documents"])]
    # By length, so that a served batch pads to about its own length (a third less computed on IMDB).
    texts = sorted(texts, key=len)

    serve = tf.saved_model.load(str(saved_dir)).signatures["serving_default"]
    mismatches = []
    # Chunks of a few batches, so that progress moves (the IMDB test split takes minutes).
    chunk = 4 * batch_size
    with Progress("export: parity check", total=len(texts), unit="documents") as progress:
        for start in range(0, len(texts), chunk):
            part = texts[start : start + chunk]
            tokens, cut = map(list, zip(*(encoder.parts(t) for t in part)))
            expected = predict_probabilities(model, encoder.encode(tokens, cut_tokens=cut), batch_size)
            for first in range(0, len(part), batch_size):
                batch = slice(first, first + batch_size)
                out = serve(text=tf.constant(part[batch]))
                mismatches += compare(out, part[batch], tokens[batch], expected[batch], encoder.labels, atol)
                progress.update(len(part[batch]), extra=f"{len(mismatches)} mismatches")
    return ParityReport(len(texts), mismatches, "documents")


def compare(out, texts, tokens, expected, label_names, atol):
    """Mismatch messages of one served batch against Python's tokens and the in-memory probabilities."""
    probs, num_tokens, empty = out["probabilities"].numpy(), out["num_tokens"].numpy(), out["empty"].numpy()
    labels = [x.decode("utf-8") for x in out["label"].numpy()]
    mismatches = []
    for row, (text, want) in enumerate(zip(texts, expected)):
        if len(tokens[row]) != num_tokens[row] or bool(empty[row]) != (not tokens[row]):
            mismatches.append(f"token count differs for {text[:80]!r}")
        elif not np.allclose(probs[row], want, atol=atol) or labels[row] != label_names[int(want.argmax())]:
            mismatches.append(f"probabilities differ for {text[:80]!r}: {probs[row]} vs {want}")
    return mismatches


class SentimentPredictor(ServedModel):
    """Label and probabilities per text from the classifier SavedModel; `empty` marks a text
    without tokens, whose label is None (the model's answer there means nothing)."""

    def predict(self, texts):
        results = []
        for batch, out in self.batches(texts):
            probs, classes, labels = out["probabilities"].numpy(), out["classes"].numpy(), out["label"].numpy()
            # A SavedModel exported before the `empty` output: no tokens is the same test.
            empty = out["empty"].numpy() if "empty" in out else out["num_tokens"].numpy() == 0
            for row, text in enumerate(batch):
                names = [c.decode("utf-8") for c in classes[row]]
                results.append({"text": text, "label": None if empty[row] else labels[row].decode("utf-8"),
                                "empty": bool(empty[row]),
                                "probabilities": {n: round(float(p), 6) for n, p in zip(names, probs[row])}})
        return results
