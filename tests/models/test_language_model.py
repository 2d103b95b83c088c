"""The forward/backward language model: it learns, its RNNs become a Bi-RNN exactly, on every backend."""

import importlib.util
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from models.classifier import TextClassifier
from models.language_model import BidirectionalLanguageModel, load_encoder_weights
from tests.conftest import ROOT
from tests.models.language_model_worker import predictable_windows, run


def test_learns_a_predictable_sequence_and_carries_over_to_the_classifier_exactly():
    result = run()
    # Full-softmax cross-entropy (evaluate) from about log(40) to near 0: both directions learned.
    assert result["full_loss_before"] > 3.0
    assert result["full_loss_after"] < 0.3, result
    assert result["sampled_loss"][-1] < result["sampled_loss"][0]
    # The forward RNN is the Bi-RNN's forward layer; the right-to-left one on the reversed window
    # is Keras' go_backwards layer on the window.
    assert result["forward_gap"] < 1e-5 and result["backward_gap"] < 1e-5, result


def test_padding_is_never_a_negative_and_counts_must_fit_the_vocabulary():
    lm = BidirectionalLanguageModel(10, embedding_dim=4, hidden_size=4, num_sampled=4)
    lm.build((None, None))
    lm.set_unigram_counts(np.arange(10) + 5)
    probs = keras.ops.convert_to_numpy(lm.sampling_probs)
    assert probs[0] == 0 and abs(probs.sum() - 1) < 1e-6
    assert keras.ops.convert_to_numpy(lm.sampling_cdf)[-1] == 1.0
    with pytest.raises(ValueError, match="10 non-negative values"):
        lm.set_unigram_counts(np.ones(9))


def test_sampled_loss_estimates_the_softmax_over_the_other_words():
    # With many uniform draws, the corrected sampled loss is log(sum of exp(logit) over the words
    # other than the target and padding) - target logit, plus the constant log(expected count of
    # the target), which shifts the loss but not its gradient.
    keras.utils.set_random_seed(1)
    vocab_size, draws = 12, 20000
    lm = BidirectionalLanguageModel(vocab_size, embedding_dim=6, hidden_size=6, num_sampled=draws, dropout=0.0)
    lm.build((None, None))
    lm.set_unigram_counts(np.ones(vocab_size), power=1.0)
    windows = predictable_windows(length=6, count=8, vocab_size=vocab_size)
    states = lm(windows)
    sampled = float(lm.compute_loss(windows, None, states, training=True))
    full = float(lm.compute_loss(windows, None, states, training=False))
    h = keras.ops.convert_to_numpy(states).reshape(-1, 6).astype(np.float64)
    targets = keras.ops.convert_to_numpy(lm.targets(windows)).reshape(-1)
    logits = h @ keras.ops.convert_to_numpy(lm.softmax_kernel).T + keras.ops.convert_to_numpy(lm.softmax_bias)
    others = np.exp(logits)
    others[:, 0] = 0.0
    others[np.arange(len(targets)), targets] = 0.0
    expected = np.mean(np.log(others.sum(1)) - logits[np.arange(len(targets)), targets])
    shift = np.log(draws / (vocab_size - 1))
    assert abs(sampled - shift - expected) < 0.05, (sampled - shift, expected)
    assert expected < full  # the full softmax also counts the target itself


def test_weights_of_another_size_are_refused_by_name():
    lm = BidirectionalLanguageModel(30, embedding_dim=8, hidden_size=8)
    lm.build((None, None))
    clf = TextClassifier(30, 2, embedding_dim=8, hidden_size=16)
    with pytest.raises(ValueError, match="pretrained forward weights have shapes"):
        load_encoder_weights(clf, lm.encoder_weights())


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_trains_and_carries_over_under_other_backends(backend):
    if importlib.util.find_spec(backend) is None:
        pytest.fail(f"{backend} is not installed: run `make test` (requirements-test.txt)", pytrace=False)
    env = {**os.environ, "KERAS_BACKEND": backend, "OMP_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-m", "tests.models.language_model_worker"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["backend"] == backend
    assert result["full_loss_after"] < 1.0 < 3.0 < result["full_loss_before"], result  # learned, from log(40)
    assert result["forward_gap"] < 1e-5 and result["backward_gap"] < 1e-5, result
