"""The GPU benchmark runs end to end on CPU under JAX on a tiny fixture (mixed precision is GPU-only)."""

import json
import os
import subprocess
import sys

from benchmarks.gpu import VARIANTS, pick_variants
from tests.conftest import ROOT, tiny_params, write_conll_splits


def test_mixed_precision_only_with_a_gpu():
    assert pick_variants(None, ()) == ["padding_free/float32", "masked/float32"]
    assert pick_variants(None, ("cuda:0",)) == list(VARIANTS)
    assert pick_variants(["masked/mixed_float16"], ()) == ["masked/mixed_float16"]


def test_runs_under_jax_without_tensorflow(tmp_path):
    params = tiny_params(tmp_path, write_conll_splits(tmp_path / "conll", 24, 6, 8))
    # The GPU machines have JAX and no TensorFlow: a `tensorflow` module that cannot be
    # imported, first on the path, makes any import of it on this path fail.
    (tmp_path / "no_tf").mkdir()
    (tmp_path / "no_tf" / "tensorflow.py").write_text('raise ImportError("no TensorFlow on a GPU machine")\n')
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": os.pathsep.join([str(tmp_path / "no_tf"), str(ROOT)])}
    # Masked batches only: fewest batch shapes, so fewest XLA compilations on a small CPU.
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu", "--params", str(params), "--epochs", "2",
         "--variants", "masked/float32", "--out-root", str(tmp_path / "gpu")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "gpu" / "gpu.json").read_text())
    assert result["backend"] == "jax"
    for task, monitor in (("ner", "val_f1"), ("sentiment", "val_accuracy")):
        (run,) = result["tasks"][task]
        assert run["variant"] == "masked/float32" and run["monitor"] == monitor
        assert len(run["epoch_seconds"]) == 2 and run["train_tokens_per_second"] > 0
        assert run["runtime"]["padding_free"] is False and run["runtime"]["precision"] == "float32"
        steps = [epoch["train_step"] for epoch in run["compilations_per_epoch"]]
        # At most one compilation per distinct batch shape over the whole run, none per step.
        assert 1 <= sum(steps) <= run["distinct_train_batch_shapes"], run
        assert f"{task:9s} masked/float32" in proc.stdout


def test_missing_data_is_one_line(tmp_path):
    params = tiny_params(tmp_path, write_conll_splits(tmp_path / "conll", 24, 6, 8))
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu", "--params", str(params), "--tasks", "ner",
         "--data-root", str(tmp_path / "nowhere"), "--out-root", str(tmp_path / "gpu")],
        cwd=ROOT, env={**os.environ, "KERAS_BACKEND": "jax"}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1].startswith("benchmarks.gpu: error: ")
    assert str(tmp_path / "nowhere" / "conll") in proc.stderr
