"""The tune stage's search, one driver for every task (KerasTuner).

Runs (or resumes) a random, bayesian or hyperband search over
`<task>.tune.search_space`, scoring each trial by the task's monitored
validation metric; the test split is never read. See pipelines/tune.py for
the outputs and for distributed search.
"""

import copy
import json
import os
import sys
import time

from pipelines.core import faults
from pipelines.core.batching import BucketBatcher, fit_data
from pipelines.core.errors import ParamsError, StageError
from pipelines.core.hparams import TUNABLE_TRAIN_KEYS, prepare_tuner_dir, search_name, tune_config, write_outputs
from pipelines.core.runtime import seed_everything, training_runtime
from pipelines.core.training import embeddings_initializer
from pipelines.core.training import PeriodicProgress, make_optimizer


def distributed_role():
    """None (one process), "chief" or "worker", from the KERASTUNER_* variables."""
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return None
    for var in ("KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID"):
        if var not in os.environ:
            raise ParamsError(f"KERASTUNER_ORACLE_IP is set but {var} is not")
    return "chief" if "chief" in os.environ["KERASTUNER_TUNER_ID"] else "worker"


# === The search (imports KerasTuner and Keras only when tuning is enabled) ===


def _crash_safe_writes():
    """Routes KerasTuner's state and checkpoint writes through a temporary file and os.replace.

    KerasTuner writes oracle.json, trial.json and the trials' weights in place;
    a kill during such a write would leave a search that cannot be resumed.
    """
    import json as json_module

    from keras_tuner.src import utils
    from keras_tuner.src.engine import tuner_utils

    from pipelines.core.io import atomic_write
    from pipelines.core.train_state import write_keras_file

    if getattr(utils, "_crash_safe", False):
        return

    def save_json(path, obj):
        text = json_module.dumps(obj)
        atomic_write(path, lambda f: f.write(text), encoding="utf-8")
        return text

    def save_weights(callback):
        write_keras_file(callback.filepath, callback.model.save_weights)

    utils.save_json = save_json
    tuner_utils.SaveBestEpoch._save_model = save_weights
    utils._crash_safe = True


def check_search_state(project_dir):
    """One clear line for a search folder whose state files do not parse, rather than KerasTuner's traceback."""
    for path in sorted(project_dir.rglob("*.json")) if project_dir.is_dir() else ():
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise StageError(f"{path} is damaged ({type(err).__name__}: {err}); delete {project_dir} to redo "
                             f"the search from its first trial") from None


def _tuner_classes():
    import keras_tuner as kt
    from keras_tuner.src.engine import trial as trial_module

    _crash_safe_writes()

    class DeadlineMixin:
        """Hands out no new trial after `deadline` (time.monotonic()); running trials finish.

        On the chief of a distributed search this stops the workers too,
        since they ask the chief's oracle for every trial.
        """

        deadline = None

        @kt.synchronized
        def create_trial(self, tuner_id):
            if (self.deadline is not None and time.monotonic() >= self.deadline
                    and tuner_id not in self.ongoing_trials):
                print(f"tune: time limit reached, no new trial for {tuner_id}")
                self.tuner_ids.discard(tuner_id)
                hps = self.hyperparameters.copy()
                hps.values = {}
                return trial_module.Trial(hyperparameters=hps, trial_id="stopped",
                                          status=trial_module.TrialStatus.STOPPED)
            return super().create_trial(tuner_id)

    def with_deadline(oracle_class):
        return type(f"Deadline{oracle_class.__name__}", (DeadlineMixin, oracle_class), {})

    class TimedTrials:
        """Seeds every execution, times every trial and logs which tuner ran it."""

        seed = 0
        keep_checkpoints = False  # only Hyperband needs the weights of earlier trials

        def run_trial(self, trial, *args, **kwargs):
            self._execution = 0
            start = time.perf_counter()
            if self.keep_checkpoints:
                results = super().run_trial(trial, *args, **kwargs)
            else:
                results = [self._build_and_fit_model(trial, *args, **copy.copy(kwargs))
                           for _ in range(self.executions_per_trial)]
            seconds = time.perf_counter() - start
            # Averaged over executions by KerasTuner, so `seconds` stays the trial's total.
            return [{**r, "seconds": seconds} for r in results]

        def _build_and_fit_model(self, trial, *args, **kwargs):
            seed_everything(self.seed + self._execution)
            self._execution += 1
            return super()._build_and_fit_model(trial, *args, **kwargs)

        def _configure_tensorboard_dir(self, callbacks, trial, execution=0):
            pass  # KerasTuner imports tensorboard here even without a TensorBoard callback

        def on_trial_begin(self, trial):
            self._trial_start = time.perf_counter()
            super().on_trial_begin(trial)

        def on_trial_end(self, trial):
            seconds = time.perf_counter() - self._trial_start
            record = {"trial_id": trial.trial_id, "tuner_id": self.tuner_id, "status": trial.status,
                      "seconds": round(seconds, 2)}
            log = os.path.join(self.project_dir, "tuners", f"{self.tuner_id}.jsonl")
            os.makedirs(os.path.dirname(log), exist_ok=True)
            with open(log, "a") as f:
                f.write(json.dumps(record) + "\n")
            print(f"tune: {self.tuner_id} ran trial {trial.trial_id} ({trial.status}, {seconds:.1f} s)", flush=True)
            if trial.message:
                print(f"tune: trial {trial.trial_id} failed:\n{trial.message}", file=sys.stderr, flush=True)
            super().on_trial_end(trial)

        def search(self, *args, **kwargs):
            if distributed_role() == "chief":
                self.save()
                serve_oracle(self.oracle)
                return
            super().search(*args, **kwargs)

    class SearchTuner(TimedTrials, kt.Tuner):
        pass

    class HyperbandTuner(TimedTrials, kt.Hyperband):
        keep_checkpoints = True

        def __init__(self, oracle, hypermodel, **kwargs):
            kt.Tuner.__init__(self, oracle=oracle, hypermodel=hypermodel, **kwargs)

    return kt, with_deadline, SearchTuner, HyperbandTuner


def serve_oracle(oracle, poll_seconds=0.5):
    """The chief's side of a distributed search: serves `oracle` until every worker is done.

    KerasTuner's own loop (`oracle_chief.start_server`) checks for finished
    workers every 20 s and never stops its server; this one polls faster and
    shuts the server down, so the chief writes the outputs and exits promptly.
    """
    from concurrent import futures

    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    address = f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = oracle_chief.OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    if not server.add_insecure_port(address):
        raise RuntimeError(f"the chief cannot listen on {address}")
    server.start()
    print(f"tune: chief serving trials on {address}", flush=True)
    try:
        while not (servicer.stop_triggered and oracle_chief.exit_chief(oracle)):
            time.sleep(poll_seconds)
    finally:
        server.stop(grace=5)


def make_tuner(cfg, hypermodel, seed, directory, project_name):
    kt, with_deadline, SearchTuner, HyperbandTuner = _tuner_classes()
    common = {"objective": kt.Objective(hypermodel.objective, "max"), "seed": int(seed),
              "max_retries_per_trial": 0, "max_consecutive_failed_trials": 3}
    tuner_class = SearchTuner
    check_search_state(directory / project_name)
    if cfg["tuner"] == "random":
        oracle = with_deadline(kt.oracles.RandomSearchOracle)(max_trials=int(cfg["max_trials"]), **common)
    elif cfg["tuner"] == "bayesian":
        oracle = with_deadline(kt.oracles.BayesianOptimizationOracle)(max_trials=int(cfg["max_trials"]), **common)
    else:
        oracle = with_deadline(kt.oracles.HyperbandOracle)(
            max_epochs=int(cfg["epochs"]), factor=int(cfg["hyperband_factor"]), hyperband_iterations=1, **common)
        tuner_class = HyperbandTuner
    tuner = tuner_class(oracle=oracle, hypermodel=hypermodel, directory=str(directory), project_name=project_name,
                        overwrite=False, executions_per_trial=int(cfg["executions_per_trial"]))
    tuner.seed = int(seed)
    return tuner


def search_setup(task, params, out, cfg, seed, runtime):
    """(hypermodel, fit args, fit kwargs) of a search over the task's model and optimizer."""
    from models.hypermodels import ConfiguredHyperModel

    train_cfg = params[task.name]["train"]
    model_cfg = {**params[task.name]["model"], "rnn_mask": not runtime.padding_free}
    if task.embedding_dim_key in cfg["search_space"] and train_cfg.get("embeddings_file"):
        raise ParamsError(f"the search space tunes {task.embedding_dim_key} but train.embeddings_file is set: the "
                          f"word vectors fix the embedding size ({model_cfg[task.embedding_dim_key]}); set "
                          f"embeddings_file to null to tune it")
    encoder = task.encoder(out)
    train_split = task.load_split(out, "train")
    val_split = task.load_split(out, "validation")
    train_x = train_split.features(encoder)

    def batches():
        return BucketBatcher(train_x, train_split.y, batch_size=train_cfg["batch_size"], shuffle=True, seed=seed,
                             exact_lengths=runtime.padding_free)

    steps = len(batches())
    validation = task.validation_monitor(encoder, val_split, train_cfg, runtime.padding_free)
    hypermodel = ConfiguredHyperModel(
        lambda c: task.build_model(c, encoder.vocab), model_cfg,
        {k: train_cfg[k] for k in TUNABLE_TRAIN_KEYS if k in train_cfg}, cfg["search_space"],
        optimizer_factory=lambda c: make_optimizer(c, steps), objective=task.monitor,
        compile_metrics=task.compile_metrics,
        callbacks=[*validation.callbacks, *([] if sys.stdout.isatty() else [PeriodicProgress(steps)]),
                   *faults.callbacks()],
        embeddings_init=embeddings_initializer(train_cfg, encoder, seed),
    )
    kwargs = {} if validation.data is None else {"validation_data": fit_data(validation.data)}
    return hypermodel, (lambda: fit_data(batches()),), kwargs


def clean(values):
    """Hyperparameter values for JSON: floats without step round-off (0.30000000000000004 -> 0.3)."""
    return {k: float(f"{v:.10g}") if isinstance(v, float) else v for k, v in values.items()}


def _metric(trial, name):
    if not trial.metrics.exists(name):
        return None
    value = trial.metrics.get_last_value(name)
    return None if value is None else round(float(value), 6)


def trial_rows(oracle):
    order = [t for t in oracle.start_order if t in oracle.trials]
    order += sorted(t for t in oracle.trials if t not in order)
    rows = []
    for trial_id in order:
        trial = oracle.trials[trial_id]
        rows.append({
            "trial_id": trial.trial_id,
            "status": trial.status,
            "score": None if trial.score is None else round(float(trial.score), 6),
            "epochs": _metric(trial, "epochs"),
            "seconds": _metric(trial, "seconds"),
            "hyperparameters": clean(trial.hyperparameters.values),
        })
    return rows


def run_search(task, params, out):
    """Runs (or resumes) the search of `task`; returns the summary, or None on a worker."""
    started = time.monotonic()  # max_seconds counts from here: loading the data is part of the run
    cfg = tune_config(params, task.name)
    seed = int(params["seed"])
    seed_everything(seed)
    role = distributed_role()
    # Trials use the train stage's padding-free batches and precision (one device, no XLA setting).
    runtime_cfg = {k: params[task.name]["train"].get(k) for k in ("padding_free", "mixed_precision")}
    with training_runtime(runtime_cfg) as runtime:
        return _search(task, params, out, cfg, seed, role, runtime, started)


def _search(task, params, out, cfg, seed, role, runtime, started):
    hypermodel, args, kwargs = search_setup(task, params, out, cfg, seed, runtime)
    name = search_name(params, task.name)
    tuner = make_tuner(cfg, hypermodel, seed, prepare_tuner_dir(out), name)
    if role == "worker":
        print(f"tune: search {name} ({cfg['tuner']}), worker {tuner.tuner_id} of the chief at "
              f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}", flush=True)
    else:
        if cfg.get("max_seconds"):
            tuner.oracle.deadline = started + float(cfg["max_seconds"])
        print(f"tune: search {name} ({cfg['tuner']}, {len(tuner.oracle.trials)} trials so far"
              f"{', chief' if role else ''})", flush=True)
    start = time.perf_counter()
    # shuffle=False: the batchers shuffle themselves, seeded.
    tuner.search(*args, epochs=int(cfg["epochs"]), shuffle=False, verbose=1 if sys.stdout.isatty() else 2,
                 **kwargs)
    wall = time.perf_counter() - start
    if role == "worker":
        print(f"tune: worker {tuner.tuner_id} done; the chief writes the outputs")
        return None

    oracle = tuner.oracle
    rows = trial_rows(oracle)
    completed = [r for r in rows if r["status"] == "COMPLETED" and r["score"] is not None]
    if not completed:
        raise StageError(f"search {name}: no trial completed; see the messages above")
    best_trial = oracle.get_best_trials(1)[0]
    values = clean({k: v for k, v in best_trial.hyperparameters.values.items() if k in cfg["search_space"]})
    best = {"enabled": True, "values": values, "objective": hypermodel.objective,
            "best_score": round(float(best_trial.score), 6), "best_trial": best_trial.trial_id,
            "search": name, "tuner": cfg["tuner"]}
    summary = {"enabled": True, "trials": len(rows), "completed": len(completed),
               "best_score": best["best_score"], "wall_seconds": round(wall, 1),
               "trial_seconds": round(sum(r["seconds"] or 0 for r in rows), 1)}
    write_outputs(out, best, rows, summary)
    return summary
