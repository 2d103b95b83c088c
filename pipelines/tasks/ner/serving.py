"""NER serving: a SavedModel that maps raw text to tokens and IOB2 tags, its parity
check against the in-memory model, and the predictor that turns tags into spans."""

from pipelines.core.exporting import ServedModel
from pipelines.core.progress import Progress
from pipelines.tasks.base import ParityReport
from pipelines.tasks.ner.encoding import iob2_names
from pipelines.tasks.ner.model import (document_vote, entity_types, predict_tags_and_scores, scoring_entities,
                                        tag_descriptions, vote_documents)
from pipelines.tasks.ner.labels import get_spans
from pipelines.text.tokenizer import tokenize, tokenize_with_offsets

SERVE_CHUNK = 64  # sentences per model call inside one request


def build_archive(model, vocab):
    """A keras.export.ExportArchive whose `serving_default` maps text to tokens and tags."""
    import keras
    import tensorflow as tf

    from models.case_evidence import CaseEvidence
    from pipelines.text.casing import SENTENCE_ENDS
    from pipelines.text.tf_tokenizer import tf_case_classes, tf_normalize_words, tf_tokenize

    def table(entries):
        init = tf.lookup.KeyValueTensorInitializer(
            tf.constant(entries[2:], tf.string), tf.range(2, len(entries), dtype=tf.int64)
        )
        return tf.lookup.StaticHashTable(init, default_value=1)  # 1 is the OOV id

    word_table, char_table = table(vocab["words"]), table(vocab["chars"])
    tag_names = tf.constant(iob2_names(vocab["tags"]))
    span_types, begins = (tf.constant(a) for a in tag_descriptions(vocab["tags"]))
    lowercase, digits, max_chars = vocab["lowercase"], vocab["digits_to_zero"], vocab["max_word_chars"]
    document_features = list(getattr(model, "document_features", []))
    case_evidence = CaseEvidence(getattr(model, "num_case_classes", 7), oov_id=getattr(model, "oov_id", 1))
    vote_share, types = float(getattr(model, "document_vote", 0.0)), entity_types(vocab["tags"])

    def tag_by_length(word_ids, char_ids, evidence, doc_words, lengths):
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
            inputs = {"words": words, "chars": chars}
            if "topic" in document_features:
                inputs["doc_words"] = tf.gather(doc_words, rows)
            if "case" in document_features:
                inputs["case_evidence"] = tf.gather(evidence, rows)[:, :steps]
            logits, mask = model(inputs, training=False), tf.not_equal(words, 0)
            ids = tf.cast(model.decode(logits, mask), tf.int32)
            scores = model.entity_scores(logits, mask, ids, span_types, begins)
            pad = [[0, 0], [0, tf.shape(word_ids)[1] - steps]]
            return (i + 1, tf.tensor_scatter_nd_update(tag_ids, rows[:, None], tf.pad(ids, pad)),
                    tf.tensor_scatter_nd_update(entity_scores, rows[:, None], tf.pad(scores, pad)))

        _, tag_ids, entity_scores = tf.while_loop(
            lambda i, *_: i < num_chunks, body,
            (tf.constant(0), tf.zeros_like(word_ids), tf.zeros_like(word_ids, dtype=tf.float32)))
        return tag_ids, entity_scores

    def at_least_one(ids, axes):
        # At least one step (and character), so an all-empty batch still runs.
        pad = [[0, 0]] * len(ids.shape)
        for axis in axes:
            pad[axis] = [0, tf.maximum(0, 1 - tf.shape(ids)[axis])]
        return tf.pad(ids, pad)

    def serve(text):
        tokens = tf_tokenize(text)
        # The tagger learnt sentences: a text is tagged one sentence at a time (a sentence
        # ends after ".", "!" or "?", as `split_sentences` cuts them), and the whole text
        # is the document of its sentences' context features.
        flat = tokens.flat_values
        row_of = tokens.value_rowids()
        position = tf.range(tf.size(flat, out_type=tf.int64)) - tf.gather(tokens.row_starts(), row_of)
        previous = tf.concat([tf.constant([""]), flat[:-1]], axis=0)
        starts = tf.equal(position, 0)
        for end in sorted(SENTENCE_ENDS):
            starts = starts | tf.equal(previous, end)
        sentence_of = tf.cumsum(tf.cast(starts, tf.int64)) - 1
        sentences = tf.RaggedTensor.from_value_rowids(flat, sentence_of)

        words = tf_normalize_words(sentences, lowercase, digits)
        word_ids = at_least_one(tf.cast(tf.ragged.map_flat_values(word_table.lookup, words), tf.int32).to_tensor(0),
                                [1])
        chars = tf.strings.unicode_split(sentences, "UTF-8")
        char_ids = tf.cast(tf.ragged.map_flat_values(char_table.lookup, chars), tf.int32).to_tensor(0)
        char_ids = at_least_one(char_ids[:, :, :max_chars], [1, 2])
        char_ids = char_ids[:, : tf.shape(word_ids)[1]]
        char_ids = tf.pad(char_ids, [[0, 0], [0, tf.shape(word_ids)[1] - tf.shape(char_ids)[1]], [0, 0]])
        text_words = tokens.with_flat_values(tf.cast(word_table.lookup(tf_normalize_words(flat, lowercase, digits)),
                                                     tf.int32))
        doc_words = at_least_one(text_words.to_tensor(0), [1])
        text_of = tf.gather(row_of, sentences.row_starts())
        evidence = tf.zeros(tf.concat([tf.shape(word_ids), [1]], 0))
        if "case" in document_features:
            per_text = case_evidence(doc_words, doc_words, at_least_one(tf_case_classes(tokens), [1]))
            per_token = tf.gather_nd(per_text, tf.stack([row_of, position], axis=1))
            evidence = tf.RaggedTensor.from_value_rowids(per_token, sentence_of).to_tensor(0.0)
            evidence = tf.pad(evidence, [[0, 0], [0, tf.shape(word_ids)[1] - tf.shape(evidence)[1]], [0, 0]])
        doc_words = tf.gather(doc_words, text_of)
        lengths = tf.cast(sentences.row_lengths(), tf.int32)
        tag_ids, entity_scores = tag_by_length(word_ids, char_ids, evidence, doc_words, lengths)
        valid = tf.sequence_mask(lengths, tf.shape(word_ids)[1])
        flat_tags, flat_scores = tf.gather(tag_names, tf.boolean_mask(tag_ids, valid)), tf.boolean_mask(entity_scores, valid)
        if vote_share:
            flat_tags, flat_scores = document_vote(row_of, flat, flat_tags, flat_scores, starts, types,
                                                   tf.constant(vote_share))
        tags, scores = tokens.with_flat_values(flat_tags), tokens.with_flat_values(flat_scores)
        return {
            "tokens": tokens.to_tensor(""),
            "tags": tags.to_tensor(""),
            # The confidence of each entity at its first token, 0 elsewhere.
            "entity_scores": scores.to_tensor(0.0),
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


def split_sentences(tokens):
    """A served text's tokens cut into sentences, each ending after ".", "!" or "?" (as the
    SavedModel cuts them)."""
    from pipelines.text.casing import SENTENCE_ENDS

    pieces, start = [], 0
    for i, token in enumerate(tokens):
        if token in SENTENCE_ENDS and i + 1 < len(tokens):
            pieces.append(tokens[start : i + 1])
            start = i + 1
    if start < len(tokens):
        pieces.append(tokens[start:])
    return pieces


def in_memory_tags(model, encoder, vocab, token_lists, batch_size):
    """IOB2 tags and entity scores per text from the in-memory model, as the SavedModel
    computes them: sentence by sentence, the text being their document."""
    import numpy as np

    pieces, docs = [], []
    for i, tokens in enumerate(token_lists):
        split = split_sentences(tokens)
        pieces += split
        docs += [i] * len(split)
    # Length-sorted chunks of SERVE_CHUNK, as the SavedModel groups a request's sentences, so
    # both sides run the same shapes (matrix kernels may round differently for others).
    ids, scores = predict_tags_and_scores(model, encoder.encode(pieces, docs=docs, cut_documents=False), vocab["tags"],
                                          min(batch_size, SERVE_CHUNK))
    names = iob2_names(vocab["tags"])
    sentence_tags = [[names[i] for i in row] for row in ids]
    vote_share = float(getattr(model, "document_vote", 0.0))
    if vote_share:
        sentence_tags, scores = vote_documents(docs, pieces, sentence_tags, scores, entity_types(vocab["tags"]),
                                               vote_share)
    tags, text_scores = [[] for _ in token_lists], [[] for _ in token_lists]
    for doc, row, row_scores in zip(docs, sentence_tags, scores):
        tags[doc] += row
        text_scores[doc].append(row_scores)
    return tags, [np.concatenate(s) if s else np.zeros(0, np.float32) for s in text_scores]


def check_parity(saved_dir, model, encoder, split, cfg):
    """Runs the test sentences as raw text through the SavedModel and through tokenize +
    the in-memory model; returns a ParityReport."""
    import tensorflow as tf

    texts = [" ".join(t) for t in split.tokens]
    vocab, batch_size = encoder.vocab, cfg["batch_size"]

    serve = tf.saved_model.load(str(saved_dir)).signatures["serving_default"]
    non_empty = [t for t in texts if tokenize(t)]
    mismatches = []
    with Progress("export: parity check", total=len(non_empty), unit="sentences") as progress, \
            scoring_entities(model, vocab["tags"]):
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
