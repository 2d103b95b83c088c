"""Architecture checks on the source (AST only): layering, import cycles, no per-task branches in the
stage CLIs, and dvc.yaml deps that cover the code each stage runs. The first tests read the real
tree; the synthetic ones below show that every check fails when it should."""

import textwrap

import pytest

from tests.import_graph import ROOT, Project


@pytest.fixture(scope="module")
def project():
    return Project(ROOT)


def test_imports_follow_the_layering(project):
    bad = project.violations()
    assert not bad, "imports that break the layering (rules: tests/import_graph.py `allowed`):\n  " + "\n  ".join(bad)


def test_no_import_cycles(project):
    cycles = project.cycles()
    assert not cycles, "import cycles (function-local imports included):\n  " + "\n  ".join(cycles)


def test_stage_modules_do_not_branch_on_the_task(project):
    hits = project.task_name_compares()
    assert not hits, "stage modules compare against a task name; move the branch into a Task hook:\n  " + "\n  ".join(hits)


def test_dvc_deps_cover_the_code_each_stage_runs(project):
    report = project.dvc_report()
    missing = [f"{stage}: {', '.join(files)}" for stage, (_, files, _) in report.items() if files]
    assert not missing, ("dvc.yaml stages lack deps on code they import (`python -m tests.import_graph` "
                         "prints the full lists):\n  " + "\n  ".join(missing))


def test_dvc_code_deps_exist(project):
    dead = [f"{stage}: {', '.join(deps)}" for stage, (_, _, deps) in project.dvc_report().items() if deps]
    assert not dead, "dvc.yaml deps name .py files that do not exist:\n  " + "\n  ".join(dead)


# --- synthetic trees: a clean layout, then one breakage per test ---

CLEAN = {
    "pipelines/__init__.py": "",
    "pipelines/core/__init__.py": "",
    "pipelines/core/config.py": "from pipelines.text import vocab\nimport models.layers\n",
    "pipelines/text/__init__.py": "",
    "pipelines/text/vocab.py": "",
    "models/__init__.py": "from models import layers\n",
    "models/layers.py": "",
    "pipelines/tasks/__init__.py": """
        import importlib
        from .base import Task

        def load_task(name):
            return importlib.import_module(f"pipelines.tasks.{name}").TASK
        """,
    "pipelines/tasks/base.py": "from pipelines.core import config\n",
    "pipelines/tasks/ner/__init__.py": "from .task import NerTask\nTASK = NerTask()\n",
    "pipelines/tasks/ner/task.py": """
        from pipelines.tasks.base import Task

        class NerTask(Task):
            def __init__(self):
                from . import tags  # runs at import time: always counts

            def build(self):
                from . import model
                return model

            def fit(self):
                return self.helper()

            def helper(self):
                from pipelines.tasks.ner import encoding

            def export(self):
                from .serving import serve
        """,
    "pipelines/tasks/ner/tags.py": "",
    "pipelines/tasks/ner/model.py": "import models\n",
    "pipelines/tasks/ner/encoding.py": "",
    "pipelines/tasks/ner/serving.py": "from ..ner import model\n\ndef serve():\n    pass\n",
    "pipelines/train.py": """
        import sys
        from pipelines.tasks import load_task

        import pipelines.gone  # no such module: an edge to nowhere, skipped by the closure

        def main(name):
            task = load_task(name)
            task.build()
            task.fit()
        """,
    "pipelines/export.py": "from pipelines.tasks import load_task\ntask = load_task('x')\ntask.export()\n",
    "params.yaml": "tasks: [ner]\n",
    "dvc.yaml": """
        stages:
          train:
            foreach: ${tasks}
            do:
              cmd: python -m pipelines.train ${item}
              deps: [pipelines/__init__.py, pipelines/train.py, pipelines/tasks, pipelines/core, pipelines/text, models]
        """,
}


def tree(tmp_path, changes=None):
    """CLEAN, with `changes` ({path: source}) added or replaced, written under tmp_path."""
    for name, text in {**CLEAN, **(changes or {})}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(textwrap.dedent(text).lstrip())
    return Project(tmp_path)


def test_clean_tree_passes(tmp_path):
    p = tree(tmp_path)
    assert (p.violations(), p.cycles(), p.task_name_compares()) == ([], [], [])
    assert {stage: report[1:] for stage, report in p.dvc_report().items()} == {"train@ner": ([], [])}


def test_cycle_through_a_function_local_import(tmp_path):
    p = tree(tmp_path, {"pipelines/core/io.py": "from pipelines.core import config\n",
                        "pipelines/core/config.py": "def load():\n    from pipelines.core.io import read\n"})
    assert p.cycles() == ["pipelines.core.config -> pipelines.core.io (pipelines/core/config.py:2)"
                          " -> pipelines.core.config (pipelines/core/io.py:1)"]


def test_core_importing_a_task(tmp_path):
    p = tree(tmp_path, {"pipelines/core/runtime.py": "import os\n\ndef f():\n    from pipelines.tasks.ner import model\n"})
    assert p.violations() == ["pipelines.core.runtime -> pipelines.tasks.ner.model (pipelines/core/runtime.py:4)"]


def test_task_importing_another_task_or_a_stage(tmp_path):
    p = tree(tmp_path, {"pipelines/tasks/sentiment/__init__.py": "",
                        "pipelines/tasks/sentiment/reader.py": "",
                        "pipelines/tasks/ner/reader.py": "from ..sentiment import reader\nfrom pipelines import train\n"})
    assert p.violations() == ["pipelines.tasks.ner.reader -> pipelines.tasks.sentiment.reader (pipelines/tasks/ner/reader.py:1)",
                              "pipelines.tasks.ner.reader -> pipelines.train (pipelines/tasks/ner/reader.py:2)"]


def test_models_and_text_stay_below_pipelines(tmp_path):
    p = tree(tmp_path, {"models/layers.py": "from pipelines.text import vocab\n",
                        "pipelines/text/vocab.py": "from pipelines.core import config\n"})
    assert sorted(p.violations()) == ["models.layers -> pipelines.text.vocab (models/layers.py:1)",
                                      "pipelines.text.vocab -> pipelines.core.config (pipelines/text/vocab.py:1)"]


def test_stage_branching_on_a_task_name(tmp_path):
    p = tree(tmp_path, {"pipelines/evaluate.py": """
        def main(task, args):
            if task == "ner":
                pass
            mode = "x" if args.task in ("sentiment", "other") else "y"
            match task:
                case "sentiment":
                    pass
        """})
    assert p.task_name_compares() == ["pipelines/evaluate.py:2: task == 'ner'",
                                      "pipelines/evaluate.py:4: args.task in ('sentiment', 'other')",
                                      "pipelines/evaluate.py:6: 'sentiment'"]


def test_task_hook_lazy_imports_count_only_for_the_hooks_a_stage_uses(tmp_path):
    p = tree(tmp_path, {"pipelines/core/io.py": "",  # lazy imports outside task.py always count
                        "pipelines/tasks/base.py": "class Task:\n    def unused(self):\n        from pipelines.core import io\n"})
    assert "pipelines.core.io" in p.closure("pipelines.train", "ner")
    ner = {f"pipelines.tasks.ner.{m}" for m in ("task", "tags", "model", "encoding", "serving")}
    # train uses task.build (model) and task.fit -> self.helper (encoding); __init__ (tags) always runs.
    assert p.closure("pipelines.train", "ner") & ner == ner - {"pipelines.tasks.ner.serving"}
    # export uses task.export only; serving imports model at module level.
    assert p.closure("pipelines.export", "ner") & ner == ner - {"pipelines.tasks.ner.encoding"}
    assert p.closure("pipelines.train") & ner == set()  # no task argument: nothing loaded dynamically


def test_declared_hooks_count_only_when_the_stage_uses_them(tmp_path):
    """`name = hook("module", "function")` in a task class is a lazy import for that hook."""
    p = tree(tmp_path, {"pipelines/tasks/ner/task.py": (
        "from pipelines.tasks.base import Task, hook\n"
        "class NerTask(Task):\n"
        "    build = hook('pipelines.tasks.ner.model', 'build')\n"
        "    export = hook('pipelines.tasks.ner.serving', 'export')\n")})
    train, export = p.closure("pipelines.train", "ner"), p.closure("pipelines.export", "ner")
    assert "pipelines.tasks.ner.model" in train and "pipelines.tasks.ner.serving" not in train
    assert "pipelines.tasks.ner.serving" in export


def test_dvc_stage_missing_a_dep_and_a_dep_that_does_not_exist(tmp_path):
    p = tree(tmp_path, {"dvc.yaml": """
        stages:
          train:
            foreach: ${tasks}
            do:
              cmd: python -m pipelines.train ${item} --fast
              deps: [pipelines/__init__.py, pipelines/train.py, pipelines/tasks/__init__.py, pipelines/tasks/base.py,
                     pipelines/tasks/ner/, pipelines/core, models, pipelines/gone.py]
        """})
    files, missing, dead = p.dvc_report()["train@ner"]
    assert "pipelines/tasks/ner/serving.py" not in files  # the export hook is not used by train
    assert (missing, dead) == (["pipelines/text/__init__.py", "pipelines/text/vocab.py"], ["pipelines/gone.py"])
    assert p.dvc_stage_modules()["train@ner"] == {p_.replace("/", ".").removesuffix(".py").removesuffix(".__init__")
                                                  for p_ in files}
