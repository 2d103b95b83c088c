"""Speed benchmark: our NER tagger against flair's BiLSTM-CRF, the SavedModel, IMDB training.

Usage: python -m pipelines.benchmark speed [--epochs N] [--max-sentences N] [--no-flair] ...

In one run on the same machine and data it measures
- NER training tokens/s of our tagger (params.yaml ner.model, random word
  embeddings) and of flair's SequenceTagger (BiLSTM-CRF on one-hot word and
  character-LSTM embeddings, the same hidden size), on the same training
  sentences: total real tokens / epoch seconds, median over the epochs after
  the warm-up epoch(s);
- batched inference tokens/s of both on the test sentences;
- our exported SavedModel (pipelines/export.py) on raw text: batched tokens/s
  and single-sentence latency p50/p95;
- IMDB training tokens/s of the sentiment model.
flair runs in a child process (`python -m pipelines.speed flair SPEC RESULT`)
so that its torch thread pool never competes with TensorFlow's. Outputs go to
outputs/benchmark/speed/: speed.json (all results) and speed.txt (the table).
flair is an optional dependency: `make speed` or
`pip install -r requirements-benchmark.txt`.
"""

import importlib.metadata
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

FLAIR_HINT = ("flair is not installed in this environment: run `make speed` (it makes .venv-bench), or "
              "on top of requirements.txt `pip install torch==2.13.0 && pip install -r requirements-benchmark.txt`, "
              "or pass --no-flair to measure our side only")
NER_TRAINING_TARGET = 10.0      # ours / flair training tokens/s
SAVED_MODEL_TARGET = 50_000     # SavedModel batched tokens/s on a 2-core CPU


class FlairMissing(RuntimeError):
    pass


# ---------------------------------------------------------------- pure helpers

def percentile(values, q):
    """Linearly interpolated q-th percentile (numpy's default), q in [0, 100]."""
    if len(values) == 0:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be in [0, 100], got {q}")
    return float(np.percentile(np.asarray(values, dtype=float), q))


def epoch_throughput(tokens, epoch_seconds, warmup=1):
    """Median tokens/s over the epochs after the first `warmup` (tracing, caches)."""
    measured = list(epoch_seconds)[warmup:]
    if not measured:
        raise ValueError(f"no epoch left to measure: {len(epoch_seconds)} epoch(s), {warmup} warm-up")
    if tokens <= 0 or min(measured) <= 0:
        raise ValueError(f"bad throughput input: {tokens} tokens, epoch seconds {measured}")
    return float(tokens / np.median(measured))


def latency_summary(seconds):
    """Per-call seconds -> milliseconds p50, p95, mean."""
    ms = [1000.0 * s for s in seconds]
    return {"p50_ms": round(percentile(ms, 50), 2), "p95_ms": round(percentile(ms, 95), 2),
            "mean_ms": round(float(np.mean(ms)), 2), "calls": len(ms)}


def ratio(a, b):
    return round(a / b, 2) if a and b else None


def training_characters(token_lists):
    """Distinct characters of the tokens, most frequent first (ties by code point)."""
    from collections import Counter

    counts = Counter(c for tokens in token_lists for t in tokens for c in t)
    return [c for c, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def library_versions(names=("tensorflow-cpu", "tensorflow", "keras", "torch", "flair")):
    """Installed versions from package metadata (nothing imported); missing ones are left out."""
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def load_average():
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def busy_warning(machine):
    """A warning when other work shared the CPUs: timings are then unreliable.

    Before the run the 1-minute load should be near 0; at its end it includes
    this run's own threads (about one per CPU). torch's OpenMP threads suffer
    far more than TensorFlow's from shared cores (flair epochs 10x slower were
    seen), so the ratio is inflated most.
    """
    cpus = machine.get("usable_cpus") or 1
    start, end = machine.get("load_average_at_start"), machine.get("load_average_at_end")
    busy = [f"{load[0]} at the {when}" for load, when, limit in ((start, "start", 0.25 * cpus),
                                                                  (end, "end", 1.25 * cpus))
            if load and load[0] > limit]
    if not busy:
        return None
    return (f"warning: other work shared the {cpus} CPUs (load average {', '.join(busy)}): "
            "timings are unreliable, flair's most; rerun on an idle machine")


def machine_info():
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = load_average()
    return {"cpu_count": os.cpu_count(), "usable_cpus": usable, "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(), "python": platform.python_version(),
            "load_average_at_start": load}


def _fmt(value, unit=""):
    if value is None:
        return "-"
    if isinstance(value, float) and value < 100:
        return f"{value:,.2f}{unit}"
    return f"{value:,.0f}{unit}"


def _verdict(value, target):
    if value is None:
        return "not measured"
    return "met" if value >= target else "NOT met"


def format_table(result):
    """The human-readable summary of a speed result (as written to speed.json)."""
    m, data = result["machine"], result["data"]
    ner, flair, saved, imdb = result["ner"], result.get("flair"), result.get("saved_model"), result.get("imdb")
    flair_train = flair["train_tokens_per_second"] if flair else None
    flair_infer = flair["inference_tokens_per_second"] if flair else None
    rows = [("measure", "ours", "flair", "ours/flair")]
    rows.append(("NER training tokens/s", _fmt(ner["train_tokens_per_second"]), _fmt(flair_train),
                 _fmt(result["training_ratio"], "x")))
    rows.append((f"NER inference tokens/s (batch {ner['inference_batch_size']})",
                 _fmt(ner["inference_tokens_per_second"]), _fmt(flair_infer), _fmt(result["inference_ratio"], "x")))
    if saved:
        for run in saved["batched"]:
            rows.append((f"SavedModel raw text tokens/s (batch {run['batch_size']}, {run['order']})",
                         _fmt(run["tokens_per_second"]), "", ""))
        lat = saved["latency"]
        rows.append(("SavedModel 1 sentence latency p50 / p95 ms",
                     f"{lat['p50_ms']:.2f} / {lat['p95_ms']:.2f}", "", ""))
    if imdb:
        rows.append(("IMDB training tokens/s", _fmt(imdb["train_tokens_per_second"]), "", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [" | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    versions = ", ".join(f"{k} {v}" for k, v in result["versions"].items())
    head = [
        f"machine: {m['cpu_count']} CPUs ({m['usable_cpus']} usable), {m['processor']}, {m['platform']}, "
        f"Python {m['python']}; load average at start {m['load_average_at_start']}",
        f"libraries: {versions}",
        f"NER data: {data['train_sentences']:,} training sentences ({data['train_tokens']:,} tokens), "
        f"{data['measured_epochs']} measured epoch(s) after {data['warmup_epochs']} warm-up; inference on "
        f"{data['test_sentences']:,} test sentences ({data['test_tokens']:,} tokens)",
    ]
    if imdb:
        head.append(f"IMDB data: {imdb['documents']:,} training documents ({imdb['tokens']:,} tokens), "
                    f"batch {imdb['batch_size']}")
    best_saved = max((r["tokens_per_second"] for r in saved["batched"]), default=None) if saved else None
    in_order = [r["tokens_per_second"] for r in saved["batched"] if r["order"] == "input order"] if saved else []
    tail = [
        f"target NER training >= {NER_TRAINING_TARGET:g}x flair: "
        f"{_verdict(result['training_ratio'], NER_TRAINING_TARGET)}",
        f"target SavedModel batched >= {SAVED_MODEL_TARGET:,} tokens/s: "
        f"{_verdict(max(in_order) if in_order else best_saved, SAVED_MODEL_TARGET)} (input order)"
        + (f", best {_fmt(best_saved)}" if best_saved else ""),
    ]
    warning = busy_warning(m)
    return "\n".join(head + [""] + lines + [""] + tail + ([warning] if warning else []))


# ---------------------------------------------------------------- our side

def _timed_fit(model, batches, epochs):
    """Fits without validation; returns (epoch seconds, epoch losses)."""
    from pipelines.batching import fit_data
    from pipelines.training import EpochTimer

    timer = EpochTimer()
    history = model.fit(fit_data(batches), epochs=epochs, shuffle=False, callbacks=[timer], verbose=0)
    return timer.seconds, [float(x) for x in history.history["loss"]]


def measure_ours_ner(params, work, max_sentences, epochs, warmup, inference_batch, repeats, log=print):
    """Prepares CoNLL, trains our tagger on the first `max_sentences` train sentences, times inference.

    Returns (result dict, trained model, (tokens, tags) of the subset, test tokens, prepared folder).
    """
    import keras

    from pipelines.batching import BucketBatcher
    from pipelines.features import TokenEncoder
    from pipelines.ner import load_split, predict_tag_ids
    from pipelines.prepare import prepare_ner
    from pipelines.train import build_ner_model
    from pipelines.training import make_optimizer, seed_everything
    from pipelines.vocab import load_json

    ner_dir = work / "ner"
    prepare_ner(params["ner"]["prepare"], ner_dir)
    vocab = load_json(ner_dir / "vocab.json")
    encoder = TokenEncoder.from_vocab_file(ner_dir / "vocab.json")
    all_tokens, all_tags, _ = load_split(ner_dir / "data", "train")
    tokens, tags = [list(t) for t in all_tokens[:max_sentences]], all_tags[:max_sentences]
    test_tokens = [list(t) for t in load_split(ner_dir / "data", "test")[0]]
    n_tokens = sum(len(t) for t in tokens)

    cfg, model_cfg, seed = params["ner"]["train"], params["ner"]["model"], params["seed"]
    seed_everything(seed)
    tag_index = {t: i for i, t in enumerate(vocab["tags"])}
    y = [np.array([tag_index[t] for t in row], dtype=np.int32) for row in tags]
    batches = BucketBatcher(encoder.encode(tokens), y, batch_size=cfg["batch_size"], shuffle=True, seed=seed)
    model = build_ner_model(model_cfg, vocab)
    model.compile(optimizer=make_optimizer(cfg, len(batches)))
    log(f"ours: training on {len(tokens):,} sentences ({n_tokens:,} tokens), {warmup} + {epochs} epochs")
    seconds, losses = _timed_fit(model, batches, warmup + epochs)
    train_tps = epoch_throughput(n_tokens, seconds, warmup)
    log(f"ours: epoch seconds {[round(s, 2) for s in seconds]}, {train_tps:,.0f} tokens/s")

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
    result = {
        "sentences": len(tokens),
        "tokens": n_tokens,
        "epoch_seconds": [round(s, 3) for s in seconds],
        "epoch_losses": [round(x, 4) for x in losses],
        "train_tokens_per_second": round(train_tps),
        "batch_size": int(cfg["batch_size"]),
        "optimizer": cfg["optimizer"],
        "model": dict(model_cfg),
        "parameters": int(model.count_params()),
        "inference_batch_size": int(inference_batch),
        "inference_seconds": [round(s, 3) for s in infer_seconds],
        "inference_tokens_per_second": round(test_n / float(np.median(infer_seconds))),
        "backend": keras.backend.backend(),
    }
    return result, model, (tokens, tags), test_tokens, ner_dir


def measure_saved_model(params, model, ner_dir, test_tokens, batch_sizes, latency_sentences, repeats, log=print):
    """Exports with pipelines.export and times the serving signature on raw text."""
    import tensorflow as tf

    from pipelines.export import export_ner

    model.save(ner_dir / "model.keras")
    report = export_ner(params, ner_dir)
    serve = tf.saved_model.load(str(ner_dir / "saved_model")).signatures["serving_default"]
    texts = [" ".join(t) for t in test_tokens]

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
    return {"export_parity_mismatches": report["mismatches"], "export_sentences_checked":
            report["test_sentences_checked"], "batched": batched, "latency": latency,
            "latency_mean_tokens": round(float(np.mean([len(t) for t in test_tokens[:latency_sentences]])), 1)}


def measure_imdb(params, work, max_documents, epochs, warmup, log=print):
    """Trains the sentiment model (project code, no validation pass) on a seeded subset of train."""
    from pipelines.batching import BucketBatcher
    from pipelines.prepare import prepare_sentiment
    from pipelines.sentiment import DocumentEncoder, build_model, load_documents
    from pipelines.training import make_optimizer, seed_everything

    out = work / "sentiment"
    seed = params["seed"]
    prepare_sentiment(params["sentiment"]["prepare"], out, seed)
    encoder = DocumentEncoder.from_vocab_file(out / "vocab.json")
    _, tokens, labels, _ = load_documents(out / "data", "train")
    if max_documents and max_documents < len(tokens):
        # Seeded sample, sorted: the split may be ordered by label.
        keep = np.sort(np.random.default_rng(seed).choice(len(tokens), max_documents, replace=False))
        tokens, labels = [tokens[i] for i in keep], labels[keep]
    features = encoder.encode(tokens)
    n_tokens = int(sum(len(a) for a in features["words"]))  # what the model reads: truncated, no padding
    cfg = params["sentiment"]["train"]
    seed_everything(seed)
    batches = BucketBatcher(features, labels, batch_size=cfg["batch_size"], shuffle=True, seed=seed)
    model = build_model(params["sentiment"]["model"], encoder.vocab)
    model.compile(optimizer=make_optimizer(cfg, len(batches)), metrics=[model.accuracy_metric()])
    log(f"IMDB: training on {len(tokens):,} documents ({n_tokens:,} tokens), {warmup} + {epochs} epochs")
    seconds, losses = _timed_fit(model, batches, warmup + epochs)
    tps = epoch_throughput(n_tokens, seconds, warmup)
    log(f"IMDB: epoch seconds {[round(s, 2) for s in seconds]}, {tps:,.0f} tokens/s")
    return {"documents": len(tokens), "tokens": n_tokens, "batch_size": int(cfg["batch_size"]),
            "epoch_seconds": [round(s, 3) for s in seconds], "epoch_losses": [round(x, 4) for x in losses],
            "train_tokens_per_second": round(tps), "model": dict(params["sentiment"]["model"])}


# ---------------------------------------------------------------- flair side (child process)

def flair_available():
    return importlib.util.find_spec("flair") is not None


def require_flair():
    try:
        import flair  # noqa: F401
    except ImportError as err:
        raise FlairMissing(f"{FLAIR_HINT} ({err})") from err


def build_char_dictionary(token_lists, path=None):
    """flair Dictionary of the training characters (with <unk>), saved to `path` if given.

    CharacterEmbeddings otherwise downloads flair's "common-chars" dictionary.
    """
    require_flair()
    from flair.data import Dictionary

    dictionary = Dictionary(add_unk=True)
    for char in training_characters(token_lists):
        dictionary.add_item(char)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        dictionary.save(str(path))
    return dictionary


def flair_sentences(token_lists, tag_lists=None, scheme="IOBES", label_type="ner"):
    """flair Sentences of pre-tokenised text; tags (IOB2/IOBES) become span labels."""
    require_flair()
    from flair.data import Sentence

    from pipelines.conll import get_spans

    out = []
    for i, tokens in enumerate(token_lists):
        sentence = Sentence(list(tokens))
        if len(sentence) != len(tokens):
            raise ValueError(f"flair re-tokenised sentence {i}: {tokens}")
        if tag_lists is not None:
            for entity, start, end in get_spans(tag_lists[i], scheme):
                sentence[start:end].add_label(label_type, entity)
        out.append(sentence)
    return out


def build_flair_tagger(corpus_sentences, char_dict_path, hidden_size, word_dim, scheme, label_type="ner"):
    """BiLSTM-CRF over one-hot word embeddings + character-LSTM embeddings, like ours in size."""
    require_flair()
    from flair.data import Corpus
    from flair.datasets import FlairDatapointDataset
    from flair.embeddings import CharacterEmbeddings, OneHotEmbeddings, StackedEmbeddings
    from flair.models import SequenceTagger

    corpus = Corpus(train=FlairDatapointDataset(corpus_sentences), sample_missing_splits=False)
    # min_freq 1 like ner.prepare.min_word_count; embedding size like ner.model.word_dim.
    words = OneHotEmbeddings.from_corpus(corpus, min_freq=1, embedding_length=word_dim)
    chars = CharacterEmbeddings(path_to_char_dict=str(char_dict_path))
    return SequenceTagger(
        embeddings=StackedEmbeddings([words, chars]),
        tag_dictionary=corpus.make_label_dictionary(label_type, add_unk=False),
        tag_type=label_type,
        tag_format="BIOES" if scheme == "IOBES" else "BIO",
        use_rnn=True, rnn_type="LSTM", rnn_layers=1, hidden_size=hidden_size, bidirectional=True,
        use_crf=True, reproject_embeddings=False,
    )


def flair_train_epochs(tagger, sentences, epochs, batch_size, learning_rate, clipnorm, seed, log=print):
    """flair's ModelTrainer step, one mini-batch at a time, timed per epoch.

    Same as ModelTrainer.train (no AMP, one chunk per batch): zero_grad,
    forward_loss, backward, drop the embeddings stored on the tokens,
    clip_grad_norm_, optimizer.step; SGD as its default optimizer.
    """
    import random

    import torch
    from flair.training_utils import store_embeddings

    rng = random.Random(seed)
    optimizer = torch.optim.SGD(tagger.parameters(), lr=learning_rate)
    order = list(range(len(sentences)))
    seconds, losses = [], []
    for epoch in range(epochs):
        tagger.train()
        rng.shuffle(order)
        total, count = 0.0, 0
        start = time.perf_counter()
        for i in range(0, len(order), batch_size):
            batch = [sentences[j] for j in order[i:i + batch_size]]
            tagger.zero_grad()
            optimizer.zero_grad()
            loss, n = tagger.forward_loss(batch)
            loss.backward()
            store_embeddings(batch, "none")
            torch.nn.utils.clip_grad_norm_(tagger.parameters(), clipnorm)
            optimizer.step()
            total += loss.item()
            count += n
        seconds.append(time.perf_counter() - start)
        losses.append(total / max(count, 1))
        log(f"flair: epoch {epoch + 1}/{epochs}: {seconds[-1]:.2f} s, loss per token {losses[-1]:.4f}")
    return seconds, losses


def run_flair(spec, log=print):
    """The flair half, from a spec dict (see `flair_spec`); returns a JSON-able result."""
    require_flair()
    import logging

    import flair
    import torch

    logging.getLogger("flair").setLevel(logging.WARNING)  # it logs the whole one-hot vocabulary
    flair.device = torch.device("cpu")
    torch.manual_seed(spec["seed"])
    work = Path(spec["work_dir"])
    all_tokens, all_tags = spec["train_tokens"], spec["train_tags"]
    n = spec["max_sentences"] or len(all_tokens)
    scheme = spec["scheme"]

    char_path = work / "flair_chars.pkl"
    build_char_dictionary(all_tokens, char_path)
    corpus_sentences = flair_sentences(all_tokens, all_tags, scheme)
    train = corpus_sentences[:n]
    tagger = build_flair_tagger(corpus_sentences, char_path, spec["hidden_size"], spec["word_dim"], scheme)
    n_tokens = sum(len(s) for s in train)
    log(f"flair: training on {len(train):,} sentences ({n_tokens:,} tokens), torch threads "
        f"{torch.get_num_threads()}, {spec['warmup_epochs']} + {spec['epochs']} epochs")
    seconds, losses = flair_train_epochs(tagger, train, spec["warmup_epochs"] + spec["epochs"], spec["batch_size"],
                                         spec["learning_rate"], spec["clipnorm"], spec["seed"], log=log)
    train_tps = epoch_throughput(n_tokens, seconds, spec["warmup_epochs"])

    tagger.eval()
    test = flair_sentences(spec["test_tokens"])
    batch = spec["inference_batch_size"]
    tagger.predict(test[: batch * 2], mini_batch_size=batch, label_name="predicted")  # warm-up
    infer_seconds = []
    for _ in range(spec["inference_repeats"]):
        start = time.perf_counter()
        tagger.predict(test, mini_batch_size=batch, label_name="predicted")
        infer_seconds.append(time.perf_counter() - start)
    test_n = sum(len(s) for s in test)
    tagged = sum(1 for s in test for _ in s.get_labels("predicted"))
    return {
        "sentences": len(train), "tokens": n_tokens,
        "epoch_seconds": [round(s, 3) for s in seconds], "epoch_losses": [round(x, 4) for x in losses],
        "train_tokens_per_second": round(train_tps),
        "inference_batch_size": batch, "inference_seconds": [round(s, 3) for s in infer_seconds],
        "inference_tokens_per_second": round(test_n / float(np.median(infer_seconds))),
        "predicted_entities": tagged,
        "tag_dictionary_size": len(tagger.label_dictionary),
        "parameters": int(sum(p.numel() for p in tagger.parameters())),
        "optimizer": f"sgd (lr {spec['learning_rate']})", "batch_size": spec["batch_size"],
        "hidden_size": spec["hidden_size"], "torch_threads": torch.get_num_threads(),
        "embeddings": "one-hot words (min_freq 1) + character BiLSTM (25 + 25)", "reproject_embeddings": False,
        "flair_version": flair.__version__, "torch_version": torch.__version__,
    }


def flair_env(work):
    """Environment of the flair child: offline, its own empty cache, one thread pool per core."""
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               FLAIR_CACHE_ROOT=str(Path(work) / "flair_cache"))
    return env


def run_flair_child(spec, work, log=print):
    """Runs `run_flair` in a fresh interpreter; returns its result dict."""
    spec_path, result_path = work / "flair_spec.json", work / "flair_result.json"
    spec_path.write_text(json.dumps(spec))
    if result_path.exists():
        result_path.unlink()
    cmd = [sys.executable, "-m", "pipelines.speed", "flair", str(spec_path), str(result_path)]
    proc = subprocess.run(cmd, env=flair_env(work), cwd=str(Path(__file__).resolve().parents[1]))
    if proc.returncode != 0 or not result_path.is_file():
        raise RuntimeError(f"the flair benchmark failed (exit {proc.returncode}); see its output above")
    return json.loads(result_path.read_text())


# ---------------------------------------------------------------- the whole run

def run_speed(params, work, epochs=3, warmup_epochs=1, max_sentences=None, with_flair=True,
              inference_batch=256, serving_batch_sizes=(256, 1024), latency_sentences=200, repeats=3,
              imdb_documents=5000, with_imdb=True, log=print):
    """Runs every measurement; writes speed.json and speed.txt under `work`; returns the result."""
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

    ner, model, (tokens, tags), test_tokens, ner_dir = measure_ours_ner(
        params, work, max_sentences, epochs, warmup_epochs, inference_batch, repeats, log)
    flair_result = None
    if with_flair:
        from pipelines.ner import load_split
        from pipelines.vocab import load_json

        all_tokens, all_tags, _ = load_split(ner_dir / "data", "train")
        spec = {
            # The whole train split for the one-hot and character vocabularies, as ours; training on the subset.
            "train_tokens": [list(t) for t in all_tokens], "train_tags": all_tags, "max_sentences": len(tokens),
            "test_tokens": test_tokens, "scheme": load_json(ner_dir / "vocab.json")["tag_scheme"],
            "hidden_size": int(params["ner"]["model"]["hidden_size"]),
            "word_dim": int(params["ner"]["model"]["word_dim"]),
            "batch_size": int(params["ner"]["train"]["batch_size"]),
            "clipnorm": float(params["ner"]["train"].get("clipnorm") or 5.0),
            "learning_rate": 0.1, "seed": int(params["seed"]), "epochs": epochs, "warmup_epochs": warmup_epochs,
            "inference_batch_size": inference_batch, "inference_repeats": repeats, "work_dir": str(work),
        }
        flair_result = run_flair_child(spec, work, log)
    saved = measure_saved_model(params, model, ner_dir, test_tokens, list(serving_batch_sizes), latency_sentences,
                                repeats, log)
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


def flair_main(argv):
    """`python -m pipelines.speed flair SPEC RESULT`: the child process of run_flair_child."""
    if len(argv) != 2:
        print("usage: python -m pipelines.speed flair SPEC.json RESULT.json", file=sys.stderr)
        return 2
    try:
        result = run_flair(json.loads(Path(argv[0]).read_text()))
    except FlairMissing as err:
        print(f"speed: error: {err}", file=sys.stderr)
        return 3
    Path(argv[1]).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] != ["flair"]:
        print("usage: python -m pipelines.speed flair SPEC.json RESULT.json "
              "(the speed benchmark itself is `python -m pipelines.benchmark speed`)", file=sys.stderr)
        sys.exit(2)
    sys.exit(flair_main(sys.argv[2:]))
