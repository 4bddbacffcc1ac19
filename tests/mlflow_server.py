"""A real MLflow tracking server for the tests: mlflow from PyPI, in its own venv
(.venv-mlflow, made by `make test-deps` from requirements-mlflow.txt: MLflow's own
dependencies would clash with the wiki's), started on 127.0.0.1 with an SQLite store and
filled through the MLflow client (tests/mlflow_client.py)."""

import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv-mlflow" / "bin" / "python"
CLIENT = Path(__file__).resolve().parent / "mlflow_client.py"
START_SECONDS = 120  # the first start creates the store's tables


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _answers(url):
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:  # noqa: S310 - http
            return response.status == 200
    except OSError:
        return False


def run_client(operations, tracking_uri, cwd=None):
    """Run ``operations`` through the MLflow client against ``tracking_uri``; their
    results (run ids, version numbers)."""
    done = subprocess.run(  # noqa: S603 - our own venv's Python and script
        [str(PYTHON), str(CLIENT)],
        input=json.dumps(operations), capture_output=True, text=True, timeout=600, cwd=cwd,
        env=os.environ | {"MLFLOW_TRACKING_URI": tracking_uri},
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"The MLflow client failed: {done.stderr[-3000:]}")
    # The last line: MLflow's client prints its own lines ("View run … at …") before.
    return json.loads(done.stdout.strip().splitlines()[-1])


class Server:
    """The server; ``prefill`` (operations for tests/mlflow_client.py) is written through
    the MLflow client straight into the store before the server starts (the same client
    code, without a request per call: 200 runs in seconds, not a minute)."""

    def __init__(self, folder, prefill=None):
        self.prefilled = []
        if prefill:
            store = f"sqlite:///{folder / 'mlflow.db'}"
            self.prefilled = run_client(prefill, store, cwd=folder)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(folder / "mlflow.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(  # noqa: S603 - our own venv's mlflow
            [
                str(PYTHON), "-m", "mlflow", "server", "--host", "127.0.0.1",
                "--port", str(self.port), "--workers", "1",
                "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
                "--artifacts-destination", str(folder / "artifacts"),
            ],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=folder,
            # Its job runner (prompt optimisation, scorers: seven processes) is not wanted.
            env=os.environ | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        )  # fmt: skip
        deadline = time.monotonic() + START_SECONDS
        while not _answers(self.url):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"MLflow did not start: {(folder / 'mlflow.log').read_text()[-2000:]}"
                )
            time.sleep(0.2)

    def client(self, operations):
        """Run ``operations`` through the MLflow client; their results (run ids)."""
        return run_client(operations, self.url)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture(scope="module")
def mlflow_server(request, tmp_path_factory):
    if not (PYTHON.parent.parent / ".installed").exists():
        if os.environ.get("MLFLOW_TESTS") == "required":
            pytest.fail("MLflow's venv is missing: run `make test-deps`.")
        pytest.skip("MLflow's venv (.venv-mlflow) is missing: `make test-deps` makes it.")
    # A test module's MLFLOW_PREFILL (a function of no arguments) gives what the server
    # holds when it starts (Server.prefilled: the results).
    prefill = getattr(request.module, "MLFLOW_PREFILL", None)
    server = Server(tmp_path_factory.mktemp("mlflow"), prefill=prefill() if prefill else None)
    yield server
    server.stop()
