"""GPU benchmark: full-data NER and sentiment training under JAX or torch, one line per variant.

Usage: KERAS_BACKEND=jax python -m benchmarks.gpu [--tasks ner sentiment] [--epochs 3]
           [--variants padding_free/float32 masked/float32 ...] [--params P] [--out-root DIR] [--data-root DIR]

For each task it prepares the data of params.yaml (the full CoNLL-2003 and IMDB
in ../shared/data by default) once, then trains the task's default model with
the train stage's own driver for `--epochs` epochs per variant: padding-free
(equal-length batches, no RNN mask: the cuDNN kernel) or masked batches, float32
or mixed precision (mixed_float16). It prints, per variant, the epoch seconds
(the first includes compilation), training tokens/s (real tokens over the median
of the epochs after the first), the best validation score and, under JAX, the
XLA compilations of train_step per epoch next to the number of distinct batch
shapes. Mixed precision runs only where the backend sees a GPU (on a CPU it is
slower, not faster, and says nothing about a GPU); `--variants` picks any.
Nothing here imports TensorFlow, so it runs where only JAX or torch is installed.
Writes <out-root>/gpu.json (default outputs/benchmark/gpu).
"""

import argparse
import collections
import copy
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

from pipelines.tasks import TASK_NAMES

VARIANTS = {
    "padding_free/float32": {"padding_free": True, "mixed_precision": None},
    "masked/float32": {"padding_free": False, "mixed_precision": None},
    "padding_free/mixed_float16": {"padding_free": True, "mixed_precision": "mixed_float16"},
    "masked/mixed_float16": {"padding_free": False, "mixed_precision": "mixed_float16"},
}
ACCELERATOR_ONLY = {"padding_free/mixed_float16", "masked/mixed_float16"}
STEP_KINDS = ("train_step", "test_step", "predict_step")


class CompilationCounter:
    """Counts XLA compilations under JAX by the jitted function's name (jax.monitoring)."""

    EVENT = "/jax/core/compile/backend_compile_duration"

    def __init__(self):
        self.counts = collections.Counter()
        import jax.monitoring

        jax.monitoring.register_event_duration_secs_listener(self.on_event)

    def on_event(self, event, duration, **kwargs):
        if event == self.EVENT:
            name = str(kwargs.get("fun_name", ""))
            self.counts[next((kind for kind in STEP_KINDS if kind in name), "other")] += 1

    def snapshot(self):
        return dict(self.counts)


def epoch_callback(counter):
    """A Keras callback recording the compilations of each epoch."""
    import keras

    class PerEpoch(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epochs, self.last = [], counter.snapshot()

        def on_epoch_end(self, epoch, logs=None):
            now = counter.snapshot()
            self.epochs.append({k: now.get(k, 0) - self.last.get(k, 0) for k in (*STEP_KINDS, "other")})
            self.last = now

    return PerEpoch()


def distinct_batch_shapes(task, out, batch_size, seed, padding_free, epochs):
    """Distinct shapes (of all input arrays) of the training batches over `epochs` epochs, batched as the
    trainer does; each needs its own XLA compilation of train_step."""
    from pipelines.core.batching import BucketBatcher

    split = task.load_split(out, "train")
    batcher = BucketBatcher(split.features(task.encoder(out)), split.y, batch_size=batch_size, shuffle=True,
                            seed=seed, exact_lengths=padding_free)
    shapes = set()
    for _ in range(epochs):
        shapes.update(tuple(a.shape for a in batcher[i][0].values()) for i in range(len(batcher)))
        batcher.on_epoch_end()
    return len(shapes)


def run_variant(task, params, prepared, out, variant, counter, log):
    from pipelines.core.trainer import train

    section = params[task.name]
    train_cfg = section["train"]
    train_cfg.update(VARIANTS[variant])
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(prepared, out)
    callbacks = [epoch_callback(counter)] if counter else []
    log(f"{task.name} {variant}: training {train_cfg['epochs']} epochs")
    summary, details = train(task, params, out, callbacks=callbacks)
    history = json.loads((out / "history.json").read_text())
    seconds = [row["epoch_seconds"] for row in history]
    tokens = task.load_split(out, "train").num_tokens
    steady = statistics.median(seconds[1:]) if len(seconds) > 1 else seconds[0]
    record = {
        "variant": variant, "epoch_seconds": [round(s, 2) for s in seconds], "train_tokens": tokens,
        "train_tokens_per_second": round(tokens / steady), "monitor": details["monitor"],
        "best_validation": summary["best_val"], "runtime": details["runtime"],
    }
    if counter:
        record["compilations_per_epoch"] = callbacks[0].epochs
        record["distinct_train_batch_shapes"] = distinct_batch_shapes(
            task, out, train_cfg["batch_size"], params["seed"], VARIANTS[variant]["padding_free"], len(seconds))
    log(f"{task.name} {variant}: {format_row(record)}")
    return record


def format_row(r):
    line = (f"epoch s {r['epoch_seconds']}, {r['train_tokens_per_second']:,} tokens/s, "
            f"best {r['monitor']} {r['best_validation']:.4f}")
    if "compilations_per_epoch" in r:
        steps = [e["train_step"] for e in r["compilations_per_epoch"]]
        line += f", train_step compilations per epoch {steps} ({r['distinct_train_batch_shapes']} batch shapes)"
    return line


def pick_variants(requested, gpus):
    """The requested variants, or all of them, without mixed precision when there is no GPU."""
    return list(requested) if requested else [v for v in VARIANTS if gpus or v not in ACCELERATOR_ONLY]


def run(args, log=print):
    import keras

    from pipelines.core.config import ROOT, load_params, resolve_path
    from pipelines.core.runtime import accelerators
    from pipelines.tasks import load_task

    backend = keras.backend.backend()
    gpus = accelerators()
    variants = pick_variants(args.variants, gpus)
    if not args.variants and len(variants) < len(VARIANTS):
        log(f"no GPU seen by {backend}: skipping {', '.join(v for v in VARIANTS if v not in variants)}")
    out_root = resolve_path(args.out_root) if args.out_root else ROOT / "outputs" / "benchmark" / "gpu"
    counter = CompilationCounter() if backend == "jax" else None
    result = {"backend": backend, "accelerators": list(gpus), "keras": keras.__version__, "tasks": {}}
    for name in args.tasks:
        params = load_params(args.params)
        task = load_task(name)
        section = params[name]
        # Random word embeddings: the word2vec stage takes minutes and changes no speed.
        # Exactly --epochs epochs: min_steps would stretch a short run.
        section["train"].update(embeddings_file=None, epochs=args.epochs, patience=args.epochs, min_steps=None)
        if "document_vote" in section["train"]:  # after training, TensorFlow string ops; no speed to measure
            section["train"]["document_vote"] = None
        if "embedding_words" in section["prepare"]:  # NER's extra words come from word2vec too
            section["prepare"]["embedding_words"] = None
        if args.data_root:
            # A copy of ../shared/data elsewhere: the same folder names under another root.
            section["prepare"]["source"] = str(Path(args.data_root).resolve() / Path(section["prepare"]["source"]).name)
        prepared = out_root / name / "prepared"
        start = time.perf_counter()
        task.prepare(section["prepare"], prepared, params["seed"])
        log(f"{name}: prepared in {time.perf_counter() - start:.0f} s")
        runs = [run_variant(task, copy.deepcopy(params), prepared, out_root / name / v.replace("/", "_"), v,
                            counter, log) for v in variants]
        result["tasks"][name] = runs
    out_root.mkdir(parents=True, exist_ok=True)
    (out_root / "gpu.json").write_text(json.dumps(result, indent=1) + "\n")
    log(f"\n== GPU benchmark, {backend} on {', '.join(gpus) or 'CPU'} ({out_root / 'gpu.json'}) ==")
    for name, runs in result["tasks"].items():
        for r in runs:
            log(f"{name:9s} {r['variant']:27s} {format_row(r)}")
    return result


def parser():
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__.splitlines()[0], epilog=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", default=list(TASK_NAMES), choices=list(TASK_NAMES))
    p.add_argument("--epochs", type=int, default=3, help="epochs per variant, the first with compilation (3)")
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), help="default: all (float32 only on a CPU)")
    p.add_argument("--params", default=None, help="params file (default: the repository's params.yaml)")
    p.add_argument("--out-root", default=None, help="output folder (default outputs/benchmark/gpu)")
    p.add_argument("--data-root", default=None,
                   help="a folder laid out as ../shared/data (conll2003/, imdb/) to read instead of params' sources")
    return p


def main(argv=None):
    from pipelines.core.errors import DataError, ParamsError, StageError

    args = parser().parse_args(argv)
    if args.epochs < 1:
        parser().error("--epochs must be >= 1")
    try:
        run(args, log=lambda *a: print(*a, flush=True))
    except (DataError, ParamsError, StageError, FileNotFoundError) as err:
        print(f"benchmarks.gpu: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
