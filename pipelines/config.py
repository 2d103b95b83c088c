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
