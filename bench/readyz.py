#!/usr/bin/env python3
"""How fast /readyz/ tells that the broker or the storage stopped answering, and that it
is back: a redis-server and moto's S3 server of its own (hung with SIGSTOP, then stopped,
then started again), mlwiki in this process on SQLite, asked through Django's test client.

Prints, for each state, the answer and the slowest of N probes; for "back", how long after
the server answered again the probe turned 200.

  .venv/bin/python bench/readyz.py [-n 5]

Needs `make test` once (the venv with moto) and Debian's redis-server.
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Not tests.workers: it reads the settings on import, before the servers are known.
from tests.s3 import S3Server  # noqa: E402


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5, help="probes per state")
    args = parser.parse_args()

    redis_port = free_port()
    redis_server = subprocess.Popen(
        ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    s3 = S3Server()
    s3.start()
    os.environ |= {"REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", **s3.environment()}
    os.environ |= {"DATABASE_URL": f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3"}
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wiki.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", verbosity=0)
    client = Client()

    def probe():
        started = time.perf_counter()
        response = client.get("/readyz/")
        failed = ",".join(response.json().get("failed", [])) if response.status_code else ""
        return response.status_code, failed, time.perf_counter() - started

    def measure(state):
        answers = [probe() for _ in range(args.n)]
        slowest = max(seconds for *_, seconds in answers)
        codes = sorted({f"{code} {failed}".strip() for code, failed, _ in answers})
        print(f"| {state} | {', '.join(codes)} | {slowest * 1000:.0f} ms |")

    def back(state):
        answered = time.perf_counter()
        while probe()[0] != 200:
            time.sleep(0.01)
        print(f"| {state} | 200 after {(time.perf_counter() - answered) * 1000:.0f} ms | |")

    def redis_restart():
        nonlocal redis_server
        redis_server = subprocess.Popen(
            ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", ""],
            stdout=subprocess.DEVNULL,
        )
        while (
            subprocess.run(["redis-cli", "-p", str(redis_port), "ping"], capture_output=True).stdout
            != b"PONG\n"
        ):
            time.sleep(0.01)

    print("| state | answers | slowest probe |\n|---|---|---:|")
    try:
        measure("all up")
        redis_server.send_signal(signal.SIGSTOP)
        measure("Redis hung (SIGSTOP)")
        redis_server.send_signal(signal.SIGCONT)
        back("Redis answers again")
        redis_server.terminate()
        redis_server.wait()
        measure("Redis stopped")
        redis_restart()
        back("Redis started again")
        s3.pause()
        measure("S3 hung (SIGSTOP)")
        s3.resume()
        back("S3 answers again")
        s3.stop()
        measure("S3 stopped")
        s3.start()
        back("S3 started again")
    finally:
        redis_server.send_signal(signal.SIGCONT)
        redis_server.terminate()
        s3.stop()


if __name__ == "__main__":
    main()
