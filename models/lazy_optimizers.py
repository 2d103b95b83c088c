"""Adam and Nadam that update only the embedding rows a batch used.

Under TensorFlow the gradient of an embedding lookup is a `tf.IndexedSlices`
holding the rows the batch used. Keras' clipnorm turns it into a dense matrix
and Keras' Adam and Nadam then update every row's moments and weights, so
each step reads and writes the whole vocabulary. For the NER tagger on a
2-core CPU that was about a fifth of the training step. These subclasses
clip the sparse gradient with the same norm and update only its rows, as
TensorFlow Addons' LazyAdam did: a row's moments decay only on the steps
that use it. Dense gradients (every other weight, and every weight under
JAX and torch) get Keras' own update unchanged.
"""

import keras
from keras import ops


def _is_sparse(gradient):
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return isinstance(gradient, tf.IndexedSlices)


def _unique_rows(gradient):
    """(row ids, summed rows): a row used twice in a batch gets one summed gradient."""
    import tensorflow as tf

    ids, positions = tf.unique(gradient.indices)
    rows = tf.math.unsorted_segment_sum(gradient.values, positions, tf.shape(ids)[0])
    return ids, rows


def _sparse(rows, ids, like):
    import tensorflow as tf

    return tf.IndexedSlices(rows, ids, like.dense_shape)


class _LazyRows:
    """With `use_ema`, the moving average of a sparsely updated variable is lazy too: a row's
    average is brought up to date only when the row changes, by the closed form of the steps it
    missed (its value was constant: avg <- m^k avg + (1 - m^k) value), so it equals Keras' dense
    average without touching every row on every step. `bring_averages_up_to_date()` does the
    same for every row; call it before reading the averages (AveragedWeightsSwap does)."""

    def build(self, variables):
        super().build(variables)
        self._lazy_average_rows = {}  # variable index -> this step's row ids, filled while tracing
        self._lazily_averaged = set()
        self._average_steps = {}
        if self.use_ema and keras.backend.backend() == "tensorflow":
            for i, variable in enumerate(variables):
                if len(variable.shape) == 2:
                    # The step each row's average is up to date with; -1: never averaged (avg = value).
                    self._average_steps[i] = self.add_variable(
                        (variable.shape[0],), initializer=keras.initializers.Constant(-1), dtype="int32",
                        name=f"{variable.name}_average_step")

    def _catch_up_rows(self, variable, ids):
        """Brings the average of rows `ids` up to the previous step, before the rows change."""
        import tensorflow as tf

        if not self.use_ema:
            return
        index = self._get_variable_index(variable)
        if index not in self._average_steps:
            return
        average = self._model_variables_moving_average[index]
        last = tf.gather(self._average_steps[index].value, ids)
        missed = ops.cast(ops.maximum(ops.cast(self.iterations, "int32") - 1 - last, 0), average.dtype)
        decay = ops.expand_dims(ops.power(ops.cast(self.ema_momentum, average.dtype), missed), -1)
        values = tf.gather(variable, ids)  # inside update_step: the backend variable itself
        caught_up = decay * tf.gather(average.value, ids) + (1 - decay) * values
        caught_up = ops.where(ops.expand_dims(last < 0, -1), values, caught_up)
        self.assign(average, tf.IndexedSlices(caught_up, ids, tf.shape(average.value, out_type=ids.dtype)))
        self._lazy_average_rows[index] = ids
        self._lazily_averaged.add(index)

    def _update_model_variables_moving_average(self, trainable_variables):
        rows, self._lazy_average_rows = self._lazy_average_rows, {}
        if not self.use_ema or not rows:
            return super()._update_model_variables_moving_average(trainable_variables)
        import tensorflow as tf

        first = ops.equal(self.iterations, 0)
        for index, (variable, average) in enumerate(zip(trainable_variables, self._model_variables_moving_average)):
            if average is None:
                continue
            momentum = ops.where(first, 0.0, ops.cast(self.ema_momentum, "float32"))
            momentum = ops.cast(momentum, variable.dtype)
            if index not in rows:
                average.assign(momentum * average + (1 - momentum) * variable)
                continue
            ids = rows[index]
            updated = momentum * tf.gather(average.value, ids) + (1 - momentum) * tf.gather(variable.value, ids)
            self.assign(average, tf.IndexedSlices(updated, ids, tf.shape(average.value, out_type=ids.dtype)))
            steps = self._average_steps[index]
            now = tf.fill(tf.shape(ids), ops.cast(self.iterations, "int32"))
            self.assign(steps, tf.IndexedSlices(now, ids, tf.shape(steps.value, out_type=ids.dtype)))

    def bring_averages_up_to_date(self):
        """Every lazily averaged row's average as Keras' dense average would be now (eager)."""
        if not self.use_ema or not self._lazily_averaged:
            return
        done = int(keras.ops.convert_to_numpy(self.iterations)) - 1
        if done < 0:
            return
        for index in sorted(self._lazily_averaged):
            variable, average = self._trainable_variables[index], self._model_variables_moving_average[index]
            steps = self._average_steps[index]
            last = ops.expand_dims(steps.value, -1)
            missed = ops.cast(ops.maximum(done - last, 0), average.dtype)
            decay = ops.power(ops.cast(self.ema_momentum, average.dtype), missed)
            caught_up = decay * average.value + (1 - decay) * variable.value
            average.assign(ops.where(last < 0, variable.value, caught_up))
            steps.assign(ops.full_like(steps.value, done))

    def _clip_by_norm(self, values, axes=None):
        if not _is_sparse(values):
            return super()._clip_by_norm(values, axes)
        ids, rows = _unique_rows(values)
        # The unused rows are zero, so the rows' norm is the dense gradient's.
        return _sparse(super()._clip_by_norm(rows, axes), ids, values)

    def _update_row_moments(self, gradient, variable, beta_1, beta_2):
        """Updates the moments of the used rows; returns (row ids, gradient rows, m rows, v rows)."""
        import tensorflow as tf

        ids, rows = _unique_rows(gradient)
        rows = ops.cast(rows, variable.dtype)
        self._catch_up_rows(variable, ids)
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        m_rows = tf.gather(m.value, ids)
        v_rows = tf.gather(v.value, ids)
        m_rows = m_rows + (rows - m_rows) * (1 - beta_1)
        v_rows = v_rows + (ops.square(rows) - v_rows) * (1 - beta_2)
        self.assign(m, _sparse(m_rows, ids, gradient))
        self.assign(v, _sparse(v_rows, ids, gradient))
        return ids, rows, m_rows, v_rows


@keras.saving.register_keras_serializable(package="bilstm")
class LazyAdam(_LazyRows, keras.optimizers.Adam):
    """`keras.optimizers.Adam` with row-wise (lazy) updates of sparse gradients."""

    def update_step(self, gradient, variable, learning_rate):
        if not _is_sparse(gradient) or self.amsgrad:
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        step = ops.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = ops.cast(self.beta_1, dtype), ops.cast(self.beta_2, dtype)
        alpha = lr * ops.sqrt(1 - ops.power(beta_2, step)) / (1 - ops.power(beta_1, step))
        ids, rows, m_rows, v_rows = self._update_row_moments(gradient, variable, beta_1, beta_2)
        self.assign_sub(variable, _sparse(m_rows * alpha / (ops.sqrt(v_rows) + self.epsilon), ids, gradient))


@keras.saving.register_keras_serializable(package="bilstm")
class LazyNadam(_LazyRows, keras.optimizers.Nadam):
    """`keras.optimizers.Nadam` with row-wise (lazy) updates of sparse gradients."""

    def update_step(self, gradient, variable, learning_rate):
        if not _is_sparse(gradient):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        step = ops.cast(self.iterations + 1, dtype)
        decay = ops.cast(0.96, dtype)
        beta_1, beta_2 = ops.cast(self.beta_1, dtype), ops.cast(self.beta_2, dtype)
        # Keras' momentum schedule, shared by every row.
        u_t = beta_1 * (1.0 - 0.5 * ops.power(decay, step))
        u_t_1 = beta_1 * (1.0 - 0.5 * ops.power(decay, step + 1))
        u_product_t = ops.cast(self._u_product, dtype)
        u_product_t_1 = u_product_t * u_t_1
        ids, rows, m_rows, v_rows = self._update_row_moments(gradient, variable, beta_1, beta_2)
        m_hat = u_t_1 * m_rows / (1 - u_product_t_1) + (1 - u_t) * rows / (1 - u_product_t)
        v_hat = v_rows / (1 - ops.power(beta_2, step))
        self.assign_sub(variable, _sparse(m_hat * lr / (ops.sqrt(v_hat) + self.epsilon), ids, gradient))
