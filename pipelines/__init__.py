"""The DVC pipeline: one module per stage (`python -m pipelines.<stage> <task>`), the tasks, and what they share."""
