"""export stage: SavedModel that takes raw text, checked against the in-memory model.

Usage: python -m pipelines.export ner|sentiment
"""

import shutil
import sys
import time


from pipelines.config import TASKS, stage_setup
from pipelines.vocab import save_json


def iob2_names(tag_names):
    """Tag-wise IOBES -> IOB2 names (S- is B-, E- is I-), so served tags are IOB2."""
    out = []
    for tag in tag_names:
        if tag.startswith("S-"):
            tag = "B-" + tag[2:]
        elif tag.startswith("E-"):
            tag = "I-" + tag[2:]
        out.append(tag)
    return out


SERVE_CHUNK = 64  # sentences per model call inside one request


def build_ner_archive(model, vocab):
    """A keras.export.ExportArchive whose `serving_default` maps text to tokens and tags."""
    import keras
    import tensorflow as tf

    from pipelines.tf_tokenizer import tf_normalize_words, tf_tokenize

    def table(entries):
        init = tf.lookup.KeyValueTensorInitializer(
            tf.constant(entries[2:], tf.string), tf.range(2, len(entries), dtype=tf.int64)
        )
        return tf.lookup.StaticHashTable(init, default_value=1)  # 1 is the OOV id

    word_table, char_table = table(vocab["words"]), table(vocab["chars"])
    tag_names = tf.constant(iob2_names(vocab["tags"]))
    lowercase, digits, max_chars = vocab["lowercase"], vocab["digits_to_zero"], vocab["max_word_chars"]

    def tag_by_length(word_ids, char_ids, lengths):
        # A request mixes short and long sentences; tagging it in chunks of
        # similar length, each cut to its own longest sentence and word,
        # skips most of the padding (CoNLL test: ~5x fewer time steps).
        size = tf.shape(word_ids)[0]
        order = tf.argsort(lengths, stable=True)
        num_chunks = (size + SERVE_CHUNK - 1) // SERVE_CHUNK

        def body(i, tag_ids):
            rows = order[i * SERVE_CHUNK : (i + 1) * SERVE_CHUNK]
            steps = tf.maximum(1, tf.reduce_max(tf.gather(lengths, rows)))
            words = tf.gather(word_ids, rows)[:, :steps]
            chars = tf.gather(char_ids, rows)[:, :steps]
            width = tf.maximum(1, tf.reduce_max(tf.reduce_sum(tf.cast(chars != 0, tf.int32), -1)))
            chars = chars[:, :, :width]
            ids = model.decode(model({"words": words, "chars": chars}, training=False), tf.not_equal(words, 0))
            ids = tf.pad(tf.cast(ids, tf.int32), [[0, 0], [0, tf.shape(word_ids)[1] - steps]])
            return i + 1, tf.tensor_scatter_nd_update(tag_ids, rows[:, None], ids)

        _, tag_ids = tf.while_loop(lambda i, _: i < num_chunks, body,
                                   (tf.constant(0), tf.zeros_like(word_ids)))
        return tag_ids

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
        tag_ids = tag_by_length(word_ids, char_ids, tf.cast(tokens.row_lengths(), tf.int32))
        tags = tf.where(mask, tf.gather(tag_names, tag_ids), "")
        n = tf.shape(tokens.to_tensor(""))[1]
        return {
            "tokens": tokens.to_tensor(""),
            "tags": tags[:, :n],
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
    from pipelines.ner import predict_tag_ids

    ids = predict_tag_ids(model, encoder.encode(token_lists), batch_size)
    names = iob2_names(vocab["tags"])
    return [[names[i] for i in row] for row in ids]


def check_parity(saved_dir, model, encoder, vocab, texts, batch_size):
    """Runs raw texts through the SavedModel and through tokenize + in-memory model.

    Returns (number checked, list of mismatch descriptions).
    """
    import tensorflow as tf

    from pipelines.tokenizer import tokenize

    serve = tf.saved_model.load(str(saved_dir)).signatures["serving_default"]
    non_empty = [t for t in texts if tokenize(t)]
    expected = in_memory_tags(model, encoder, vocab, [tokenize(t) for t in non_empty], batch_size)
    mismatches = []
    for start in range(0, len(non_empty), batch_size):
        batch = non_empty[start : start + batch_size]
        out = serve(text=tf.constant(batch))
        lengths = out["num_tokens"].numpy()
        tokens, tags = out["tokens"].numpy(), out["tags"].numpy()
        for row, text in enumerate(batch):
            n = lengths[row]
            got_tokens = [t.decode("utf-8") for t in tokens[row, :n]]
            got_tags = [t.decode("utf-8") for t in tags[row, :n]]
            want_tokens, want_tags = tokenize(text), expected[start + row]
            if got_tokens != want_tokens:
                mismatches.append(f"tokens differ for {text!r}: {got_tokens} vs {want_tokens}")
            elif got_tags != want_tags:
                mismatches.append(f"tags differ for {text!r}: {got_tags} vs {want_tags}")
    return len(non_empty), mismatches


def write_and_check(archive, out, checked_key, check):
    """Writes `archive` to out/saved_model, runs `check(saved_dir)` -> (checked, mismatches)
    and writes the report to out/export.json; returns the report."""
    saved_dir = out / "saved_model"
    if saved_dir.exists():
        shutil.rmtree(saved_dir)
    start = time.perf_counter()
    archive.write_out(str(saved_dir), verbose=False)
    export_seconds = time.perf_counter() - start
    start = time.perf_counter()
    checked, mismatches = check(saved_dir)
    report = {
        "saved_model": saved_dir.name,
        checked_key: checked,
        "mismatches": len(mismatches),
        "first_mismatches": mismatches[:5],
        "export_seconds": round(export_seconds, 1),
        "parity_seconds": round(time.perf_counter() - start, 1),
    }
    save_json(report, out / "export.json")
    return report


def export_ner(params, out):
    from pipelines.ner import load_trained

    cfg = params["ner"]["export"]
    vocab, encoder, model, tokens, _ = load_trained(out)
    texts = [" ".join(t) for t in tokens]
    return write_and_check(
        build_ner_archive(model, vocab), out, "test_sentences_checked",
        lambda saved_dir: check_parity(saved_dir, model, encoder, vocab, texts, cfg["batch_size"]),
    )


def main(argv=None):
    setup = stage_setup(__doc__, argv, requires="model.keras", previous_stage="train", tasks=TASKS)
    if setup is None:
        return 1
    task, params, out = setup
    if task == "sentiment":
        from pipelines.sentiment import export_sentiment

        report = export_sentiment(params, out)
        checked = report["test_documents_checked"]
    else:
        report = export_ner(params, out)
        checked = report["test_sentences_checked"]
    if report["mismatches"]:
        print(
            f"export: error: the SavedModel disagrees with the in-memory model on "
            f"{report['mismatches']} of {checked} test {'documents' if task == 'sentiment' else 'sentences'}; "
            f"first: {report['first_mismatches'][0]}",
            file=sys.stderr,
        )
        return 1
    print(f"wrote {out / report['saved_model']}; parity with the in-memory model on {checked} test examples")
    return 0


if __name__ == "__main__":
    sys.exit(main())
