"""Backend-agnostic training: tiny NER and sentiment runs under PyTorch, then loaded and exported under TensorFlow.

The torch run happens in a subprocess (tests/backend_worker.py), since Keras
fixes its backend at first import and this process runs on TensorFlow. Keras'
torch backend runs recurrent layers step by step in Python on CPU, so the
fixture stays a few dozen short examples and a few epochs.
"""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from pipelines.config import load_params, output_dir
from tests.backend_worker import NER_TEXTS, SENTIMENT_TEXTS
from tests.conftest import ROOT, tiny_params, write_conll_splits

BACKEND = "torch"
NER_EPOCHS = 6  # enough for the tagger to find some entities, so equal tag paths are not all "O"
SENTIMENT_EPOCHS = 3
TORCH_MISSING = (
    "PyTorch is not installed in this environment, and tests/test_backends.py trains under "
    "KERAS_BACKEND=torch: run `make test` (it installs requirements-test.txt) or "
    "`pip install -r requirements-test.txt`."
)


def require_torch():
    # A failure, not a skip: CI must run the torch training.
    if importlib.util.find_spec("torch") is None:
        pytest.fail(TORCH_MISSING, pytrace=False)


@pytest.fixture(scope="module")
def torch_run(tmp_path_factory):
    """Prepares and trains both tasks under torch once; returns (params, results folder)."""
    require_torch()
    tmp = tmp_path_factory.mktemp("torch")
    source = write_conll_splits(tmp / "conll", 24, 6, 8)
    params = tiny_params(tmp, source, **{
        "ner.model.word_dim": 8, "ner.model.hidden_size": 8, "ner.model.dropout": 0.2,
        "ner.train.epochs": NER_EPOCHS, "ner.train.patience": NER_EPOCHS, "ner.train.learning_rate": 0.03,
        "sentiment.train.epochs": SENTIMENT_EPOCHS, "sentiment.train.patience": SENTIMENT_EPOCHS,
        "sentiment.train.learning_rate": 0.02,
    })
    results = tmp / "results"
    env = {**os.environ, "KERAS_BACKEND": BACKEND,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           # torch's OpenMP threads spin for busy cores and made this run ~10x slower on a loaded
           # 2-core machine; the tiny matrices gain nothing from them.
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.backend_worker", str(params), BACKEND, str(results)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, f"torch run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return load_params(params), results


def worker_record(results):
    return json.loads((results / "predictions.json").read_text())


def test_missing_torch_fails_instead_of_skipping(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a, **k: None)
    with pytest.raises(pytest.fail.Exception, match="requirements-test.txt"):
        require_torch()


def test_training_ran_on_torch_and_this_process_on_tensorflow(torch_run):
    import keras

    params, results = torch_run
    record = worker_record(results)
    assert record["backend"] == "torch"
    # Otherwise the comparisons below would compare a backend with itself.
    assert keras.backend.backend() == "tensorflow"
    assert record["ner"]["summary"]["best_val_f1"] > 0  # the CRF loss trained under torch
    for task, epochs in (("ner", NER_EPOCHS), ("sentiment", SENTIMENT_EPOCHS)):
        assert record[task]["summary"]["epochs_run"] == epochs
        history = json.loads((output_dir(params, task) / "history.json").read_text())
        assert [h["epoch"] for h in history] == list(range(1, epochs + 1))
        assert history[-1]["loss"] < history[0]["loss"], (task, history)
        # padding_free: auto trains torch on equal-length batches without RNN masks (the cuDNN path on a GPU).
        assert record[task]["summary"]["runtime"]["padding_free"] is True
        assert record[task]["summary"]["runtime"]["backend"] == "torch"


def test_torch_ner_model_predicts_the_same_under_tensorflow(torch_run):
    import keras

    import models.tagger  # noqa: F401  registers the custom layers
    from pipelines.batching import pad_batch
    from pipelines.features import TokenEncoder
    from pipelines.ner import load_split, predict_tag_ids
    from pipelines.tokenizer import tokenize

    params, results = torch_run
    out = output_dir(params, "ner")
    record = worker_record(results)["ner"]
    encoder = TokenEncoder.from_vocab_file(out / "vocab.json")
    model = keras.saving.load_model(out / "model.keras")
    test_tokens, _, _ = load_split(out / "data", "test")
    got = [ids.tolist() for ids in predict_tag_ids(model, encoder.encode(test_tokens))]
    assert got == record["test_tag_ids"]
    # Several distinct tags, so equal paths say more than "all O".
    assert len({t for row in got for t in row}) > 1, got
    features = encoder.encode([tokenize(t) for t in NER_TEXTS])
    assert [ids.tolist() for ids in predict_tag_ids(model, features)] == record["text_tag_ids"]
    batch = {name: pad_batch(values) for name, values in features.items()}
    logits = keras.ops.convert_to_numpy(model(batch, training=False))
    np.testing.assert_allclose(logits, np.load(results / "ner_logits.npy"), atol=1e-4, rtol=0)


def test_torch_sentiment_model_predicts_the_same_under_tensorflow(torch_run):
    import keras

    import models.classifier  # noqa: F401
    from pipelines.sentiment import DocumentEncoder, load_documents, predict_probabilities

    params, results = torch_run
    out = output_dir(params, "sentiment")
    record = worker_record(results)["sentiment"]
    encoder = DocumentEncoder.from_vocab_file(out / "vocab.json")
    model = keras.saving.load_model(out / "model.keras")
    _, test_tokens, _, _ = load_documents(out / "data", "test")
    got = predict_probabilities(model, encoder.encode(test_tokens))
    np.testing.assert_allclose(got, record["test_probabilities"], atol=1e-5, rtol=0)
    texts = predict_probabilities(model, encoder.encode([encoder.tokens(t) for t in SENTIMENT_TEXTS]))
    np.testing.assert_allclose(texts, record["text_probabilities"], atol=1e-5, rtol=0)


def test_torch_ner_model_exports_under_tensorflow(torch_run):
    import tensorflow as tf

    from pipelines.export import export_ner, iob2_names
    from pipelines.tokenizer import tokenize
    from pipelines.vocab import load_json

    params, results = torch_run
    out = output_dir(params, "ner")
    report = export_ner(params, out)
    assert report["mismatches"] == 0, report["first_mismatches"]
    assert report["test_sentences_checked"] == 8
    names = iob2_names(load_json(out / "vocab.json")["tags"])
    want = [[names[i] for i in row] for row in worker_record(results)["ner"]["text_tag_ids"]]
    serve = tf.saved_model.load(str(out / "saved_model")).signatures["serving_default"]
    served = serve(text=tf.constant(NER_TEXTS))
    lengths = served["num_tokens"].numpy()
    assert lengths.tolist() == [len(tokenize(t)) for t in NER_TEXTS]
    got = [[t.decode("utf-8") for t in row[:n]] for row, n in zip(served["tags"].numpy(), lengths)]
    assert got == want


def test_torch_sentiment_model_exports_under_tensorflow(torch_run):
    import tensorflow as tf

    from pipelines.sentiment import export_sentiment
    from pipelines.vocab import load_json

    params, results = torch_run
    out = output_dir(params, "sentiment")
    report = export_sentiment(params, out)
    assert report["mismatches"] == 0, report["first_mismatches"]
    assert report["test_documents_checked"] == 16
    serve = tf.saved_model.load(str(out / "saved_model")).signatures["serving_default"]
    served = serve(text=tf.constant(SENTIMENT_TEXTS))
    want = np.array(worker_record(results)["sentiment"]["text_probabilities"])
    np.testing.assert_allclose(served["probabilities"].numpy(), want, atol=1e-5, rtol=0)
    labels = load_json(out / "vocab.json")["labels"]
    assert [x.decode("utf-8") for x in served["label"].numpy()] == [labels[i] for i in want.argmax(axis=1)]
