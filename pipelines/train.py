"""train stage: fits the model on train, selects the epoch on validation.

Usage: python -m pipelines.train <task> [--params PATH]
"""

import sys

from pipelines.core.cli import run_stage
from pipelines.tasks import TASK_NAMES, load_task


def run(name, params, out):
    # Keras and TensorFlow load here, not at import: `--help` and params errors answer at once.
    from pipelines.core.trainer import summary_line, train

    print(summary_line(*train(load_task(name), params, out)))


def main(argv=None):
    return run_stage(__doc__, argv, run, TASK_NAMES, requires="vocab.json", previous_stage="prepare")


if __name__ == "__main__":
    sys.exit(main())
