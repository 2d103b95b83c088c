"""The protocol every task implements, and the small records its hooks exchange.

The stage drivers in `pipelines.core` (trainer, tuning, evaluating,
exporting) only call these hooks, so adding a task means adding one package
under `pipelines/tasks/` whose `task.py` defines a subclass of `Task` and
whose `__init__.py` sets `TASK = ThatTask()`; no stage module changes.

Hooks import their task's role modules only when called (`hook` below, or an
import inside the method), so a stage loads (and DVC tracks) only the code of
the hooks it calls: the export code of a task is not a dependency of its
train stage.
"""

import importlib
from dataclasses import dataclass, field


def hook(module, function):
    """A Task method that imports `module` when called and returns `module.function(*args)`.

    Declaring a hook this way (`evaluate = hook("pipelines.tasks.ner.evaluation", "evaluate")`)
    keeps the import lazy, so a stage loads only the role modules of the hooks it
    calls, and keeps it visible to tests/import_graph.py, which traces DVC deps.
    """

    def method(self, *args, **kwargs):
        return getattr(importlib.import_module(module), function)(*args, **kwargs)

    method.__name__ = function
    method.__doc__ = f"{module}.{function}"
    return method


@dataclass
class Split:
    """One split of the prepared dataset, in the form the drivers use.

    tokens: token lists (the model's view of each example).
    y: model targets: per-example int arrays (sequence labels) or a 1-D int array.
    extra: task-specific columns (gold tag names, ids, raw texts, ...).
    context: keyword arguments of the encoder besides the tokens (NER: each
        sentence's document), so `features` encodes the examples as they were read.
    """

    tokens: list
    y: object
    extra: dict = field(default_factory=dict)
    context: dict = field(default_factory=dict)

    def features(self, encoder):
        """The model inputs of the examples: `encoder.encode(tokens, **context)`."""
        return encoder.encode(self.tokens, **self.context)

    @property
    def num_tokens(self):
        return sum(len(t) for t in self.tokens)


@dataclass
class Validation:
    """How training scores an epoch: Keras callbacks that write the metric into the
    logs, and/or validation batches passed to `fit` as `validation_data`."""

    callbacks: list = field(default_factory=list)
    data: object = None


@dataclass
class ParityReport:
    """The export stage's check of the SavedModel against the in-memory model."""

    checked: int
    mismatches: list
    unit: str  # what was checked, plural: "sentences", "documents"


class Task:
    """A task: name, monitored metric and the hooks of each stage.

    Attributes:
        name: the params.yaml section and the CLI argument.
        monitor: the validation metric that tuning maximises (and train by default).
        embedding_dim_key: the model setting that word vectors fix.
        title: the name in plot titles.
        history_columns: the per-epoch log columns kept in history.json.
        history_plot: {plot title: history column} of the training curves.
    """

    name = None
    monitor = None
    embedding_dim_key = None
    title = None
    history_columns = ()
    history_plot = {}

    # prepare
    def prepare(self, cfg, out, seed):
        """Source -> out/data (DatasetDict), out/vocab.json, out/stats.json; returns the stats."""
        raise NotImplementedError

    def summary_lines(self, stats):
        """A few lines for the terminal after prepare."""
        raise NotImplementedError

    # pretrain: None, or a hook (pretrain_cfg, prepare_cfg, encoder, train_split, val_split)
    # -> (train documents, validation documents, stats), documents as word-id arrays.
    pretraining_corpus = None

    # tune / train
    def encoder(self, out):
        """The encoder of out/vocab.json: `.encode(token_lists)` -> model inputs, `.words`,
        `.normalize(word)` and `.vocab` (the vocabulary file's contents)."""
        raise NotImplementedError

    def load_split(self, out, split):
        """A `Split` of the prepared dataset."""
        raise NotImplementedError

    def selection(self, train_cfg):
        """(metric, "max" | "min") that picks the epoch and stops training."""
        return self.monitor, "max"

    def check_runtime(self, runtime, model_cfg):
        """Raises ParamsError for a hardware setting the model cannot train with."""

    def build_model(self, model_cfg, vocab):
        """An uncompiled keras.Model."""
        raise NotImplementedError

    def compile_metrics(self, model):
        """Metrics for `model.compile` (the validation metric may come from them)."""
        return []

    def validation_monitor(self, encoder, split, cfg, padding_free):
        """A `Validation` that writes the monitored metric into the epoch logs."""
        raise NotImplementedError

    def finish_model(self, model, encoder, train_split, val_split, cfg):
        """Called on the selected model before it is saved (anything fitted outside gradient
        descent); returns a JSON-able record for train_details.json, or None."""
        return None

    # evaluate
    def load_model(self, path):
        """The trained .keras model (registers the task's custom classes first)."""
        raise NotImplementedError

    def evaluate(self, model, encoder, split, cfg, out):
        """Scores the test split; writes plots and predictions under out; returns
        (headline metrics, details) for metrics.json and the details file."""
        raise NotImplementedError

    def evaluation_lines(self, metrics, details):
        raise NotImplementedError

    # export / predict
    def serving_archive(self, model, vocab):
        """A keras.export.ExportArchive whose `serving_default` takes raw text."""
        raise NotImplementedError

    def check_parity(self, saved_dir, model, encoder, split, cfg):
        """A `ParityReport` of the SavedModel on raw text against the in-memory model."""
        raise NotImplementedError

    def predictor(self, saved_dir):
        """An object whose `.predict(texts)` returns one JSON-able result per text."""
        raise NotImplementedError
