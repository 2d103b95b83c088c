"""NER serving: a SavedModel that maps raw text to tokens and IOB2 tags, its parity
check against the in-memory model, and the predictor that turns tags into spans."""

from pipelines.core.exporting import ServedModel
from pipelines.core.progress import Progress
from pipelines.tasks.base import ParityReport
from pipelines.tasks.ner.encoding import iob2_names
from pipelines.tasks.ner.model import predict_tags_and_scores, tag_descriptions
from pipelines.tasks.ner.labels import get_spans
from pipelines.text.tokenizer import tokenize, tokenize_with_offsets

SERVE_CHUNK = 64  # sentences per model call inside one request


def build_archive(model, vocab):
    """A keras.export.ExportArchive whose `serving_default` maps text to tokens and tags."""
    import keras
    import tensorflow as tf

    from pipelines.text.tf_tokenizer import tf_normalize_words, tf_tokenize

    def table(entries):
        init = tf.lookup.KeyValueTensorInitializer(
            tf.constant(entries[2:], tf.string), tf.range(2, len(entries), dtype=tf.int64)
        )
        return tf.lookup.StaticHashTable(init, default_value=1)  # 1 is the OOV id

    word_table, char_table = table(vocab["words"]), table(vocab["chars"])
    tag_names = tf.constant(iob2_names(vocab["tags"]))
    span_types, begins = (tf.constant(a) for a in tag_descriptions(vocab["tags"]))
    lowercase, digits, max_chars = vocab["lowercase"], vocab["digits_to_zero"], vocab["max_word_chars"]

    def tag_by_length(word_ids, char_ids, lengths):
        # A request mixes short and long sentences; tagging it in chunks of
        # similar length, each cut to its own longest sentence and word,
        # skips most of the padding (CoNLL test: ~5x fewer time steps).
        size = tf.shape(word_ids)[0]
        order = tf.argsort(lengths, stable=True)
        num_chunks = (size + SERVE_CHUNK - 1) // SERVE_CHUNK

        def body(i, tag_ids, entity_scores):
            rows = order[i * SERVE_CHUNK : (i + 1) * SERVE_CHUNK]
            steps = tf.maximum(1, tf.reduce_max(tf.gather(lengths, rows)))
            words = tf.gather(word_ids, rows)[:, :steps]
            chars = tf.gather(char_ids, rows)[:, :steps]
            width = tf.maximum(1, tf.reduce_max(tf.reduce_sum(tf.cast(chars != 0, tf.int32), -1)))
            chars = chars[:, :, :width]
            logits, mask = model({"words": words, "chars": chars}, training=False), tf.not_equal(words, 0)
            ids = tf.cast(model.decode(logits, mask), tf.int32)
            scores = model.entity_scores(logits, mask, ids, span_types, begins)
            pad = [[0, 0], [0, tf.shape(word_ids)[1] - steps]]
            return (i + 1, tf.tensor_scatter_nd_update(tag_ids, rows[:, None], tf.pad(ids, pad)),
                    tf.tensor_scatter_nd_update(entity_scores, rows[:, None], tf.pad(scores, pad)))

        _, tag_ids, entity_scores = tf.while_loop(
            lambda i, *_: i < num_chunks, body,
            (tf.constant(0), tf.zeros_like(word_ids), tf.zeros_like(word_ids, dtype=tf.float32)))
        return tag_ids, entity_scores

    def serve(text):
        tokens = tf_tokenize(text)
        words = tf_normalize_words(tokens, lowercase, digits)
        word_ids = tf.cast(tf.ragged.map_flat_values(word_table.lookup, words), tf.int32).to_tensor(0)
        chars = tf.strings.unicode_split(tokens, "UTF-8")
        char_ids = tf.cast(tf.ragged.map_flat_values(char_table.lookup, chars), tf.int32).to_tensor(0)
        char_ids = char_ids[:, :, :max_chars]
        # At least one time step and one character, so an all-empty batch still runs.
        word_ids = tf.pad(word_ids, [[0, 0], [0, tf.maximum(0, 1 - tf.shape(word_ids)[1])]])
        char_ids = tf.pad(
            char_ids,
            [[0, 0], [0, tf.shape(word_ids)[1] - tf.shape(char_ids)[1]], [0, tf.maximum(0, 1 - tf.shape(char_ids)[2])]],
        )
        mask = tf.not_equal(word_ids, 0)
        tag_ids, entity_scores = tag_by_length(word_ids, char_ids, tf.cast(tokens.row_lengths(), tf.int32))
        tags = tf.where(mask, tf.gather(tag_names, tag_ids), "")
        n = tf.shape(tokens.to_tensor(""))[1]
        return {
            "tokens": tokens.to_tensor(""),
            "tags": tags[:, :n],
            # The confidence of each entity at its first token, 0 elsewhere.
            "entity_scores": entity_scores[:, :n],
            "num_tokens": tf.cast(tokens.row_lengths(), tf.int32),
        }

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(word_table)
    archive.track(char_table)
    archive.add_endpoint(
        "serving_default", serve, input_signature=[tf.TensorSpec([None], tf.string, name="text")]
    )
    return archive


def in_memory_tags(model, encoder, vocab, token_lists, batch_size):
    """IOB2 tags and entity scores per sentence from the in-memory model."""
    ids, scores = predict_tags_and_scores(model, encoder.encode(token_lists), vocab["tags"], batch_size)
    names = iob2_names(vocab["tags"])
    return [[names[i] for i in row] for row in ids], scores


def check_parity(saved_dir, model, encoder, split, cfg):
    """Runs the test sentences as raw text through the SavedModel and through tokenize +
    the in-memory model; returns a ParityReport."""
    import tensorflow as tf

    texts = [" ".join(t) for t in split.tokens]
    vocab, batch_size = encoder.vocab, cfg["batch_size"]

    serve = tf.saved_model.load(str(saved_dir)).signatures["serving_default"]
    non_empty = [t for t in texts if tokenize(t)]
    mismatches = []
    with Progress("export: parity check", total=len(non_empty), unit="sentences") as progress:
        for first in range(0, len(non_empty), batch_size):
            # The in-memory model sees the same sentences in one batch, so both pad alike.
            part = non_empty[first : first + batch_size]
            tokens = [tokenize(t) for t in part]
            expected, scores = in_memory_tags(model, encoder, vocab, tokens, batch_size)
            out = serve(text=tf.constant(part))
            mismatches += compare(out, part, tokens, expected, scores)
            progress.update(len(part), extra=f"{len(mismatches)} mismatches")
    return ParityReport(len(non_empty), mismatches, "sentences")


# Batched alike, both sides give the same float32 scores (CoNLL-2003 test: 0 apart); padded
# differently they can differ in the last bits, summed over a sentence (up to 1e-4).
SCORE_TOLERANCE = 1e-5


def compare(out, texts, tokens, expected, expected_scores):
    """Mismatch messages of one served batch against Python's tokens and the in-memory tags
    and entity scores."""
    import numpy as np

    lengths, served_tokens, served_tags = out["num_tokens"].numpy(), out["tokens"].numpy(), out["tags"].numpy()
    served_scores = out["entity_scores"].numpy()
    mismatches = []
    for row, text in enumerate(texts):
        n = lengths[row]
        got_tokens = [t.decode("utf-8") for t in served_tokens[row, :n]]
        got_tags = [t.decode("utf-8") for t in served_tags[row, :n]]
        if got_tokens != tokens[row]:
            mismatches.append(f"tokens differ for {text!r}: {got_tokens} vs {tokens[row]}")
        elif got_tags != expected[row]:
            mismatches.append(f"tags differ for {text!r}: {got_tags} vs {expected[row]}")
        elif not np.allclose(served_scores[row, :n], expected_scores[row], atol=SCORE_TOLERANCE, rtol=0):
            mismatches.append(f"entity scores differ for {text!r}: {served_scores[row, :n].round(4).tolist()} "
                              f"vs {np.round(expected_scores[row], 4).tolist()}")
    return mismatches


class NerPredictor(ServedModel):
    """Maps the tagger SavedModel's tags to character spans with their confidence; entities
    scored below `min_score` are left out."""

    min_score = 0.0

    def predict(self, texts):
        results = []
        for batch, out in self.batches(texts):
            lengths = out["num_tokens"].numpy()
            tokens, tags, scores = out["tokens"].numpy(), out["tags"].numpy(), out["entity_scores"].numpy()
            for row, text in enumerate(batch):
                n = int(lengths[row])
                offsets = tokenize_with_offsets(text)
                served = [t.decode("utf-8") for t in tokens[row, :n]]
                if [t for t, _, _ in offsets] != served:
                    raise RuntimeError("the SavedModel's tokenizer disagrees with pipelines.tokenizer; "
                                       "was the model exported by another version of this project?")
                row_tags = [t.decode("utf-8") for t in tags[row, :n]]
                entities = []
                for label, first, last in get_spans(row_tags, "IOB2"):
                    score = float(scores[row, first])
                    if score < self.min_score:
                        continue
                    s, e = offsets[first][1], offsets[last - 1][2]
                    entities.append({"type": label, "text": text[s:e], "start": s, "end": e,
                                     "score": round(score, 4)})
                results.append({"text": text, "entities": entities})
        return results
