import gzip
import json
import re

import numpy as np
import pytest

from pipelines import word2vec
from pipelines.text.embeddings import load_vectors
from pipelines.text.tokenizer import normalize_word
from pipelines.text.vocab import Vocabulary
from tests.conftest import make_sentences, tiny_params


def write_corpus(path, texts, compress=False):
    lines = "\n".join(json.dumps({"id": i, "text": t}) for i, t in enumerate(texts)) + "\n"
    if compress:
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(lines)
    else:
        path.write_text(lines, encoding="utf-8")
    return path


def test_read_corpus_cleans_tokenises_and_normalises(tmp_path):
    path = write_corpus(tmp_path / "c.jsonl.gz", ["Great film.<br /><br />Saw it in 1999!", "ok"], compress=True)
    sentences, skipped = word2vec.read_corpus([path], "text", lowercase=True, digits_to_zero=True)
    assert sentences == [["great", "film", ".", "saw", "it", "in", "0000", "!"], ["ok"]]
    assert skipped == 0


def test_records_without_the_field_are_counted(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"text": "a b"}\n{"id": 3}\n\n{"text": 5}\n')
    sentences, skipped = word2vec.read_corpus([path], "text", True, True)
    assert sentences == [["a", "b"]] and skipped == 2


def test_bad_json_names_file_and_line(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"text": "a"}\n{oops\n')
    with pytest.raises(ValueError, match=r"c\.jsonl:2: not valid JSON"):
        word2vec.read_corpus([path], "text", True, True)


def test_missing_corpus_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="corpus file not found"):
        word2vec.read_corpus([tmp_path / "nope.jsonl"], "text", True, True)


def test_stage_is_deterministic_and_writes_loadable_vectors(tmp_path, conll_dir, capsys):
    params = tiny_params(tmp_path, conll_dir)
    out = tmp_path / "out" / "word2vec"
    assert word2vec.main(["--params", str(params)]) == 0
    first = (out / "vectors.txt").read_text()
    assert word2vec.main(["--params", str(params)]) == 0
    assert (out / "vectors.txt").read_text() == first
    stats = json.loads((out / "stats.json").read_text())
    assert stats["texts"] == 60 and stats["vocabulary"] > 20

    words = {w for tokens, _ in make_sentences(60, seed=9) for w in tokens}
    vocab = Vocabulary.from_iterable(normalize_word(w, True, True) for w in words)
    matrix, found = load_vectors(out / "vectors.txt", vocab, 16)
    assert found == len(vocab) - 2
    assert np.abs(matrix[2:]).sum() > 0


def test_stage_reports_missing_corpus(tmp_path, conll_dir, capsys):
    import yaml

    params = tiny_params(tmp_path, conll_dir)
    cfg = yaml.safe_load(params.read_text())
    cfg["word2vec"]["corpus_files"] = ["missing.jsonl"]
    params.write_text(yaml.safe_dump(cfg))
    assert word2vec.main(["--params", str(params)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("word2vec: error: ") and "corpus file not found" in err


def test_stage_reports_missing_corpus_folder(tmp_path, conll_dir, capsys):
    import yaml

    params = tiny_params(tmp_path, conll_dir)
    cfg = yaml.safe_load(params.read_text())
    cfg["word2vec"]["corpus_dir"] = str(tmp_path / "nowhere")
    params.write_text(yaml.safe_dump(cfg))
    assert word2vec.main(["--params", str(params)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("word2vec: error: ") and "corpus folder not found" in err


@pytest.mark.parametrize("sample", [-0.1, 1.0, "often", True])
def test_stage_rejects_a_bad_sample(tmp_path, conll_dir, capsys, sample):
    import yaml

    params = tiny_params(tmp_path, conll_dir)
    cfg = yaml.safe_load(params.read_text())
    cfg["word2vec"]["sample"] = sample
    params.write_text(yaml.safe_dump(cfg))
    assert word2vec.main(["--params", str(params)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("word2vec: error: word2vec.sample must be a number in [0, 1)") and err.count("\n") == 1


def test_count_lines(tmp_path):
    assert word2vec.count_lines(write_corpus(tmp_path / "a.jsonl.gz", ["x", "y", "z"], compress=True)) == 3
    (tmp_path / "b.jsonl").write_text('{"text": "a"}\n\n{"text": "b"}')  # no final newline
    assert word2vec.count_lines(tmp_path / "b.jsonl") == 3
    (tmp_path / "c.jsonl").write_text("")
    assert word2vec.count_lines(tmp_path / "c.jsonl") == 0


def test_training_in_two_steps_gives_gensim_s_one_call_vectors():
    from gensim.models import Word2Vec

    sentences = [[w.lower() for w in tokens] for tokens, _ in make_sentences(80, seed=4)]
    cfg = {"dim": 8, "window": 3, "min_count": 1, "sample": 0.01, "skip_gram": True, "epochs": 3, "workers": 1}
    ours = word2vec.train_vectors(sentences, cfg, seed=5)
    theirs = Word2Vec(sentences, vector_size=8, window=3, min_count=1, sample=0.01, sg=1, epochs=3, workers=1,
                      seed=5, hashfxn=word2vec.stable_hash)
    assert ours.wv.index_to_key == theirs.wv.index_to_key
    np.testing.assert_array_equal(ours.wv.vectors, theirs.wv.vectors)
    # The sample param reaches gensim: another value gives other vectors.
    other = word2vec.train_vectors(sentences, dict(cfg, sample=0.001), seed=5)
    assert not np.array_equal(other.wv.vectors, theirs.wv.vectors)


def test_stage_reports_progress_with_an_eta(tmp_path, conll_dir, capsys, monkeypatch):
    """Progress lines on stderr every `every` seconds (10; 0 here: one per update)."""
    import functools

    from pipelines.core.progress import Progress

    monkeypatch.setattr(word2vec, "Progress", functools.partial(Progress, every=0))
    epochs = 3
    assert word2vec.main(["--params", str(tiny_params(tmp_path, conll_dir, **{"word2vec.epochs": epochs}))]) == 0
    lines = capsys.readouterr().err.splitlines()
    # "<done>/<total> <unit> (<percent>), <elapsed>[, ETA <left>], <extra>"; times vary with the machine
    pattern = r"word2vec: {}: {} \({}%\), \d+ s{}"
    eta = r", ETA \d+ s"
    assert any(re.fullmatch(pattern.format("reading and tokenising the corpus", "30/60 lines", 50, eta), x)
               for x in lines)
    training = [line for line in lines if line.startswith("word2vec: training: ")]
    total = 60 * epochs  # the vocabulary pass counts no texts
    assert re.fullmatch(pattern.format("training", f"0/{total} texts", 0, ", counting words"), training[0])
    assert len([line for line in training if line.endswith(", counting words")]) == 60
    assert any(re.fullmatch(pattern.format("training", f"1/{total} texts", 1, eta + f", epoch 1/{epochs}"), x)
               for x in training)
    assert any(re.fullmatch(pattern.format("training", f"61/{total} texts", 34, eta + f", epoch 2/{epochs}"), x)
               for x in training)
    assert re.fullmatch(pattern.format("training", f"{total}/{total} texts", 100, f", epoch {epochs}/{epochs}"),
                        training[-1])


def test_reading_on_worker_processes_equals_the_serial_reading(tmp_path, monkeypatch):
    from pipelines.core import parallel

    texts = [f"Review {i}: I'd say it's {'good' if i % 3 else 'bad'}.<br />Seen in {1990 + i % 30}!" for i in range(900)]
    path = write_corpus(tmp_path / "c.jsonl", texts)
    serial = word2vec.read_corpus([path], "text", True, True)
    monkeypatch.setattr(parallel, "MIN_PARALLEL_ITEMS", 0)
    assert word2vec.read_corpus([path], "text", True, True) == serial
    path.write_text(path.read_text() + "{oops\n")
    with pytest.raises(ValueError, match=r"c\.jsonl:901: not valid JSON"):
        word2vec.read_corpus([path], "text", True, True)
