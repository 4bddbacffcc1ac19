#!/usr/bin/env python3
"""Ingest benchmark: POST N training runs with concurrency C, then check exactly N exist.

Each record is what a real pipeline posts: 20 hyperparameters, 10 metrics, 5 tags, a
dataset, a commit and an Idempotency-Key. Prints records/s and latency percentiles.

  python bench/ingest.py --url http://127.0.0.1:8001 --token KEY --project bench -n 5000 -c 8

bench/run.sh sets up a server (gunicorn on PostgreSQL) and runs the figures of README.md.
"""

import argparse
import http.client
import json
import queue
import statistics
import sys
import threading
import time
import urllib.parse
import uuid


def record(batch, number):
    return {
        "model_version": batch,
        "status": "succeeded",
        "started_at": "2024-06-01T10:00:00Z",
        "finished_at": "2024-06-01T10:12:00Z",
        "git_commit": f"{number:040x}",
        "pipeline_url": f"https://ci.example.com/runs/{number}",
        "dataset": {"name": "customers", "version": "2024-05-31", "uri": "s3://data/c.parquet"},
        "hyperparameters": {f"param_{i}": i * 0.01 for i in range(20)},
        "metrics": {f"metric_{i}": 0.5 + i / 100 for i in range(10)},
        "tags": {f"tag_{i}": f"value-{i}" for i in range(5)},
        "environment": {"python": "3.11.7", "lightgbm": "4.3.0"},
    }


class Connection:
    """One keep-alive HTTP connection, as a pipeline's client would hold."""

    def __init__(self, url, token):
        parts = urllib.parse.urlsplit(url)
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        self.connection = cls(parts.hostname, parts.port, timeout=60)
        self.prefix = parts.path.rstrip("/")
        self.headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}

    def send(self, method, path, body=None, headers=None):
        payload = json.dumps(body).encode() if body is not None else None
        self.connection.request(method, self.prefix + path, payload, self.headers | (headers or {}))
        response = self.connection.getresponse()
        return response.status, response.read()


def worker(args, batch, jobs, latencies, failures):
    connection = Connection(args.url, args.token)
    path = f"/api/v1/projects/{args.project}/training-runs/"
    while True:
        try:
            number = jobs.get_nowait()
        except queue.Empty:
            return
        key = {"Idempotency-Key": f"{batch}-{number}"}
        started = time.perf_counter()
        status, body = connection.send("POST", path, record(batch, number), key)
        latencies.append(time.perf_counter() - started)
        if status != 201:
            failures.append((status, body[:300]))


def count(args, batch):
    """How many runs of this batch exist, paging through the API's cursor pages."""
    connection = Connection(args.url, args.token)
    query = urllib.parse.urlencode({"model_version": batch, "page_size": 200})
    path = f"/api/v1/projects/{args.project}/training-runs/?{query}"
    total = 0
    while path:
        status, body = connection.send("GET", path)
        if status != 200:
            sys.exit(f"listing failed: {status} {body[:300]!r}")
        page = json.loads(body)
        total += len(page["results"])
        following = page["next"]
        path = (
            urllib.parse.urlsplit(following)._replace(scheme="", netloc="").geturl()
            if following
            else None
        )
        if path and connection.prefix:
            path = path.removeprefix(connection.prefix)
    return total


def percentile(values, share):
    return statistics.quantiles(values, n=100, method="inclusive")[share - 1]


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--project", required=True)
    parser.add_argument("-n", type=int, default=2000, help="records to post")
    parser.add_argument("-c", type=int, default=8, help="concurrent clients")
    args = parser.parse_args()

    batch = f"bench-{uuid.uuid4().hex[:12]}"
    jobs = queue.Queue()
    for number in range(args.n):
        jobs.put(number)
    latencies, failures = [], []
    threads = [
        threading.Thread(target=worker, args=(args, batch, jobs, latencies, failures))
        for _ in range(args.c)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started

    stored = count(args, batch)
    ms = sorted(1000 * latency for latency in latencies)
    print(
        f"concurrency {args.c:>3}  records {args.n}  {args.n / elapsed:7.1f} records/s  "
        f"p50 {percentile(ms, 50):6.1f} ms  p95 {percentile(ms, 95):6.1f} ms  "
        f"p99 {percentile(ms, 99):6.1f} ms  failures {len(failures)}  stored {stored}"
    )
    if failures:
        print("first failure:", failures[0], file=sys.stderr)
    if stored != args.n or failures:
        sys.exit(f"expected exactly {args.n} records, found {stored}")


if __name__ == "__main__":
    main()
