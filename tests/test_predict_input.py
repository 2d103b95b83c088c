"""Any input bytes give predict a result or one error line naming the source; the predictors
check their texts; sentiment flags texts without tokens; the parity checks report progress.

The bad-input cases run `python -m pipelines.predict` as a user does. Input is checked
before TensorFlow loads, so they need no model and take a fraction of a second; the rest
share SavedModels of untrained tiny models (what they answer does not matter here).
"""

import functools
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from pipelines import predict, prepare
from pipelines.core.exporting import check_texts
from tests.conftest import ROOT, tiny_params, write_conll_splits


def run_predict(*args, stdin=None):
    # As a user runs it: predict picks its own TensorFlow log level.
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, "-m", "pipelines.predict", *args], cwd=ROOT, env=env, input=stdin,
                          capture_output=True, timeout=300)


def assert_one_error_line(proc, *expected):
    err = proc.stderr.decode("utf-8", "backslashreplace")
    assert proc.returncode == 1, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("predict: error: "), err[-3000:]
    for text in expected:
        assert text in lines[0], lines[0]
    assert proc.stdout == b""
    return lines[0]


FILE_CASES = {
    "invalid UTF-8": (b'{"text": "ok"}\n{"text": "caf\xe9"}\n', "in.jsonl:2: not valid UTF-8 (byte 0xe9 at column 14)"),
    "truncated UTF-8 at the end": (b'"ok"\n"\xe6\x97', "in.jsonl:2: not valid UTF-8 (byte 0xe6 at column 2)"),
    "UTF-8 encoded surrogate": (b'"\xed\xa0\x80"\n', "in.jsonl:1: not valid UTF-8 (byte 0xed at column 2)"),
    "columns count characters": ('"été \udce9"\n'.encode("utf-8", "surrogateescape"),
                                 "in.jsonl:1: not valid UTF-8 (byte 0xe9 at column 6)"),
    "lone surrogate escape": (b'"ok"\n"\\ud800"\n',
                              "in.jsonl:2: the text is not valid Unicode (lone surrogate \\ud800 at character 1)"),
    "lone low surrogate in an object": (b'{"text": "ab\\udfff"}\n', "in.jsonl:1: the text is not valid Unicode "
                                        "(lone surrogate \\udfff at character 3)"),
    "NUL byte": (b'"a"\n{"text": "a\x00b"}\n', "in.jsonl:2: NUL byte at column 12; JSON Lines input must be UTF-8"),
    "UTF-16 without a BOM": ('"a"\n'.encode("utf-16-le"), "in.jsonl:1: NUL byte at column 2"),
    "UTF-16 BOM": ('"a"\n'.encode("utf-16"), "in.jsonl:1: starts with a UTF-16 byte order mark"),
    "a number": (b'"a"\n\n42\n', 'in.jsonl:3: expected a JSON string or an object with a string "text" field, '
                                  "got a number"),
    "a list": (b'["a"]\n', "in.jsonl:1: expected a JSON string or an object with a string \"text\" field, got an array"),
    "null": (b"null\n", "in.jsonl:1: expected a JSON string or an object with a string \"text\" field, got null"),
    "a boolean": (b"true\n", "got a boolean"),
    "text not a string": (b'{"text": ["a"]}\n', 'got an object whose "text" is an array'),
    "no text field": (b'{"txt": "a"}\n', 'in.jsonl:1: expected a JSON string or an object with a string "text" '
                                         'field, got an object without "text"'),
    "not JSON": (b'"a"\n{not json\n', "in.jsonl:2: not valid JSON: Expecting property name enclosed in double "
                                       "quotes at column 2"),
    "nested too deeply": (b"[" * 100_000 + b"\n", "in.jsonl:1: cannot read this JSON: nested too deeply"),
    "an integer too long": (b'{"text": "a", "id": ' + b"9" * 5000 + b"}\n", "in.jsonl:1: cannot read this JSON"),
}


@pytest.mark.parametrize("content, message", FILE_CASES.values(), ids=FILE_CASES.keys())
def test_bad_jsonl_file_is_one_line_naming_file_and_line(tmp_path, content, message):
    path = tmp_path / "in.jsonl"
    path.write_bytes(content)
    line = assert_one_error_line(run_predict("ner", "--model", str(tmp_path / "no-model"), "--jsonl", str(path)),
                                 message)
    assert line.startswith(f"predict: error: {path}:"), line


@pytest.mark.parametrize("content, message", [
    (b'"a"\n\xc3(\n', "<stdin>:2: not valid UTF-8 (byte 0xc3 at column 1)"),
    (b'"a"\n"\\udc80"\n', "<stdin>:2: the text is not valid Unicode (lone surrogate \\udc80 at character 1)"),
    (b'\x00\n', "<stdin>:1: NUL byte at column 1"),
    (b'"a"\r\n[]\r\n', "<stdin>:2: expected a JSON string"),
], ids=["invalid UTF-8", "lone surrogate", "NUL", "CRLF and a list"])
def test_bad_stdin_is_one_line_naming_the_line(tmp_path, content, message):
    assert_one_error_line(run_predict("sentiment", "--model", str(tmp_path / "no-model"), "--jsonl", "-",
                                      stdin=content), f"predict: error: {message}")


def test_argv_that_is_not_utf8_names_the_argument(tmp_path):
    # Python turns the byte into a lone surrogate (surrogateescape); TensorFlow used to crash on it.
    proc = run_predict("ner", "--model", str(tmp_path / "no-model"), "fine", b"caf\xe9 au lait")
    assert_one_error_line(proc, "predict: error: argv[5]: not valid UTF-8 (byte 0xe9 at column 4)")
    proc = run_predict("ner", b"\xff", "--model", str(tmp_path / "no-model"))
    assert_one_error_line(proc, "predict: error: argv[2]: not valid UTF-8 (byte 0xff at column 1)")


def test_missing_and_unreadable_inputs(tmp_path):
    assert_one_error_line(run_predict("ner", "--jsonl", str(tmp_path / "nope.jsonl"), "--model", str(tmp_path)),
                          "input file not found")
    assert_one_error_line(run_predict("ner", "--jsonl", str(tmp_path), "--model", str(tmp_path)),
                          "input file not found")


def test_in_process_argv_with_a_lone_surrogate(capsys, tmp_path):
    assert predict.main(["ner", "--model", str(tmp_path), "ok", "x\ud800"]) == 1
    assert capsys.readouterr().err == ("predict: error: argv[5]: not valid Unicode "
                                       "(lone surrogate \\ud800 at character 2)\n")


def test_check_texts_names_the_bad_text():
    assert check_texts(("a", "", np.str_("b"))) == ["a", "", "b"]
    for texts, message in [
        (["ok", "ok", "ok", 3], "texts[3]: expected a str, got int"),
        (["ok", b"bytes"], "texts[1]: expected a str, got bytes"),
        (["ok", None], "texts[1]: expected a str, got NoneType"),
        (["ab\ud800c"], r"texts[0]: not valid Unicode (lone surrogate \ud800 at character 3)"),
        ("one text", "texts: expected a list of str, got a single str (wrap one text in a list)"),
        (7, "texts: expected a list of str, got int"),
    ]:
        with pytest.raises(ValueError) as info:
            check_texts(texts)
        assert str(info.value) == message


# --- with SavedModels ---


def export_untrained(task, params, out):
    """Builds the task's model untrained, writes its SavedModel and returns (model, saved_dir)."""
    import keras

    cfg = yaml.safe_load(params.read_text())[task.name]
    keras.utils.set_random_seed(0)
    model = task.build_model(cfg["model"], task.encoder(out).vocab)
    # One encoded example builds the weights, whatever inputs the task's model has.
    features = task.encoder(out).encode([["a", "good", "film"]])
    model({name: np.asarray(rows[0])[None] for name, rows in features.items()})
    saved_dir = out / "saved_model"
    task.serving_archive(model, task.encoder(out).vocab).write_out(str(saved_dir), verbose=False)
    return model, saved_dir


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Both tasks prepared on the tiny fixtures, with SavedModels of untrained models."""
    from pipelines.tasks import load_task

    tmp = tmp_path_factory.mktemp("predict_input")
    params = tiny_params(tmp, write_conll_splits(tmp / "conll"))
    runs = {}
    for name in ("ner", "sentiment"):
        assert prepare.main([name, "--params", str(params)]) == 0
        task = load_task(name)
        out = tmp / "out" / name
        runs[name] = (task, out, *export_untrained(task, params, out))
    return runs


def test_saved_model_flags_texts_without_tokens(served):
    import tensorflow as tf

    _, _, _, saved_dir = served["sentiment"]
    serve = tf.saved_model.load(str(saved_dir)).signatures["serving_default"]
    assert set(serve.structured_outputs) == {"label", "probabilities", "classes", "num_tokens", "empty"}
    texts = ["", "   \n\t", "<br /><br />", "a wonderful film", "<br />ok"]
    out = serve(text=tf.constant(texts))
    assert out["empty"].dtype == tf.bool
    assert out["empty"].numpy().tolist() == [True, True, True, False, False]
    assert out["num_tokens"].numpy().tolist()[:3] == [0, 0, 0]
    assert out["label"].shape == (5,) and out["probabilities"].shape == (5, 2) and out["classes"].shape == (5, 2)


def test_predict_sentiment_empty_texts(served, tmp_path):
    """The CLI as a user runs it: `"empty": true` and `"label": null` for a text without tokens,
    `"empty": false` otherwise; BOMs, CRLF and blank lines in the file are fine."""
    _, _, _, saved_dir = served["sentiment"]
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"text": "a wonderful film", "id": 1}\r\n\r\n"   "\n\n"<br />"\n'
                     b'\xef\xbb\xbf{"text": ""}\n')  # a second BOM: files joined with `cat`
    proc = run_predict("sentiment", "--model", str(saved_dir), "--jsonl", str(path))
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    assert err == f"predict: skipped 2 blank lines of {path} (lines 2, 4)\n"  # and no TensorFlow chatter
    rows = [json.loads(line) for line in proc.stdout.decode("utf-8").splitlines()]
    assert [r["text"] for r in rows] == ["a wonderful film", "   ", "<br />", ""]
    assert [r["empty"] for r in rows] == [False, True, True, True]
    assert rows[0]["label"] in {"neg", "pos"} and [r["label"] for r in rows[1:]] == [None, None, None]
    for r in rows:
        assert list(r) == ["text", "label", "empty", "probabilities"]
        assert set(r["probabilities"]) == {"neg", "pos"}


def test_predictors_check_their_texts(served):
    for name in ("ner", "sentiment"):
        task, _, _, saved_dir = served[name]
        predictor = task.predictor(saved_dir)
        with pytest.raises(ValueError, match=r"^texts\[3\]: expected a str, got int$"):
            predictor.predict(["a", "b", "c", 4])
        with pytest.raises(ValueError, match=r"^texts\[1\]: not valid Unicode \(lone surrogate \\udce9 at character 4\)$"):
            predictor.predict(["ok", "caf\udce9"])
        with pytest.raises(ValueError, match=r"^texts: expected a list of str, got a single str"):
            predictor.predict("a text")
        assert predictor.predict([]) == []


def test_ner_texts_without_tokens_have_no_entities(served, capsys):
    task, _, _, saved_dir = served["ner"]
    texts = ["", " ", "\t\n\r", "\u00a0\u3000", "\x00", "Anna Weber visited Tokyo ."]
    rows = task.predictor(saved_dir).predict(texts)
    assert [r["text"] for r in rows] == texts
    assert all(r["entities"] == [] for r in rows[:5]), rows
    # The same through the CLI.
    assert predict.main(["ner", "--model", str(saved_dir), "", "   "]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in out] == [{"text": "", "entities": []}, {"text": "   ", "entities": []}]


def test_predict_writes_utf8_whatever_the_locale(served, tmp_path, monkeypatch, capsys):
    """JSON Lines are UTF-8 even where stdout's encoding is ASCII; a "\\u0000" escape is answered."""
    import io

    _, _, _, saved_dir = served["ner"]
    path = tmp_path / "in.jsonl"
    path.write_text('"Zürich \\u0000 東京"\n', encoding="utf-8")
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    monkeypatch.setattr(sys, "stdout", stdout)
    assert predict.main(["ner", "--model", str(saved_dir), "--jsonl", str(path)]) == 0, capsys.readouterr().err
    assert json.loads(stdout.buffer.getvalue().decode("utf-8"))["text"] == "Zürich \x00 東京"


@pytest.mark.parametrize("name, unit", [("ner", "sentences"), ("sentiment", "documents")])
def test_parity_check_reports_progress(served, monkeypatch, capsys, name, unit):
    """Small batches make several chunks, so the check's bookkeeping across chunks is covered too."""
    import importlib

    task, out, model, saved_dir = served[name]
    serving = importlib.import_module(f"pipelines.tasks.{name}.serving")
    monkeypatch.setattr(serving, "Progress", functools.partial(serving.Progress, every=0))
    capsys.readouterr()
    report = task.check_parity(saved_dir, model, task.encoder(out), task.load_split(out, "test"),
                               {"batch_size": 2, "parity_documents": None})
    assert report.mismatches == [] and report.unit == unit
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == report.checked // 2 + report.checked % 2, lines
    assert lines[0].startswith(f"export: parity check: 2/{report.checked} {unit} ("), lines
    assert lines[-1].startswith(f"export: parity check: {report.checked}/{report.checked} {unit} (100%)"), lines
    assert lines[-1].endswith(", 0 mismatches"), lines


def test_tensorflow_native_logs_are_filtered_other_stderr_passes(capfd):
    """absl logs oneDNN's start-up notes before TensorFlow reads TF_CPP_MIN_LOG_LEVEL (Intel CPUs)."""
    from pipelines.core.cli import native_logs_filtered

    with native_logs_filtered(3):
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
        os.write(2, b"I0000 00:00:1796364917.043237    3060 port.cc:153] oneDNN custom operations are on.\n")
        os.write(2, b"E0000 00:00:1796364905.220254    3035 util.cc:131] oneDNN supports DT_BOOL only on AVX-512.\n")
        os.write(2, b"a Python warning\n")
    with native_logs_filtered(2):
        os.write(2, b"W0000 00:00:1.5  7 a.cc:1] held\nE0000 00:00:1.5  7 b.cc:2] shown\n")
    assert capfd.readouterr().err == "a Python warning\nE0000 00:00:1.5  7 b.cc:2] shown\n"
