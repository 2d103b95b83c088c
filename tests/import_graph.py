"""Static (AST) import graph of the project: layering rules, cycles, and the code each DVC stage runs.

Nothing is imported or executed; every check reads source files, so it works on any tree (the real
one, or tiny synthetic ones in tests). `python -m tests.import_graph` prints, per resolved dvc.yaml
stage, the project .py files its command needs (the deps to paste), marking those dvc.yaml lacks.
"""

import ast
import functools
import os
import re
import shlex
import sys
from collections import defaultdict, deque
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipelines", "models", "benchmarks")  # project code: graph nodes and DVC deps
IMPORTABLE = PACKAGES + ("tests",)                # also recorded as targets, so that rules can forbid them
TASK_NAMES = {"ner", "sentiment"}
TASK_MODULE = re.compile(r"pipelines\.tasks\.(?!base$)[^.]+\.task$")  # where hook precision applies
BASE = {"core", "text", "models"}


class Import(NamedTuple):
    target: str
    line: int
    method: str | None  # name of the enclosing method of a top-level class, if any


def layer(module):
    """The layer a dotted module name belongs to; the `pipelines` root package counts as core."""
    parts = module.split(".")
    if parts[0] != "pipelines":
        return parts[0]
    if len(parts) == 1 or parts[1] == "core":
        return "core"
    if parts[1] == "tasks":
        return "tasks" if len(parts) == 2 or parts[2] == "base" else f"task:{parts[2]}"
    return "text" if parts[1] == "text" else "stage"


def allowed(src, dst):
    """Whether a module of layer `src` may import one of layer `dst` (the rules of the layout)."""
    if src in ("models", "text"):
        return dst == src
    if src == "core":
        return dst in BASE
    if src == "tasks" or src.startswith("task:"):
        return dst in BASE | {"tasks", src}  # a task: its own package, never another one nor a stage
    if src == "stage":
        return dst not in ("benchmarks", "tests")
    return dst != "tests"  # benchmarks


class Project:
    def __init__(self, root=ROOT):
        self.root = Path(root)
        self.files = {}  # dotted name -> Path (a package -> its __init__.py)
        for pkg in PACKAGES:
            for path in sorted((self.root / pkg).rglob("*.py")):
                parts = path.relative_to(self.root).with_suffix("").parts
                self.files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
        self.trees = {m: ast.parse(p.read_text(), str(p)) for m, p in self.files.items()}
        self.imports, self.task_attrs, self.self_attrs = {}, {}, {}
        for module, tree in self.trees.items():
            self._scan(module, tree)

    def rel(self, module):
        return self.files[module].relative_to(self.root).as_posix()

    def _scan(self, module, tree):
        # Tag every node inside a method of a top-level class with the method's name.
        owner = {n: fn.name for cls in tree.body if isinstance(cls, ast.ClassDef) for fn in cls.body
                 if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in ast.walk(fn)}
        is_pkg = self.files[module].name == "__init__.py"
        imports, task_attrs, self_attrs = [], set(), defaultdict(set)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: strip (level - 1) parts off this module's package
                    pkg = module.split(".")[: None if is_pkg else -1]
                    pkg = pkg[: len(pkg) - node.level + 1]
                    base = ".".join(pkg + ([node.module] if node.module else []))
                # `from a.b import c` imports module a.b.c if there is one, else names of a.b
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in self.files else base for a in node.names]
            else:
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                    if node.value.id == "task":
                        task_attrs.add(node.attr)
                    elif node.value.id == "self" and node in owner:
                        self_attrs[owner[node]].add(node.attr)
                continue
            imports += [Import(t, node.lineno, owner.get(node)) for t in dict.fromkeys(targets)
                        if t.split(".")[0] in IMPORTABLE]
        # `name = hook("pkg.module", "function")` in a class body: a method that imports pkg.module when called.
        for cls in (c for c in tree.body if isinstance(c, ast.ClassDef)):
            for stmt in cls.body:
                call = stmt.value if isinstance(stmt, ast.Assign) else None
                if (isinstance(call, ast.Call) and getattr(call.func, "id", None) == "hook" and call.args
                        and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str)):
                    imports += [Import(call.args[0].value, stmt.lineno, t.id) for t in stmt.targets
                                if isinstance(t, ast.Name) and call.args[0].value.split(".")[0] in IMPORTABLE]
        self.imports[module], self.task_attrs[module], self.self_attrs[module] = imports, task_attrs, self_attrs

    # --- layering and cycles (all imports, module-level and function-local) ---

    def violations(self):
        return [f"{m} -> {i.target} ({self.rel(m)}:{i.line})" for m, imps in self.imports.items()
                for i in imps if not allowed(layer(m), layer(i.target))]

    def cycles(self):
        """One shortest cycle per strongly connected component, as 'a -> b (file:line) -> a (file:line)'."""
        graph = {m: {i.target: i.line for i in reversed(imps) if i.target in self.files and i.target != m}
                 for m, imps in self.imports.items()}
        reach = {m: _reachable(lambda n: graph[n], [m]) for m in graph}
        found, seen = [], set()
        for m in sorted(graph):
            scc = {n for n in reach[m] if m in reach[n]}
            if m in seen or len(scc) < 2:
                continue
            seen |= scc
            path = _shortest_path(m, m, lambda n: [t for t in graph[n] if t in scc])
            found.append(m + "".join(f" -> {b} ({self.rel(a)}:{graph[a][b]})" for a, b in zip(path, path[1:]))
                         + (f"   [component: {', '.join(sorted(scc))}]" if len(scc) > len(path) - 1 else ""))
        return found

    # --- stage modules ---

    def stage_modules(self):
        return [m for m in self.files if layer(m) == "stage" and len(m.split(".")) == 2]

    def task_name_compares(self):
        """`x == "ner"`, `task in ("ner", ...)`, `case "ner":` in stage modules: task-specific branches."""
        names = TASK_NAMES | {m.split(".")[2] for m in self.files if layer(m).startswith("task:")}
        hits = []
        for m in self.stage_modules():
            for node in ast.walk(self.trees[m]):
                operands = ([node.left, *node.comparators] if isinstance(node, ast.Compare)
                            else [node.value] if isinstance(node, ast.MatchValue) else [])
                if any(isinstance(c, ast.Constant) and c.value in names for o in operands for c in ast.walk(o)):
                    hits.append(f"{self.rel(m)}:{node.lineno}: {ast.unparse(node)}")
        return hits

    def largest(self, n=10):
        """(lines, file) of the n longest project modules; for reports, not asserted."""
        return sorted(((len(p.read_text().splitlines()), self.rel(m)) for m, p in self.files.items()), reverse=True)[:n]

    # --- what a command runs ---

    def closure(self, entry, task=None):
        """Project modules `python -m entry [task]` imports. Parent packages count (Python runs their
        __init__); lazy imports in methods of pipelines/tasks/<t>/task.py count only for the hooks used."""
        start = [entry] + [f"{entry}.__main__"] * (f"{entry}.__main__" in self.files)
        if task and (self.root / "pipelines/tasks" / task).is_dir():
            start.append(f"pipelines.tasks.{task}")  # load_task() imports it dynamically
        hooks = None
        while True:
            used = hooks or set()
            def step(m):
                parent = m.rpartition(".")[0]
                return [i.target for i in self.imports[m] if i.target in self.files and (
                    not TASK_MODULE.match(m) or i.method is None or i.method in used or i.method.startswith("__"))
                ] + [parent] * (parent in self.files)
            modules = _reachable(step, [s for s in start if s in self.files])
            found = _reachable(lambda h: [y for m in modules if TASK_MODULE.match(m)
                                          for y in self.self_attrs[m].get(h, ())],
                               {x for m in modules for x in self.task_attrs[m]})
            if found == hooks:
                return modules
            hooks = found

    @functools.cache  # DVC takes seconds to load; a Project is a snapshot anyway
    def dvc_stages(self):
        """(name, [(module, task)], deps) per dvc.yaml stage, foreach/${} resolved by DVC itself."""
        from dvc.repo import Repo  # no_scm: works in a git clone, a bare copy, or a tmp dir
        with Repo(str(self.root), uninitialized=True, config={"core": {"no_scm": True}}) as repo:
            stages = [(s, os.path.relpath(s.path, self.root), [os.path.relpath(os.path.join(s.wdir, str(d.def_path)),
                                                                              self.root) for d in s.deps])
                      for s in repo.index.stages if s.cmd]
        # named like `dvc repro` run at the root (s.addressing is relative to the cwd)
        return [(s.name if file == "dvc.yaml" else f"{file}:{s.name}", _commands(s.cmd), deps) for s, file, deps in stages]

    def dvc_stage_modules(self):
        """Stage name -> the project modules its command(s) import."""
        return {name: self._run_modules(cmds) for name, cmds, _ in self.dvc_stages()}

    def _run_modules(self, cmds):
        return set().union(*(self.closure(m, t) for m, t in cmds if m in self.files))

    def dvc_report(self):
        """Stage name -> (needed project files, those no dep covers, deps naming a missing .py file)."""
        out = {}
        for name, cmds, deps in self.dvc_stages():
            files = sorted(self.rel(m) for m in self._run_modules(cmds))
            missing = [f for f in files if not any(f == d or f.startswith(d.rstrip("/") + "/") for d in deps)]
            dead = [d for d in deps if d.endswith(".py") and not (self.root / d).is_file()]
            out[name] = files, missing, dead
        return out


def _reachable(step, start):
    seen, todo = set(start), list(start)
    while todo:
        for n in step(todo.pop()):
            if n not in seen:
                seen.add(n)
                todo.append(n)
    return seen


def _shortest_path(src, dst, step):
    prev, todo = {}, deque([src])
    while todo:
        n = todo.popleft()
        for t in step(n):
            if t == dst:
                path = [n]
                while path[-1] != src:
                    path.append(prev[path[-1]])
                return [*reversed(path), dst]
            if t not in prev:
                prev[t] = n
                todo.append(t)
    return []


def _commands(cmd):
    """[(module, task or None)] for each `python -m module [task] ...` in a stage cmd."""
    out = []
    for line in [cmd] if isinstance(cmd, str) else cmd:
        for part in re.split(r"&&|;|\|\|", line):
            words = shlex.split(part)
            if "-m" in words[:-1]:
                rest = words[words.index("-m") + 1:]
                out.append((rest[0], next((w for w in rest[1:2] if not w.startswith("-")), None)))
    return out


if __name__ == "__main__":
    project = Project(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT)
    for name, (files, missing, dead) in project.dvc_report().items():
        print(f"{name}:")
        for f in files:
            print(f"  - {f}" + ("    # missing from dvc.yaml" if f in missing else ""))
        for d in dead:
            print(f"  # dvc.yaml dep {d} does not exist")
