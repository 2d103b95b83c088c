"""The pretrain stage's driver: a forward and a backward language model on unlabelled text,
whose embedding and RNNs then start the train stage's first Bi-RNN (models/language_model.py).

Outputs under the task's out_dir: pretrained_encoder.npz (the arrays, or none
when `<task>.pretrain.enabled` is false), pretrain.json (what was trained and
how well), pretrain_state/ (resume state of a killed run).
"""

import sys
import time

import numpy as np

from pipelines.core.errors import DataError, ParamsError
from pipelines.core.io import PRETRAINED_ENCODER_FILE as ENCODER_FILE
from pipelines.core.io import save_json, save_weight_groups

RECORD_FILE = "pretrain.json"
STATE_DIR = "pretrain_state"

DEFAULTS = {"enabled": False, "files": [], "text_column": None, "include_train": True, "window": 100,
            "batch_size": 64, "epochs": 1, "num_sampled": 512, "dropout": 0.1, "learning_rate": 0.001,
            "clipnorm": 5.0, "max_tokens": None, "validation_tokens": 50000}


def pretrain_config(params, task_name):
    """The task's pretrain section with defaults filled in; ParamsError for a bad value."""
    given = params[task_name].get("pretrain") or {}
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise ParamsError(f"{task_name}.pretrain: unknown key(s) {', '.join(unknown)} "
                          f"(known: {', '.join(DEFAULTS)})")
    cfg = {**DEFAULTS, **given}
    where = f"{task_name}.pretrain"
    for key in ("window", "batch_size", "epochs", "num_sampled"):
        value = cfg[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ParamsError(f"{where}.{key} must be a positive integer, got {value!r}")
    for key, low, high in (("dropout", 0.0, 1.0), ("learning_rate", 0.0, None), ("clipnorm", 0.0, None)):
        value = cfg[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low or \
                (high is not None and value >= high) or (key != "dropout" and value == 0):
            bound = f"[{low}, {high})" if high is not None else "> 0"
            raise ParamsError(f"{where}.{key} must be a number {bound}, got {value!r}")
    for key in ("max_tokens", "validation_tokens"):
        value = cfg[key]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ParamsError(f"{where}.{key} must be null or a positive integer, got {value!r}")
    if not isinstance(cfg["enabled"], bool):
        raise ParamsError(f"{where}.enabled must be true or false, got {cfg['enabled']!r}")
    return cfg


def windows(docs, window, max_tokens=None, seed=0):
    """(N, window + 1) int32: the documents in a seeded order, concatenated and cut into
    windows that overlap by one token (each window's last word is the next one's first),
    at most `max_tokens` tokens in all; the remainder is dropped."""
    order = np.random.default_rng(seed).permutation(len(docs))
    stream = np.concatenate([np.asarray(docs[i], dtype=np.int32) for i in order]) if len(docs) else \
        np.zeros(0, np.int32)
    if max_tokens is not None:
        stream = stream[: max_tokens + 1]
    count = (len(stream) - 1) // window
    if count < 1:
        return np.zeros((0, window + 1), np.int32)
    starts = np.arange(count) * window
    return stream[starts[:, None] + np.arange(window + 1)[None, :]]


def disabled(task, out):
    (out / STATE_DIR).mkdir(parents=True, exist_ok=True)  # a DVC output either way
    save_weight_groups(out / ENCODER_FILE, {})
    record = {"enabled": False}
    save_json(record, out / RECORD_FILE)
    print(f"pretrain: {task.name}.pretrain.enabled is false; the train stage starts its Bi-RNN from random weights")
    return record


def pretrain(task, params, out):
    """Pretrains when enabled (else writes the empty outputs); returns the record of pretrain.json."""
    cfg = pretrain_config(params, task.name)
    if not cfg["enabled"]:
        return disabled(task, out)
    if task.pretraining_corpus is None:
        raise ParamsError(f"{task.name}.pretrain.enabled: language-model pretraining is not available for "
                          f"{task.name} (it pretrains the sentiment classifier's first Bi-RNN)")
    import keras

    from models.language_model import BidirectionalLanguageModel
    from pipelines.core.progress import heartbeat
    from pipelines.core.runtime import seed_everything, training_runtime
    from pipelines.core.training import embeddings_initializer, fit_resumable, median_throughput

    section = params[task.name]
    model_cfg, train_cfg, seed = section["model"], section["train"], params["seed"]
    seed_everything(seed, deterministic=train_cfg.get("jit_compile") is not True)
    with heartbeat("pretrain: loading the prepared data", stream=sys.stdout):
        encoder = task.encoder(out)
        train_split = task.load_split(out, "train")
        val_split = task.load_split(out, "validation")
    started = time.monotonic()
    docs, val_docs, corpus = task.pretraining_corpus(cfg, section["prepare"], encoder, train_split, val_split)
    train_windows = windows(docs, cfg["window"], cfg["max_tokens"], seed)
    val_windows = windows(val_docs, cfg["window"], cfg["validation_tokens"], seed)
    if len(train_windows) == 0:
        raise DataError(f"the pretraining corpus has {sum(map(len, docs))} tokens, fewer than one window "
                        f"({task.name}.pretrain.window = {cfg['window']})")
    vocab_size = len(encoder.words)
    counts = np.bincount(train_windows.reshape(-1), minlength=vocab_size)
    corpus_seconds = time.monotonic() - started
    tokens = int(train_windows.size - len(train_windows))  # windows overlap by one token
    print(f"pretrain: {len(docs)} documents, {tokens} tokens in "
          f"{len(train_windows)} windows of {cfg['window']}, {len(val_windows)} validation windows "
          f"({corpus_seconds:.0f} s)")

    from pipelines.core.batching import BucketBatcher

    def batcher(rows, shuffle):
        return BucketBatcher({"words": list(rows)}, None, batch_size=cfg["batch_size"], shuffle=shuffle,
                             seed=seed, exact_lengths=True) if len(rows) else None

    init_embeddings = embeddings_initializer(train_cfg, encoder, seed)
    with training_runtime(train_cfg) as runtime:
        with runtime.scope():
            model = BidirectionalLanguageModel(
                vocab_size, embedding_dim=int(model_cfg[task.embedding_dim_key]), rnn_type=model_cfg["rnn_type"],
                hidden_size=int(model_cfg["hidden_size"]), num_sampled=cfg["num_sampled"], dropout=cfg["dropout"],
                seed=seed)
            model.build((None, None))
            model.set_unigram_counts(counts)
            embeddings_found = init_embeddings(model) if init_embeddings else None
            model.compile(optimizer=keras.optimizers.Adam(cfg["learning_rate"], clipnorm=cfg["clipnorm"]),
                          jit_compile=runtime.jit_compile)
        settings = {"pretrain": cfg, "model": {k: model_cfg[k] for k in ("rnn_type", "hidden_size")},
                    "embeddings_file": train_cfg.get("embeddings_file"), "seed": seed,
                    "runtime": runtime.summary(), "windows": [len(train_windows), len(val_windows)],
                    "vocab_size": vocab_size}
        state, timer = fit_resumable(model, batcher(train_windows, True), cfg["epochs"], out / STATE_DIR,
                                     "val_loss" if len(val_windows) else "loss", patience=cfg["epochs"],
                                     mode="min", validation_data=batcher(val_windows, False), settings=settings)
    best = keras.saving.load_model(state.checked_best_file(), compile=False)
    save_weight_groups(out / ENCODER_FILE, best.encoder_weights())
    history = [{k: (round(float(v), 5) if k != "epoch" else int(v) + 1) for k, v in row.items()}
               for row in state.history]
    record = {"enabled": True, "documents": len(docs), "tokens": tokens, "windows": len(train_windows),
              "validation_windows": len(val_windows), "epochs": len(history),
              "seconds": round(state.elapsed_seconds(), 1), "corpus_seconds": round(corpus_seconds, 1),
              "tokens_per_s": round(median_throughput(tokens, timer.seconds)), "embeddings_found": embeddings_found,
              "best": state.selection["best"], "best_epoch": state.selection["best_epoch"],
              "validation_perplexity": round(float(np.exp(state.selection["best"])), 2) if len(val_windows)
              else None, "corpus": corpus, "history": history}
    save_json(record, out / RECORD_FILE)
    state.clear()
    return record


def summary_line(record):
    if not record["enabled"]:
        return "pretrain: nothing to do"
    ppl = record["validation_perplexity"]
    return (f"pretrain: {record['tokens']} tokens x {record['epochs']} epochs in {record['seconds']} s "
            f"({record['tokens_per_s']} tokens/s)" + (f", validation perplexity {ppl}" if ppl else ""))
