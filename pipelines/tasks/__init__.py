"""One package per task; `load_task(name)` imports only the package asked for.

Loading by name (not importing every task here) keeps one task's code out of
the other task's stages, and out of their DVC dependencies.
"""

import importlib
import pkgutil
from pathlib import Path

TASK_NAMES = tuple(sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if m.ispkg))


def load_task(name):
    if name not in TASK_NAMES:
        raise ValueError(f"unknown task {name!r}; tasks: {', '.join(TASK_NAMES)}")
    return importlib.import_module(f"{__name__}.{name}").TASK
