"""Fitting machinery shared by the tasks: optimizers, epoch timing, model selection, resumable fit."""

import math
import sys
import time

import keras
import numpy as np

from models.lazy_optimizers import LazyAdam, LazyNadam
from pipelines.core import faults
from pipelines.core.batching import fit_data
from pipelines.core.config import resolve_path
from pipelines.core.errors import DataError, ParamsError, StageError
from pipelines.text.embeddings import EmbeddingInitializer, VectorsFileError

OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "nadam": keras.optimizers.Nadam,
    # Update only the embedding rows a batch used (models/lazy_optimizers.py).
    "lazy_adam": LazyAdam,
    "lazy_nadam": LazyNadam,
    "sgd": keras.optimizers.SGD,
    "rmsprop": keras.optimizers.RMSprop,
}


def embeddings_initializer(train_cfg, encoder, seed):
    """An EmbeddingInitializer for `train.embeddings_file`, or None without one."""
    if not train_cfg.get("embeddings_file"):
        return None
    path = resolve_path(train_cfg["embeddings_file"])
    if not path.is_file():
        raise FileNotFoundError(f"embeddings file not found: {path}")
    initializer = EmbeddingInitializer(path, encoder, seed)

    def initialize(model):
        try:
            return initializer(model)
        except VectorsFileError as err:  # text/ knows no stage errors; the CLIs print DataError as one line
            raise DataError(str(err)) from None

    return initialize


class Schedule:
    """Epochs, patience and learning-rate decay of a run, in units of `unit_steps` updates.

    One unit is an epoch, or more on a small dataset: with `min_steps` set, a run of `epochs`
    units has at least min_steps updates, so a dataset of 3,000 sentences gets the updates,
    patience and decay (per update) of a large one instead of stopping while it still learns.
    """

    def __init__(self, cfg, steps_per_epoch, section="train"):
        epochs, patience = int(cfg["epochs"]), int(cfg["patience"])
        self.min_steps = min_steps = int(cfg.get("min_steps") or 0)
        if min_steps < 0:
            raise ParamsError(f"{section}.min_steps must be >= 0 or null, got {cfg['min_steps']}")
        self.steps_per_epoch = max(1, int(steps_per_epoch))
        self.scale = max(1.0, min_steps / (epochs * self.steps_per_epoch)) if epochs > 0 else 1.0
        self.epochs = math.ceil(epochs * self.scale - 1e-9)
        self.patience = math.ceil(patience * self.scale - 1e-9)
        self.unit_steps = self.steps_per_epoch * self.scale

    def summary(self):
        return {"epoch_scale": round(self.scale, 3), "max_epochs": self.epochs, "patience": self.patience,
                "steps_per_epoch": self.steps_per_epoch}

    def describe(self):
        return (f"{self.steps_per_epoch} batches per epoch, at least {self.min_steps:,} updates (min_steps): "
                f"up to {self.epochs} epochs, patience {self.patience}, learning-rate decay per "
                f"{self.unit_steps:.0f} updates")


def make_optimizer(cfg, steps_per_epoch=1, section="train"):
    """Optimizer from a train params section (named `section` in errors); `lr_decay` d gives
    lr / (1 + d * epoch), an epoch being `steps_per_epoch` updates (a Schedule's unit_steps).
    `ema_momentum` m keeps an exponential moving average of the weights (Keras' use_ema)."""
    name = cfg["optimizer"].lower()
    if name not in OPTIMIZERS:
        raise ParamsError(f"unknown optimizer {cfg['optimizer']!r}; choose from {', '.join(OPTIMIZERS)}")
    learning_rate = float(cfg["learning_rate"])
    if cfg.get("lr_decay"):
        # Step-based, so the schedule resumes with the optimizer's iteration count.
        learning_rate = keras.optimizers.schedules.InverseTimeDecay(
            learning_rate, decay_steps=max(1.0, steps_per_epoch), decay_rate=float(cfg["lr_decay"])
        )
    kwargs = {"learning_rate": learning_rate}
    if cfg.get("clipnorm"):
        kwargs["clipnorm"] = float(cfg["clipnorm"])
    momentum = ema_momentum(cfg, section)
    if momentum is not None:
        kwargs.update(use_ema=True, ema_momentum=momentum)
    return OPTIMIZERS[name](**kwargs)


def ema_momentum(cfg, section="train"):
    """The train section's `ema_momentum` (None: no weight averaging), checked."""
    value = cfg.get("ema_momentum")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < float(value) < 1.0:
        raise ParamsError(f"{section}.ema_momentum must be null or a number in (0, 1), got {value!r}")
    return float(value)


class AveragedWeightsSwap(keras.callbacks.SwapEMAWeights):
    """Keras' SwapEMAWeights(swap_on_epoch=True): from each epoch's end to the next epoch's start
    the model holds the moving average, so validation, model selection and the saved states all
    see it, and the optimizer's average slots hold the training weights.

    `resumed`: the model was restored from a state saved at an epoch end, i.e. with the average
    in the model, so the first epoch must swap back before it trains.
    """

    def __init__(self, resumed=False):
        super().__init__(swap_on_epoch=True)
        self._ema_weights_in_model = bool(resumed)

    def _swap_variables(self):
        optimizer = self.model.optimizer
        if not self._ema_weights_in_model and hasattr(optimizer, "bring_averages_up_to_date"):
            optimizer.bring_averages_up_to_date()  # the lazy optimizers' rows that missed steps
        super()._swap_variables()


def save_inference_model(checkpoint, runtime, path, finish=None):
    """Saves the model to serve: float32 with masked Bi-RNNs, whatever the training run used.

    Written beside `path`, loaded back and compared with the checkpoint before it
    replaces `path`, so a stage that succeeds never leaves a broken model.
    Call it after leaving `training_runtime`, so the float32 policy is back.
    `finish(model)`, if given, completes the model first (the task's `finish_model`);
    its result is returned.
    """
    from pipelines.core.train_state import write_keras_file

    best = keras.saving.load_model(checkpoint, compile=False)
    if not runtime.padding_free and runtime.precision == "float32":
        model = best
    else:
        from models.runtime import rebuild

        model = rebuild(best, rnn_mask=True)
    finished = finish(model) if finish is not None else None

    def save_and_check(tmp):
        model.save(tmp)
        saved = keras.saving.load_model(tmp, compile=False)
        expected = [keras.ops.convert_to_numpy(w) for w in model.weights]
        got = [keras.ops.convert_to_numpy(w) for w in saved.weights]
        if len(got) != len(expected) or not all(np.array_equal(a, b) for a, b in zip(expected, got)):
            raise StageError(f"{path}: the saved model does not load back with the trained weights")

    write_keras_file(path, save_and_check)
    return finished


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


class PeriodicProgress(keras.callbacks.Callback):
    """A line every ~10 s within an epoch and its validation when Keras' bar is off (DVC's log is no terminal).

    A heartbeat thread also writes when a single step runs long (the first
    batch of an epoch can wait on a graph trace), so the log never goes quiet.
    """

    def __init__(self, steps, every=10.0):
        super().__init__()
        self.steps = steps
        self.every = every
        self.epoch = 0
        self.progress = None

    def _start(self, desc, total):
        from pipelines.core.progress import Progress

        self._halt()
        # Entered but never closed: Keras prints its own line per epoch.
        self.progress = Progress(desc, total=total, unit="batches", every=self.every, stream=sys.stdout,
                                 heartbeat=True).__enter__()

    def _halt(self):
        if self.progress is not None:
            self.progress.stop_heartbeat()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self._start(f"epoch {epoch + 1}", self.steps)

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        self.progress.update(extra=None if loss is None else f"loss {float(loss):.4f}")

    def on_test_begin(self, logs=None):
        self._start(f"epoch {self.epoch + 1} validation", None)

    def on_test_batch_end(self, batch, logs=None):
        self.progress.update()

    def on_epoch_end(self, epoch, logs=None):
        self._halt()

    def on_test_end(self, logs=None):
        self._halt()

    def on_train_end(self, logs=None):
        self._halt()


class EpochBatches(keras.callbacks.Callback):
    """Makes a batcher Keras iterates itself (a PyDataset: under JAX and torch) serve epoch `e`'s batches
    in epoch `e`. Their trainers call its on_epoch_end once before the first epoch (EpochIterator.reset
    after the symbolic build), which would shift every epoch's batches by one (seen under JAX as more
    train_step compilations than the batch shapes of epochs 0..n-1). TensorFlow's tf.data path counts
    its passes itself and does not use this."""

    def __init__(self, batcher):
        super().__init__()
        self.batcher = batcher

    def on_epoch_begin(self, epoch, logs=None):
        if self.batcher.epoch != epoch:
            self.batcher.start_at(epoch)


def fit_resumable(model, train_data, epochs, work_dir, monitor, patience, callbacks=(), mode="max",
                  validation_data=None, settings=None):
    """Fits, resuming a killed run from `work_dir`; returns (state, timer).

    `work_dir` must survive an interruption (a persisted DVC output); see
    pipelines/core/train_state.py. `settings` (JSON-able: params, data
    fingerprint) must match for a saved state to be resumed.
    """
    from pipelines.core.train_state import TrainState

    state = TrainState(work_dir, monitor, patience, mode=mode, settings=settings)
    initial_epoch = state.restore(model)
    if hasattr(train_data, "start_at"):
        train_data.start_at(initial_epoch)
    timer = EpochTimer()
    timer.seconds = [row["epoch_seconds"] for row in state.history if "epoch_seconds" in row]
    if state.finished(epochs):
        return state, timer
    tty = sys.stdout.isatty()
    progress = [] if tty else [PeriodicProgress(len(train_data))]
    # First, so that every later on_epoch_end (timing aside) sees the averaged weights.
    averaging = [AveragedWeightsSwap(resumed=initial_epoch > 0)] if getattr(model.optimizer, "use_ema", False) else []
    data = fit_data(train_data)
    epoch_batches = [EpochBatches(train_data)] if data is train_data and hasattr(train_data, "start_at") else []
    model.fit(
        data,
        epochs=epochs,
        initial_epoch=initial_epoch,
        shuffle=False,  # the batchers shuffle themselves, seeded by epoch
        validation_data=fit_data(validation_data),
        callbacks=[*epoch_batches, *averaging, timer, *progress, *callbacks, state, *faults.callbacks()],
        verbose=1 if tty else 2,
    )
    return state, timer


def median_throughput(tokens, seconds, skip_first=True):
    """Median tokens/s over epochs; the first epoch includes tracing, so it is skipped."""
    times = seconds[1:] if skip_first and len(seconds) > 1 else seconds
    return float(tokens / np.median(times)) if times else 0.0
