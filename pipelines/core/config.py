"""Loading params.yaml and resolving paths and the per-task output folder."""

from pathlib import Path

import yaml

from pipelines.core.errors import ParamsError

ROOT = Path(__file__).resolve().parents[2]


def yaml_error_line(path, err):
    """PyYAML's message spans several lines; DVC users get one: file:line: problem."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
    return f"{where}: not valid YAML: {problem}"


def load_params(path=None):
    """Returns the parsed params.yaml (the repository's by default)."""
    path = Path(path) if path else ROOT / "params.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"params file not found: {path}")
    with open(path, encoding="utf-8") as f:
        try:
            params = yaml.safe_load(f) or {}
        except yaml.YAMLError as err:
            raise ParamsError(yaml_error_line(path, err)) from None
    if not isinstance(params, dict):
        raise ParamsError(f"{path}: expected a mapping at the top level")
    return params


def task_params(params, task):
    """The section of one task, with a clear error when it is missing."""
    if not isinstance(params.get(task), dict):
        known = ", ".join(k for k, v in params.items() if isinstance(v, dict) and "out_dir" in v) or "none"
        raise ParamsError(f"task {task!r} has no section in params.yaml (tasks there: {known})")
    return params[task]


def resolve_path(path, base=ROOT):
    """Paths in params.yaml are relative to the repository root."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else (Path(base) / path)


def output_dir(params, task):
    return resolve_path(task_params(params, task)["out_dir"])
