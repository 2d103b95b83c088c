"""prepare stage: source data -> DatasetDict with ClassLabel labels, vocabularies, stats.

Usage: python -m pipelines.prepare <task> [--params PATH]
Each task reads its own source format (pipelines/tasks/<task>/reader.py).
"""

import sys

from pipelines.core.cli import run_stage
from pipelines.tasks import TASK_NAMES, load_task


def prepare(name, params, out):
    task = load_task(name)
    stats = task.prepare(params[name]["prepare"], out, params["seed"])
    for line in task.summary_lines(stats):
        print(line)
    print(f"wrote {out}")


def main(argv=None):
    return run_stage(__doc__, argv, prepare, TASK_NAMES)


if __name__ == "__main__":
    sys.exit(main())
