"""Kills for the resume tests: `PIPELINES_KILL_AT=<point>:<epoch>` sends this process SIGKILL there.

Points: `batch` (after the second batch of that epoch, 1-based), `epoch_end`
(after the epoch's state is committed), and `write:<file>` (half-way through
writing that file of the epoch's state: its temporary file is cut to half
its size first, as a kill during the write would leave it). Unset, nothing
here does anything.
"""

import os
import signal

import keras

ENV = "PIPELINES_KILL_AT"


def _target():
    value = os.environ.get(ENV)
    if not value:
        return None
    point, _, epoch = value.rpartition(":")
    return point, int(epoch)


def kill_now():
    os.kill(os.getpid(), signal.SIGKILL)


def maybe_kill(point, epoch):
    """Kills the process if PIPELINES_KILL_AT names `point` at `epoch` (0-based here, 1-based there)."""
    if _target() == (point, epoch + 1):
        kill_now()


def maybe_tear(path, name, epoch):
    """Cuts the half-written `path` to half and kills, if PIPELINES_KILL_AT is `write:<name>:<epoch>`."""
    if _target() == (f"write:{name}", epoch + 1):
        size = os.path.getsize(path)
        with open(path, "r+b") as f:
            f.truncate(size // 2)
        kill_now()


class KillAtBatch(keras.callbacks.Callback):
    """Kills the process mid-epoch (PIPELINES_KILL_AT=batch:<epoch>)."""

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if batch == 1:
            maybe_kill("batch", self.epoch)


def callbacks():
    """[KillAtBatch()] when a batch kill is asked for, else []."""
    target = _target()
    return [KillAtBatch()] if target and target[0] == "batch" else []
