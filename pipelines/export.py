"""export stage: SavedModel that takes raw text, checked against the in-memory model.

Usage: python -m pipelines.export <task> [--params PATH]
"""

import sys

from pipelines.core.cli import run_stage
from pipelines.tasks import TASK_NAMES, load_task


def run(name, params, out):
    from pipelines.core.exporting import export  # TensorFlow only once the checks passed

    report = export(load_task(name), params, out)
    print(f"wrote {out / report['saved_model']}; parity with the in-memory model on {report['checked']} "
          f"test {report['unit']}")


def main(argv=None):
    return run_stage(__doc__, argv, run, TASK_NAMES, requires="model.keras", previous_stage="train")


if __name__ == "__main__":
    sys.exit(main())
