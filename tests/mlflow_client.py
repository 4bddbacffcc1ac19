"""Fills a real MLflow tracking server through the MLflow client, as a team's training
code would (run by tests/mlflow_server.py with the MLflow venv's Python: MLflow is not a
dependency of the wiki). Reads a JSON list of operations on stdin, prints a JSON list of
their results (run ids)."""

import json
import os
import sys
import tempfile

from mlflow import MlflowClient
from mlflow.data.http_dataset_source import HTTPDatasetSource
from mlflow.data.meta_dataset import MetaDataset
from mlflow.entities import DatasetInput, InputTag, Metric, Param, RunTag
from PIL import Image  # a dependency of MLflow's


def run(client, op):
    """One run: params, metrics (a list of values is a history, one per step), tags, a
    dataset input, an image; left running unless "status" says how it ended."""
    experiment = client.get_experiment_by_name(op["experiment"])
    experiment_id = (
        experiment.experiment_id if experiment else client.create_experiment(op["experiment"])
    )
    created = client.create_run(
        experiment_id, start_time=op["start"], tags=op.get("tags", {}), run_name=op.get("name")
    )
    run_id = created.info.run_id
    log(client, run_id, op)
    if op.get("dataset"):
        dataset = MetaDataset(
            HTTPDatasetSource(op["dataset"]["uri"]), name=op["dataset"]["name"],
            digest=op["dataset"]["digest"],
        )  # fmt: skip
        context = InputTag("mlflow.data.context", "training")
        client.log_inputs(run_id, [DatasetInput(dataset._to_mlflow_entity(), [context])])
    if op.get("image"):
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, op["image"])
            Image.new("RGB", (8, 8), (200, 30, 30)).save(path)
            client.log_artifact(run_id, path, artifact_path="plots")
    if op.get("status"):
        client.set_terminated(run_id, status=op["status"], end_time=op["start"] + 60_000)
    return run_id


def log(client, run_id, op):
    metrics = []
    for key, value in op.get("metrics", {}).items():
        values = value if isinstance(value, list) else [value]
        metrics += [
            Metric(key, v, op["start"] + step * 1000, step)
            for step, v in enumerate(values, start=op.get("first_step", 0))
        ]
    client.log_batch(
        run_id,
        metrics=metrics[:1000],  # MLflow takes at most 1,000 metrics per batch
        params=[Param(k, str(v)) for k, v in op.get("params", {}).items()],
        tags=[RunTag(k, v) for k, v in op.get("log_tags", {}).items()],
    )
    for start in range(1000, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[start : start + 1000])


def main():
    client = MlflowClient()
    results = []
    for op in json.load(sys.stdin):
        kind = op.pop("op")
        if kind == "run":
            results.append(run(client, op))
        elif kind == "log":  # more metrics (and an end) for a run
            log(client, op["run_id"], op)
            if op.get("status"):
                client.set_terminated(op["run_id"], status=op["status"], end_time=op["end"])
            results.append(op["run_id"])
        elif kind == "delete":
            client.delete_run(op["run_id"])
            results.append(op["run_id"])
        elif kind == "register":  # a registered model version from a run
            op.setdefault("run_id", results[op.pop("run", 0)])  # a run of this batch
            if not client.search_registered_models(f"name='{op['model']}'"):
                client.create_registered_model(op["model"])
            version = client.create_model_version(
                op["model"], f"runs:/{op['run_id']}/model", run_id=op["run_id"],
                description=op.get("description", ""),
            )  # fmt: skip
            if op.get("alias"):
                client.set_registered_model_alias(op["model"], op["alias"], version.version)
            results.append(version.version)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
