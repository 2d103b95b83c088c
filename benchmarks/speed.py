"""Speed benchmark: our NER tagger against flair's BiLSTM-CRF, the SavedModel, IMDB training.

Usage: python -m benchmarks speed [--epochs N] [--max-sentences N] [--no-flair] [--params P] [--out-root DIR] ...

In one run on the same machine and data it measures
- NER training tokens/s of our tagger (params.yaml ner.model, random word
  embeddings) and of flair's SequenceTagger (BiLSTM-CRF on one-hot word and
  character-LSTM embeddings, the same hidden size), on the same training
  sentences: total real tokens / epoch seconds, median over the epochs after
  the warm-up epoch(s);
- batched inference tokens/s of both on the test sentences;
- our exported SavedModel (the export stage's driver) on raw text: batched
  tokens/s and single-sentence latency p50/p95;
- IMDB training tokens/s of the sentiment model.
flair runs in a child process (`python -m benchmarks.speed flair SPEC RESULT`,
benchmarks/flair_runner.py) so that its torch thread pool never competes with
TensorFlow's. Outputs go to <out-root>/speed/ (default outputs/benchmark/speed/):
speed.json (all results) and speed.txt (the table). flair is an optional
dependency: `make speed` or `pip install -r requirements-benchmark.txt`.
"""

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.flair_runner import FLAIR_HINT, FlairMissing, flair_available, flair_main, flair_spec, run_flair_child
from benchmarks.speed_report import (epoch_throughput, format_table, latency_summary, library_versions, load_average,
                                     machine_info, ratio)


@dataclass
class NerRun:
    result: dict
    model: object
    train: object          # the whole train Split
    test_tokens: list
    out: Path              # the prepared folder
    scheme: str            # the tag scheme it was prepared in


def bare_reference(features, y, batch_size, seed, sizes, per_token, epochs, warmup, n_tokens, log=print):
    """A bare Keras Embedding(mask_zero) -> Bidirectional(LSTM) -> Dense of the task's sizes,
    trained with Adam on the same batches of word ids: what the recurrent layer alone costs,
    so that the time our model spends outside it shows in every run."""
    import keras

    from pipelines.core.batching import BucketBatcher, fit_data
    from pipelines.core.training import EpochTimer

    vocab, dim, hidden, outputs = sizes
    batches = BucketBatcher({"words": features["words"]}, y, batch_size=batch_size, shuffle=True, seed=seed)
    words = keras.Input(shape=(None,), dtype="int32", name="words")
    h = keras.layers.Embedding(vocab, dim, mask_zero=True)(words)
    h = keras.layers.Bidirectional(keras.layers.LSTM(hidden, return_sequences=per_token))(h)
    model = keras.Model({"words": words}, keras.layers.Dense(outputs)(h))  # the batches are dicts
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    timer = EpochTimer()
    model.fit(fit_data(batches), epochs=warmup + epochs, shuffle=False, callbacks=[timer], verbose=0)
    tps = epoch_throughput(n_tokens, timer.seconds, warmup)
    described = (f"Embedding({vocab}, {dim}, mask_zero) -> Bidirectional(LSTM({hidden}"
                 f"{', return_sequences' if per_token else ''})) -> Dense({outputs})")
    log(f"bare reference {described}: epoch seconds {[round(s, 2) for s in timer.seconds]}, {tps:,.0f} tokens/s")
    return {"model": described, "epoch_seconds": [round(s, 3) for s in timer.seconds],
            "train_tokens_per_second": round(tps)}


def timed_training(task, params, encoder, tokens, y, epochs, warmup, unit, log=print, bare=None,
                   profile_batches=40):
    """Builds and compiles the task's model as the train stage does (random embeddings) and fits
    it on (tokens, y) without validation; returns (result dict, model). `bare`: (sizes,
    per_token) of a bare_reference trained next on the same batches. Then the step profile
    (benchmarks/step_profile.py) of the trained model on `profile_batches` of those batches."""
    from pipelines.core.batching import BucketBatcher, fit_data
    from pipelines.core.runtime import seed_everything
    from pipelines.core.training import EpochTimer, make_optimizer

    section, seed = params[task.name], params["seed"]
    cfg = section["train"]
    features = encoder.encode(tokens)
    n_tokens = int(sum(len(a) for a in features["words"]))  # what the model reads: truncated, no padding
    seed_everything(seed)
    batches = BucketBatcher(features, y, batch_size=cfg["batch_size"], shuffle=True, seed=seed)
    model = task.build_model(section["model"], encoder.vocab)
    model.compile(optimizer=make_optimizer(cfg, len(batches)), metrics=task.compile_metrics(model) or None)
    log(f"{task.name}: training on {len(tokens):,} {unit} ({n_tokens:,} tokens), {warmup} + {epochs} epochs")
    timer = EpochTimer()
    history = model.fit(fit_data(batches), epochs=warmup + epochs, shuffle=False, callbacks=[timer], verbose=0)
    seconds, losses = timer.seconds, [float(x) for x in history.history["loss"]]
    tps = epoch_throughput(n_tokens, seconds, warmup)
    log(f"{task.name}: epoch seconds {[round(s, 2) for s in seconds]}, {tps:,.0f} tokens/s")
    result = {unit: len(tokens), "tokens": n_tokens, "batch_size": int(cfg["batch_size"]),
              "epoch_seconds": [round(s, 3) for s in seconds], "epoch_losses": [round(x, 4) for x in losses],
              "train_tokens_per_second": round(tps), "model": dict(section["model"])}
    if profile_batches:
        from benchmarks.step_profile import format_profile, profile_step

        result["step_profile"] = profile_step(task.name, model, batches, num_batches=profile_batches)
        log(*format_profile(task.name, result["step_profile"]))
    if bare is not None:
        result["bare_reference"] = bare_reference(features, y, cfg["batch_size"], seed, *bare, epochs, warmup,
                                                  n_tokens, log)
        result["bare_ratio"] = ratio(result["train_tokens_per_second"],
                                     result["bare_reference"]["train_tokens_per_second"])
    return result, model


def prepared(task, params, work):
    out = Path(work) / task.name
    task.prepare(params[task.name]["prepare"], out, params["seed"])
    return out


def measure_ours_ner(params, work, max_sentences, epochs, warmup, inference_batch, repeats, log=print):
    """Prepares CoNLL, trains our tagger on the first `max_sentences` train sentences, times inference."""
    import keras

    from pipelines.tasks import load_task
    from pipelines.tasks.ner.model import predict_tag_ids

    task = load_task("ner")
    out = prepared(task, params, work)
    encoder = task.encoder(out)
    train = task.load_split(out, "train")
    tokens, y = [list(t) for t in train.tokens[:max_sentences]], train.y[:max_sentences]
    test_tokens = [list(t) for t in task.load_split(out, "test").tokens]
    m = params["ner"]["model"]
    sizes = (len(encoder.vocab["words"]), m["word_dim"], m["hidden_size"], len(encoder.vocab["tags"]))
    result, model = timed_training(task, params, encoder, tokens, y, epochs, warmup, "sentences", log,
                                   bare=(sizes, True))

    # Inference counts encoding too: flair's predict embeds (looks tokens up) inside its timing.
    def infer():
        return predict_tag_ids(model, encoder.encode(test_tokens), inference_batch)

    infer()  # traces the predict function for the batch shapes
    infer_seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        infer()
        infer_seconds.append(time.perf_counter() - start)
    test_n = sum(len(t) for t in test_tokens)
    result.update({
        "optimizer": params["ner"]["train"]["optimizer"],
        "parameters": int(model.count_params()),
        "inference_batch_size": int(inference_batch),
        "inference_seconds": [round(s, 3) for s in infer_seconds],
        "inference_tokens_per_second": round(test_n / float(np.median(infer_seconds))),
        "backend": keras.backend.backend(),
    })
    return NerRun(result, model, train, test_tokens, out, encoder.vocab["tag_scheme"])


def measure_saved_model(params, run, batch_sizes, latency_sentences, repeats, log=print):
    """Exports with the export stage's driver and times the serving signature on raw text."""
    import tensorflow as tf

    from pipelines.core.errors import StageError
    from pipelines.core.exporting import export
    from pipelines.core.io import load_json
    from pipelines.tasks import load_task

    run.model.save(run.out / "model.keras")
    try:
        report = export(load_task("ner"), params, run.out)
    except StageError as err:  # recorded in the result, not fatal: export.json has the report
        log(f"warning: {err}")
        report = load_json(run.out / "export.json")
    serve = tf.saved_model.load(str(run.out / "saved_model")).signatures["serving_default"]
    texts = [" ".join(t) for t in run.test_tokens]

    def run_batches(ordered, batch_size):
        # Tokens as the served tokenizer splits the re-joined text (CoNLL test: 2% more than its own).
        tokens = 0
        for start in range(0, len(ordered), batch_size):
            out = serve(text=tf.constant(ordered[start:start + batch_size]))
            tokens += int(out["num_tokens"].numpy().sum())
        return tokens

    orders = {"input order": texts,
              # A client may group requests by length so less padding is computed.
              "length-sorted": sorted(texts, key=len)}
    batched = []
    for order, batch_size in [("input order", b) for b in batch_sizes] + [("length-sorted", batch_sizes[0])]:
        ordered = orders[order]
        run_batches(ordered[: batch_size * 2], batch_size)  # warm-up
        seconds, tokens = [], 0
        for _ in range(repeats):
            start = time.perf_counter()
            tokens = run_batches(ordered, batch_size)
            seconds.append(time.perf_counter() - start)
        tps = tokens / float(np.median(seconds))
        batched.append({"batch_size": int(batch_size), "order": order, "tokens": tokens,
                        "seconds": [round(s, 3) for s in seconds], "tokens_per_second": round(tps)})
        log(f"SavedModel: batch {batch_size}, {order}: {tps:,.0f} tokens/s")

    sample = texts[:latency_sentences]
    for text in sample[:20]:
        serve(text=tf.constant([text]))  # warm-up
    calls = []
    for text in sample:
        start = time.perf_counter()
        serve(text=tf.constant([text]))["tags"].numpy()
        calls.append(time.perf_counter() - start)
    latency = latency_summary(calls)
    log(f"SavedModel: single sentence p50 {latency['p50_ms']} ms, p95 {latency['p95_ms']} ms")
    return {"export_parity_mismatches": report["mismatches"], "export_sentences_checked": report["checked"],
            "batched": batched, "latency": latency,
            "latency_mean_tokens": round(float(np.mean([len(t) for t in run.test_tokens[:latency_sentences]])), 1)}


def measure_imdb(params, work, max_documents, epochs, warmup, log=print):
    """Trains the sentiment model (project code, no validation pass) on a seeded subset of train."""
    from pipelines.tasks import load_task

    task = load_task("sentiment")
    out = prepared(task, params, work)
    train = task.load_split(out, "train")
    tokens, labels = train.tokens, train.y
    if max_documents and max_documents < len(tokens):
        # Seeded sample, sorted: the split may be ordered by label.
        keep = np.sort(np.random.default_rng(params["seed"]).choice(len(tokens), max_documents, replace=False))
        tokens, labels = [tokens[i] for i in keep], labels[keep]
    encoder, m = task.encoder(out), params["sentiment"]["model"]
    sizes = (len(encoder.vocab["words"]), m["embedding_dim"], m["hidden_size"], len(encoder.vocab["labels"]))
    result, _ = timed_training(task, params, encoder, tokens, labels, epochs, warmup, "documents", log,
                               bare=(sizes, False))
    return result


def run_speed(params, work, epochs=3, warmup_epochs=1, max_sentences=None, with_flair=True,
              inference_batch=256, serving_batch_sizes=(256, 1024), latency_sentences=200, repeats=3,
              imdb_documents=5000, with_imdb=True, log=print):
    """Runs every measurement; writes speed.json and speed.txt under `work`; returns (result, table)."""
    if epochs < 1 or warmup_epochs < 0:
        raise ValueError(f"need epochs >= 1 and warmup_epochs >= 0, got {epochs} and {warmup_epochs}")
    if max_sentences is not None and max_sentences < 1:
        raise ValueError(f"max_sentences must be >= 1 or None, got {max_sentences}")
    if with_flair and not flair_available():
        raise FlairMissing(FLAIR_HINT)
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    machine, versions = machine_info(), library_versions()
    log(f"speed benchmark: {machine['cpu_count']} CPUs, load average {machine['load_average_at_start']}")

    ner_run = measure_ours_ner(params, work, max_sentences, epochs, warmup_epochs, inference_batch, repeats, log)
    ner, test_tokens = ner_run.result, ner_run.test_tokens
    flair_result = None
    if with_flair:
        spec = flair_spec(params, ner_run.train, ner["sentences"], test_tokens, ner_run.scheme, epochs,
                          warmup_epochs, inference_batch, repeats, work)
        flair_result = run_flair_child(spec, work, log)
    saved = measure_saved_model(params, ner_run, list(serving_batch_sizes), latency_sentences, repeats, log)
    imdb = measure_imdb(params, work, imdb_documents, epochs, warmup_epochs, log) if with_imdb else None

    result = {
        "machine": machine,
        "versions": versions,
        "data": {"train_sentences": ner["sentences"], "train_tokens": ner["tokens"], "measured_epochs": epochs,
                 "warmup_epochs": warmup_epochs, "test_sentences": len(test_tokens),
                 "test_tokens": sum(len(t) for t in test_tokens)},
        "ner": ner,
        "flair": flair_result,
        "training_ratio": ratio(ner["train_tokens_per_second"],
                                flair_result and flair_result["train_tokens_per_second"]),
        "inference_ratio": ratio(ner["inference_tokens_per_second"],
                                 flair_result and flair_result["inference_tokens_per_second"]),
        "saved_model": saved,
        "imdb": imdb,
    }
    machine["load_average_at_end"] = load_average()  # over the last minute, i.e. during the run
    if flair_result and "flair" not in versions:
        versions["flair"] = flair_result["flair_version"]
    table = format_table(result)
    (work / "speed.json").write_text(json.dumps(result, indent=1))
    (work / "speed.txt").write_text(table + "\n")
    return result, table


# ---------------------------------------------------------------- command line (`python -m benchmarks speed`)

def add_arguments(parser):
    parser.add_argument("--params", default=None, help="params.yaml to read (default: the repository's)")
    parser.add_argument("--out-root", default=None,
                        help="output folder (default outputs/benchmark); results go to <out-root>/speed")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes of each inference measurement")
    parser.add_argument("--epochs", type=int, default=3, help="measured training epochs after the warm-up")
    parser.add_argument("--warmup-epochs", type=int, default=1, help="training epochs left out of the median")
    parser.add_argument("--max-sentences", type=int, default=0,
                        help="train both on the first N CoNLL training sentences (default 0: all 14,041)")
    parser.add_argument("--imdb-documents", type=int, default=5000,
                        help="IMDB training documents, a seeded sample (0: all)")
    parser.add_argument("--inference-batch", type=int, default=256, help="batch size of in-memory inference")
    parser.add_argument("--serving-batch-sizes", type=int, nargs="+", default=[256, 1024],
                        help="SavedModel batch sizes (sentences in input order; the first also length-sorted)")
    parser.add_argument("--latency-sentences", type=int, default=200, help="single-sentence calls timed")
    parser.add_argument("--no-flair", action="store_true", help="measure our side only")
    parser.add_argument("--no-imdb", action="store_true", help="skip the IMDB training measurement")


def check_arguments(parser, args):
    if args.repeats < 1 or args.epochs < 1 or args.warmup_epochs < 0 or args.inference_batch < 1 \
            or args.latency_sentences < 1 or min(args.serving_batch_sizes) < 1 \
            or args.max_sentences < 0 or args.imdb_documents < 0:
        parser.error("speed: --repeats, --epochs, batch sizes and --latency-sentences must be >= 1; "
                     "--warmup-epochs, --max-sentences and --imdb-documents >= 0")


def run(args):
    """The speed benchmark of parsed arguments; returns the exit code (errors: see benchmarks.__main__)."""
    from pipelines.core.config import ROOT, load_params, resolve_path

    params = load_params(args.params)
    # Random word embeddings: the word2vec stage takes minutes and changes no speed.
    for name in ("ner", "sentiment"):
        params[name]["train"]["embeddings_file"] = None
    params["ner"]["prepare"]["embedding_words"] = None
    out = (resolve_path(args.out_root) if args.out_root else ROOT / "outputs" / "benchmark") / "speed"
    for name in ("ner", "sentiment"):
        params[name]["out_dir"] = str(out / name)
    _, table = run_speed(
        params, out, epochs=args.epochs, warmup_epochs=args.warmup_epochs,
        max_sentences=args.max_sentences or None, with_flair=not args.no_flair,
        inference_batch=args.inference_batch, serving_batch_sizes=args.serving_batch_sizes,
        latency_sentences=args.latency_sentences, repeats=args.repeats,
        imdb_documents=args.imdb_documents or None, with_imdb=not args.no_imdb,
        log=lambda *a: print(*a, flush=True),
    )
    print(f"\n== speed benchmark ({out / 'speed.json'}) ==\n{table}")
    return 0


def main(argv=None):
    """`python -m benchmarks.speed flair SPEC RESULT`: the flair child process."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] != ["flair"]:
        print("usage: python -m benchmarks.speed flair SPEC.json RESULT.json "
              "(the speed benchmark itself is `python -m benchmarks speed`)", file=sys.stderr)
        return 2
    return flair_main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
