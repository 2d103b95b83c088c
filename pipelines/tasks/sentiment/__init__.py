"""Document classification (sentiment), IMDB by default (see task.py)."""

from pipelines.tasks.sentiment.task import SentimentTask

TASK = SentimentTask()
