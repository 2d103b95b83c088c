"""The NER hub fixtures: a tiny ClassLabel DatasetDict served by a fake `datasets.load_dataset`."""

import datasets
import pytest

HUB_TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def hub_dataset(tags_col="ner_tags", names=HUB_TAGS, splits=("train", "validation", "test")):
    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "tokens": datasets.Sequence(datasets.Value("string")),
            tags_col: datasets.Sequence(datasets.ClassLabel(names=names)),
        }
    )
    data = {
        "id": ["0", "1", "2"],
        "tokens": [["John", "Smith", "visited", "Paris"], [], ["Berlin", "rocks"]],
        tags_col: [[1, 2, 0, 3], [], [3, 0]],
    }
    return datasets.DatasetDict({s: datasets.Dataset.from_dict(data, features=features) for s in splits})


@pytest.fixture
def fake_hub(monkeypatch):
    calls = []
    holder = {"ds": hub_dataset()}

    def load_dataset(path, name=None, *args, **kwargs):
        calls.append((path, name))
        return holder["ds"]

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    holder["calls"] = calls
    return holder


def hub_cfg(**kw):
    cfg = {"hub_config": None, "hub_tokens_column": "tokens", "hub_tags_column": "ner_tags"}
    cfg.update(kw)
    return cfg
