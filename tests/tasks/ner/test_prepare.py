"""The NER prepare stage end to end on tiny files, its error reporting and the hub branch."""

import json
from collections import Counter
from pathlib import Path

import datasets
import yaml

from pipelines.prepare import main
from pipelines.tasks.ner.prepare import prepare, summary_lines
from tests.conftest import make_sentences, tiny_params, write_conll
from tests.tasks.ner.conftest import hub_dataset


def run(tmp_path, source, capsys=None, **overrides):
    """Runs the stage; returns (exit code, output folder, stderr)."""
    rc = main(["ner", "--params", str(tiny_params(tmp_path, source, **overrides))])
    err = capsys.readouterr().err if capsys is not None else ""
    return rc, tmp_path / "out" / "ner", err


def load(out):
    ds = datasets.load_from_disk(str(out / "data"))
    vocab = json.loads((out / "vocab.json").read_text(encoding="utf-8"))
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    return ds, vocab, stats


def tag_strings(ds, split):
    names = ds[split].features["tags"].feature.names
    return [[names[i] for i in row] for row in ds[split]["tags"]]


def to_iobes(tags):
    """Independent IOB2 -> IOBES conversion for well-formed IOB2 input."""
    out = []
    for i, tag in enumerate(tags):
        nxt = tags[i + 1] if i + 1 < len(tags) else "O"
        continues = nxt == "I-" + tag[2:]
        if tag == "O":
            out.append("O")
        elif tag[0] == "B":
            out.append(("B-" if continues else "S-") + tag[2:])
        else:
            out.append(("I-" if continues else "E-") + tag[2:])
    return out


def write_text(path, text):
    Path(path).write_text(text, encoding="utf-8")
    return path


def make_dir(tmp_path, train, valid=None, test=None, name="src"):
    folder = tmp_path / name
    folder.mkdir()
    write_text(folder / "train.txt", train)
    write_text(folder / "valid.txt", valid if valid is not None else train)
    write_text(folder / "test.txt", test if test is not None else train)
    return folder


SPLIT_SEEDS = {"train": (40, 1), "validation": (12, 2), "test": (12, 3)}


# ---------------------------------------------------------------------------
# Successful runs


def test_prepare_writes_dataset_vocab_and_stats(tmp_path, conll_dir, capsys):
    rc, out, err = run(tmp_path, conll_dir, capsys)
    assert rc == 0, err
    ds, vocab, stats = load(out)

    assert set(ds) == {"train", "validation", "test"}
    tag_names = vocab["tags"]
    # "O", then B/I/E/S for each train entity type in alphabetical order.
    assert tag_names == ["O"] + [f"{p}-{t}" for t in ("LOC", "ORG", "PER") for p in "BIES"]
    for split in ds:
        feature = ds[split].features["tags"].feature
        assert isinstance(feature, datasets.ClassLabel)
        assert feature.names == tag_names
    assert vocab["tag_scheme"] == "IOBES"
    assert vocab["words"][:2] == ["<pad>", "<unk>"]
    assert vocab["chars"][:2] == ["<pad>", "<unk>"]

    for split, (n, seed) in SPLIT_SEEDS.items():
        sentences = make_sentences(n, seed)
        assert ds[split]["tokens"] == [list(tokens) for tokens, _ in sentences]
        assert tag_strings(ds, split) == [to_iobes(tags) for _, tags in sentences]
        # -DOCSTART- then a blank line: the first sentence starts on line 3.
        assert ds[split]["line"][0] == 3
        assert set(ds[split]["doc"]) == {0}

    # Every tag the train conversion produces has an id.
    train_tags = {t for _, tags in make_sentences(40, 1) for t in to_iobes(tags)}
    assert train_tags <= set(tag_names)


def test_stats_count_sentences_tokens_entities_and_docstarts(tmp_path, conll_dir, capsys):
    rc, out, err = run(tmp_path, conll_dir, capsys)
    assert rc == 0, err
    _, vocab, stats = load(out)
    assert stats["source_scheme"] == "IOB2"
    assert stats["tag_scheme"] == "IOBES"
    for split, (n, seed) in SPLIT_SEEDS.items():
        sentences = make_sentences(n, seed)
        s = stats["splits"][split]
        assert s["sentences"] == n
        assert s["tokens"] == sum(len(tokens) for tokens, _ in sentences)
        expected = Counter(t[2:] for _, tags in sentences for t in tags if t.startswith("B-"))
        assert s["entities"] == dict(sorted(expected.items()))
        assert s["docstart_lines_skipped"] == 1
        assert s["documents"] == 1
    assert stats["splits"]["train"]["oov_tokens"] == 0
    start, stop = vocab["singleton_words"]
    assert stats["vocab"] == {
        "words": len(vocab["words"]),
        "train_words": len(vocab["words"]),  # no embedding_words in the tiny params
        "train_singletons": stop - start,
        "chars": len(vocab["chars"]),
        "tags": len(vocab["tags"]),
    }


def test_stats_count_several_documents(tmp_path, capsys):
    text = (
        "-DOCSTART- -X- -X- O\n\nParis NN I-NP B-LOC\n. . O O\n\n"
        "-DOCSTART- -X- -X- O\n\nBerlin NN I-NP B-LOC\n\nRain NN I-NP O\n\n"
        "-DOCSTART- -X- -X- O\n\nTokyo NN I-NP B-LOC\n"
    )
    rc, out, err = run(tmp_path, make_dir(tmp_path, text), capsys)
    assert rc == 0, err
    _, _, stats = load(out)
    s = stats["splits"]["train"]
    assert (s["sentences"], s["tokens"]) == (4, 5)
    assert s["docstart_lines_skipped"] == 3
    assert s["documents"] == 3
    assert s["entities"] == {"LOC": 3}


def test_multi_token_entities_become_b_i_e(tmp_path, capsys):
    text = (
        "Bank NN I-NP B-ORG\nof IN I-NP I-ORG\nAmerica NN I-NP I-ORG\nin IN O O\nParis NN I-NP B-LOC\n"
        "\nNew NN I-NP B-LOC\nYork NN I-NP I-LOC\n"
    )
    rc, out, err = run(tmp_path, make_dir(tmp_path, text), capsys)
    assert rc == 0, err
    ds, vocab, _ = load(out)
    assert tag_strings(ds, "train") == [["B-ORG", "I-ORG", "E-ORG", "O", "S-LOC"], ["B-LOC", "E-LOC"]]
    assert vocab["tags"] == ["O", "B-LOC", "I-LOC", "E-LOC", "S-LOC", "B-ORG", "I-ORG", "E-ORG", "S-ORG"]


def test_iob2_target_scheme(tmp_path, conll_dir, capsys):
    rc, out, err = run(tmp_path, conll_dir, capsys, **{"ner.prepare.tag_scheme": "IOB2"})
    assert rc == 0, err
    ds, vocab, stats = load(out)
    assert vocab["tag_scheme"] == "IOB2"
    assert stats["tag_scheme"] == "IOB2"
    assert not any(t.startswith(("E-", "S-")) for t in vocab["tags"])
    for split, (n, seed) in SPLIT_SEEDS.items():
        assert tag_strings(ds, split) == [tags for _, tags in make_sentences(n, seed)]


def test_invalid_target_scheme_is_a_clean_error(tmp_path, conll_dir, capsys):
    rc, out, err = run(tmp_path, conll_dir, capsys, **{"ner.prepare.tag_scheme": "BIO"})
    assert rc == 1
    assert err.startswith("prepare: error: ")
    assert "tag_scheme" in err and "'BIO'" in err
    assert not (out / "data").exists()


def test_iob1_source_is_detected_and_converted(tmp_path, capsys):
    # IOB1: I- opens an entity; B- only separates two adjacent entities of one type.
    text = (
        "John NN I-NP I-PER\nSmith NN I-NP I-PER\nvisited VB I-VP O\nParis NN I-NP I-LOC\n"
        "Berlin NN I-NP B-LOC\nand CC O O\nNew NN I-NP I-LOC\nYork NN I-NP I-LOC\n"
    )
    for scheme, expected in [
        ("IOBES", ["B-PER", "E-PER", "O", "S-LOC", "S-LOC", "O", "B-LOC", "E-LOC"]),
        ("IOB2", ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "O", "B-LOC", "I-LOC"]),
    ]:
        case = tmp_path / scheme
        case.mkdir()
        rc, out, err = run(case, make_dir(case, text), capsys, **{"ner.prepare.tag_scheme": scheme})
        assert rc == 0, err
        ds, _, stats = load(out)
        assert stats["source_scheme"] == "IOB1"
        assert stats["tag_scheme"] == scheme
        for split in ds:
            assert tag_strings(ds, split) == [expected]
            assert stats["splits"][split]["source_scheme_counts"] == {
                "B_starts": 0, "B_after_same_type": 1, "I_starts": 3, "E_tags": 0, "S_tags": 0,
            }
            assert stats["splits"][split]["tags_repaired"] == 0
        assert stats["splits"]["train"]["entities"] == {"LOC": 3, "PER": 1}
        assert stats["source_scheme_counts"]["I_starts"] == 9 and stats["tags_repaired"] == 0


def test_mostly_iob2_source_with_a_stray_i_start_stays_iob2_and_counts_the_repair(tmp_path, capsys):
    """One I- after O in the validation file (an annotation error) does not make the corpus IOB1."""
    valid = make_sentences(12, seed=2) + [(["Ms", "Smith", "spoke", "."], ["O", "I-PER", "O", "O"])]
    folder = tmp_path / "src"
    folder.mkdir()
    write_conll(folder / "train.txt", make_sentences(40, seed=1))
    write_conll(folder / "valid.txt", valid)
    write_conll(folder / "test.txt", make_sentences(12, seed=3))
    rc, out, _ = run(tmp_path, folder)
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    ds, _, stats = load(out)
    assert stats["source_scheme"] == "IOB2"
    assert tag_strings(ds, "validation")[-1] == ["O", "S-PER", "O", "O"]
    assert tag_strings(ds, "validation")[:-1] == [to_iobes(tags) for _, tags in make_sentences(12, seed=2)]
    for split, (n, seed) in SPLIT_SEEDS.items():
        s = stats["splits"][split]
        b_starts = sum(t.startswith("B-") for _, tags in make_sentences(n, seed) for t in tags)
        assert s["source_scheme_counts"] == {
            "B_starts": b_starts, "B_after_same_type": 0, "I_starts": int(split == "validation"),
            "E_tags": 0, "S_tags": 0,
        }
        assert s["tags_repaired"] == int(split == "validation")
    assert stats["tags_repaired"] == 1
    assert stats["splits"]["validation"]["entities"]["PER"] == 1 + sum(
        t == "B-PER" for _, tags in make_sentences(12, seed=2) for t in tags
    )
    assert "tag scheme: IOB2 -> IOBES (entity starts: " in captured.out
    assert "tags not valid IOB2 repaired: train 0, validation 1, test 0" in captured.out


def test_iobes_source_is_detected(tmp_path, capsys):
    text = "Bank NN I-NP B-ORG\nof IN I-NP E-ORG\nin IN O O\nParis NN I-NP S-LOC\n"
    rc, out, err = run(tmp_path, make_dir(tmp_path, text), capsys, **{"ner.prepare.tag_scheme": "IOB2"})
    assert rc == 0, err
    ds, _, stats = load(out)
    assert stats["source_scheme"] == "IOBES"
    assert stats["splits"]["test"]["source_scheme_counts"] == {
        "B_starts": 1, "B_after_same_type": 0, "I_starts": 0, "E_tags": 1, "S_tags": 1,
    }
    assert stats["tags_repaired"] == 0
    assert tag_strings(ds, "train") == [["B-ORG", "I-ORG", "O", "B-LOC"]]


def test_vocabularies_come_from_train_only(tmp_path, capsys):
    train = make_sentences(40, seed=1) + [
        (["Reuters", "said", "Paris", "visited", "."], ["B-ORG", "O", "B-LOC", "O", "O"])
    ]
    test = [
        (["Zanzibar", "visited", "PARIS", "."], ["B-LOC", "O", "B-LOC", "O"]),
        (["Reuters", "said", "42", "qué", "."], ["B-ORG", "O", "O", "O", "O"]),
    ]
    folder = tmp_path / "src"
    folder.mkdir()
    write_conll(folder / "train.txt", train)
    write_conll(folder / "valid.txt", make_sentences(5, seed=2))
    write_conll(folder / "test.txt", test)
    rc, out, err = run(tmp_path, folder, capsys)
    assert rc == 0, err
    _, vocab, stats = load(out)

    words = set(vocab["words"])
    assert "zanzibar" not in words and "Zanzibar" not in words
    assert "qué" not in words and "00" not in words
    assert {"paris", "reuters", "said", "visited", "."} <= words
    assert "Paris" not in words  # lowercased
    # "3.5" is stored as "0.0" (digits -> 0) when a template produced it.
    assert ("0.0" in words) == any("3.5" in tokens for tokens, _ in train)
    assert "3.5" not in words
    assert "é" not in vocab["chars"] and "Z" not in vocab["chars"]
    assert "P" in vocab["chars"] and "p" in vocab["chars"]  # chars keep case

    # By hand: zanzibar, 00 and qué are unknown; paris (from PARIS) is known.
    s = stats["splits"]["test"]
    assert s["tokens"] == 9
    assert s["oov_tokens"] == 3
    assert s["oov_rate"] == round(3 / 9, 5)
    assert s["oov_rate"] > 0
    assert stats["splits"]["train"]["oov_rate"] == 0


def test_embedding_words_join_the_vocabulary_after_the_train_words(tmp_path, capsys):
    text = "Paris NN I-NP B-LOC\nrains VB I-VP O\n\n"
    test = "Zanzibar NN I-NP B-LOC\nrains VB I-VP O\nin IN I-PP O\nMay NN I-NP O\n\n"
    vectors = write_text(tmp_path / "vectors.txt",
                         "5 2\nrains 0.1 0.2\nZanzibar 0.3 0.4\nzanzibar 0.5 0.6\nMay19 0 1\n<unk> 1 1\n")
    rc, out, err = run(tmp_path, make_dir(tmp_path, text, test=test), capsys,
                       **{"ner.prepare.embedding_words": str(vectors)})
    assert rc == 0, err
    _, vocab, stats = load(out)
    # Train words first (ids unchanged), then the file's new words once each, normalised.
    assert vocab["words"] == ["<pad>", "<unk>", "paris", "rains", "zanzibar", "may00"]
    assert stats["vocab"]["words"] == 6 and stats["vocab"]["train_words"] == 4
    assert vocab["singleton_words"] == [2, 4]  # paris and rains, once each in train


def test_singleton_words_are_the_train_words_seen_once(tmp_path, capsys):
    text = ("Paris NN I-NP B-LOC\nrains VB I-VP O\n\n" "Paris NN I-NP B-LOC\nshines VB I-VP O\n\n"
            "RAINS VB I-VP O\n\n" "Rome NN I-NP B-LOC\n\n")
    rc, out, err = run(tmp_path, make_dir(tmp_path, text), capsys)
    assert rc == 0, err
    _, vocab, stats = load(out)
    start, stop = vocab["singleton_words"]
    assert sorted(vocab["words"][start:stop]) == ["rome", "shines"]  # lowercased: "rains" is seen twice
    assert vocab["words"][2:start] == ["paris", "rains"] and stats["vocab"]["train_singletons"] == 2
    (tmp_path / "min2").mkdir()
    rc, out, err = run(tmp_path / "min2", make_dir(tmp_path, text, name="src2"), capsys,
                       **{"ner.prepare.min_word_count": 2})
    assert rc == 0, err
    _, vocab, stats = load(out)
    assert vocab["singleton_words"] == [4, 4] and stats["vocab"]["train_singletons"] == 0
    assert stats["splits"]["test"]["oov_tokens"] == 2  # "in" and "may" are in neither


def test_missing_embedding_words_file_is_one_line(tmp_path, capsys):
    missing = tmp_path / "outputs" / "word2vec" / "vectors.txt"
    rc, out, err = run(tmp_path, good_dir(tmp_path), capsys, **{"ner.prepare.embedding_words": str(missing)})
    assert rc == 1
    assert_error(err, "ner.prepare.embedding_words", str(missing), "dvc repro word2vec")
    assert len(err.strip().splitlines()) == 1
    assert not (out / "data").exists()


def test_embedding_words_file_with_invalid_utf8_names_the_line(tmp_path, capsys):
    vectors = tmp_path / "vectors.txt"
    vectors.write_bytes(b"paris 0.1 0.2\nok 0 0\nbad\xff 0 1\n")
    rc, _, err = run(tmp_path, good_dir(tmp_path), capsys, **{"ner.prepare.embedding_words": str(vectors)})
    assert rc == 1
    assert_error(err, f"{vectors}:3:", "not valid UTF-8")


def test_min_word_count_applies_to_train_counts(tmp_path, capsys):
    text = "Paris NN I-NP B-LOC\nrains VB I-VP O\n\nParis NN I-NP B-LOC\nshines VB I-VP O\n"
    rc, out, err = run(tmp_path, make_dir(tmp_path, text), capsys, **{"ner.prepare.min_word_count": 2})
    assert rc == 0, err
    _, vocab, stats = load(out)
    assert vocab["words"] == ["<pad>", "<unk>", "paris"]
    assert stats["splits"]["train"]["oov_tokens"] == 2


def test_two_column_wnut_style_source(tmp_path, capsys):
    folder = tmp_path / "wnut"
    folder.mkdir()
    for name, (n, seed) in zip(["train.txt", "valid.txt", "test.txt"], SPLIT_SEEDS.values()):
        write_conll(folder / name, make_sentences(n, seed), columns=2)
    assert (folder / "train.txt").read_text().split("\n")[0].count("\t") == 1
    rc, out, err = run(
        tmp_path, folder, capsys, **{"ner.prepare.num_columns": 2, "ner.prepare.tag_scheme": "IOB2"}
    )
    assert rc == 0, err
    ds, _, stats = load(out)
    for split, (n, seed) in SPLIT_SEEDS.items():
        sentences = make_sentences(n, seed)
        assert ds[split]["tokens"] == [t for t, _ in sentences]
        assert tag_strings(ds, split) == [tags for _, tags in sentences]
        assert ds[split]["line"][0] == 1
        assert stats["splits"][split]["docstart_lines_skipped"] == 0


def test_stage_prints_a_summary(tmp_path, conll_dir, capsys):
    rc = main(["ner", "--params", str(tiny_params(tmp_path, conll_dir))])
    captured = capsys.readouterr()
    assert rc == 0
    assert "train: 40 sentences" in captured.out
    assert "prepare: error" not in captured.err


def test_prepare_returns_the_stats_it_writes(tmp_path, conll_dir):
    """tasks.ner.prepare.prepare(cfg, out): the stage's work without the CLI."""
    cfg = yaml.safe_load(tiny_params(tmp_path, conll_dir).read_text())["ner"]["prepare"]
    out = tmp_path / "direct"
    stats = prepare(cfg, out)
    assert stats == json.loads((out / "stats.json").read_text(encoding="utf-8"))
    assert (out / "vocab.json").is_file() and (out / "data").is_dir()
    lines = summary_lines(stats)
    assert lines[0].startswith("train: 40 sentences, ") and lines[-1].startswith("vocabulary: ")
    assert [line.split(":")[0] for line in lines[:-1]] == ["train", "validation", "test", "tag scheme"]
    assert lines[3].startswith("tag scheme: IOB2 -> IOBES (entity starts: ") and "repaired" not in lines[3]


# ---------------------------------------------------------------------------
# Bad input: exit code 1 and a message naming file and line


VALID_HEAD = "-DOCSTART- -X- -X- O\n\nParis NN I-NP B-LOC\n. . O O\n\n"


def good_dir(tmp_path, **texts):
    folder = tmp_path / "bad"
    folder.mkdir()
    write_conll(folder / "train.txt", make_sentences(40, seed=1))
    write_conll(folder / "valid.txt", make_sentences(12, seed=2))
    write_conll(folder / "test.txt", make_sentences(12, seed=3))
    for name, text in texts.items():
        write_text(folder / f"{name}.txt", text)
    return folder


def assert_error(err, *fragments):
    assert err.startswith("prepare: error: "), err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


def test_wrong_column_count(tmp_path, capsys):
    folder = good_dir(tmp_path, valid=VALID_HEAD + "Berlin NN B-LOC\n")
    rc, out, err = run(tmp_path, folder, capsys)
    assert rc == 1
    assert_error(err, f"{folder / 'valid.txt'}:6:", "expected 4 columns, found 3")
    assert not (out / "data").exists()


def test_non_iob_tag(tmp_path, capsys):
    folder = good_dir(tmp_path, train=VALID_HEAD + "John NN I-NP PERSON\n")
    rc, _, err = run(tmp_path, folder, capsys)
    assert rc == 1
    assert_error(err, f"{folder / 'train.txt'}:6:", "'PERSON'")


def test_test_tag_never_seen_in_train(tmp_path, capsys):
    test = VALID_HEAD + "the DT I-NP O\nWorld NN I-NP B-EVENT\nCup NN I-NP I-EVENT\n"
    folder = good_dir(tmp_path, test=test)
    rc, _, err = run(tmp_path, folder, capsys)
    assert rc == 1
    assert_error(err, f"{folder / 'test.txt'}:7:", "'B-EVENT'", "test split", "never occurs in train")


def test_test_tag_never_seen_in_train_iob2(tmp_path, capsys):
    test = VALID_HEAD + "Cup NN I-NP B-EVENT\n"
    folder = good_dir(tmp_path, test=test)
    rc, _, err = run(tmp_path, folder, capsys, **{"ner.prepare.tag_scheme": "IOB2"})
    assert rc == 1
    assert_error(err, f"{folder / 'test.txt'}:6:", "'B-EVENT'")


def test_empty_split(tmp_path, capsys):
    folder = good_dir(tmp_path, valid="-DOCSTART- -X- -X- O\n\n")
    rc, _, err = run(tmp_path, folder, capsys)
    assert rc == 1
    assert_error(err, str(folder / "valid.txt"), "no sentences")


def test_missing_source_folder(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    rc, _, err = run(tmp_path, missing, capsys)
    assert rc == 1
    assert_error(err, "source folder not found", str(missing))


def test_missing_test_file(tmp_path, capsys):
    folder = good_dir(tmp_path)
    (folder / "test.txt").unlink()
    rc, _, err = run(tmp_path, folder, capsys)
    assert rc == 1
    assert_error(err, "test file not found", str(folder / "test.txt"))


def test_undecodable_file(tmp_path, capsys):
    folder = good_dir(tmp_path)
    (folder / "valid.txt").write_bytes(b"Paris NN I-NP B-LOC\n\nK\xf6ln NN I-NP B-LOC\n")
    rc, _, err = run(tmp_path, folder, capsys)
    assert rc == 1
    assert_error(err, f"{folder / 'valid.txt'}:3:")


# ---------------------------------------------------------------------------
# The hub branch (fake_hub: tests/tasks/ner/conftest.py)


def test_prepare_from_hub(tmp_path, fake_hub, capsys):
    rc, out, err = run(tmp_path, "someone/tiny-ner", capsys)
    assert rc == 0, err
    assert fake_hub["calls"] == [("someone/tiny-ner", None)]
    ds, vocab, stats = load(out)
    assert vocab["tags"] == ["O", "B-LOC", "I-LOC", "E-LOC", "S-LOC", "B-PER", "I-PER", "E-PER", "S-PER"]
    assert tag_strings(ds, "validation") == [["B-PER", "E-PER", "O", "S-LOC"], ["S-LOC", "O"]]
    assert stats["splits"]["test"]["entities"] == {"LOC": 2, "PER": 1}
    assert stats["splits"]["train"]["sentences"] == 2


def test_prepare_from_hub_missing_column_exits_1(tmp_path, fake_hub, capsys):
    fake_hub["ds"] = hub_dataset(tags_col="ner")
    rc, _, err = run(tmp_path, "someone/tiny-ner", capsys)
    assert rc == 1
    assert_error(err, "someone/tiny-ner", "no column 'ner_tags'")


def test_single_token_entity_in_test_of_a_type_train_only_has_multi_token(tmp_path, capsys):
    """Train has only two-token PER; a one-token PER in test (S-PER) is still a known label."""
    folder = tmp_path / "single"
    folder.mkdir()
    train = "John NN I-NP B-PER\nSmith NN I-NP I-PER\nleft VB O O\n"
    (folder / "train.txt").write_text(train)
    (folder / "valid.txt").write_text(train)
    (folder / "test.txt").write_text("Smith NN I-NP B-PER\nleft VB O O\n")
    rc, out, err = run(tmp_path, folder, capsys)
    assert rc == 0, err
    ds, vocab, _ = load(out)
    assert tag_strings(ds, "test") == [["S-PER", "O"]]
