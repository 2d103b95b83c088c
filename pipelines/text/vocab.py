"""Token vocabularies built from the train split only."""

from collections import Counter

PAD = "<pad>"
OOV = "<unk>"


class Vocabulary:
    """Maps strings to ids; id 0 is padding and id 1 the unknown token.

    Args:
        tokens: the vocabulary entries, without the two reserved ones.
    """

    def __init__(self, tokens):
        tokens = list(tokens)
        if PAD in tokens or OOV in tokens:
            raise ValueError(f"{PAD!r} and {OOV!r} are reserved")
        self.itos = [PAD, OOV] + tokens
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("vocabulary entries must be unique")

    pad_id = 0
    oov_id = 1

    @classmethod
    def build(cls, counts, min_count=1, max_size=None):
        """From a Counter: frequent first, ties broken alphabetically for determinism."""
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count}")
        items = sorted(((t, c) for t, c in counts.items() if c >= min_count), key=lambda x: (-x[1], x[0]))
        if max_size is not None:
            items = items[: max(0, int(max_size) - 2)]
        return cls(t for t, _ in items)

    @classmethod
    def from_iterable(cls, iterable, **kwargs):
        return cls.build(Counter(iterable), **kwargs)

    def __len__(self):
        return len(self.itos)

    def __contains__(self, token):
        return token in self.stoi

    def lookup(self, tokens):
        stoi, oov = self.stoi, self.oov_id
        return [stoi.get(t, oov) for t in tokens]

    def to_list(self):
        return list(self.itos)

    @classmethod
    def from_list(cls, itos):
        if list(itos[:2]) != [PAD, OOV]:
            raise ValueError(f"a saved vocabulary must start with {PAD!r}, {OOV!r}")
        return cls(itos[2:])
