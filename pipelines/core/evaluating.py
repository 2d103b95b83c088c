"""The evaluate stage's driver, one for every task: score the trained model on the test split.

metrics.json holds the headline numbers (a DVC metric, short enough for
`dvc metrics show`); the task's per-type or per-class scores go to
evaluation.json; plots and the predictions file are the task's own.
"""

from pipelines.core.io import save_json


def evaluate(task, params, out):
    """Returns (headline metrics, details)."""
    cfg = params[task.name]["evaluate"]
    encoder = task.encoder(out)
    model = task.load_model(out / "model.keras")
    split = task.load_split(out, "test")
    (out / "plots").mkdir(exist_ok=True)
    metrics, details = task.evaluate(model, encoder, split, cfg, out)
    save_json(metrics, out / "metrics.json")
    save_json(details, out / "evaluation.json")
    return metrics, details
