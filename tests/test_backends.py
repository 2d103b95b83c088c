"""Backend-agnostic training: tiny NER and sentiment runs under PyTorch and JAX, then loaded and exported under TensorFlow.

Each run happens in a subprocess (tests/backend_worker.py), since Keras
fixes its backend at first import and this process runs on TensorFlow; the
tests are parametrised over BACKENDS. Keras' torch backend runs recurrent
layers step by step in Python on CPU, and JAX compiles every step with XLA
once per distinct batch shape, so the fixture stays a few dozen short
examples and a few epochs.
"""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from pipelines.core.config import load_params, output_dir
from tests.backend_worker import NER_TEXTS, SENTIMENT_TEXTS
from tests.conftest import ROOT, tiny_params, write_conll_splits

BACKENDS = ["torch", "jax"]
NER_EPOCHS = 6  # enough for the tagger to find some entities, so equal tag paths are not all "O"
SENTIMENT_EPOCHS = 3
BACKEND_MISSING = (
    "{backend} is not installed in this environment, and tests/test_backends.py trains under "
    "KERAS_BACKEND={backend}: run `make test` (it installs requirements-test.txt) or "
    "`pip install -r requirements-test.txt`."
)


def require_backend(backend):
    # A failure, not a skip: CI must run the training on every backend.
    if importlib.util.find_spec(backend) is None:
        pytest.fail(BACKEND_MISSING.format(backend=backend), pytrace=False)


@pytest.fixture(scope="module", params=BACKENDS)
def backend_run(request, tmp_path_factory):
    """Prepares and trains both tasks under one backend once; returns (backend, params, results folder)."""
    backend = request.param
    require_backend(backend)
    tmp = tmp_path_factory.mktemp(backend)
    source = write_conll_splits(tmp / "conll", 24, 6, 8)
    params = tiny_params(tmp, source, **{
        "ner.model.word_dim": 8, "ner.model.hidden_size": 8, "ner.model.dropout": 0.2,
        "ner.train.epochs": NER_EPOCHS, "ner.train.patience": NER_EPOCHS, "ner.train.learning_rate": 0.03,
        "sentiment.train.epochs": SENTIMENT_EPOCHS, "sentiment.train.patience": SENTIMENT_EPOCHS,
        "sentiment.train.learning_rate": 0.02,
    })
    results = tmp / "results"
    env = {**os.environ, "KERAS_BACKEND": backend,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           # torch's OpenMP threads spin for busy cores and made this run ~10x slower on a loaded
           # 2-core machine; the tiny matrices gain nothing from them.
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.backend_worker", str(params), backend, str(results)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, f"{backend} run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return backend, load_params(params), results


def worker_record(results):
    return json.loads((results / "predictions.json").read_text())


@pytest.mark.parametrize("backend", BACKENDS)
def test_missing_backend_fails_instead_of_skipping(monkeypatch, backend):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a, **k: None)
    with pytest.raises(pytest.fail.Exception, match=f"KERAS_BACKEND={backend}.*requirements-test.txt"):
        require_backend(backend)


def test_training_ran_on_the_backend_and_this_process_on_tensorflow(backend_run):
    import keras

    backend, params, results = backend_run
    record = worker_record(results)
    assert record["backend"] == backend
    # Otherwise the comparisons below would compare a backend with itself.
    assert keras.backend.backend() == "tensorflow"
    assert record["ner"]["summary"]["best_val"] > 0  # the CRF loss trained under the backend
    for task, epochs in (("ner", NER_EPOCHS), ("sentiment", SENTIMENT_EPOCHS)):
        assert record[task]["summary"]["epochs"] == epochs
        history = json.loads((output_dir(params, task) / "history.json").read_text())
        assert [h["epoch"] for h in history] == list(range(1, epochs + 1))
        assert history[-1]["loss"] < history[0]["loss"], (task, history)
        runtime = record[task]["runtime"]
        # padding_free: auto trains torch and JAX on equal-length batches without RNN masks (the cuDNN
        # path on a GPU).
        assert runtime["padding_free"] is True
        assert runtime["backend"] == backend
        if backend == "jax":
            assert runtime["jit_compile"] is True  # XLA, always on under JAX: the CRF ran inside jit


def test_ner_model_predicts_the_same_under_tensorflow(backend_run):
    import keras

    import models.tagger  # noqa: F401  registers the custom layers
    from pipelines.core.batching import pad_batch
    from pipelines.tasks.ner import TASK
    from pipelines.tasks.ner.model import predict_tag_ids
    from pipelines.text.tokenizer import tokenize

    _, params, results = backend_run
    out = output_dir(params, "ner")
    record = worker_record(results)["ner"]
    encoder = TASK.encoder(out)
    model = keras.saving.load_model(out / "model.keras")
    test_tokens = TASK.load_split(out, "test").tokens
    got = [ids.tolist() for ids in predict_tag_ids(model, encoder.encode(test_tokens))]
    assert got == record["test_tag_ids"]
    # Several distinct tags, so equal paths say more than "all O".
    assert len({t for row in got for t in row}) > 1, got
    features = encoder.encode([tokenize(t) for t in NER_TEXTS])
    assert [ids.tolist() for ids in predict_tag_ids(model, features)] == record["text_tag_ids"]
    batch = {name: pad_batch(values) for name, values in features.items()}
    logits = keras.ops.convert_to_numpy(model(batch, training=False))
    np.testing.assert_allclose(logits, np.load(results / "ner_logits.npy"), atol=1e-4, rtol=0)


def test_sentiment_model_predicts_the_same_under_tensorflow(backend_run):
    import keras

    import models.classifier  # noqa: F401
    from pipelines.tasks.sentiment import TASK
    from pipelines.tasks.sentiment.model import predict_probabilities

    _, params, results = backend_run
    out = output_dir(params, "sentiment")
    record = worker_record(results)["sentiment"]
    encoder = TASK.encoder(out)
    model = keras.saving.load_model(out / "model.keras")
    test_tokens = TASK.load_split(out, "test").tokens
    got = predict_probabilities(model, encoder.encode(test_tokens))
    np.testing.assert_allclose(got, record["test_probabilities"], atol=1e-5, rtol=0)
    texts = predict_probabilities(model, encoder.encode([encoder.tokens(t) for t in SENTIMENT_TEXTS]))
    np.testing.assert_allclose(texts, record["text_probabilities"], atol=1e-5, rtol=0)


def test_ner_model_exports_under_tensorflow(backend_run):
    import tensorflow as tf

    from pipelines.core.exporting import export
    from pipelines.core.io import load_json
    from pipelines.tasks.ner import TASK
    from pipelines.tasks.ner.encoding import iob2_names
    from pipelines.text.tokenizer import tokenize

    _, params, results = backend_run
    out = output_dir(params, "ner")
    report = export(TASK, params, out)
    assert report["mismatches"] == 0, report["first_mismatches"]
    assert (report["checked"], report["unit"]) == (8, "sentences")
    names = iob2_names(load_json(out / "vocab.json")["tags"])
    want = [[names[i] for i in row] for row in worker_record(results)["ner"]["text_tag_ids"]]
    serve = tf.saved_model.load(str(out / "saved_model")).signatures["serving_default"]
    served = serve(text=tf.constant(NER_TEXTS))
    lengths = served["num_tokens"].numpy()
    assert lengths.tolist() == [len(tokenize(t)) for t in NER_TEXTS]
    got = [[t.decode("utf-8") for t in row[:n]] for row, n in zip(served["tags"].numpy(), lengths)]
    assert got == want


def test_sentiment_model_exports_under_tensorflow(backend_run):
    import tensorflow as tf

    from pipelines.core.exporting import export
    from pipelines.core.io import load_json
    from pipelines.tasks.sentiment import TASK

    _, params, results = backend_run
    out = output_dir(params, "sentiment")
    report = export(TASK, params, out)
    assert report["mismatches"] == 0, report["first_mismatches"]
    assert (report["checked"], report["unit"]) == (16, "documents")
    serve = tf.saved_model.load(str(out / "saved_model")).signatures["serving_default"]
    served = serve(text=tf.constant(SENTIMENT_TEXTS))
    want = np.array(worker_record(results)["sentiment"]["text_probabilities"])
    np.testing.assert_allclose(served["probabilities"].numpy(), want, atol=1e-5, rtol=0)
    labels = load_json(out / "vocab.json")["labels"]
    assert [x.decode("utf-8") for x in served["label"].numpy()] == [labels[i] for i in want.argmax(axis=1)]
