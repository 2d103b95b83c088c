"""The command line every stage shares: `python -m pipelines.<stage> <task> [--params PATH]`.

Bad data and bad params come out as one line on stderr,
`<stage>: error: <file>:<line>: <what>`, and exit code 1, as DVC shows them.
"""

import argparse
import sys

from pipelines.core.config import load_params, output_dir, task_params
from pipelines.core.errors import DataError, ParamsError, StageError

# What a stage reports as one line; anything else is a bug and keeps its traceback.
EXPECTED_ERRORS = (DataError, ParamsError, StageError, FileNotFoundError)


def stage_name(doc):
    return doc.split(" ", 1)[0]


def parse_stage_args(doc, argv, task_names):
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("task", choices=list(task_names))
    parser.add_argument("--params", default=None, help="params.yaml to read (default: the repository's)")
    return parser.parse_args(argv)


def run_stage(doc, argv, body, task_names, requires=None, previous_stage=None, errors=()):
    """Parses the arguments, checks the earlier stage's output and runs body(task, params, out).

    `requires` is a file in the task's output folder that `previous_stage`
    writes. Returns the exit code: body's result (0 if None), or 1 after a
    one-line message for an expected error (`errors` adds stage-specific ones).
    """
    stage = stage_name(doc)
    args = parse_stage_args(doc, argv, task_names)
    try:
        params = load_params(args.params)
        task_params(params, args.task)
        out = output_dir(params, args.task)
        if requires and not (out / requires).exists():
            raise StageError(f"{out / requires} not found; run the {previous_stage} stage first")
        code = body(args.task, params, out)
    except EXPECTED_ERRORS + tuple(errors) as err:
        print(f"{stage}: error: {err}", file=sys.stderr)
        return 1
    return 0 if code is None else code
