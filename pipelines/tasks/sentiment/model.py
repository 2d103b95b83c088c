"""The sentiment model hooks: building the classifier, probabilities, attention weights."""

import keras
import numpy as np

from pipelines.core.predicting import predict_in_order


def build_model(model_cfg, vocab):
    from models.classifier import TextClassifier

    return TextClassifier(vocab_size=len(vocab["words"]), num_classes=len(vocab["labels"]),
                          ngram_features=len(vocab.get("ngrams") or ()), **model_cfg)


def load_model(path):
    import models.classifier  # noqa: F401  registers the custom layers

    return keras.saving.load_model(path)


def predict_probabilities(model, features, batch_size=256):
    """(N, C) class probabilities in input order."""
    return np.stack(predict_in_order(model, features, batch_size)).astype(np.float32)


def attention_for_text(model, encoder, text):
    """(token, weight) pairs of an attention-pooling model for one raw text."""
    tokens = encoder.tokens(text)
    ids = encoder.word_ids(tokens)[None]
    weights = keras.ops.convert_to_numpy(model.attention({"words": ids}))[0]
    return list(zip(tokens or [""], weights.tolist()))


def fit_mix(deep, wide, y, sigmoid):
    """(a, b) >= 0 minimising the log-loss of a * deep + b * wide on held-out labels y."""
    from scipy.optimize import minimize

    y = np.asarray(y)
    deep, wide = deep.astype(np.float64), wide.astype(np.float64)

    def loss(ab):
        z = ab[0] * deep + ab[1] * wide
        if sigmoid:
            return float(np.mean(np.logaddexp(0.0, z[:, 0]) - y * z[:, 0]))
        z = z - z.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y]))

    best = minimize(loss, x0=np.array([1.0, 1.0]), method="L-BFGS-B", bounds=[(0.0, 20.0), (0.0, 20.0)])
    return [float(v) for v in best.x]


def logit_parts(model, encoder, split, batch_size=256, desc="predicting", features=None):
    """(model logits, recurrent logits, wide logits) of a split, each (N, num_logits), in input order.
    `features`: the split already encoded (split.features(encoder)), if at hand."""
    parts = model.logit_parts()
    parts.rnn_mask = model.rnn_mask
    features = split.features(encoder) if features is None else features
    out = np.stack(predict_in_order(parts, features, batch_size, desc=desc)).astype(np.float32)
    n = model.num_logits
    return out[:, :n], out[:, n : 2 * n], out[:, 2 * n :]


def classes_of(logits):
    return (logits[:, 0] > 0).astype(np.int64) if logits.shape[1] == 1 else logits.argmax(axis=1)


def fit_wide_side(model, encoder, train_split, val_split, cfg):
    """Fits the wide side of a classifier that has one: the NB-weighted n-gram logistic
    regression on the train split, then the mix of recurrent and wide logits on validation.
    Returns what it found (validation accuracy of each side and of the mix), or None."""
    import sys

    from pipelines.core.progress import heartbeat

    if getattr(model, "wide", None) is None:
        return None
    num_features = model.ngram_features
    with heartbeat("train: fitting the n-gram side", stream=sys.stdout):
        from pipelines.text.ngrams import fit_nb_linear, presence_matrix

        X = presence_matrix(train_split.features(encoder)["ngrams"], num_features)
        weights, intercept, seconds = fit_nb_linear(X, train_split.y, model.num_classes, model.num_logits)
    model.wide.table.assign(weights)
    model.wide.bias.assign(intercept)
    model.wide.mix.assign(np.array([1.0, 0.0], dtype=np.float32))
    _, deep, wide = logit_parts(model, encoder, val_split, cfg.get("eval_batch_size", 256), desc="train: validation")
    y = np.asarray(val_split.y)
    a, b = fit_mix(deep, wide, y, sigmoid=model.num_logits == 1)
    model.wide.mix.assign(np.array([a, b], dtype=np.float32))

    def accuracy(logits):
        return round(float(np.mean(classes_of(logits) == y)), 5)

    record = {"ngram_features": num_features, "fit_seconds": round(seconds, 1), "mix": [round(a, 5), round(b, 5)],
              "val_accuracy": {"recurrent": accuracy(deep), "ngram": accuracy(wide),
                               "mixed": accuracy(a * deep + b * wide)}}
    acc = record["val_accuracy"]
    print(f"train: n-gram side fitted in {seconds:.0f} s; validation accuracy recurrent {acc['recurrent']:.4f}, "
          f"n-gram {acc['ngram']:.4f}, mixed {acc['mixed']:.4f} (mix {a:.3f} x recurrent + {b:.3f} x n-gram)")
    return record
