"""Fitting machinery shared by the tasks: optimizers, epoch timing, model selection, resumable fit."""

import csv
import shutil
import sys
import time
from pathlib import Path

import keras
import numpy as np

from models.lazy_optimizers import LazyAdam, LazyNadam
from pipelines.core.batching import fit_data
from pipelines.core.errors import ParamsError
from pipelines.core.io import load_json, save_json

OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "nadam": keras.optimizers.Nadam,
    # Update only the embedding rows a batch used (models/lazy_optimizers.py).
    "lazy_adam": LazyAdam,
    "lazy_nadam": LazyNadam,
    "sgd": keras.optimizers.SGD,
    "rmsprop": keras.optimizers.RMSprop,
}


def make_optimizer(cfg, steps_per_epoch=1):
    """Optimizer from a train params section; `lr_decay` d gives lr / (1 + d * epoch)."""
    name = cfg["optimizer"].lower()
    if name not in OPTIMIZERS:
        raise ParamsError(f"unknown optimizer {cfg['optimizer']!r}; choose from {', '.join(OPTIMIZERS)}")
    learning_rate = float(cfg["learning_rate"])
    if cfg.get("lr_decay"):
        # Step-based, so the schedule resumes with the optimizer's iteration count.
        learning_rate = keras.optimizers.schedules.InverseTimeDecay(
            learning_rate, decay_steps=max(1, steps_per_epoch), decay_rate=float(cfg["lr_decay"])
        )
    kwargs = {"learning_rate": learning_rate}
    if cfg.get("clipnorm"):
        kwargs["clipnorm"] = float(cfg["clipnorm"])
    return OPTIMIZERS[name](**kwargs)


def save_inference_model(checkpoint, runtime, path):
    """Saves the model to serve: float32 with masked Bi-RNNs, whatever the training run used.

    Call it after leaving `training_runtime`, so the float32 policy is back.
    """
    if not runtime.padding_free and runtime.precision == "float32":
        shutil.copyfile(checkpoint, path)
        return
    from models.runtime import rebuild

    rebuild(keras.saving.load_model(checkpoint, compile=False), rnn_mask=True).save(path)


class EpochTimer(keras.callbacks.Callback):
    """Records each epoch's training seconds (before validation callbacks run)."""

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.perf_counter() - self._start
        self.seconds.append(elapsed)
        if logs is not None:
            logs["epoch_seconds"] = elapsed


class ModelSelector(keras.callbacks.Callback):
    """Keeps the best model by a validation metric and stops after `patience` epochs.

    Unlike EarlyStopping, its state (best value, epoch, wait) is written next to
    the checkpoint so that a resumed run continues where it stopped.
    """

    def __init__(self, monitor, directory, patience, mode="max"):
        super().__init__()
        self.monitor = monitor
        self.directory = Path(directory)
        self.patience = int(patience)
        self.sign = 1.0 if mode == "max" else -1.0
        self.state_path = self.directory / "selector.json"
        self.checkpoint = self.directory / "best.keras"
        self.state = {"best": None, "best_epoch": None, "wait": 0}

    def on_train_begin(self, logs=None):
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.state_path.is_file() and self.checkpoint.is_file():
            self.state = load_json(self.state_path)

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            raise ParamsError(f"monitored metric {self.monitor!r} is not in the epoch logs: {sorted(logs or {})}")
        best = self.state["best"]
        if best is None or self.sign * value > self.sign * best:
            self.model.save(self.checkpoint)
            self.state.update(best=float(value), best_epoch=epoch + 1, wait=0)
        else:
            self.state["wait"] += 1
            if self.state["wait"] >= self.patience:
                self.model.stop_training = True
        save_json(self.state, self.state_path)


def fit_resumable(model, train_data, epochs, work_dir, monitor, patience, callbacks=(), mode="max",
                  validation_data=None):
    """Fits with BackupAndRestore; returns (selector, timer, history rows).

    `work_dir` must survive an interruption (a persisted DVC output): it holds
    the backup, the best checkpoint, the selector state and the history CSV.
    """
    work_dir = Path(work_dir)
    backup = work_dir / "backup"
    resuming = backup.exists()
    if not resuming and work_dir.exists():
        shutil.rmtree(work_dir)  # a fresh run must not inherit stale state
    work_dir.mkdir(parents=True, exist_ok=True)
    if resuming:
        print(f"resuming the interrupted run from {backup}")
    history_csv = work_dir / "history.csv"
    timer = EpochTimer()
    selector = ModelSelector(monitor, work_dir, patience, mode=mode)
    all_callbacks = [
        timer,
        *callbacks,
        selector,
        keras.callbacks.CSVLogger(str(history_csv), append=resuming),
        keras.callbacks.BackupAndRestore(str(backup), delete_checkpoint=True),
    ]
    model.fit(
        fit_data(train_data),
        epochs=epochs,
        shuffle=False,  # the batchers shuffle themselves, seeded
        validation_data=fit_data(validation_data),
        callbacks=all_callbacks,
        verbose=1 if sys.stdout.isatty() else 2,
    )
    with open(history_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    return selector, timer, rows


def median_throughput(tokens, seconds, skip_first=True):
    """Median tokens/s over epochs; the first epoch includes tracing, so it is skipped."""
    times = seconds[1:] if skip_first and len(seconds) > 1 else seconds
    return float(tokens / np.median(times)) if times else 0.0
