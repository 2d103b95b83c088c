"""LSTM and GRU layers whose generic loop multiplies the inputs once, before the loop,
and a Bi-LSTM that tags a single sequence in one loop.

Keras' own layers run on cuDNN when the backend allows it. Everywhere else
(any CPU, or a mask under JAX and torch) they fall back to a loop whose
every step multiplies that step's inputs by the input kernel: T small
matrix products instead of one large one. These subclasses keep Keras'
weights, configuration and fast paths, and only replace that fallback with
one that computes `inputs @ kernel + bias` for every step at once and leaves
the recurrent product in the loop. The results are the same up to float
rounding; `tests/models/test_recurrent.py` checks it against Keras' layers.
"""

import keras
from keras import layers, ops
from keras.src import backend  # rnn, lstm and gru: the per-backend loops Keras itself uses


def _hoisting_possible(layer, training):
    # Dropout on the inputs differs per step in Keras' cell (one mask per
    # sequence, but applied inside the step); keep Keras' loop when it is on.
    cell = layer.cell
    return not (training and cell.dropout) and not cell.recurrent_dropout and not layer.unroll


def _backend_kernel(layer, kernel_fn, *args, **kwargs):
    """The backend's own kernel (cuDNN) where this backend and mask allow it, else None."""
    if layer.use_cudnn != "auto":
        return None
    cell = layer.cell
    try:
        out = kernel_fn(
            *args, kernel=cell.kernel, recurrent_kernel=cell.recurrent_kernel, bias=cell.bias,
            activation=cell.activation, recurrent_activation=cell.recurrent_activation,
            return_sequences=layer.return_sequences, go_backwards=layer.go_backwards, unroll=False, **kwargs,
        )
    except NotImplementedError:
        return None
    if backend.backend() == "tensorflow":
        layer.supports_jit = False  # as Keras does: cuDNN ops are not XLA-compatible
    return out


def _generic_rnn(layer, step, projected, initial_state, mask):
    return backend.rnn(
        step,
        projected,
        initial_state,
        go_backwards=layer.go_backwards,
        mask=mask,
        unroll=False,
        input_length=projected.shape[1],
        zero_output_for_mask=layer.zero_output_for_mask,
        return_all_outputs=layer.return_sequences,
    )


@keras.saving.register_keras_serializable(package="bilstm")
class ProjectedLSTM(layers.LSTM):
    """`keras.layers.LSTM` with the input projection taken out of the step loop."""

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if keras.tree.is_nested(mask):
            mask = mask[0]
        if self.use_cudnn is True or not _hoisting_possible(self, training):
            return super().inner_loop(sequences, initial_state, mask, training=training)
        cell = self.cell
        out = _backend_kernel(self, backend.lstm, sequences, initial_state[0], initial_state[1], mask)
        if out is not None:
            return out
        projected = ops.matmul(sequences, cell.kernel)
        if cell.use_bias:
            projected = projected + cell.bias

        def step(z_x, states):
            h_tm1, c_tm1 = states
            z = z_x + ops.matmul(h_tm1, cell.recurrent_kernel)
            c, o = cell._compute_carry_and_output_fused(ops.split(z, 4, axis=-1), c_tm1)
            h = o * cell.activation(c)
            return h, [h, c]

        return _generic_rnn(self, step, projected, list(initial_state), mask)


@keras.saving.register_keras_serializable(package="bilstm")
class ProjectedGRU(layers.GRU):
    """`keras.layers.GRU` with the input projection taken out of the step loop."""

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if keras.tree.is_nested(mask):
            mask = mask[0]
        cell = self.cell
        if self.use_cudnn is True or not _hoisting_possible(self, training) or not cell.reset_after:
            return super().inner_loop(sequences, initial_state, mask, training=training)
        state = initial_state[0] if keras.tree.is_nested(initial_state) else initial_state
        out = _backend_kernel(self, backend.gru, sequences, state, mask, reset_after=cell.reset_after)
        if out is not None:
            return out
        projected = ops.matmul(sequences, cell.kernel)
        if cell.use_bias:
            input_bias, recurrent_bias = cell.bias[0], cell.bias[1]
            projected = projected + input_bias

        def step(z_x, states):
            h_tm1 = states[0]
            x_z, x_r, x_h = ops.split(z_x, 3, axis=-1)
            inner = ops.matmul(h_tm1, cell.recurrent_kernel)
            if cell.use_bias:
                inner = inner + recurrent_bias
            r_z, r_r, r_h = ops.split(inner, 3, axis=-1)
            z = cell.recurrent_activation(x_z + r_z)
            r = cell.recurrent_activation(x_r + r_r)
            hh = cell.activation(x_h + r * r_h)
            h = z * h_tm1 + (1 - z) * hh
            return h, [h]

        return _generic_rnn(self, step, projected, [state], mask)


def _tensorflow_cpu():
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return not tf.config.list_physical_devices("GPU")


# Named as Keras' layer: .keras files keep weights under the class's snake-case name, so
# models saved with `keras.layers.Bidirectional` load into this one and back.
@keras.saving.register_keras_serializable(package="bilstm")
class Bidirectional(layers.Bidirectional):
    """`keras.layers.Bidirectional` that runs both LSTM directions of a one-row batch in
    one loop at inference on a CPU under TensorFlow.

    TensorFlow runs the two directions' loops side by side, which pays for a batch of
    many rows; for one row (a served sentence) each loop step is mostly per-op overhead,
    and one loop over both directions is about 1.6x faster (17 steps: 4.5 -> 2.8 ms on a
    2-core CPU; the NER SavedModel's single-sentence p50 0.85x). With two rows and more
    the two loops are faster, so the row count picks at run time, and training keeps
    them. The results are the same up to float rounding (`tests/models/test_recurrent.py`).
    """

    def call(self, sequences, initial_state=None, mask=None, training=None):
        def two_loops():
            return super(Bidirectional, self).call(
                sequences, initial_state=initial_state, mask=mask, training=training)

        if not self._one_loop_possible(initial_state, training):
            return two_loops()
        return ops.cond(ops.shape(sequences)[0] == 1, lambda: self._one_loop(sequences, mask), two_loops)

    def _one_loop_possible(self, initial_state, training):
        forward, backward = self.forward_layer, self.backward_layer
        return (
            not training and initial_state is None and self.merge_mode == "concat" and not self.return_state
            and self.compute_dtype == "float32" and not self.stateful
            and all(type(layer) is ProjectedLSTM and layer.return_sequences and not layer.cell.recurrent_dropout
                    for layer in (forward, backward))
            and forward.cell.activation is backward.cell.activation
            and forward.cell.recurrent_activation is backward.cell.recurrent_activation
            and _tensorflow_cpu()
        )

    def _one_loop(self, sequences, mask):
        forward, backward = self.forward_layer.cell, self.backward_layer.cell
        units = forward.units
        if mask is None:
            mask = ops.ones(ops.shape(sequences)[:2], dtype="bool")
        real = ops.cast(mask, "float32")[..., None]
        # Backward: the padded sequence reversed, padding first, as Keras' go_backwards.
        steps = [ops.matmul(sequences, forward.kernel), ops.matmul(ops.flip(sequences, axis=1), backward.kernel)]
        if forward.use_bias:
            steps = [steps[0] + forward.bias, steps[1] + backward.bias]
        steps = ops.concatenate(steps + [real, ops.flip(real, axis=1)], axis=-1)
        recurrent = ops.stack([forward.recurrent_kernel.value, backward.recurrent_kernel.value], axis=0)

        def step(z, states):
            # states: (2, batch, units), forward then backward
            h_tm1, c_tm1 = states
            z_x = ops.stack([z[:, : 4 * units], z[:, 4 * units : 8 * units]], axis=0)
            real_t = ops.stack([z[:, 8 * units : 8 * units + 1], z[:, 8 * units + 1 :]], axis=0) > 0.5
            i, f, g, o = ops.split(z_x + ops.matmul(h_tm1, recurrent), 4, axis=-1)
            c = forward.recurrent_activation(f) * c_tm1 + forward.recurrent_activation(i) * forward.activation(g)
            h = forward.recurrent_activation(o) * forward.activation(c)
            h, c = ops.where(real_t, h, h_tm1), ops.where(real_t, c, c_tm1)
            return h, [h, c]

        zeros = ops.zeros((2, ops.shape(sequences)[0], units), dtype="float32")
        _, outputs, _ = backend.rnn(step, steps, [zeros, zeros], unroll=False, input_length=steps.shape[1])
        outputs = ops.transpose(outputs, (2, 1, 0, 3))  # (batch, time, direction, units)
        # Zero at padding, as Bidirectional makes its layers' outputs there.
        forward_out = outputs[:, :, 0] * real
        backward_out = ops.flip(outputs[:, :, 1], axis=1) * real
        return ops.concatenate([forward_out, backward_out], axis=-1)


RNN_TYPES = ("lstm", "gru")


def bidirectional(rnn_type, units, name, return_sequences=True):
    """A Bi-LSTM or Bi-GRU of `units` per direction."""
    if rnn_type not in RNN_TYPES:
        raise ValueError(f"rnn_type must be one of {RNN_TYPES}, got {rnn_type!r}")
    cell = ProjectedLSTM if rnn_type == "lstm" else ProjectedGRU
    # Keras' defaults (tanh/sigmoid, no recurrent dropout, not unrolled) keep
    # the layer eligible for cuDNN.
    return Bidirectional(cell(units, return_sequences=return_sequences), name=name)
