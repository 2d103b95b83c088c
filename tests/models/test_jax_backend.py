"""Models trained and saved under JAX predict as under TensorFlow, and the CRF works inside jax.jit.

Keras fixes its backend at first import and this process runs on
TensorFlow, so the JAX side runs in a subprocess (tests/models/jax_worker.py):
it trains tiny taggers and classifiers (CRF and softmax outputs, masked and
padding-free batches) with XLA, which is always on under JAX, and saves
them with their predictions; here they are loaded under TensorFlow and must
predict the same.
"""

import importlib.util
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from tests.conftest import ROOT
from tests.models.jax_worker import CASES, NUM_TAGS, TRAIN_SHAPES

JAX_MISSING = (
    "JAX is not installed in this environment, and tests/models/test_jax_backend.py trains under "
    "KERAS_BACKEND=jax: run `make test` (it installs requirements-test.txt) or "
    "`pip install -r requirements-test.txt`."
)


def require_jax():
    # A failure, not a skip: CI must run the JAX training.
    if importlib.util.find_spec("jax") is None:
        pytest.fail(JAX_MISSING, pytrace=False)


@pytest.fixture(scope="module")
def jax_run(tmp_path_factory):
    """Runs the JAX worker once; returns (output folder, its record)."""
    require_jax()
    out = tmp_path_factory.mktemp("jax_models")
    env = {**os.environ, "KERAS_BACKEND": "jax",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-m", "tests.models.jax_worker", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"JAX worker failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return out, json.loads((out / "record.json").read_text())


def test_missing_jax_fails_instead_of_skipping(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a, **k: None)
    with pytest.raises(pytest.fail.Exception, match="requirements-test.txt"):
        require_jax()


def test_worker_trained_under_jax_with_xla(jax_run):
    _, record = jax_run
    assert record["backend"] == "jax"
    # Otherwise the comparisons below would compare a backend with itself.
    assert keras.backend.backend() == "tensorflow"
    # JAXTrainer calls the stateless predict_step(state, data).
    assert record["predict_step_parameters"] == ["self", "state", "data"]
    for name, case in record["cases"].items():
        assert case["jit_compile"] is True, name
        assert case["losses"][-1] < case["losses"][0], (name, case["losses"])


@pytest.mark.parametrize("name", list(CASES))
def test_compilations_are_bounded_by_distinct_batch_shapes(jax_run, name):
    _, record = jax_run
    case = record["cases"][name]
    checks = CASES[name][3]
    # One trace (= one XLA compilation) per distinct shape over all epochs, none per step or epoch.
    assert case["traces_after_fit"] == {
        "train_step": len(set(TRAIN_SHAPES)), "test_step": int("validation" in checks), "predict_step": 0}
    # One batch shape, through predict_on_batch (twice) and, for some cases, predict.
    assert case["traces_after_predict"]["predict_step"] == 1 + ("predict" in checks)
    if "weight_change" in checks:
        assert case["traces_after_weight_change"] == case["traces_after_predict"]


@pytest.mark.parametrize("name", list(CASES))
def test_jax_model_predicts_the_same_under_tensorflow(jax_run, name):
    import models.classifier  # noqa: F401  registers the custom layers
    import models.tagger  # noqa: F401

    out, _ = jax_run
    kind, _, padded, checks = CASES[name]
    x = dict(np.load(out / f"{name}_inputs.npz"))
    want = dict(np.load(out / f"{name}_outputs.npz"))
    assert (x["words"] == 0).any() == padded
    np.testing.assert_array_equal(want["predict_on_batch_again"], want["predict_on_batch"])
    if "predict" in checks:
        np.testing.assert_array_equal(want["predict"], want["predict_on_batch"])

    model = keras.saving.load_model(out / f"{name}.keras")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x, training=False)), want["logits"],
                               atol=1e-4, rtol=0)
    got = np.asarray(model.predict_on_batch(x))
    if kind == "tagger":
        assert got.dtype == want["predict_on_batch"].dtype == np.int32
        np.testing.assert_array_equal(got, want["predict_on_batch"])
        np.testing.assert_array_equal(got[x["words"] == 0], 0)
        # Several distinct tags, so equal paths say more than "all one tag".
        assert len(np.unique(got[x["words"] > 0])) > 1, got
    else:
        np.testing.assert_allclose(got, want["predict_on_batch"], atol=1e-5, rtol=0)
        np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", [n for n, case in CASES.items() if "weight_change" in case[3]])
def test_cached_jax_predict_step_reads_the_current_crf_weights(jax_run, name):
    out, _ = jax_run
    words = np.load(out / f"{name}_inputs.npz")["words"]
    want = dict(np.load(out / f"{name}_outputs.npz"))
    all_3 = np.where(words > 0, 3, 0)
    np.testing.assert_array_equal(want["predict_on_batch_all_3"], all_3)
    if "predict_all_3" in want:
        np.testing.assert_array_equal(want["predict_all_3"], all_3)


def test_crf_under_jax_jit_matches_eager_and_tensorflow(jax_run):
    from models.crf import CRF

    out, _ = jax_run
    arrays = dict(np.load(out / "crf.npz"))
    crf = CRF(NUM_TAGS)
    crf.build((None, None, NUM_TAGS))
    crf.set_weights([arrays[f"weight_{i}"] for i in range(len(crf.weights))])
    for time in (1, 2, 7):
        emissions, tags, mask = (arrays[f"{k}_{time}"] for k in ("emissions", "tags", "mask"))
        np.testing.assert_array_equal(arrays[f"decode_jit_{time}"], arrays[f"decode_eager_{time}"])
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(crf.decode(emissions, mask)),
                                      arrays[f"decode_jit_{time}"])
        np.testing.assert_allclose(arrays[f"ll_jit_{time}"], arrays[f"ll_eager_{time}"], atol=1e-5, rtol=0)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(crf.log_likelihood(emissions, tags, mask)),
                                   arrays[f"ll_jit_{time}"], atol=1e-5, rtol=0)
