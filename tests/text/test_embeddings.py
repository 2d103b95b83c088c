"""Loading GloVe / word2vec text vectors into an embedding matrix."""

import re

import numpy as np
import pytest

from pipelines.text.embeddings import EmbeddingInitializer, VectorsFileError, load_vectors
from pipelines.text.tokenizer import normalize_word
from pipelines.text.vocab import Vocabulary

VOCAB = Vocabulary(["paris", "berlin", "0000", "tokyo", "rome"])  # ids 2..6


def norm(word):
    return normalize_word(word, True, True)


def write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


GLOVE = [
    "Paris 0.1 0.2 0.3",
    "berlin -1 2.5 0",
    "paris 9 9 9",  # same normalised form as Paris: the first wins
    "1999 4 5 6",
    "unknown 7 7 7",
    "<unk> 8 8 8",  # never overrides the OOV row
    "<pad> 8 8 8",
]


def test_glove_file(tmp_path):
    path = write(tmp_path / "glove.txt", GLOVE)
    matrix, found = load_vectors(path, VOCAB, 3, normalize=norm, seed=0)
    assert matrix.shape == (len(VOCAB), 3)
    assert matrix.dtype == np.float32
    assert found == 3
    np.testing.assert_array_equal(matrix[0], np.zeros(3, np.float32))
    np.testing.assert_array_equal(matrix[VOCAB.stoi["paris"]], np.float32([0.1, 0.2, 0.3]))
    np.testing.assert_array_equal(matrix[VOCAB.stoi["berlin"]], np.float32([-1, 2.5, 0]))
    np.testing.assert_array_equal(matrix[VOCAB.stoi["0000"]], np.float32([4, 5, 6]))
    # OOV row and words absent from the file: small random values.
    scale = np.sqrt(3.0 / 3)
    for word in ("<unk>", "tokyo", "rome"):
        row = matrix[VOCAB.stoi[word]]
        assert np.all(np.abs(row) <= scale) and np.any(row != 0)
        assert not np.array_equal(row, np.float32([8, 8, 8]))
    # Same seed, same matrix; another seed changes only the random rows.
    again, _ = load_vectors(path, VOCAB, 3, normalize=norm, seed=0)
    np.testing.assert_array_equal(matrix, again)
    other, _ = load_vectors(path, VOCAB, 3, normalize=norm, seed=1)
    assert not np.array_equal(matrix[VOCAB.stoi["tokyo"]], other[VOCAB.stoi["tokyo"]])
    np.testing.assert_array_equal(matrix[2], other[2])


def test_without_normalize_keys_must_match_exactly(tmp_path):
    path = write(tmp_path / "glove.txt", GLOVE)
    matrix, found = load_vectors(path, VOCAB, 3)
    assert found == 2  # "berlin" and the lowercase "paris" line; "Paris" and "1999" do not match
    np.testing.assert_array_equal(matrix[VOCAB.stoi["paris"]], np.float32([9, 9, 9]))


def test_word2vec_text_with_header(tmp_path):
    lines = ["4 2", "rome 1.5 -2", "Tokyo 3 4 ", "berlin 0.25 0.5", "london 1 1"]
    path = write(tmp_path / "vectors.w2v.txt", lines)
    matrix, found = load_vectors(path, VOCAB, 2, normalize=norm)
    assert found == 3
    np.testing.assert_array_equal(matrix[VOCAB.stoi["rome"]], np.float32([1.5, -2]))
    np.testing.assert_array_equal(matrix[VOCAB.stoi["tokyo"]], np.float32([3, 4]))
    np.testing.assert_array_equal(matrix[VOCAB.stoi["berlin"]], np.float32([0.25, 0.5]))
    np.testing.assert_array_equal(matrix[0], np.zeros(2, np.float32))


def test_blank_lines_are_skipped(tmp_path):
    path = write(tmp_path / "glove.txt", ["", "rome 1 2", "", "tokyo 3 4"])
    _, found = load_vectors(path, VOCAB, 2)
    assert found == 2


def test_dimension_mismatch_names_file_and_line(tmp_path):
    path = write(tmp_path / "glove.txt", ["rome 1 2 3", "tokyo 1 2 3", "paris 1 2"])
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}:3: vector for 'paris' has 2 values, expected 3"):
        load_vectors(path, VOCAB, 3)
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}:1: vector for 'rome' has 3 values, expected 2"):
        load_vectors(path, VOCAB, 2)


def test_word2vec_header_with_other_dim_is_a_mismatch(tmp_path):
    path = write(tmp_path / "vectors.txt", ["2 3", "rome 1 2 3", "tokyo 1 2 3"])
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}:2:"):
        load_vectors(path, VOCAB, 4)


def test_not_a_number_names_file_and_line(tmp_path):
    path = write(tmp_path / "glove.txt", ["rome 1 2", "tokyo 1 abc"])
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}:2: not a number in the vector for 'tokyo'"):
        load_vectors(path, VOCAB, 2)


class WordsOnly:
    """The part of an encoder that EmbeddingInitializer uses."""

    words = VOCAB

    @staticmethod
    def normalize(word):
        return norm(word)


def embedding_model(dim):
    import keras

    words = keras.Input(shape=(None,), dtype="int32")
    return keras.Model(words, keras.layers.Embedding(len(VOCAB), dim, name="word_embedding")(words))


def test_embedding_initializer_sets_the_layer_and_reads_the_file_once(tmp_path, monkeypatch):
    from pipelines.text import embeddings

    path = write(tmp_path / "glove.txt", GLOVE)
    reads = []
    real = embeddings.load_vectors
    monkeypatch.setattr(embeddings, "load_vectors", lambda *a, **kw: reads.append(a) or real(*a, **kw))
    logged = []
    init = EmbeddingInitializer(path, WordsOnly(), seed=0, log=logged.append)
    first, second = embedding_model(3), embedding_model(3)
    assert init(first) == 3 and init(second) == 3
    assert len(reads) == 1  # a tuning search builds many models; the file is read once per dimension
    assert logged == [f"embeddings: 3 of {len(VOCAB) - 2} words initialised from {path}"]
    expected, _ = real(path, VOCAB, 3, normalize=norm, seed=0)
    for model in (first, second):
        np.testing.assert_array_equal(model.get_layer("word_embedding").get_weights()[0], expected)


def test_embedding_initializer_reads_again_for_another_dimension(tmp_path):
    path = write(tmp_path / "vectors.txt", ["rome 1 2", "tokyo 3 4"])
    init = EmbeddingInitializer(path, WordsOnly(), seed=0, log=lambda _: None)
    assert init(embedding_model(2)) == 2
    with pytest.raises(ValueError, match=r"vector for 'rome' has 2 values, expected 3"):
        init(embedding_model(3))


def test_malformed_files_raise_vectors_file_error(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("rome 1 2\ncaf\xe9 1 2\n".encode("latin-1"))
    with pytest.raises(VectorsFileError, match=rf"{re.escape(str(path))}:2: not valid UTF-8"):
        load_vectors(path, VOCAB, 2)
    path = write(tmp_path / "glove.txt", ["rome 1 2 3"])
    with pytest.raises(VectorsFileError, match="expected 2 \\(the model's word_dim\\)"):
        load_vectors(path, VOCAB, 2)
