"""pipelines.tasks: TASK_NAMES from the packages, load_task(name) -> the Task object."""

import subprocess
import sys

import pytest

from pipelines.tasks import TASK_NAMES, load_task
from pipelines.tasks.base import Task
from tests.conftest import ROOT


def test_task_names_are_the_task_packages():
    packages = sorted(p.parent.name for p in (ROOT / "pipelines" / "tasks").glob("*/__init__.py"))
    assert TASK_NAMES == tuple(packages)
    assert {"ner", "sentiment"} <= set(TASK_NAMES)


@pytest.mark.parametrize("name", TASK_NAMES)
def test_load_task_returns_the_package_task(name):
    import importlib

    task = load_task(name)
    assert isinstance(task, Task)
    assert task.name == name
    assert task is importlib.import_module(f"pipelines.tasks.{name}").TASK
    assert task.monitor and task.title and task.embedding_dim_key


def test_unknown_task_is_a_value_error_listing_the_tasks():
    with pytest.raises(ValueError) as info:
        load_task("pos")
    message = str(info.value)
    assert message.startswith("unknown task 'pos'")
    assert message.endswith(f"tasks: {', '.join(TASK_NAMES)}")
    with pytest.raises(ValueError, match="unknown task 'base'"):
        load_task("base")  # a module of the package, not a task


def test_loading_one_task_does_not_import_the_other():
    """load_task imports only the package asked for, and the hooks import their role modules lazily."""
    code = ("import sys; from pipelines.tasks import load_task; load_task('ner'); "
            "print(sorted(m for m in sys.modules if m.startswith('pipelines.tasks.')))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = eval(done.stdout.strip().splitlines()[-1])
    assert not any(m.startswith("pipelines.tasks.sentiment") for m in loaded), loaded
    assert "pipelines.tasks.ner.serving" not in loaded and "pipelines.tasks.ner.evaluation" not in loaded
