"""How a training run uses the hardware (backend, padding-free batches, precision, XLA,
distribution) and seeding."""

import contextlib
from dataclasses import dataclass

import keras

from pipelines.core.errors import ParamsError


def seed_everything(seed, deterministic=True):
    """Seeds Python, NumPy and the backend; makes TensorFlow ops deterministic.

    `deterministic=False` turns TensorFlow's op determinism off, which Keras
    requires for XLA (`jit_compile: true`).
    """
    keras.utils.set_random_seed(int(seed))
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if deterministic:
            tf.config.experimental.enable_op_determinism()
        else:
            from tensorflow.python.framework.config import disable_op_determinism

            disable_op_determinism()


def compiled(function):
    """`function` of tensors as the backend runs repeated calls fastest: a tf.function (which
    stops retracing for new shapes after the first few) or jax.jit; torch runs it eagerly.
    Its Python-scalar closures are constants: pass what changes between calls as tensors."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(function, reduce_retracing=True)
    if backend == "jax":
        import jax

        return jax.jit(function)
    return function


PRECISION_POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
DISTRIBUTIONS = ("data_parallel",)


@dataclass
class Runtime:
    """How a training run uses the hardware; see `training_runtime`."""

    backend: str
    padding_free: bool
    precision: str
    jit_compile: object
    distribution: str = None
    replicas: int = 1
    devices: tuple = ()
    strategy: object = None

    def scope(self):
        """Where to build and compile the model (the tf.distribute strategy's scope)."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def summary(self):
        return {"backend": self.backend, "padding_free": self.padding_free, "precision": self.precision,
                "jit_compile": self.jit_compile, "distribution": self.distribution, "replicas": self.replicas,
                "devices": list(self.devices)}


def _flag(cfg, key, default):
    value = cfg.get(key, default)
    if value in ("auto", None) or isinstance(value, bool):
        return value
    raise ParamsError(f"train.{key} must be auto, true or false, got {value!r}")


def accelerators():
    """Names of the GPUs the Keras backend sees (empty on a CPU-only machine)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tuple(d.name for d in tf.config.list_logical_devices("GPU"))
    if backend == "jax":
        import jax

        return tuple(str(d) for d in jax.devices() if d.platform == "gpu")
    if backend == "torch":
        import torch

        return tuple(f"cuda:{i}" for i in range(torch.cuda.device_count()))
    return ()


@contextlib.contextmanager
def training_runtime(cfg):
    """Applies the hardware settings of a train params section; yields a `Runtime`.

    Keras places work on a visible GPU by itself, so nothing here is needed
    for single-GPU training. The keys (all optional):
      padding_free: auto | true | false. Batches of equal-length sequences
        and Bi-RNNs without a mask. auto: on with JAX and torch, whose cuDNN
        kernels refuse any mask; TensorFlow's accepts right-padded masks.
      mixed_precision: null | float32 | mixed_float16 | mixed_bfloat16.
      jit_compile: auto | true | false (XLA; auto is Keras' own choice). With
        TensorFlow, true needs op determinism off (`seed_everything`).
      distribution: null | data_parallel. Copies the model to every GPU and
        splits each batch between them: tf.distribute.MirroredStrategy with
        TensorFlow, keras.distribution.DataParallel with JAX.
    The global dtype policy and distribution are restored on exit.
    """
    backend = keras.backend.backend()
    padding_free = _flag(cfg, "padding_free", "auto")
    if padding_free in ("auto", None):
        padding_free = backend in ("jax", "torch")
    precision = cfg.get("mixed_precision") or "float32"
    if precision not in PRECISION_POLICIES:
        raise ParamsError(f"train.mixed_precision must be null or one of {', '.join(PRECISION_POLICIES)}, "
                         f"got {precision!r}")
    jit_compile = _flag(cfg, "jit_compile", "auto")
    if jit_compile is None:
        jit_compile = "auto"
    distribution = cfg.get("distribution")
    if distribution is not None and distribution not in DISTRIBUTIONS:
        raise ParamsError(f"train.distribution must be null or one of {', '.join(DISTRIBUTIONS)}, "
                         f"got {distribution!r}")
    runtime = Runtime(backend, bool(padding_free), precision, jit_compile, distribution, devices=accelerators())

    previous_policy = keras.config.dtype_policy()
    previous_distribution = None
    keras.mixed_precision.set_global_policy(precision)
    try:
        if distribution == "data_parallel":
            if backend == "tensorflow":
                import tensorflow as tf

                # All GPUs, or the CPU when there are none.
                runtime.strategy = tf.distribute.MirroredStrategy()
                runtime.replicas = runtime.strategy.num_replicas_in_sync
            elif backend == "jax":
                previous_distribution = keras.distribution.distribution()
                data_parallel = keras.distribution.DataParallel()
                keras.distribution.set_distribution(data_parallel)
                runtime.replicas = len(data_parallel.device_mesh.devices.flatten())
            else:
                raise ParamsError(f"train.distribution: data_parallel needs the tensorflow or jax backend, "
                                 f"not {backend}")
        yield runtime
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
        if backend == "jax" and distribution == "data_parallel":
            keras.distribution.set_distribution(previous_distribution)
