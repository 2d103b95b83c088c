"""tune stage: searches model and training hyperparameters on the validation split.

Usage: python -m pipelines.tune ner|sentiment

With `<task>.tune.enabled: false` (the default) it only writes placeholder
outputs, so the DVC graph is the same either way. With tuning enabled it runs
a KerasTuner search (random, bayesian or hyperband) over
`<task>.tune.search_space`, scoring each trial by validation entity F1 (NER,
seqeval) or validation accuracy (sentiment); the test split is never read.

Outputs (under the task's out_dir):
    best_hyperparameters.json  the best trial's values; the train stage uses them
    tune_trials.json / .csv    every trial: hyperparameters, score, epochs, seconds
    tune.json                  summary for `dvc metrics show`
    tuner/<search>/            KerasTuner state (a persisted DVC output): an
                               interrupted search resumes from it

The search folder's name is a hash of everything that defines the search
(task, tuner, epochs, executions, the space, the model and train defaults,
the seed) but not of the budget (`max_trials`, `max_seconds`): a larger
budget continues a search, a different space starts a new one.

Distributed search: set KERASTUNER_TUNER_ID (`chief` on one machine, `tuner0`,
`tuner1`, ... on the others), KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT
(the chief's address) and run the same command everywhere; the chief hands out
trials and writes the outputs, the workers run the trials.
"""

import copy
import csv
import hashlib
import json
import os
import sys
import time

from pipelines.config import TASKS, stage_setup
from pipelines.vocab import load_json, save_json

DEFAULTS = {
    "enabled": False,
    "tuner": "random",
    "max_trials": 10,
    "epochs": 3,
    "executions_per_trial": 1,
    "max_seconds": None,
    "hyperband_factor": 3,
    "search_space": {},
}
TUNERS = ("random", "bayesian", "hyperband")
OBJECTIVES = {"ner": "val_f1", "sentiment": "val_accuracy"}
# Train settings a trial can change (they all reach the optimizer); the rest
# (batch size, epochs, patience, ...) are not searched.
TUNABLE_TRAIN_KEYS = ("optimizer", "learning_rate", "lr_decay", "clipnorm")
# Train settings that do not change a search's trials, so they are left out of its name.
NOT_IN_SEARCH = ("epochs", "patience", "monitor", "eval_batch_size",
                 "padding_free", "mixed_precision", "jit_compile", "distribution")
BEST_FILE = "best_hyperparameters.json"


def tune_config(params, task):
    cfg = {**DEFAULTS, **(params[task].get("tune") or {})}
    if cfg["tuner"] not in TUNERS:
        raise ValueError(f"{task}.tune.tuner must be one of {', '.join(TUNERS)}, got {cfg['tuner']!r}")
    for key in ("max_trials", "epochs", "executions_per_trial"):
        if int(cfg[key]) < 1:
            raise ValueError(f"{task}.tune.{key} must be >= 1, got {cfg[key]}")
    return cfg


def search_name(params, task):
    """`<task>-<tuner>-<hash>`: the same for the same search, new for a changed one."""
    cfg = tune_config(params, task)
    train = {k: v for k, v in params[task]["train"].items() if k not in NOT_IN_SEARCH}
    key = {
        "task": task, "seed": params.get("seed"), "tuner": cfg["tuner"], "epochs": cfg["epochs"],
        "executions_per_trial": cfg["executions_per_trial"], "search_space": cfg["search_space"],
        "hyperband_factor": cfg["hyperband_factor"] if cfg["tuner"] == "hyperband" else None,
        "model": params[task]["model"], "train": train,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return f"{task}-{cfg['tuner']}-{digest}"


def tuned_settings(params, task, out, model_cfg, train_cfg):
    """(model settings, train settings, source) for the train stage.

    With tuning disabled: the params, source "params". Enabled: the params
    with the values of best_hyperparameters.json, source "tune"; a missing or
    stale file (from a different search) is an error, never silently ignored.
    """
    model_cfg, train_cfg = dict(model_cfg), dict(train_cfg)
    if not tune_config(params, task)["enabled"]:
        return model_cfg, train_cfg, "params"
    path = out / BEST_FILE
    best = load_json(path) if path.is_file() else {}
    if not best.get("enabled"):
        raise RuntimeError(f"{task}.tune.enabled is true but {path} has no search result; run the tune stage first")
    if best.get("search") != search_name(params, task):
        raise RuntimeError(f"{path} is from search {best.get('search')!r}, but the params define "
                           f"{search_name(params, task)!r}; run the tune stage first")
    for name, value in best["values"].items():
        (model_cfg if name in model_cfg else train_cfg)[name] = value
    return model_cfg, train_cfg, "tune"


def write_outputs(out, best, rows, summary):
    save_json(best, out / BEST_FILE)
    save_json(rows, out / "tune_trials.json")
    names = sorted({name for r in rows for name in r["hyperparameters"]})
    with open(out / "tune_trials.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["trial", "trial_id", "status", "score", "epochs", "seconds", *names])
        for i, r in enumerate(rows, start=1):
            w.writerow([i, r["trial_id"], r["status"], r["score"], r["epochs"], r["seconds"],
                        *(r["hyperparameters"].get(n, "") for n in names)])
    save_json(summary, out / "tune.json")


def prepare_tuner_dir(out):
    folder = out / "tuner"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "README.txt").write_text(
        "KerasTuner state of the tune stage, one folder per search (see pipelines/tune.py).\n"
        "Kept between runs so that an interrupted search resumes; delete a folder to redo its search.\n"
    )
    return folder


def distributed_role():
    """None (one process), "chief" or "worker", from the KERASTUNER_* variables."""
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return None
    for var in ("KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID"):
        if var not in os.environ:
            raise RuntimeError(f"KERASTUNER_ORACLE_IP is set but {var} is not")
    return "chief" if "chief" in os.environ["KERASTUNER_TUNER_ID"] else "worker"


# === The search (imports KerasTuner and Keras only when tuning is enabled) ===


def _tuner_classes():
    import keras_tuner as kt
    from keras_tuner.src.engine import trial as trial_module

    from pipelines.training import seed_everything

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


def embeddings_initializer(train_cfg, model_cfg, space, dim_key, encoder, seed):
    """callable(model) loading the word vectors once, or None without an embeddings file."""
    if not train_cfg.get("embeddings_file"):
        return None
    if dim_key in space:
        raise ValueError(f"the search space tunes {dim_key} but train.embeddings_file is set: the word vectors "
                         f"fix the embedding size ({model_cfg[dim_key]}); set embeddings_file to null to tune it")
    from pipelines.config import resolve_path
    from pipelines.embeddings import load_vectors

    path = resolve_path(train_cfg["embeddings_file"])
    if not path.is_file():
        raise FileNotFoundError(f"embeddings file not found: {path}")
    cache = {}

    def init(model):
        if "matrix" not in cache:
            cache["matrix"], found = load_vectors(path, encoder.words, int(model_cfg[dim_key]),
                                                  normalize=encoder.normalize, seed=seed)
            print(f"embeddings: {found} of {len(encoder.words) - 2} words initialised from {path}")
        model.get_layer("word_embedding").set_weights([cache["matrix"]])

    return init


def ner_search(params, out, cfg, seed, runtime):
    import numpy as np

    from models.hypermodels import TaggerHyperModel
    from pipelines.batching import BucketBatcher, fit_data
    from pipelines.features import TokenEncoder
    from pipelines.ner import EntityF1Callback, load_split
    from pipelines.training import make_optimizer

    train_cfg = params["ner"]["train"]
    model_cfg = {**params["ner"]["model"], "rnn_mask": not runtime.padding_free}
    vocab = load_json(out / "vocab.json")
    encoder = TokenEncoder.from_vocab_file(out / "vocab.json")
    tag_index = {t: i for i, t in enumerate(vocab["tags"])}
    train_tokens, train_tags, _ = load_split(out / "data", "train")
    val_tokens, val_tags, _ = load_split(out / "data", "validation")
    train_x = encoder.encode(train_tokens)
    train_y = [np.array([tag_index[t] for t in tags], dtype=np.int32) for tags in train_tags]

    def batches():
        return BucketBatcher(train_x, train_y, batch_size=train_cfg["batch_size"], shuffle=True, seed=seed,
                             exact_lengths=runtime.padding_free)

    steps = len(batches())
    f1 = EntityF1Callback(encoder.encode(val_tokens), val_tags, vocab["tags"], vocab["tag_scheme"],
                          train_cfg["eval_batch_size"])
    hypermodel = TaggerHyperModel(
        len(vocab["words"]), len(vocab["chars"]), len(vocab["tags"]), model_cfg,
        {k: train_cfg[k] for k in TUNABLE_TRAIN_KEYS if k in train_cfg}, cfg["search_space"],
        optimizer_factory=lambda c: make_optimizer(c, steps), validation_callback=f1,
        embeddings_init=embeddings_initializer(train_cfg, model_cfg, cfg["search_space"], "word_dim", encoder, seed),
    )
    return hypermodel, (lambda: fit_data(batches()),), {}


def sentiment_search(params, out, cfg, seed, runtime):
    from models.hypermodels import ClassifierHyperModel
    from pipelines.batching import BucketBatcher, fit_data
    from pipelines.sentiment import DocumentEncoder, load_documents
    from pipelines.training import make_optimizer

    train_cfg = params["sentiment"]["train"]
    model_cfg = {**params["sentiment"]["model"], "rnn_mask": not runtime.padding_free}
    encoder = DocumentEncoder.from_vocab_file(out / "vocab.json")
    _, train_tokens, train_y, _ = load_documents(out / "data", "train")
    _, val_tokens, val_y, _ = load_documents(out / "data", "validation")
    train_x = encoder.encode(train_tokens)

    def batches():
        return BucketBatcher(train_x, train_y, batch_size=train_cfg["batch_size"], shuffle=True, seed=seed,
                             exact_lengths=runtime.padding_free)

    steps = len(batches())
    val_batches = BucketBatcher(encoder.encode(val_tokens), val_y, batch_size=train_cfg["eval_batch_size"],
                                exact_lengths=runtime.padding_free)
    hypermodel = ClassifierHyperModel(
        len(encoder.vocab["words"]), len(encoder.labels), model_cfg,
        {k: train_cfg[k] for k in TUNABLE_TRAIN_KEYS if k in train_cfg}, cfg["search_space"],
        optimizer_factory=lambda c: make_optimizer(c, steps),
        embeddings_init=embeddings_initializer(train_cfg, model_cfg, cfg["search_space"], "embedding_dim",
                                               encoder, seed),
    )
    return hypermodel, (lambda: fit_data(batches()),), {"validation_data": fit_data(val_batches)}


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
    """Runs (or resumes) the search; returns the summary, or None on a worker."""
    from pipelines.training import seed_everything, training_runtime

    started = time.monotonic()  # max_seconds counts from here: loading the data is part of the run
    cfg = tune_config(params, task)
    seed = int(params["seed"])
    seed_everything(seed)
    role = distributed_role()
    # Trials use the train stage's padding-free batches and precision (one device, no XLA setting).
    runtime_cfg = {k: params[task]["train"].get(k) for k in ("padding_free", "mixed_precision")}
    with training_runtime(runtime_cfg) as runtime:
        return _search(task, params, out, cfg, seed, role, runtime, started)


def _search(task, params, out, cfg, seed, role, runtime, started):
    hypermodel, args, kwargs = (ner_search if task == "ner" else sentiment_search)(params, out, cfg, seed, runtime)
    name = search_name(params, task)
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
        raise RuntimeError(f"search {name}: no trial completed; see the messages above")
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


def main(argv=None):
    setup = stage_setup(__doc__, argv, requires="vocab.json", previous_stage="prepare", tasks=TASKS)
    if setup is None:
        return 1
    task, params, out = setup
    try:
        cfg = tune_config(params, task)
        if not cfg["enabled"]:
            prepare_tuner_dir(out)
            write_outputs(out, {"enabled": False, "values": {}}, [],
                          {"enabled": False, "trials": 0, "completed": 0})
            print(f"tune: {task}.tune.enabled is false; the train stage uses the params")
            return 0
        summary = run_search(task, params, out)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"tune: error: {e}", file=sys.stderr)
        return 1
    if summary is not None:
        print(f"tune: best {OBJECTIVES[task]} {summary['best_score']:.4f} over {summary['completed']} trials "
              f"({summary['wall_seconds']} s); values in {out / BEST_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
