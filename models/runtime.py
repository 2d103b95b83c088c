"""Helpers the models share for masks, replicas and rebuilding."""

import keras
from keras import ops


def scale_loss_for_replicas(loss):
    """Divides a per-replica loss by the replica count under tf.distribute.

    Keras does this for losses passed to `compile`; models that override
    `compute_loss` must do it themselves or their gradients, summed over
    replicas, grow with the number of GPUs.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if replicas > 1:
            loss = ops.multiply(loss, ops.cast(1.0 / replicas, loss.dtype))
    return loss


def rebuild(model, **changes):
    """A new model of the same class and weights, with some config values changed.

    Used to turn a model trained without recurrent masks (`rnn_mask=False`)
    or under a mixed precision policy into the float32, masked model that is
    saved and served. The new model follows the global dtype policy in force.
    """
    twin = type(model).from_config({**model.get_config(), **changes})
    twin.set_weights(model.get_weights())
    return twin
