"""core.io: crash-safe JSON writes and hub ids."""

import json
import os
import stat

import pytest

from pipelines.core.io import atomic_write, load_json, looks_like_hub_id, save_json


def leftovers(folder):
    """Temporary files of atomic_write (`.<name>.<random>.tmp`) left in a folder."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_save_json_round_trip_keeps_non_ascii_and_ends_with_a_newline(tmp_path):
    path = tmp_path / "stats.json"
    obj = {"words": ["über", "é"], "n": 3, "nested": {"x": [1.5, None, True]}}
    save_json(obj, path)
    text = path.read_text(encoding="utf-8")
    assert "über" in text and text.endswith("\n")
    assert json.loads(text) == obj == load_json(path)
    assert leftovers(tmp_path) == []


def test_save_json_replaces_an_existing_file(tmp_path):
    path = tmp_path / "metrics.json"
    save_json({"f1": 0.5}, path)
    save_json({"f1": 0.9}, path)
    assert load_json(path) == {"f1": 0.9}
    assert leftovers(tmp_path) == []


def test_a_failing_write_leaves_the_old_file_and_no_temp_file(tmp_path):
    path = tmp_path / "vocab.json"
    save_json({"words": ["a"]}, path)
    before = path.read_bytes()
    # json.dump writes the first keys before it reaches the object it cannot serialise.
    with pytest.raises(TypeError):
        save_json({"words": ["b"] * 1000, "bad": object()}, path)
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vocab.json"]


def test_a_failing_first_write_leaves_no_file(tmp_path):
    path = tmp_path / "new.json"
    with pytest.raises(TypeError):
        save_json({"bad": {1, 2}}, path)
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_an_interrupt_during_the_write_is_cleaned_up_too(tmp_path):
    """BaseException (Ctrl-C, SystemExit) as well as errors: the old file stays, the temp file goes."""
    path = tmp_path / "train.json"
    save_json({"epochs": 1}, path)

    def write(f):
        f.write('{"epochs": ')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, write, encoding="utf-8")
    assert load_json(path) == {"epochs": 1}
    assert leftovers(tmp_path) == []


def test_file_mode_is_what_open_gives(tmp_path):
    """mkstemp makes 0600 files; save_json's file has the mode of a plain open() (0666 less the umask)."""
    plain = tmp_path / "plain.json"
    with open(plain, "w", encoding="utf-8") as f:
        f.write("{}\n")
    saved = tmp_path / "saved.json"
    save_json({}, saved)
    mode = stat.S_IMODE(os.stat(saved).st_mode)
    assert mode == stat.S_IMODE(os.stat(plain).st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask


def test_atomic_write_binary_mode(tmp_path):
    path = tmp_path / "blob.bin"
    atomic_write(path, lambda f: f.write(b"\x00\xff"), mode="wb")
    assert path.read_bytes() == b"\x00\xff"
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------- hub ids


@pytest.mark.parametrize("source", ["eriktks/conll2003", "conll2003", "wnut_17", "owner/name-2"])
def test_looks_like_hub_id_accepts_ids(source):
    assert looks_like_hub_id(source)


@pytest.mark.parametrize(
    "source",
    ["./data/conll", "../shared/data/conll2003", "/abs/path", "~/data", "a/b/c", "a//b", "owner/", "/", ""],
)
def test_looks_like_hub_id_rejects_paths(source):
    assert not looks_like_hub_id(source)


def test_looks_like_hub_id_rejects_existing_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "conll2003").mkdir()
    (tmp_path / "owner").mkdir()
    (tmp_path / "owner" / "name").mkdir()
    assert not looks_like_hub_id("conll2003")
    assert not looks_like_hub_id("owner/name")
    assert looks_like_hub_id("other/name")
    assert not looks_like_hub_id(tmp_path)
