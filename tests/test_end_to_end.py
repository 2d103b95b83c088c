"""All four NER stages on a fixture of a few dozen sentences, then serving."""

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml

from pipelines import evaluate, export, predict, prepare, train
from pipelines.tasks.ner import serving
from pipelines.text.tokenizer import tokenize
from tests.conftest import make_sentences, tiny_params, write_conll_splits

EPOCHS = 12


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """Runs prepare, train, evaluate and export once for the whole module."""
    tmp = tmp_path_factory.mktemp("e2e")
    source = write_conll_splits(tmp / "conll", 48, 12, 12)
    # 6 batches per epoch: min_steps stretches 6 epochs to EPOCHS (and patience with them).
    params = tiny_params(tmp, source, **{"ner.train.epochs": EPOCHS // 2, "ner.train.patience": EPOCHS // 2,
                                         "ner.train.min_steps": 6 * EPOCHS, "ner.train.learning_rate": 0.01})
    for stage in (prepare, train, evaluate, export):
        assert stage.main(["ner", "--params", str(params)]) == 0, stage.__name__
    return tmp, params, tmp / "out" / "ner"


def test_stages_write_their_outputs(run_dir):
    _, _, out = run_dir
    for name in ("data", "vocab.json", "stats.json", "model.keras", "train.json", "history.json",
                 "train_details.json", "metrics.json", "evaluation.json", "predictions.conll", "history.png", "plots/per_type_f1.csv", "plots/confusion.csv",
                 "plots/per_type_f1.png", "plots/confusion.png", "plots/reliability.png", "plots/min_score.png",
                 "saved_model/saved_model.pb", "export.json"):
        assert (out / name).exists(), name


def test_model_learns_the_fixture(run_dir):
    """The fixture is learnable: a broken loss, mask or decoder would not reach this."""
    _, _, out = run_dir
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["f1"] > 0.7, metrics
    assert set(metrics) == {"f1", "precision", "recall", "macro_f1", "strict_f1"}
    details = json.loads((out / "evaluation.json").read_text())
    assert set(details["per_type"]) == {"LOC", "ORG", "PER"}
    assert details["strict"]["f1"] == metrics["strict_f1"]
    assert 0 <= metrics["strict_f1"] <= 1 and metrics["strict_f1"] <= metrics["f1"] + 1e-9
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == list(range(1, EPOCHS + 1))
    assert history[-1]["loss"] < history[0]["loss"]
    summary = json.loads((out / "train.json").read_text())
    assert summary["best_val"] == max(h["val_f1"] for h in history)
    assert set(summary) == {"best_val", "best_epoch", "epochs", "seconds", "tokens_per_s"}
    train_details = json.loads((out / "train_details.json").read_text())
    assert train_details["hyperparameters"]["hidden_size"] == 16
    assert train_details["monitor"] == "val_f1"
    assert train_details["schedule"] == {"epoch_scale": 2.0, "max_epochs": EPOCHS, "patience": EPOCHS,
                                         "steps_per_epoch": 6}


def test_predictions_file_is_conlleval_input(run_dir):
    _, _, out = run_dir
    blocks = (out / "predictions.conll").read_text().strip("\n").split("\n\n")
    expected = make_sentences(12, seed=3)
    assert len(blocks) == len(expected)
    for block, (tokens, tags) in zip(blocks, expected):
        rows = [line.split(" ") for line in block.split("\n")]
        assert [r[0] for r in rows] == tokens
        assert [r[1] for r in rows] == tags  # gold back in IOB2
        assert all(len(r) == 3 for r in rows)


def test_export_parity_report(run_dir):
    _, _, out = run_dir
    report = json.loads((out / "export.json").read_text())
    assert report["mismatches"] == 0
    assert report["checked"] == 12 and report["unit"] == "sentences"


def without_progress(err):
    """stderr without the progress lines a slow machine adds (every 10 s: "... (100%), 13 s")."""
    return "".join(line for line in err.splitlines(keepends=True) if not re.search(r"\(\d+%\), ", line))


def test_export_fails_when_saved_model_disagrees(run_dir, monkeypatch, capsys):
    """The parity check is real: corrupt what the in-memory side predicts and export fails."""
    tmp, params, _ = run_dir
    real = serving.in_memory_tags

    def shifted(*args, **kwargs):
        tags, scores = real(*args, **kwargs)
        return [["B-PER"] + row[1:] for row in tags], scores

    monkeypatch.setattr(serving, "in_memory_tags", shifted)
    assert export.main(["ner", "--params", str(params)]) == 1
    err = without_progress(capsys.readouterr().err)
    assert re.match(r"export: error: the SavedModel disagrees with the in-memory model on [1-9]\d* of 12 test "
                    r"sentences; first: tags differ", err) and err.count("\n") == 1, err


def test_export_fails_when_entity_scores_disagree(run_dir, monkeypatch, capsys):
    tmp, params, _ = run_dir
    real = serving.in_memory_tags

    def rescored(*args, **kwargs):
        tags, scores = real(*args, **kwargs)
        return tags, [s * 0.9 for s in scores]

    monkeypatch.setattr(serving, "in_memory_tags", rescored)
    assert export.main(["ner", "--params", str(params)]) == 1
    err = without_progress(capsys.readouterr().err)
    assert "first: entity scores differ" in err and err.count("\n") == 1, err


def test_export_holds_entity_scores_to_1e_5(run_dir, monkeypatch, capsys):
    tmp, params, _ = run_dir
    real = serving.in_memory_tags

    def nudged(*args, **kwargs):
        tags, scores = real(*args, **kwargs)
        return tags, [np.where(s > 0, s - 2e-5, s) for s in scores]

    monkeypatch.setattr(serving, "in_memory_tags", nudged)
    assert export.main(["ner", "--params", str(params)]) == 1
    assert "first: entity scores differ" in capsys.readouterr().err


def test_entity_scorer_matches_entity_confidences_at_each_temperature(run_dir):
    from pipelines.tasks.ner import TASK
    from pipelines.tasks.ner.model import EntityScorer, entity_confidences

    _, _, out = run_dir
    model, encoder = TASK.load_model(out / "model.keras"), TASK.encoder(out)
    split = TASK.load_split(out, "validation")
    scorer = EntityScorer(model, encoder, split, batch_size=5)
    for temperature in (0.5, 1.0, 2.0):
        scores, correct = scorer(temperature)
        model.score_temperature = temperature
        expected, expected_correct = entity_confidences(model, encoder, split, batch_size=5)
        assert len(scores) == len(expected) > 0 and sorted(correct) == sorted(expected_correct)
        np.testing.assert_allclose(sorted(scores), sorted(expected), atol=1e-4)
    # A different temperature gives different scores (the scorer does not reuse them).
    assert not np.allclose(sorted(scorer(0.5)[0]), sorted(scorer(2.0)[0]))


def test_scoring_entities_keeps_one_predict_function_for_its_calls(run_dir):
    """The export parity check predicts batch by batch; rebuilding the predict function for
    each batch retraced the CRF's loops (CoNLL-2003 test: 56 s of its 60 s)."""
    from pipelines.tasks.ner import TASK
    from pipelines.tasks.ner.model import predict_tags_and_scores, scoring_entities

    _, _, out = run_dir
    model, encoder = TASK.load_model(out / "model.keras"), TASK.encoder(out)
    features = TASK.load_split(out, "test").features(encoder)
    tags = encoder.vocab["tags"]
    alone = predict_tags_and_scores(model, features, tags, batch_size=5)
    assert model.entity_tags is None and model.predict_function is None
    with scoring_entities(model, tags):
        first = predict_tags_and_scores(model, features, tags, batch_size=5)
        function = model.predict_function
        second = predict_tags_and_scores(model, features, tags, batch_size=5)
        assert function is not None and model.predict_function is function
    assert model.entity_tags is None and model.predict_function is None
    for got in (first, second):
        for a, b in zip(alone[0] + alone[1], got[0] + got[1]):
            np.testing.assert_array_equal(a, b)


def test_evaluate_measures_the_calibration_of_entity_scores(run_dir):
    _, _, out = run_dir
    details = json.loads((out / "evaluation.json").read_text())
    confidence = details["confidence"]
    predicted = sum(1 for line in (out / "predictions.conll").read_text().splitlines()
                    if line and line.split(" ")[2].startswith("B-"))
    assert confidence["count"] == predicted > 0 and details["min_score"] == 0.0
    assert 0 <= confidence["ece"] <= 1 and sum(b["count"] for b in confidence["bins"]) == predicted
    for name in ("reliability.csv", "reliability.png", "min_score.csv", "min_score.png"):
        assert (out / "plots" / name).is_file(), name
    rows = (out / "plots" / "min_score.csv").read_text().splitlines()
    assert rows[0] == "min_score,entities,precision,recall,f1" and rows[1].startswith(f"0.0,{predicted},")


def test_evaluate_min_score_drops_entities(run_dir, tmp_path):
    tmp, params, out = run_dir
    cfg = yaml.safe_load(params.read_text())
    cfg["ner"]["evaluate"]["min_score"] = 0.999
    strict = tmp_path / "params.yaml"
    strict.write_text(yaml.safe_dump(cfg))
    metrics = json.loads((out / "metrics.json").read_text())
    try:
        assert evaluate.main(["ner", "--params", str(strict)]) == 0
        filtered = json.loads((out / "metrics.json").read_text())
        curve = [line.split(",") for line in (out / "plots" / "min_score.csv").read_text().splitlines()[1:]]
        at = {float(r[0]): r for r in curve}
        assert filtered["recall"] <= metrics["recall"]
        # The stage's recall after dropping equals the curve's point at (about) that threshold.
        assert filtered["recall"] <= float(at[0.99][3]) + 1e-9
    finally:
        assert evaluate.main(["ner", "--params", str(params)]) == 0  # the module's other tests read these


def serving_function(out):
    import tensorflow as tf

    fn = tf.saved_model.load(str(out / "saved_model")).signatures["serving_default"]
    return lambda texts: fn(text=tf.constant(texts))


def serve(out, texts):
    return serving_function(out)(texts)


def test_saved_model_signature_names(run_dir):
    import tensorflow as tf

    _, _, out = run_dir
    fn = tf.saved_model.load(str(out / "saved_model")).signatures["serving_default"]
    assert list(fn.structured_input_signature[1]) == ["text"]
    assert set(fn.structured_outputs) == {"tokens", "tags", "entity_scores", "num_tokens"}


def test_saved_model_request_tags_each_text_as_if_alone(run_dir):
    """A request longer than one serving chunk, lengths mixed: each text's tags equal those it gets alone."""
    from pipelines.tasks.ner.serving import SERVE_CHUNK

    _, _, out = run_dir
    sentences = [" ".join(tokens * (1 + i % 4)) for i, (tokens, _) in enumerate(make_sentences(2 * SERVE_CHUNK + 9,
                                                                                          seed=7))]
    sentences[5] = ""
    sentences[70] = "Reuters"
    served = serving_function(out)  # loaded once: a load per text took minutes
    batch = served(sentences)
    n, tags, tokens = (batch[k].numpy() for k in ("num_tokens", "tags", "tokens"))
    assert tags.shape[1] == max(n)
    for i, text in enumerate(sentences):
        alone = served([text])
        assert n[i] == alone["num_tokens"].numpy()[0] == len(tokenize(text))
        assert list(tokens[i, : n[i]]) == list(alone["tokens"].numpy()[0, : n[i]])
        assert list(tags[i, : n[i]]) == list(alone["tags"].numpy()[0, : n[i]]), text
        assert all(t == b"" for t in tags[i, n[i]:])
    assert any(t.startswith(b"B-") for row in tags for t in row)  # not trivially all "O"


def test_saved_model_tags_whole_long_text(run_dir):
    _, _, out = run_dir
    text = " ".join(["John Smith visited Paris ."] * 600)
    result = serve(out, [text, "", "   "])
    n = result["num_tokens"].numpy()
    assert n[0] == len(tokenize(text)) == 3000
    assert n[1] == 0 and n[2] == 0
    tags = result["tags"].numpy()[0, : n[0]]
    assert all(t != b"" for t in tags)


def test_saved_model_cli_runs(run_dir):
    _, _, out = run_dir
    cli = shutil.which("saved_model_cli", path=str(__import__("pathlib").Path(sys.executable).parent))
    assert cli, "saved_model_cli is installed with TensorFlow"
    proc = subprocess.run(
        [cli, "run", "--dir", str(out / "saved_model"), "--tag_set", "serve",
         "--signature_def", "serving_default", "--input_exprs", 'text=["John Smith visited Paris ."]'],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "tags" in proc.stdout and "num_tokens" in proc.stdout


def run_predict(capsys, args, stdin=None, monkeypatch=None):
    if stdin is not None:
        import io

        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    rc = predict.main(args)
    captured = capsys.readouterr()
    return rc, [json.loads(line) for line in captured.out.splitlines()], captured.err


def test_predict_cli_spans(run_dir, capsys):
    _, _, out = run_dir
    text = "Reuters said John Smith would leave Paris ."
    rc, rows, err = run_predict(capsys, ["ner", "--model", str(out / "saved_model"), text, ""])
    assert rc == 0, err
    assert rows[1] == {"text": "", "entities": []}
    entities = rows[0]["entities"]
    assert entities, rows
    for ent in entities:
        assert text[ent["start"] : ent["end"]] == ent["text"]
        assert ent["type"] in {"PER", "LOC", "ORG"}
        assert list(ent) == ["type", "text", "start", "end", "score"] and 0 < ent["score"] <= 1
    paris = [{k: e[k] for k in ("type", "text", "start", "end")} for e in entities]
    assert {"type": "LOC", "text": "Paris", "start": 36, "end": 41} in paris
    # --min-score leaves out exactly the entities scored below it.
    # A threshold halfway between two printed (rounded) scores cannot fall on a rounding edge.
    distinct = sorted({e["score"] for e in entities})
    cut = (distinct[len(distinct) // 2 - 1] + distinct[len(distinct) // 2]) / 2 if len(distinct) > 1 else 0.0
    rc, kept, err = run_predict(capsys, ["ner", "--model", str(out / "saved_model"), "--min-score", str(cut), text])
    assert rc == 0, err
    assert kept[0]["entities"] == [e for e in entities if e["score"] >= cut]


def test_predict_jsonl_file_and_stdin(run_dir, capsys, monkeypatch, tmp_path):
    _, _, out = run_dir
    lines = [json.dumps({"text": "Anna Weber visited Tokyo ."}), json.dumps("   "), ""]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines))
    rc, rows, err = run_predict(capsys, ["ner", "--model", str(out / "saved_model"), "--jsonl", str(path)])
    assert rc == 0, err
    assert len(rows) == 2 and rows[1]["entities"] == []
    rc2, rows2, _ = run_predict(capsys, ["ner", "--model", str(out / "saved_model"), "--jsonl", "-"],
                                stdin="\n".join(lines), monkeypatch=monkeypatch)
    assert rc2 == 0 and rows2 == rows


@pytest.mark.parametrize(
    "content, message",
    [("{not json\n", "in.jsonl:1: not valid JSON"), ('{"txt": "a"}\n', 'in.jsonl:1: expected a JSON string')],
)
def test_predict_bad_jsonl(run_dir, capsys, tmp_path, content, message):
    _, _, out = run_dir
    path = tmp_path / "in.jsonl"
    path.write_text(content)
    rc, _, err = run_predict(capsys, ["ner", "--model", str(out / "saved_model"), "--jsonl", str(path)])
    assert rc == 1 and message in err


def test_predict_missing_model(capsys, tmp_path):
    rc, _, err = run_predict(capsys, ["ner", "--model", str(tmp_path / "nope"), "hello"])
    assert rc == 1 and "no SavedModel" in err


def test_keras_round_trip_of_trained_model(run_dir):
    from pipelines.tasks.ner import TASK
    from pipelines.tasks.ner.model import predict_tag_ids

    tmp, _, out = run_dir
    model = TASK.load_model(out / "model.keras")
    model.save(tmp / "again.keras")
    again = TASK.load_model(tmp / "again.keras")
    encoder = TASK.encoder(out)
    tokens = TASK.load_split(out, "test").tokens
    a = predict_tag_ids(model, encoder.encode(tokens))
    b = predict_tag_ids(again, encoder.encode(tokens))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_two_runs_with_the_same_params_give_the_same_metrics(tmp_path, conll_dir):
    results = []
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        params = tiny_params(folder, conll_dir, **{"ner.train.epochs": 3, "ner.train.patience": 3})
        for stage in (prepare, train, evaluate):
            assert stage.main(["ner", "--params", str(params)]) == 0
        out = folder / "out" / "ner"
        history = json.loads((out / "history.json").read_text())
        results.append(([h["loss"] for h in history], json.loads((out / "metrics.json").read_text())))
    assert results[0] == results[1]


@pytest.mark.parametrize("value", [1.0, -0.1, "high", True])
def test_evaluate_refuses_a_bad_min_score(run_dir, tmp_path, capsys, value):
    _, params, _ = run_dir
    cfg = yaml.safe_load(params.read_text())
    cfg["ner"]["evaluate"]["min_score"] = value
    bad = tmp_path / "params.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    assert evaluate.main(["ner", "--params", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err == f"evaluate: error: params: ner.evaluate.min_score must be a number in [0, 1), got {value!r}\n"


def test_saved_model_tags_a_text_sentence_by_sentence(run_dir):
    """A text of several sentences: the tagger runs on each sentence (it learnt sentences), the
    whole text being their document, exactly as the in-memory reference computes it."""
    from pipelines.tasks.ner import TASK
    from pipelines.tasks.ner.serving import in_memory_tags, split_sentences

    _, _, out = run_dir
    text = "John Smith visited Paris on Monday . Reuters said Anna Weber would leave Tokyo ! It rained"
    tokens = tokenize(text)
    assert len(split_sentences(tokens)) == 3
    model, encoder = TASK.load_model(out / "model.keras"), TASK.encoder(out)
    expected, scores = in_memory_tags(model, encoder, encoder.vocab, [tokens], 8)
    result = serve(out, [text])
    n = int(result["num_tokens"].numpy()[0])
    assert [t.decode() for t in result["tags"].numpy()[0, :n]] == expected[0]
    np.testing.assert_allclose(result["entity_scores"].numpy()[0, :n], scores[0], atol=serving.SCORE_TOLERANCE, rtol=0)
    # One sequence over the whole text would see other inputs: the last sentence's scores then differ.
    whole = TASK.encoder(out).encode([tokens])
    logits = np.asarray(model({k: v[0][None] for k, v in whole.items()}, training=False))[0]
    pieces = encoder.encode(split_sentences(tokens), docs=[0, 0, 0], cut_documents=False)
    last = np.asarray(model({k: v[2][None] for k, v in pieces.items()}, training=False))[0]
    assert not np.allclose(logits[-2:], last)


def test_saved_model_applies_the_document_vote(run_dir, tmp_path):
    """With a document vote, the SavedModel's tags are the vote over the sentences of each text of
    the tags it gives without one (the vote of evaluate and the parity check)."""
    import tensorflow as tf

    from pipelines.tasks.ner import TASK
    from pipelines.tasks.ner.model import entity_types, vote_documents
    from pipelines.tasks.ner.serving import build_archive, split_sentences
    from tests.conftest import ORGS, PEOPLE, PLACES

    _, _, out = run_dir
    model, encoder = TASK.load_model(out / "model.keras"), TASK.encoder(out)
    # Names where the templates put other types, beside sentences where they belong: the tagger
    # disagrees with itself about some of them.
    sentences = [" ".join(tokens) for tokens, _ in make_sentences(60, seed=11)]
    names = PEOPLE + PLACES + ORGS
    swapped = [s.replace(a, b) for s, a, b in zip(sentences, names * 9, names[3:] * 9 + names[:3])]
    texts = [" ".join([swapped[i], sentences[i], swapped[i + 1]]) for i in range(0, 58, 2)]

    def exported(share):
        model.document_vote = share
        path = tmp_path / f"vote_{share}"
        build_archive(model, encoder.vocab).write_out(str(path), verbose=False)
        fn = tf.saved_model.load(str(path)).signatures["serving_default"]
        result = fn(text=tf.constant(texts))
        n = result["num_tokens"].numpy()
        return ([[t.decode() for t in row[:k]] for row, k in zip(result["tags"].numpy(), n)],
                [row[:k] for row, k in zip(result["entity_scores"].numpy(), n)])

    plain_tags, plain_scores = exported(0.0)
    voted_tags, voted_scores = exported(0.5)
    docs, pieces, tags, scores = [], [], [], []
    for i, text in enumerate(texts):
        at = 0
        for sentence in split_sentences(tokenize(text)):
            docs.append(i)
            pieces.append(sentence)
            tags.append(plain_tags[i][at : at + len(sentence)])
            scores.append(plain_scores[i][at : at + len(sentence)])
            at += len(sentence)
    expected_tags, expected_scores = vote_documents(docs, pieces, tags, scores, entity_types(encoder.vocab["tags"]),
                                                    0.5)
    expected = [[] for _ in texts]
    for doc, row in zip(docs, expected_tags):
        expected[doc] += row
    assert voted_tags == expected
    assert expected != plain_tags  # the vote changed something here
    np.testing.assert_allclose(np.concatenate(voted_scores), np.concatenate(expected_scores), atol=1e-6)


def test_train_chooses_the_document_vote_on_validation(run_dir):
    from pipelines.tasks.ner import TASK

    _, _, out = run_dir
    finish = json.loads((out / "train_details.json").read_text())["finish"]
    found, chosen = finish["val_f1"], finish["document_vote"]
    assert set(found) == {"off", "0.55", "0.6", "0.65", "0.7", "0.8", "0.9"}
    assert found["off" if chosen == 0 else str(chosen)] == max(found.values())
    # Off is the selected epoch's validation F1, as the training callback measured it.
    assert found["off"] == pytest.approx(json.loads((out / "train.json").read_text())["best_val"], abs=1e-5)
    assert finish["calibration"]["score_temperature"] > 0
    assert TASK.load_model(out / "model.keras").document_vote == chosen
    assert json.loads((out / "evaluation.json").read_text())["document_vote"] == chosen
