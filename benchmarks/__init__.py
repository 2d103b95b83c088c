"""Benchmarks outside the DVC pipeline, built on the public task API only.

`python -m benchmarks ner|sentiment|all` (accuracy.py): the whole pipeline of a
task on the full data; `python -m benchmarks speed` (speed.py, with
flair_runner.py and speed_report.py): throughput against flair.
"""
