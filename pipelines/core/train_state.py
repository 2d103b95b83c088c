"""Crash-safe training state, so that a killed run resumes into exactly the run it replaces.

train_state/ holds two slots, slot-0 and slot-1, written in turn at the end of
every epoch: a kill during a write damages at most the slot being written,
and the other one still holds the previous epoch. A slot holds

  weights.weights.h5  the model's and the optimizer's variables,
  best.keras          the best model by the monitored metric so far,
  state.json          written last, so it commits the slot: the epoch, the
                      model-selection state (best, best epoch, epochs without
                      improvement), the history rows, the seconds spent, the
                      random-generator states of the layers (dropout, word
                      dropout) and the SHA-256 of the two files above.

Every file is written beside its place and moved there with os.replace. The
batch order of an epoch depends only on (seed, epoch) (BucketBatcher.start_at),
so with TensorFlow's op determinism a resumed run gives byte-identical weights.
"""

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import keras
import numpy as np

from pipelines.core import faults
from pipelines.core.errors import ParamsError, StageError
from pipelines.core.io import save_json

STATE_VERSION = 1
SLOTS = ("slot-0", "slot-1")
WEIGHTS = "weights.weights.h5"
BEST = "best.keras"
STATE = "state.json"


def file_digest(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(*parts):
    """A short hash of JSON-able settings: a state from other settings is not resumed."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def seed_generator_states(model):
    """The layers' random-generator state variables; Keras' weight files leave them out."""
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


def write_keras_file(path, save, before_replace=None):
    """save(tmp_path) beside `path`, then os.replace: Keras wants its own suffixes on the name."""
    path = Path(path)
    suffix = ".weights.h5" if path.name.endswith(".weights.h5") else path.suffix
    tmp = path.with_name(f".{path.name[: -len(suffix)]}.tmp{os.getpid()}{suffix}")
    try:
        save(str(tmp))
        if before_replace:
            before_replace(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def copy_file(source, target):
    """An atomic copy; a hard link when the file system allows it (the files are never rewritten in place)."""
    target = Path(target)
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    try:
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


class SlotProblem(Exception):
    """A slot that cannot be resumed from; the message names the file."""


def read_slot(slot, verify_files=True):
    """The committed state of `slot` (a folder), or None if it holds none; raises SlotProblem."""
    state_path = slot / STATE
    if not state_path.exists():
        return None
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SlotProblem(f"{state_path} is damaged ({type(err).__name__}: {err})") from None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION or not isinstance(state.get("files"), dict):
        raise SlotProblem(f"{state_path} is not a training state of this version")
    if verify_files:
        for name, expected in state["files"].items():
            path = slot / name
            if not path.is_file():
                raise SlotProblem(f"{path} is missing")
            if path.stat().st_size != expected["bytes"] or file_digest(path) != expected["sha256"]:
                raise SlotProblem(f"{path} is damaged (its size or checksum differs from {state_path})")
    return state


class TrainState(keras.callbacks.Callback):
    """Model selection, early stopping and the crash-safe state of a resumable fit.

    Call `restore()` after compiling the model and before `fit`; it returns the
    epoch to start at. At each epoch end it keeps the best model by `monitor`,
    counts epochs without improvement against `patience` and commits a slot.
    """

    def __init__(self, directory, monitor, patience, mode="max", settings=None, log=print):
        super().__init__()
        self.directory = Path(directory)
        self.monitor = monitor
        self.patience = int(patience)
        self.sign = 1.0 if mode == "max" else -1.0
        self.fingerprint = fingerprint(settings, monitor, patience, mode)
        self.log = log
        self.selection = {"best": None, "best_epoch": None, "wait": 0}
        self.history = []  # one dict of epoch logs per epoch
        self.epochs_done = 0
        self.stopped = False
        self.elapsed_before = 0.0  # seconds of the epochs restored from an earlier run
        self.best_file = None
        self._best_digest = None
        self._run_start = time.perf_counter()

    # --- resuming ---

    def restore(self, model):
        """Loads the newest intact slot into `model`; returns the epoch to start at (0 for a fresh run)."""
        self.set_model(model)
        self._run_start = time.perf_counter()
        for leftover in self.directory.glob("slot-*/.*.tmp*"):
            leftover.unlink()  # a write that a kill cut short; the slot it was for is not committed
        states, problems = [], []
        for name in SLOTS:
            try:
                state = read_slot(self.directory / name)
            except SlotProblem as problem:
                problems.append(str(problem))
                continue
            if state is not None:
                states.append((state["epoch"], name, state))
        if not states:
            if problems:
                raise StageError(f"cannot resume: {problems[0]}; delete {self.directory} to train from scratch")
            self._start_fresh()
            return 0
        epoch, name, state = max(states)
        if state.get("fingerprint") != self.fingerprint:
            self.log(f"train: {self.directory} is from a run with other settings or data; training from scratch")
            self._start_fresh()
            return 0
        for problem in problems:
            self.log(f"train: {problem} (a write was interrupted); using the other slot")
        self._load(self.directory / name, state)
        self.log(f"train: resuming the interrupted run after epoch {epoch} from {self.directory / name}")
        return epoch

    def _start_fresh(self):
        if self.directory.exists():
            shutil.rmtree(self.directory)  # a fresh run must not inherit stale state
        self.directory.mkdir(parents=True)

    def _load(self, slot, state):
        model = self.model
        weights = slot / WEIGHTS
        try:
            if model.optimizer is not None and not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)  # its variables must exist to be loaded
            model.load_weights(str(weights))
            generators = seed_generator_states(model)
            if len(generators) != len(state["seed_states"]):
                raise ValueError(f"{len(state['seed_states'])} random-generator states for {len(generators)} layers")
            for variable, value in zip(generators, state["seed_states"]):
                variable.assign(np.asarray(value, dtype=variable.dtype))
        except (OSError, ValueError, KeyError) as err:
            raise StageError(f"cannot resume from {weights}: {type(err).__name__}: {err}; "
                             f"delete {self.directory} to train from scratch") from None
        self.selection = dict(state["selection"])
        self.history = list(state["history"])
        self.epochs_done = int(state["epoch"])
        self.stopped = bool(state["stopped"])
        self.elapsed_before = float(state["elapsed_seconds"])
        self.best_file = slot / BEST
        self._best_digest = state["files"][BEST]["sha256"]

    # --- during the fit ---

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        value = logs.get(self.monitor)
        if value is None:
            raise ParamsError(f"monitored metric {self.monitor!r} is not in the epoch logs: {sorted(logs)}")
        slot = self.directory / SLOTS[(epoch + 1) % 2]
        slot.mkdir(parents=True, exist_ok=True)
        if (slot / STATE).exists():
            os.unlink(slot / STATE)  # uncommitted until its new state.json is in place
        best = self.selection["best"]
        improved = best is None or self.sign * value > self.sign * best
        tear = lambda name: lambda tmp: faults.maybe_tear(tmp, name, epoch)  # noqa: E731
        if improved:
            write_keras_file(slot / BEST, self.model.save, tear(BEST))
            self.selection.update(best=float(value), best_epoch=epoch + 1, wait=0)
        else:
            copy_file(self.best_file, slot / BEST)
            self.selection["wait"] += 1
            if self.selection["wait"] >= self.patience:
                self.model.stop_training = True
                self.stopped = True
        self.history.append({"epoch": epoch, **{k: float(v) for k, v in logs.items()}})
        self.epochs_done = epoch + 1
        write_keras_file(slot / WEIGHTS, self.model.save_weights, tear(WEIGHTS))
        self._commit(slot, tear(STATE))
        faults.maybe_kill("epoch_end", epoch)

    def _commit(self, slot, before_replace=None):
        files = {name: {"bytes": (slot / name).stat().st_size, "sha256": file_digest(slot / name)}
                 for name in (WEIGHTS, BEST)}
        state = {
            "version": STATE_VERSION,
            "fingerprint": self.fingerprint,
            "epoch": self.epochs_done,
            "stopped": self.stopped,
            "selection": self.selection,
            "history": self.history,
            "elapsed_seconds": self.elapsed_seconds(),
            "seed_states": [keras.ops.convert_to_numpy(v.value).tolist() for v in seed_generator_states(self.model)],
            "files": files,
        }
        save_json(state, slot / STATE, before_replace=before_replace)
        self.best_file = slot / BEST
        self._best_digest = files[BEST]["sha256"]

    def elapsed_seconds(self):
        """Seconds of training kept: the restored epochs' and this run's."""
        return self.elapsed_before + time.perf_counter() - self._run_start

    def finished(self, epochs):
        return self.stopped or self.epochs_done >= epochs

    def checked_best_file(self):
        """The best checkpoint, after checking it is the file the state recorded."""
        if self.best_file is None:
            raise StageError("no epoch finished, so there is no model to save")
        if file_digest(self.best_file) != self._best_digest:
            raise StageError(f"{self.best_file} is damaged (its checksum differs from the training state); "
                             f"delete {self.directory} and train again")
        return self.best_file

    def clear(self):
        """Removes the slots once the stage's outputs are written: the next run starts afresh."""
        for name in SLOTS:
            shutil.rmtree(self.directory / name, ignore_errors=True)
