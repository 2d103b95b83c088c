"""Named-entity recognition on CoNLL-style data (see task.py)."""

from pipelines.tasks.ner.task import NerTask

TASK = NerTask()
