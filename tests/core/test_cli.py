"""core.cli.run_stage: arguments, the earlier stage's output, and expected errors as one line + exit 1."""

import pytest
import yaml

from pipelines.core.cli import EXPECTED_ERRORS, run_stage, stage_name
from pipelines.core.errors import DataError, ParamsError, StageError

DOC = """demo stage: what the stage does.

Usage: python -m pipelines.demo <task> [--params PATH]
"""
TASKS = ("alpha", "beta")


@pytest.fixture
def params(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"seed": 3, "alpha": {"out_dir": str(tmp_path / "out" / "alpha")},
                                    "beta": {"out_dir": "relative/beta"}}))
    return path


def run(params, body, task="alpha", **kw):
    return run_stage(DOC, [task, "--params", str(params)], body, TASKS, **kw)


def test_stage_name_is_the_first_word_of_the_doc():
    assert stage_name(DOC) == "demo"
    assert stage_name("train stage: fits") == "train"


def test_body_gets_task_params_and_output_folder(params, tmp_path):
    calls = []
    assert run(params, lambda *a: calls.append(a)) == 0  # None -> 0
    (task, loaded, out), = calls
    assert task == "alpha" and loaded["seed"] == 3
    assert out == tmp_path / "out" / "alpha"


def test_relative_out_dir_is_resolved_against_the_repository(params):
    from pipelines.core.config import ROOT

    calls = []
    run(params, lambda *a: calls.append(a), task="beta")
    assert calls[0][2] == ROOT / "relative" / "beta"


def test_body_exit_code_is_returned(params):
    assert run(params, lambda *a: 3) == 3
    assert run(params, lambda *a: 0) == 0


@pytest.mark.parametrize("error", [DataError("train.txt:3: bad tag"), ParamsError("ner.train.x must be > 0"),
                                   StageError("parity check failed"), FileNotFoundError("no such file: a.txt")])
def test_expected_errors_are_one_line_and_exit_1(params, capsys, error):
    def body(*_):
        print("working")
        raise error

    assert run(params, body) == 1
    captured = capsys.readouterr()
    assert captured.err == f"demo: error: {error}\n"
    assert captured.out == "working\n"


def test_expected_errors_include_subclasses(params, capsys):
    from pipelines.tasks.ner.reader import ConllFormatError

    def body(*_):
        raise ConllFormatError("x.txt:2: expected 4 columns, found 3")

    assert run(params, body) == 1
    assert capsys.readouterr().err == "demo: error: x.txt:2: expected 4 columns, found 3\n"
    assert set(EXPECTED_ERRORS) == {DataError, ParamsError, StageError, FileNotFoundError}


@pytest.mark.parametrize("error", [RuntimeError("a bug"), KeyError("missing"), ValueError("plain"),
                                   TypeError("bad call"), ZeroDivisionError()])
def test_other_exceptions_propagate(params, capsys, error):
    def body(*_):
        raise error

    with pytest.raises(type(error)) as info:
        run(params, body)
    assert info.value is error
    assert "error:" not in capsys.readouterr().err


def test_stage_specific_errors_join_the_expected_ones(params, capsys):
    class ExportMismatch(Exception):
        pass

    def body(*_):
        raise ExportMismatch("3 of 12 sentences differ")

    assert run(params, body, errors=(ExportMismatch,)) == 1
    assert capsys.readouterr().err == "demo: error: 3 of 12 sentences differ\n"
    with pytest.raises(ExportMismatch):
        run(params, body)


def test_missing_output_of_the_previous_stage(params, tmp_path, capsys):
    calls = []
    rc = run(params, lambda *a: calls.append(a), requires="vocab.json", previous_stage="prepare")
    assert rc == 1 and calls == []
    vocab = tmp_path / "out" / "alpha" / "vocab.json"
    assert capsys.readouterr().err == f"demo: error: {vocab} not found; run the prepare stage first\n"
    vocab.parent.mkdir(parents=True)
    vocab.write_text("{}")
    assert run(params, lambda *a: calls.append(a), requires="vocab.json", previous_stage="prepare") == 0
    assert len(calls) == 1


def test_missing_params_file(tmp_path, capsys):
    missing = tmp_path / "nope.yaml"
    assert run(missing, lambda *a: pytest.fail("body ran")) == 1
    assert capsys.readouterr().err == f"demo: error: params file not found: {missing}\n"


def test_params_without_the_task_section(tmp_path, capsys):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"seed": 0, "alpha": {"out_dir": "x"}}))
    assert run(path, lambda *a: pytest.fail("body ran"), task="beta") == 1
    err = capsys.readouterr().err
    assert err.startswith("demo: error: task 'beta' has no section in params.yaml") and err.count("\n") == 1
    assert "(tasks there: alpha)" in err


def test_invalid_yaml_is_reported_on_one_line(tmp_path, capsys):
    path = tmp_path / "params.yaml"
    path.write_text("alpha: [unclosed\n")
    assert run(path, lambda *a: pytest.fail("body ran")) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"demo: error: {path}:2: not valid YAML") and err.count("\n") == 1  # the line PyYAML stopped at


def test_unknown_task_is_an_argparse_error(params, capsys):
    with pytest.raises(SystemExit) as info:
        run(params, lambda *a: pytest.fail("body ran"), task="gamma")
    assert info.value.code == 2
    assert "invalid choice: 'gamma'" in capsys.readouterr().err
