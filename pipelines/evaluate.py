"""evaluate stage: scores the trained model on the test split.

Usage: python -m pipelines.evaluate <task> [--params PATH]
"""

import sys

from pipelines.core.cli import run_stage
from pipelines.tasks import TASK_NAMES, load_task


def run(name, params, out):
    from pipelines.core.evaluating import evaluate  # TensorFlow only once the checks passed

    task = load_task(name)
    for line in task.evaluation_lines(*evaluate(task, params, out)):
        print(line)


def main(argv=None):
    return run_stage(__doc__, argv, run, TASK_NAMES, requires="model.keras", previous_stage="train")


if __name__ == "__main__":
    sys.exit(main())
