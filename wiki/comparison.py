"""Training runs side by side: which parameters differ, which run is best at each metric."""

import json

# A metric whose name contains one of these is better when lower (see lower_is_better).
LOWER_IS_BETTER = ("loss", "err", "rmse", "mse", "mae", "perplexity", "latency", "time", "duration")
MIN_RUNS, MAX_RUNS = 2, 10
# What a run without a parameter shows in its column.
MISSING = "—"


def lower_is_better(metric):
    """Whether a lower value of ``metric`` is better: the names of losses, errors
    (error, err, rmse, mse, mae), perplexity and of costs in time (latency, time,
    duration), case-insensitively anywhere in the name (``val_loss``, ``p99_latency_ms``).
    Every other metric (accuracy, auc, f1, ...) is better when higher."""
    name = metric.lower()
    return any(word in name for word in LOWER_IS_BETTER)


def compare(runs):
    """The parameters and final metrics of ``runs``, row by row.

    Returns ``params``: [{name, values (one per run; MISSING where the run has no such
    parameter), differs}] and ``metrics``: [{name, lower_is_better, cells: [{value, best}]}];
    the best of a metric is marked on every run that reached it (ties included).
    """
    params = []
    for name in sorted({name for run in runs for name in run.hyperparameters}):
        # Told apart as JSON: 1, 1.0, true and "1" are four different settings.
        seen = {
            json.dumps(run.hyperparameters[name]) if name in run.hyperparameters else None
            for run in runs
        }
        values = [run.hyperparameters.get(name, MISSING) for run in runs]
        params.append({"name": name, "values": values, "differs": len(seen) > 1})
    metrics = []
    for name in sorted({name for run in runs for name in run.metrics}):
        values = [run.metrics.get(name) for run in runs]
        lower = lower_is_better(name)
        present = [v for v in values if v is not None]
        best = min(present) if lower else max(present)
        cells = [{"value": v, "best": v is not None and v == best} for v in values]
        metrics.append({"name": name, "lower_is_better": lower, "cells": cells})
    return {"params": params, "metrics": metrics}
