"""Loading params.yaml and resolving the per-task output folder."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TASKS = ("ner", "sentiment")


def load_params(path=None):
    """Returns the parsed params.yaml (the repository's by default)."""
    path = Path(path) if path else ROOT / "params.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"params file not found: {path}")
    with open(path, encoding="utf-8") as f:
        params = yaml.safe_load(f) or {}
    if not isinstance(params, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return params


def task_params(params, task):
    """The section of one task, with a clear error for unknown tasks."""
    if task not in params:
        known = ", ".join(t for t in params if t in TASKS) or "none"
        raise KeyError(f"task {task!r} has no section in params.yaml (tasks there: {known})")
    return params[task]


def resolve_path(path, base=ROOT):
    """Paths in params.yaml are relative to the repository root."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else (Path(base) / path)


def output_dir(params, task):
    return resolve_path(task_params(params, task)["out_dir"])


def stage_setup(doc, argv, requires=None, previous_stage=None, tasks=("ner",)):
    """Parses `<task> [--params PATH]` for a stage; returns (task, params, out) or None.

    `requires` is a file name in the task's output folder that an earlier
    stage writes; when it is missing the stage says which stage to run first.
    """
    import argparse
    import sys

    stage = doc.split(" ", 1)[0]
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("task", choices=list(tasks))
    parser.add_argument("--params", default=None, help="params.yaml to read (default: the repository's)")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    task_params(params, args.task)
    out = output_dir(params, args.task)
    if requires and not (out / requires).exists():
        print(f"{stage}: error: {out / requires} not found; run the {previous_stage} stage first", file=sys.stderr)
        return None
    return args.task, params, out
