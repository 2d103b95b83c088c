"""The speed benchmark: its pure helpers, our side on a tiny fixture (through `python -m benchmarks speed`),
and (when installed) flair's side."""

import importlib.util
import json

import pytest
import yaml

from benchmarks import flair_runner, speed
from benchmarks import speed_report as report
from benchmarks.__main__ import main as benchmarks_main
from tests.conftest import make_sentences, tiny_params, write_conll_splits

HAS_FLAIR = importlib.util.find_spec("flair") is not None
needs_flair = pytest.mark.skipif(not HAS_FLAIR, reason="flair is optional (requirements-benchmark.txt)")


def test_percentile_interpolates_like_numpy():
    values = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert report.percentile(values, 50) == 3.0
    assert report.percentile(values, 0) == 1.0 and report.percentile(values, 100) == 5.0
    assert report.percentile(values, 95) == pytest.approx(4.8)
    assert report.percentile([7.0], 95) == 7.0


@pytest.mark.parametrize("values, q", [([], 50), ([1.0], -1), ([1.0], 101)])
def test_percentile_rejects_bad_input(values, q):
    with pytest.raises(ValueError):
        report.percentile(values, q)


def test_epoch_throughput_skips_warmup_and_takes_the_median():
    # The 10 s warm-up epoch is left out; median of 2, 4 and 100 is 4.
    assert report.epoch_throughput(1000, [10.0, 2.0, 4.0, 100.0]) == 250.0
    assert report.epoch_throughput(1000, [10.0, 2.0], warmup=0) == pytest.approx(1000 / 6.0)
    assert report.epoch_throughput(1000, [10.0, 2.0, 4.0], warmup=2) == 250.0


@pytest.mark.parametrize("tokens, seconds, warmup", [(100, [1.0], 1), (100, [], 0), (0, [1.0, 1.0], 1),
                                                     (100, [1.0, 0.0], 1)])
def test_epoch_throughput_rejects_bad_input(tokens, seconds, warmup):
    with pytest.raises(ValueError):
        report.epoch_throughput(tokens, seconds, warmup)


def test_latency_summary_in_milliseconds():
    summary = report.latency_summary([0.001 * i for i in range(1, 101)])
    assert summary["calls"] == 100
    assert summary["p50_ms"] == pytest.approx(50.5)
    assert summary["p95_ms"] == pytest.approx(95.05)
    assert summary["mean_ms"] == pytest.approx(50.5)


def test_busy_warning():
    idle = {"usable_cpus": 2, "load_average_at_start": [0.1, 0.2, 0.3], "load_average_at_end": [2.1, 1.0, 0.5]}
    assert report.busy_warning(idle) is None  # its own two threads at the end are expected
    assert report.busy_warning({**idle, "load_average_at_end": None}) is None
    busy = report.busy_warning({**idle, "load_average_at_start": [3.5, 3.0, 3.0], "load_average_at_end": [4.2, 4, 4]})
    assert "3.5 at the start, 4.2 at the end" in busy and "rerun on an idle machine" in busy


def test_ratio():
    assert report.ratio(1000, 100) == 10.0
    assert report.ratio(1000, None) is None and report.ratio(None, 5) is None and report.ratio(5, 0) is None


def test_training_characters_distinct_most_frequent_first():
    chars = flair_runner.training_characters([["aab", "B"], ["ba", "é"]])
    assert chars == ["a", "b", "B", "é"]
    assert flair_runner.training_characters([]) == []


def test_machine_info_and_versions():
    info = report.machine_info()
    assert info["cpu_count"] >= 1 and 1 <= info["usable_cpus"] <= info["cpu_count"]
    versions = report.library_versions()
    assert "keras" in versions
    assert "flair" not in report.library_versions(names=("no-such-package-xyz",))


def fake_result(with_flair=True):
    flair = {"train_tokens_per_second": 500, "inference_tokens_per_second": 4000} if with_flair else None
    return {
        "machine": {"cpu_count": 2, "usable_cpus": 2, "processor": "x86_64", "platform": "Linux",
                    "python": "3.11.7", "load_average_at_start": [0.1, 0.1, 0.1],
                    "load_average_at_end": [2.0, 1.0, 0.5]},
        "versions": {"keras": "3.15.1", **({"flair": "0.15.1"} if with_flair else {})},
        "data": {"train_sentences": 2000, "train_tokens": 30000, "measured_epochs": 3, "warmup_epochs": 1,
                 "test_sentences": 3453, "test_tokens": 46435},
        "ner": {"train_tokens_per_second": 6000, "inference_tokens_per_second": 60000, "inference_batch_size": 256,
                "bare_reference": {"train_tokens_per_second": 18000}, "bare_ratio": 6000 / 18000},
        "flair": flair,
        "training_ratio": 12.0 if with_flair else None,
        "inference_ratio": 15.0 if with_flair else None,
        "saved_model": {"batched": [
            {"batch_size": 256, "order": "input order", "tokens_per_second": 20000},
            {"batch_size": 256, "order": "length-sorted", "tokens_per_second": 55000}],
            "latency": {"p50_ms": 3.0, "p95_ms": 7.5}},
        "imdb": {"train_tokens_per_second": 9000, "documents": 5000, "tokens": 1000000, "batch_size": 64},
    }


def test_format_table_with_flair():
    table = report.format_table(fake_result())
    assert "machine: 2 CPUs" in table and "flair 0.15.1" in table
    row = next(line for line in table.splitlines() if line.startswith("NER training tokens/s"))
    assert [c.strip() for c in row.split("|")] == ["NER training tokens/s", "6,000", "500", "12.00x"]
    assert "SavedModel raw text tokens/s (batch 256, length-sorted)" in table
    assert "3.00 / 7.50" in table and "IMDB training tokens/s" in table
    assert "target NER training >= 10x flair: met" in table
    # The target is judged on input order; the length-sorted client is shown as the best.
    assert "50,000 tokens/s: NOT met (input order), best 55,000" in table
    row = next(line for line in table.splitlines() if "bare Keras Bi-LSTM, same NER batches" in line)
    assert [c.strip() for c in row.split("|")][1] == "18,000"
    assert "NER training at 0.33x the bare Keras Bi-LSTM of the same size" in table
    assert "IMDB training at" not in table  # no IMDB reference in this result
    assert "warning" not in table


def test_format_table_warns_on_a_busy_machine():
    result = fake_result()
    result["machine"]["load_average_at_start"] = [3.9, 3.0, 2.0]
    assert report.format_table(result).splitlines()[-1].startswith("warning: other work shared the 2 CPUs")


def test_format_table_without_flair_or_imdb():
    result = fake_result(with_flair=False)
    result["imdb"] = None
    table = report.format_table(result)
    row = next(line for line in table.splitlines() if line.startswith("NER training tokens/s"))
    assert [c.strip() for c in row.split("|")] == ["NER training tokens/s", "6,000", "-", "-"]
    assert "10x flair: not measured" in table and "IMDB" not in table


def test_speed_without_flair_says_how_to_install(monkeypatch, capsys):
    monkeypatch.setattr(speed, "flair_available", lambda: False)  # where flair is installed too
    assert benchmarks_main(["speed"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("benchmark: error: flair is not installed")
    assert "make speed" in err and "requirements-benchmark.txt" in err and "--no-flair" in err


def test_flair_child_without_flair_says_so(tmp_path, capsys):
    if HAS_FLAIR:
        pytest.skip("flair is installed")
    (tmp_path / "spec.json").write_text("{}")
    assert speed.main(["flair", str(tmp_path / "spec.json"), str(tmp_path / "result.json")]) == 3
    assert "flair is not installed" in capsys.readouterr().err
    assert speed.main([]) == 2 and "python -m benchmarks speed" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--epochs", "0"], ["--repeats", "0"], ["--serving-batch-sizes", "0"],
                                  ["--max-sentences", "-1"]])
def test_speed_rejects_bad_arguments(args, monkeypatch):
    monkeypatch.setattr(speed, "run_speed", lambda *a, **k: pytest.fail("ran the benchmark"))
    with pytest.raises(SystemExit) as exc:
        benchmarks_main(["speed", *args])
    assert exc.value.code == 2


def test_run_speed_missing_data_is_a_clear_error(tmp_path):
    params = yaml.safe_load(tiny_params(tmp_path, tmp_path / "no-such-conll").read_text())
    with pytest.raises(FileNotFoundError, match="no-such-conll"):
        speed.run_speed(params, tmp_path / "work", with_flair=False, with_imdb=False)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("speed")
    source = write_conll_splits(tmp / "conll", 40, 8, 24)
    return tmp, yaml.safe_load(tiny_params(tmp, source).read_text())


@pytest.fixture(scope="module")
def our_run(tiny):
    """`python -m benchmarks speed --no-flair ...` on the fixture's params, into tmp/bench/speed."""
    tmp, params = tiny
    path = tmp / "speed-params.yaml"
    path.write_text(yaml.safe_dump(params))
    code = benchmarks_main([
        "speed", "--params", str(path), "--out-root", str(tmp / "bench"), "--no-flair", "--epochs", "2",
        "--warmup-epochs", "1", "--max-sentences", "30", "--inference-batch", "8", "--serving-batch-sizes", "8",
        "16", "--latency-sentences", "6", "--repeats", "2", "--imdb-documents", "12"])
    assert code == 0
    work = tmp / "bench" / "speed"
    result = json.loads((work / "speed.json").read_text())
    return work, result, (work / "speed.txt").read_text()


def test_our_side_results_are_sane(our_run):
    work, saved, table = our_run
    assert table.strip() == report.format_table(saved).strip()
    assert (work / "ner" / "saved_model" / "saved_model.pb").is_file() and (work / "sentiment" / "vocab.json").is_file()
    ner = saved["ner"]
    sentences = make_sentences(40, seed=1)[:30]
    assert ner["sentences"] == 30 and ner["tokens"] == sum(len(t) for t, _ in sentences)  # real tokens only
    assert len(ner["epoch_seconds"]) == 3 and len(ner["epoch_losses"]) == 3
    assert ner["train_tokens_per_second"] > 0 and ner["inference_tokens_per_second"] > 0
    assert ner["model"]["hidden_size"] == 16 and ner["batch_size"] == 8
    assert saved["data"]["test_tokens"] == sum(len(t) for t, _ in make_sentences(24, seed=3))
    assert saved["flair"] is None and saved["training_ratio"] is None
    bare = ner["bare_reference"]
    assert bare["model"] == "Embedding(%d, 16, mask_zero) -> Bidirectional(LSTM(16, return_sequences)) -> Dense(%d)" % (
        len(json.loads((work / "ner" / "vocab.json").read_text())["words"]),
        len(json.loads((work / "ner" / "vocab.json").read_text())["tags"]))
    assert len(bare["epoch_seconds"]) == 3 and bare["train_tokens_per_second"] > 0
    assert ner["bare_ratio"] == pytest.approx(ner["train_tokens_per_second"] / bare["train_tokens_per_second"], abs=0.006)
    assert "NER training at" in table and "IMDB training at" in table
    for name, run, parts in (("NER", ner, ["embeddings + chars", "Bi-LSTM", "tag logits + CRF loss"]),
                             ("IMDB", saved["imdb"], ["embeddings", "Bi-LSTM", "pooling + head"])):
        profile = run["step_profile"]
        assert [p["part"] for p in profile["parts"]] == [*parts, "optimizer update"]
        assert profile["step_ms"] > 0 and all(p["ms_per_step"] >= 0 for p in profile["parts"])
        assert sum(p["ms_per_step"] for p in profile["parts"]) == pytest.approx(max(profile["cumulative_ms"]), abs=0.05)
        assert profile["batches"] >= 1 and profile["rounds"] == 3
        assert any(line.startswith(f"{name} step {profile['step_ms']:.1f} ms: {parts[0]} ") for line in table.splitlines())


def test_saved_model_results_are_sane(our_run):
    _, result, _ = our_run
    saved = result["saved_model"]
    assert saved["export_parity_mismatches"] == 0 and saved["export_sentences_checked"] == 24
    assert [(r["batch_size"], r["order"]) for r in saved["batched"]] == [
        (8, "input order"), (16, "input order"), (8, "length-sorted")]
    for run in saved["batched"]:
        # The serving tokenizer splits the re-joined test sentences into the same tokens.
        assert run["tokens"] == result["data"]["test_tokens"] and run["tokens_per_second"] > 0
        assert len(run["seconds"]) == 2
    lat = saved["latency"]
    assert lat["calls"] == 6 and 0 < lat["p50_ms"] <= lat["p95_ms"]


def test_imdb_results_are_sane(our_run):
    _, result, _ = our_run
    imdb = result["imdb"]
    assert imdb["documents"] == 12 and imdb["tokens"] > 12 and imdb["train_tokens_per_second"] > 0
    assert len(imdb["epoch_seconds"]) == 3
    assert imdb["bare_reference"]["model"].endswith("Bidirectional(LSTM(8)) -> Dense(2)")
    assert imdb["bare_reference"]["train_tokens_per_second"] > 0 and imdb["bare_ratio"] > 0


@needs_flair
def test_char_dictionary_round_trip(tmp_path):
    from flair.data import Dictionary

    path = tmp_path / "chars.pkl"
    built = flair_runner.build_char_dictionary([["Paris", "é"]], path)
    loaded = Dictionary.load_from_file(str(path))
    assert loaded.get_items() == built.get_items() == ["<unk>", "P", "a", "i", "r", "s", "é"]
    assert loaded.get_idx_for_item("Z") == 0  # unknown characters map to <unk>


@needs_flair
@pytest.mark.parametrize("scheme, tags", [("IOB2", ["B-PER", "I-PER", "O", "B-LOC"]),
                                          ("IOBES", ["B-PER", "E-PER", "O", "S-LOC"])])
def test_flair_sentences_keep_tokens_and_spans(scheme, tags):
    (sentence,) = flair_runner.flair_sentences([["John", "Smith", "visited", "Paris."]], [tags], scheme)
    assert [t.text for t in sentence] == ["John", "Smith", "visited", "Paris."]
    spans = [(s.text, s.get_label("ner").value) for s in sentence.get_spans("ner")]
    assert spans == [("John Smith", "PER"), ("Paris.", "LOC")]


@needs_flair
def test_flair_side_on_the_tiny_fixture(tiny, tmp_path):
    """Both frameworks in one run, flair in its child process, on the same sentences."""
    _, params = tiny
    result, table = speed.run_speed(
        params, tmp_path, epochs=1, warmup_epochs=1, max_sentences=20, with_flair=True, inference_batch=8,
        serving_batch_sizes=(8,), latency_sentences=3, repeats=1, with_imdb=False, log=lambda *a: None)
    flair, ner = result["flair"], result["ner"]
    assert flair["sentences"] == ner["sentences"] == 20 and flair["tokens"] == ner["tokens"]
    assert flair["hidden_size"] == 16 and flair["batch_size"] == 8 and not flair["reproject_embeddings"]
    # O + 3 types x BIES, plus flair's <START> and <STOP> for the CRF.
    assert flair["tag_dictionary_size"] == 1 + 3 * 4 + 2
    assert len(flair["epoch_seconds"]) == 2 and flair["train_tokens_per_second"] > 0
    assert flair["inference_tokens_per_second"] > 0
    assert result["training_ratio"] == pytest.approx(ner["train_tokens_per_second"] / flair["train_tokens_per_second"],
                                                     abs=0.01)
    assert "flair" in result["versions"] and "ours/flair" in table
    assert not any((tmp_path / "flair_cache").glob("**/*.pkl")), "flair downloaded something"
