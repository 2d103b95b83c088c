"""Trains the bidirectional language model on a predictable sequence and copies it into a
classifier, under whatever KERAS_BACKEND says; prints one JSON line (tests/models/test_language_model.py)."""

import json
import sys

import numpy as np


def predictable_windows(length=12, count=96, vocab_size=40):
    """Windows of a sequence where each word fixes the next (w' = 3w + 1 mod (V - 2), shifted past 0 and 1)."""
    seq = [2]
    for _ in range(length * count + 1):
        seq.append((seq[-1] * 3 + 1) % (vocab_size - 2) + 2)
    seq = np.array(seq, dtype=np.int32)
    return np.stack([seq[i * length: i * length + length + 1] for i in range(count)])


def run(epochs=15):
    import keras
    from keras import ops

    from models.classifier import TextClassifier
    from models.language_model import BidirectionalLanguageModel, load_encoder_weights

    keras.utils.set_random_seed(0)
    vocab_size = 40
    windows = predictable_windows(vocab_size=vocab_size)
    lm = BidirectionalLanguageModel(vocab_size, embedding_dim=12, hidden_size=12, num_sampled=8, dropout=0.0)
    lm.build((None, None))
    lm.set_unigram_counts(np.bincount(windows.reshape(-1), minlength=vocab_size))
    lm.compile(optimizer=keras.optimizers.Adam(0.02))
    before = float(lm.evaluate(windows[:32], verbose=0, batch_size=16))
    history = lm.fit({"words": windows}, epochs=epochs, batch_size=16, verbose=0).history["loss"]
    after = float(lm.evaluate(windows[:32], verbose=0, batch_size=16))
    clf = TextClassifier(vocab_size, 2, embedding_dim=12, hidden_size=12, dropout=0.0)
    load_encoder_weights(clf, lm.encoder_weights())
    x = windows[:4]
    states = ops.convert_to_numpy(lm(x))
    bi_forward = ops.convert_to_numpy(clf.rnn_layers[0](clf.word_embedding(x[:, :-1])))[..., :12]
    bi_backward = ops.convert_to_numpy(clf.rnn_layers[0](clf.word_embedding(x[:, 1:])))[..., 12:]
    return {"backend": keras.backend.backend(), "full_loss_before": before, "full_loss_after": after,
            "sampled_loss": [float(v) for v in history],
            "forward_gap": float(np.abs(bi_forward - states[0]).max()),
            "backward_gap": float(np.abs(bi_backward - np.flip(states[1], axis=1)).max())}


if __name__ == "__main__":
    print(json.dumps(run(*map(int, sys.argv[1:]))))
