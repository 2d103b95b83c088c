"""The train stage's driver, one for every task: fit on train, select the epoch on validation.

Outputs under the task's out_dir: model.keras, train.json (the headline
numbers, a DVC metric), train_details.json (hyperparameters and runtime),
history.json and history.png (per-epoch curves), train_state/ (resume state).
"""

import sys

from pipelines.core.batching import BucketBatcher
from pipelines.core.errors import DataError
from pipelines.core.hparams import tuned_settings
from pipelines.core.io import PRETRAINED_ENCODER_FILE, load_weight_groups, save_json
from pipelines.core.progress import heartbeat
from pipelines.core.reports import line_chart
from pipelines.core.runtime import seed_everything, training_runtime
from pipelines.core.train_state import file_digest
from pipelines.core.training import (Schedule, embeddings_initializer, fit_resumable, make_optimizer, median_throughput,
                                     save_inference_model)

RECORDED_TRAIN_KEYS = ("optimizer", "learning_rate", "lr_decay", "clipnorm", "batch_size", "min_steps",
                      "ema_momentum")


def pretrained_initializer(out):
    """callable(model) that starts the model's embedding and first Bi-RNN from the pretrain
    stage's language models, or None when there are none (pretraining off or not run)."""
    path = out / PRETRAINED_ENCODER_FILE
    weights = load_weight_groups(path) if path.is_file() else None
    if weights is None:
        return None

    def initialize(model):
        from models.language_model import load_encoder_weights

        try:
            load_encoder_weights(model, weights)
        except (ValueError, AttributeError, IndexError) as err:
            raise DataError(f"{path}: {err}; rerun the pretrain stage with the train stage's model "
                            f"settings") from None
        print(f"train: embedding and first Bi-RNN start from the language models in {path}")
        return str(path)

    return initialize


def data_fingerprint(out, train_split, val_split):
    """Cheap evidence of which prepared data a run trains on: the vocabularies, the split sizes
    and the pretrained encoder, if any."""
    vocab = out / "vocab.json"
    pretrained = out / PRETRAINED_ENCODER_FILE
    return {"vocab_sha256": file_digest(vocab) if vocab.is_file() else None,
            "pretrained_sha256": file_digest(pretrained) if pretrained.is_file() else None,
            "train": [len(train_split.y), int(train_split.num_tokens)],
            "validation": [len(val_split.y), int(val_split.num_tokens)]}


def train(task, params, out, callbacks=()):
    """Trains `task` with params (or the tune stage's best values); returns (summary, details).

    `callbacks`: extra Keras callbacks for the fit (the GPU benchmark counts XLA compilations per epoch).
    """
    section = params[task.name]
    model_cfg, cfg, source = tuned_settings(params, task.name, out, section["model"], section["train"])
    seed = params["seed"]
    seed_everything(seed, deterministic=cfg.get("jit_compile") is not True)  # TF refuses XLA otherwise
    with heartbeat("train: loading the prepared data", stream=sys.stdout):
        encoder = task.encoder(out)
        train_split = task.load_split(out, "train")
        val_split = task.load_split(out, "validation")
    init_embeddings = embeddings_initializer(cfg, encoder, seed)
    init_pretrained = pretrained_initializer(out)
    with training_runtime(cfg) as runtime:
        with heartbeat("train: building the model", stream=sys.stdout):
            task.check_runtime(runtime, model_cfg)
            batches = BucketBatcher(train_split.features(encoder), train_split.y, batch_size=cfg["batch_size"],
                                    shuffle=True, seed=seed, exact_lengths=runtime.padding_free)
            validation = task.validation_monitor(encoder, val_split, cfg, runtime.padding_free)
            schedule = Schedule(cfg, len(batches), f"{task.name}.train")
            if schedule.scale > 1:
                print(f"train: {schedule.describe()}")
            with runtime.scope():
                model = task.build_model({**model_cfg, "rnn_mask": not runtime.padding_free}, encoder.vocab)
                embeddings_found = init_embeddings(model) if init_embeddings else None
                pretrained = init_pretrained(model) if init_pretrained else None
                optimizer = make_optimizer(cfg, schedule.unit_steps, f"{task.name}.train")
                model.compile(optimizer=optimizer, metrics=task.compile_metrics(model) or None,
                              jit_compile=runtime.jit_compile)
                runtime.jit_compile = model.jit_compile  # what Keras resolved "auto" to
        metric, mode = task.selection(cfg)
        # What decides the run: a saved state from other settings or data is not resumed.
        # document_vote acts after fitting (finish_model): an interrupted fit resumes across a change of it.
        fit_cfg = {k: v for k, v in cfg.items() if k != "document_vote"}
        settings = {"model": model_cfg, "train": fit_cfg, "seed": seed, "runtime": runtime.summary(),
                    "data": data_fingerprint(out, train_split, val_split)}
        state, timer = fit_resumable(
            model, batches, schedule.epochs, out / "train_state", metric, schedule.patience,
            callbacks=[*validation.callbacks, *callbacks], mode=mode, validation_data=validation.data,
            settings=settings,
        )
        seconds = state.elapsed_seconds()
    finished = save_inference_model(
        state.checked_best_file(), runtime, out / "model.keras",
        finish=lambda model: task.finish_model(model, encoder, train_split, val_split, cfg))
    history = state.history
    summary = {
        # Short keys: `dvc metrics show` puts every metrics file's keys side by side.
        "best_val": state.selection["best"],  # of the monitored metric, details["monitor"]
        "best_epoch": state.selection["best_epoch"],
        "epochs": len(history),
        "seconds": round(seconds, 1),  # with the epochs of an interrupted run this one resumed
        "tokens_per_s": round(median_throughput(train_split.num_tokens, timer.seconds)),
    }
    details = {
        "monitor": metric,
        "embeddings_found": embeddings_found,
        "pretrained_encoder": pretrained,
        "hyperparameters": {**model_cfg, **{k: cfg.get(k) for k in RECORDED_TRAIN_KEYS}},
        "hyperparameters_source": source,
        "runtime": runtime.summary(),
        "schedule": schedule.summary(),
    }
    if finished is not None:
        details["finish"] = finished
    save_json(summary, out / "train.json")
    save_json(details, out / "train_details.json")
    write_history(task, history, out)
    state.clear()  # the outputs are complete: a later run trains afresh
    return summary, details


def write_history(task, rows, out):
    """history.json (one row per epoch, a DVC plot) and history.png."""
    columns = [*task.history_columns, "epoch_seconds"]
    curves = [{"epoch": int(r["epoch"]) + 1, **{c: float(r[c]) for c in columns}} for r in rows]
    save_json(curves, out / "history.json")
    line_chart([c["epoch"] for c in curves],
               {title: [c[column] for c in curves] for title, column in task.history_plot.items()},
               out / "history.png", f"{task.title} training", "epoch")
    return curves


def summary_line(summary, details):
    metric = details["monitor"]
    return (f"best {metric} {summary['best_val']:.4f} at epoch {summary['best_epoch']} "
            f"({summary['epochs']} epochs, {summary['seconds']} s, {summary['tokens_per_s']} tokens/s)")
