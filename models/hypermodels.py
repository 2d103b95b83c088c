"""One KerasTuner hypermodel for every task's model.

The search space is data, not code: a mapping from a hyperparameter name to
its range, as written in params.yaml (`<task>.tune.search_space`)::

    hidden_size: {type: int, min: 100, max: 300, step: 50}
    learning_rate: {type: float, min: 0.0003, max: 0.003, sampling: log}
    rnn_type: {type: choice, values: [lstm, gru]}
    use_crf: {type: boolean}

Each name is a keyword of the model (given by the `model` defaults) or of the training section (`learning_rate`,
`clipnorm`, ... given by the `train` defaults). Names outside the space keep
their default; the default of each tuned hyperparameter is its params value
when that value lies in the range, so `build(kt.HyperParameters())` is the
params.yaml model.
"""

import time

import keras
import keras_tuner as kt

TYPES = ("int", "float", "choice", "boolean")
SAMPLINGS = ("linear", "log", "reverse_log")


def validate_space(space, model_defaults, train_defaults):
    """Raises ValueError for an entry that names no known setting or has a bad range."""
    if not isinstance(space, dict) or not space:
        raise ValueError("the search space is empty: give at least one hyperparameter")
    for name, spec in space.items():
        if name not in model_defaults and name not in train_defaults:
            known = ", ".join(sorted({*model_defaults, *train_defaults}))
            raise ValueError(f"search space entry {name!r} is neither a model nor a train setting ({known})")
        if not isinstance(spec, dict) or spec.get("type") not in TYPES:
            raise ValueError(f"search space entry {name!r}: type must be one of {', '.join(TYPES)}")
        kind = spec["type"]
        if kind in ("int", "float"):
            if "min" not in spec or "max" not in spec or spec["min"] > spec["max"]:
                raise ValueError(f"search space entry {name!r}: needs min <= max")
            if spec.get("sampling", "linear") not in SAMPLINGS:
                raise ValueError(f"search space entry {name!r}: sampling must be one of {', '.join(SAMPLINGS)}")
            if spec.get("sampling", "linear") != "linear" and spec["min"] <= 0:
                raise ValueError(f"search space entry {name!r}: log sampling needs min > 0")
        if kind == "choice" and not spec.get("values"):
            raise ValueError(f"search space entry {name!r}: a choice needs a non-empty `values` list")


def declare(hp, name, spec, default):
    """Declares one hyperparameter from its params entry; returns its value."""
    kind = spec["type"]
    sampling = spec.get("sampling", "linear")
    if kind == "int":
        lo, hi, step = int(spec["min"]), int(spec["max"]), int(spec.get("step") or 1)
        ok = isinstance(default, int) and lo <= default <= hi and (default - lo) % step == 0
        return hp.Int(name, lo, hi, step=step, sampling=sampling, default=default if ok else None)
    if kind == "float":
        lo, hi = float(spec["min"]), float(spec["max"])
        step = spec.get("step")
        ok = isinstance(default, (int, float)) and not isinstance(default, bool) and lo <= default <= hi
        if ok and step:
            ok = abs(round((default - lo) / step) * step - (default - lo)) < 1e-9
        return hp.Float(name, lo, hi, step=float(step) if step else None, sampling=sampling,
                        default=float(default) if ok else None)
    if kind == "choice":
        values = list(spec["values"])
        return hp.Choice(name, values, default=default if default in values else None)
    return hp.Boolean(name, default=bool(default))


class ConfiguredHyperModel(kt.HyperModel):
    """A search over a model's settings, the same class for every task.

    Args:
        make_model: model settings -> an uncompiled keras.Model (the task's builder).
        model_defaults: the task's `model` params (every keyword of its model).
        train_defaults: the tunable `train` params (`learning_rate`, `clipnorm`, ...).
        search_space: `<task>.tune.search_space` (see the module docstring).
        optimizer_factory: train settings -> a Keras optimizer.
        objective: the metric `fit` reports and the tuner maximises (e.g. `val_f1`,
            written by a validation callback, or `val_accuracy` from `compile_metrics`).
        compile_metrics: optional callable(model) -> metrics for `compile`.
        callbacks: Keras callbacks added to every fit (e.g. one that writes `val_f1`).
        embeddings_init: optional callable(model) run after each build, e.g.
            to load pretrained word vectors.
    """

    def __init__(self, make_model, model_defaults, train_defaults, search_space, optimizer_factory, objective,
                 compile_metrics=None, callbacks=(), embeddings_init=None, name=None, tunable=True):
        super().__init__(name=name, tunable=tunable)
        self.make_model = make_model
        self.model_defaults = dict(model_defaults)
        self.train_defaults = dict(train_defaults)
        self.search_space = dict(search_space or {})
        validate_space(self.search_space, self.model_defaults, self.train_defaults)
        self.optimizer_factory = optimizer_factory
        self.objective = objective
        self.compile_metrics = compile_metrics
        self.callbacks = list(callbacks)
        self.embeddings_init = embeddings_init

    def configs(self, hp):
        """(model kwargs, train settings) with the values of `hp` (declaring the space)."""
        model_cfg, train_cfg = dict(self.model_defaults), dict(self.train_defaults)
        for name, spec in self.search_space.items():
            target = model_cfg if name in model_cfg else train_cfg
            target[name] = declare(hp, name, spec, target[name])
        return model_cfg, train_cfg

    def build(self, hp):
        model_cfg, train_cfg = self.configs(hp)
        model = self.make_model(model_cfg)
        if self.embeddings_init is not None:
            self.embeddings_init(model)
        metrics = self.compile_metrics(model) if self.compile_metrics else None
        model.compile(optimizer=self.optimizer_factory(train_cfg), metrics=metrics or None)
        return model

    def fit(self, hp, model, train_data, *args, epochs=1, initial_epoch=0, callbacks=None, verbose=2,
            **kwargs):
        """Fits and returns {objective: best value over the epochs, "epochs": epochs run}.

        `train_data` may be a zero-argument callable returning the data, so
        that each execution gets a freshly seeded batcher.
        """
        if callable(train_data) and not isinstance(train_data, keras.utils.PyDataset):
            train_data = train_data()
        callbacks = [*self.callbacks, *(callbacks or [])]
        start = time.perf_counter()
        history = model.fit(train_data, *args, epochs=epochs, initial_epoch=initial_epoch, callbacks=callbacks,
                            verbose=verbose, **kwargs)
        values = history.history.get(self.objective)
        if not values:
            raise ValueError(f"{self.objective!r} is not in the training logs: {sorted(history.history)}")
        return {self.objective: float(max(values)), "epochs": float(len(values)),
                "fit_seconds": time.perf_counter() - start}
