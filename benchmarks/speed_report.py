"""The speed benchmark's numbers and its table: percentiles, throughput, machine facts, format_table.

Pure helpers (no TensorFlow, no flair), shared by benchmarks/speed.py (our
side) and benchmarks/flair_runner.py (flair's, in its child process).
"""

import importlib.metadata
import os
import platform

import numpy as np

from benchmarks.step_profile import format_profile

NER_TRAINING_TARGET = 10.0      # ours / flair training tokens/s
SAVED_MODEL_TARGET = 50_000     # SavedModel batched tokens/s on a 2-core CPU


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
    if ner.get("bare_reference"):
        rows.append(("  bare Keras Bi-LSTM, same NER batches", _fmt(ner["bare_reference"]["train_tokens_per_second"]),
                     "", ""))
    if imdb:
        rows.append(("IMDB training tokens/s", _fmt(imdb["train_tokens_per_second"]), "", ""))
        if imdb.get("bare_reference"):
            rows.append(("  bare Keras Bi-LSTM, same IMDB batches",
                         _fmt(imdb["bare_reference"]["train_tokens_per_second"]), "", ""))
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
    for name, run in (("NER", ner), ("IMDB", imdb)):
        if run and run.get("bare_ratio") is not None:
            tail.append(f"{name} training at {run['bare_ratio']:.2f}x the bare Keras Bi-LSTM of the same size "
                        "(below 1: time spent outside the recurrent layer)")
    for name, run in (("NER", ner), ("IMDB", imdb)):
        if run and run.get("step_profile"):
            tail.extend(format_profile(name, run["step_profile"]))
    warning = busy_warning(m)
    return "\n".join(head + [""] + lines + [""] + tail + ([warning] if warning else []))
