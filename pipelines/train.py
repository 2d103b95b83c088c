"""train stage: fits the model on train, selects the epoch on validation.

Usage: python -m pipelines.train ner|sentiment
"""

import json
import sys
import time

import numpy as np

from pipelines.config import TASKS, resolve_path, stage_setup
from pipelines.training import (fit_resumable, make_optimizer, median_throughput, save_inference_model,
                                seed_everything, training_runtime)
from pipelines.vocab import load_json, save_json


def build_ner_model(model_cfg, vocab):
    from models.tagger import SequenceTagger

    return SequenceTagger(
        word_vocab_size=len(vocab["words"]),
        char_vocab_size=len(vocab["chars"]),
        num_tags=len(vocab["tags"]),
        **model_cfg,
    )


def init_embeddings(model, path, encoder, seed):
    from pipelines.embeddings import load_vectors

    path = resolve_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"embeddings file not found: {path}")
    layer = model.get_layer("word_embedding")
    matrix, found = load_vectors(path, encoder.words, layer.output_dim, normalize=encoder.normalize, seed=seed)
    layer.set_weights([matrix])
    print(f"embeddings: {found} of {len(encoder.words) - 2} words initialised from {path}")
    return found


def train_ner(params, out):
    from pipelines.batching import BucketBatcher
    from pipelines.features import TokenEncoder
    from pipelines.ner import EntityF1Callback, load_split
    from pipelines.tune import tuned_settings

    model_cfg, cfg, source = tuned_settings(params, "ner", out, params["ner"]["model"], params["ner"]["train"])
    seed = params["seed"]
    seed_everything(seed, deterministic=cfg.get("jit_compile") is not True)  # TF refuses XLA otherwise

    vocab = load_json(out / "vocab.json")
    encoder = TokenEncoder.from_vocab_file(out / "vocab.json")
    tag_index = {t: i for i, t in enumerate(vocab["tags"])}
    train_tokens, train_tags, _ = load_split(out / "data", "train")
    val_tokens, val_tags, _ = load_split(out / "data", "validation")
    train_x = encoder.encode(train_tokens)
    train_y = [np.array([tag_index[t] for t in tags], dtype=np.int32) for tags in train_tags]
    with training_runtime(cfg) as runtime:
        if runtime.backend == "tensorflow" and runtime.jit_compile is True and model_cfg.get("use_crf", True):
            # The CRF's loops have no static bound, which TensorFlow's XLA refuses.
            raise ValueError("ner.train.jit_compile: true does not work with TensorFlow and the CRF (XLA needs "
                             "loops of static length); use auto or false, or KERAS_BACKEND=jax, where XLA is on")
        batches = BucketBatcher(train_x, train_y, batch_size=cfg["batch_size"], shuffle=True, seed=seed,
                                exact_lengths=runtime.padding_free)
        with runtime.scope():
            model = build_ner_model({**model_cfg, "rnn_mask": not runtime.padding_free}, vocab)
            embeddings_found = None
            if cfg.get("embeddings_file"):
                embeddings_found = init_embeddings(model, cfg["embeddings_file"], encoder, seed)
            model.compile(optimizer=make_optimizer(cfg, len(batches)), jit_compile=runtime.jit_compile)
            runtime.jit_compile = model.jit_compile  # what Keras resolved "auto" to

        f1 = EntityF1Callback(
            encoder.encode(val_tokens), val_tags, vocab["tags"], vocab["tag_scheme"], cfg["eval_batch_size"]
        )
        start = time.perf_counter()
        selector, timer, history = fit_resumable(
            model, batches, cfg["epochs"], out / "train_state", "val_f1", cfg["patience"], callbacks=[f1]
        )
        wall = time.perf_counter() - start
    save_inference_model(selector.checkpoint, runtime, out / "model.keras")
    n_tokens = sum(len(t) for t in train_tokens)
    summary = {
        "best_epoch": selector.state["best_epoch"],
        "best_val_f1": selector.state["best"],
        "epochs_run": len(history),
        "train_seconds": round(wall, 1),
        "train_tokens_per_second": round(median_throughput(n_tokens, timer.seconds)),
        "embeddings_found": embeddings_found,
        "hyperparameters": {**model_cfg, **{k: cfg[k] for k in ("optimizer", "learning_rate", "lr_decay", "clipnorm", "batch_size")}},
        "hyperparameters_source": source,
        "runtime": runtime.summary(),
    }
    save_json(summary, out / "train.json")
    curves = [
        {"epoch": int(r["epoch"]) + 1, "loss": float(r["loss"]), "val_f1": float(r["val_f1"]),
         "epoch_seconds": float(r["epoch_seconds"])}
        for r in history
    ]
    with open(out / "history.json", "w") as f:
        json.dump(curves, f, indent=1)
    from pipelines.plots import line_chart

    line_chart([c["epoch"] for c in curves],
               {"training loss": [c["loss"] for c in curves], "validation F1": [c["val_f1"] for c in curves]},
               out / "history.png", "NER training", "epoch")
    return summary


def main(argv=None):
    setup = stage_setup(__doc__, argv, requires="vocab.json", previous_stage="prepare", tasks=TASKS)
    if setup is None:
        return 1
    task, params, out = setup
    if task == "sentiment":
        from pipelines.sentiment import train_sentiment

        summary = train_sentiment(params, out)
        monitor = params["sentiment"]["train"].get("monitor", "val_accuracy")
        print(f"best {monitor} {summary['best_' + monitor]:.4f} at epoch {summary['best_epoch']} "
              f"({summary['epochs_run']} epochs, {summary['train_seconds']} s, "
              f"{summary['train_tokens_per_second']} tokens/s)")
        return 0
    summary = train_ner(params, out)
    print(
        f"best validation F1 {summary['best_val_f1']:.4f} at epoch {summary['best_epoch']} "
        f"({summary['epochs_run']} epochs, {summary['train_seconds']} s, "
        f"{summary['train_tokens_per_second']} tokens/s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
