"""tune stage: searches model and training hyperparameters on the validation split.

Usage: python -m pipelines.tune ner|sentiment

With `<task>.tune.enabled: false` (the default) it only writes placeholder
outputs, so the DVC graph is the same either way. With tuning enabled it runs
a KerasTuner search (random, bayesian or hyperband) over
`<task>.tune.search_space`, scoring each trial by validation entity F1 (NER,
seqeval) or validation accuracy (sentiment); the test split is never read (pipelines/core/tuning.py).

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

import sys

from pipelines.core.cli import run_stage
from pipelines.core.hparams import BEST_FILE, prepare_tuner_dir, tune_config, write_outputs
from pipelines.tasks import TASK_NAMES, load_task


def tune(name, params, out):
    if not tune_config(params, name)["enabled"]:
        prepare_tuner_dir(out)
        write_outputs(out, {"enabled": False, "values": {}}, [], {"enabled": False, "trials": 0, "completed": 0})
        print(f"tune: {name}.tune.enabled is false; the train stage uses the params")
        return 0
    from pipelines.core.tuning import run_search  # KerasTuner and the task only when searching

    task = load_task(name)
    summary = run_search(task, params, out)
    if summary is not None:
        print(f"tune: best {task.monitor} {summary['best_score']:.4f} over {summary['completed']} trials "
              f"({summary['wall_seconds']} s); values in {out / BEST_FILE}")
    return 0


def main(argv=None):
    # ValueError: a bad search space (models/hypermodels.py); RuntimeError: a distributed-search setup.
    return run_stage(__doc__, argv, tune, TASK_NAMES, requires="vocab.json", previous_stage="prepare",
                     errors=(ValueError, RuntimeError))


if __name__ == "__main__":
    sys.exit(main())
