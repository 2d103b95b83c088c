"""The one prediction loop: a model's outputs for encoded examples, in input order."""

import keras

from pipelines.core.batching import BucketBatcher
from pipelines.core.progress import Progress


def predict_in_order(model, features, batch_size=256, per_token=False, desc="predicting"):
    """One output per example, in input order; `per_token` cuts each row to its example's length.

    Examples are batched by length (little padding). A model trained
    padding-free (rnn_mask False) is only right on unpadded batches, so it
    gets batches of equal-length examples. Long runs print progress (`desc`).
    """
    batcher = BucketBatcher(features, None, batch_size=batch_size, shuffle=False,
                            exact_lengths=not getattr(model, "rnn_mask", True))
    out = [None] * batcher.size
    with Progress(desc, total=batcher.size, unit="examples") as progress:
        for i in range(len(batcher)):
            (x,) = batcher[i]
            pred = keras.ops.convert_to_numpy(model.predict_on_batch(x))
            for row, j in enumerate(batcher.batch_indices[i]):
                out[j] = pred[row, : batcher.lengths[j]] if per_token else pred[row]
            progress.update(len(batcher.batch_indices[i]))
    return out
