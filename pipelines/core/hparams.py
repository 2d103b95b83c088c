"""Which hyperparameters the train stage uses: the params, or the tune stage's best values.

Light on purpose (no KerasTuner import): the train stage reads it, while the
search itself lives in `pipelines.core.tuning`.
"""

import csv
import hashlib
import json

from pipelines.core.errors import ParamsError, StageError
from pipelines.core.io import atomic_write, load_json, save_json

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
# Train settings a trial can change (they all reach the optimizer); the rest
# (batch size, epochs, patience, ...) are not searched.
TUNABLE_TRAIN_KEYS = ("optimizer", "learning_rate", "lr_decay", "clipnorm")
# Train settings that do not change a search's trials, so they are left out of its name.
NOT_IN_SEARCH = ("epochs", "patience", "min_steps", "monitor", "eval_batch_size", "calibrate_scores", "document_vote",
                 "padding_free", "mixed_precision", "jit_compile", "distribution")
BEST_FILE = "best_hyperparameters.json"


def tune_config(params, task):
    cfg = {**DEFAULTS, **(params[task].get("tune") or {})}
    if cfg["tuner"] not in TUNERS:
        raise ParamsError(f"{task}.tune.tuner must be one of {', '.join(TUNERS)}, got {cfg['tuner']!r}")
    for key in ("max_trials", "epochs", "executions_per_trial"):
        if int(cfg[key]) < 1:
            raise ParamsError(f"{task}.tune.{key} must be >= 1, got {cfg[key]}")
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
        raise StageError(f"{task}.tune.enabled is true but {path} has no search result; run the tune stage first")
    if best.get("search") != search_name(params, task):
        raise StageError(f"{path} is from search {best.get('search')!r}, but the params define "
                         f"{search_name(params, task)!r}; run the tune stage first")
    for name, value in best["values"].items():
        (model_cfg if name in model_cfg else train_cfg)[name] = value
    return model_cfg, train_cfg, "tune"


def write_outputs(out, best, rows, summary):
    save_json(best, out / BEST_FILE)
    save_json(rows, out / "tune_trials.json")
    names = sorted({name for r in rows for name in r["hyperparameters"]})

    def write_csv(f):
        w = csv.writer(f)
        w.writerow(["trial", "trial_id", "status", "score", "epochs", "seconds", *names])
        for i, r in enumerate(rows, start=1):
            w.writerow([i, r["trial_id"], r["status"], r["score"], r["epochs"], r["seconds"],
                        *(r["hyperparameters"].get(n, "") for n in names)])

    atomic_write(out / "tune_trials.csv", write_csv, newline="")
    save_json(summary, out / "tune.json")


def prepare_tuner_dir(out):
    folder = out / "tuner"
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / "README.txt", lambda f: f.write(
        "KerasTuner state of the tune stage, one folder per search (see pipelines/tune.py).\n"
        "Kept between runs so that an interrupted search resumes; delete a folder to redo its search.\n"
    ))
    return folder
