"""core.config: params.yaml loading, the task section, paths relative to the repository."""

from pathlib import Path

import pytest
import yaml

from pipelines.core.config import ROOT, load_params, output_dir, resolve_path, task_params
from pipelines.core.errors import ParamsError


def test_root_is_the_repository():
    assert (ROOT / "params.yaml").is_file() and (ROOT / "pipelines" / "core" / "config.py").is_file()


def test_load_params_defaults_to_the_repository_file():
    params = load_params()
    assert params == yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    assert {"ner", "sentiment"} <= set(params)


def test_load_params_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="params file not found"):
        load_params(tmp_path / "missing.yaml")
    bad = tmp_path / "list.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(ParamsError, match="expected a mapping at the top level"):
        load_params(bad)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_params(empty) == {}


def test_task_params_raises_params_error_naming_the_tasks():
    params = {"seed": 0, "ner": {"out_dir": "a"}, "sentiment": {"out_dir": "b"}, "word2vec": {"dim": 3}}
    assert task_params(params, "ner") == {"out_dir": "a"}
    with pytest.raises(ParamsError, match=r"task 'pos' has no section in params.yaml \(tasks there: ner, sentiment\)"):
        task_params(params, "pos")
    with pytest.raises(ValueError):  # ParamsError is a ValueError (it used to be a KeyError)
        task_params({"pos": "not a mapping"}, "pos")
    with pytest.raises(ParamsError, match=r"tasks there: none"):
        task_params({}, "ner")


def test_resolve_path_and_output_dir(tmp_path):
    assert resolve_path("outputs/ner") == ROOT / "outputs" / "ner"
    assert resolve_path(tmp_path) == tmp_path
    assert resolve_path("x", base=tmp_path) == tmp_path / "x"
    assert resolve_path("~/data") == Path.home() / "data"
    assert output_dir({"ner": {"out_dir": "outputs/ner"}}, "ner") == ROOT / "outputs" / "ner"
    with pytest.raises(ParamsError):
        output_dir({}, "ner")
