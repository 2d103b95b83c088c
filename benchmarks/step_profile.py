"""Where a training step's time goes: timed sub-graphs of one model on the same batches.

Each part is a prefix of the model run forward and backward (gradients of its
own weights) in one `tf.function`: the embeddings (with the character encoder
for NER), then up to the last Bi-RNN layer, then the whole model with its loss
(tag logits and CRF, or pooling and classifier head), then the whole step with
the optimizer's update. A part's cost is its prefix's time minus the previous
prefix's; the rounds alternate the prefixes so that a busy moment of the
machine spreads over all of them, and each prefix keeps its median round.
TensorFlow backend only (the speed benchmark's).
"""

import time

import numpy as np

# (part name, layer whose output ends the prefix), per task; None: the model's loss.
PREFIXES = {
    "ner": [("embeddings + chars", "embedding_dropout"), ("Bi-LSTM", "last_rnn"),
            ("tag logits + CRF loss", None)],
    "sentiment": [("embeddings", "embedding_dropout"), ("Bi-LSTM", "last_rnn"),
                  ("pooling + head", None)],
}
OPTIMIZER_PART = "optimizer update"


def _last_rnn_output(model):
    names = [layer.name for layer in model.layers if layer.name.startswith(("bi_lstm_", "bi_gru_", "rnn_dropout_"))]
    if not names:
        raise ValueError(f"{model.name} has no Bi-RNN layer")
    return model.get_layer(names[-1]).output


def _reduce(gradients):
    """One scalar that depends on every gradient, so none is pruned from the graph."""
    import tensorflow as tf

    total = tf.constant(0.0)
    for g in gradients:
        if g is None:
            continue
        values = g.values if isinstance(g, tf.IndexedSlices) else g
        total += tf.reduce_sum(tf.cast(values, "float32"))
    return total


def _prefix_function(model, layer_name, signature):
    import keras
    import tensorflow as tf

    if layer_name is None:
        sub, variables = model, model.trainable_variables
    else:
        output = _last_rnn_output(model) if layer_name == "last_rnn" else model.get_layer(layer_name).output
        sub = keras.Model(model.input, output)
        variables = sub.trainable_variables

    @tf.function(input_signature=signature)
    def run(x, y):
        with tf.GradientTape() as tape:
            out = sub(x, training=True)
            if layer_name is None:
                loss = model.compute_loss(x, y, out)
            else:  # a fixed linear read-out stands in for the rest of the model
                loss = tf.reduce_mean(tf.cast(out, "float32"))
        return loss + 0.0 * _reduce(tape.gradient(loss, variables))

    return run


def _step_function(model, signature):
    import tensorflow as tf

    variables = model.trainable_variables

    @tf.function(input_signature=signature)
    def run(x, y):
        with tf.GradientTape() as tape:
            loss = model.compute_loss(x, y, model(x, training=True))
        model.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    return run


def profile_step(task_name, model, batches, num_batches=40, rounds=3):
    """Per-part milliseconds per training step of a compiled `model` on the first
    `num_batches` (x, y) batches of `batches`. Returns a JSON-able dict: parts (name,
    ms_per_step, share), step_ms (the whole step), batches, rounds; or {"skipped": why}.
    The optimizer part updates the model's weights (the step really trains)."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return {"skipped": f"the step profile needs the TensorFlow backend, not {keras.backend.backend()}"}
    import tensorflow as tf

    data = [batches[i] for i in range(min(num_batches, len(batches)))]
    signature = [keras.tree.map_structure(lambda a: tf.TensorSpec((None,) * a.ndim, tf.as_dtype(a.dtype)), part)
                 for part in data[0]]
    data = [keras.tree.map_structure(tf.convert_to_tensor, batch) for batch in data]
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    names = [name for name, _ in PREFIXES[task_name]] + [OPTIMIZER_PART]
    functions = [_prefix_function(model, layer, signature) for _, layer in PREFIXES[task_name]]
    functions.append(_step_function(model, signature))

    def one_pass(fn):
        start = time.perf_counter()
        for x, y in data:
            fn(x, y)
        float(fn(*data[0]))  # waits for the queued work
        return time.perf_counter() - start

    for fn in functions:
        one_pass(fn)  # traces
    seconds = [[] for _ in functions]
    for _ in range(rounds):
        for i, fn in enumerate(functions):
            seconds[i].append(one_pass(fn))
    steps = len(data) + 1
    cumulative = [1000.0 * float(np.median(s)) / steps for s in seconds]
    step_ms = cumulative[-1]
    parts, previous = [], 0.0
    for name, total in zip(names, cumulative):
        ms = max(0.0, total - previous)
        parts.append({"part": name, "ms_per_step": round(ms, 2), "share": round(ms / step_ms, 3) if step_ms else None})
        previous = max(previous, total)
    return {"parts": parts, "step_ms": round(step_ms, 2), "cumulative_ms": [round(c, 2) for c in cumulative],
            "batches": len(data), "rounds": rounds}


def format_profile(title, profile):
    """Lines for the speed table: one per part with its share of the step."""
    if not profile or "skipped" in profile:
        return [f"{title} step profile: {profile.get('skipped') if profile else 'not measured'}"]
    parts = ", ".join(f"{p['part']} {p['ms_per_step']:.1f} ms ({100 * p['share']:.0f}%)" for p in profile["parts"])
    return [f"{title} step {profile['step_ms']:.1f} ms: {parts}"]
