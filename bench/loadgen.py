#!/usr/bin/env python3
"""A small closed-loop HTTP load generator for the benchmarks (bench/issue13.py).

C threads, each holding one keep-alive connection (``http.client``; it reconnects by
itself when a server closes after a response, as gunicorn's synchronous workers do), take
job numbers from a shared counter until N are done. A job is a function of a connection and
a number that makes one or more requests (MLflow's client makes three per training run)
and says how many records it stored; its wall time is one latency sample.

Threads are enough here: a request costs the client some 50-100 µs of CPU (the GIL is
released while waiting on the socket), far below what a Django request costs. The ceiling
is measured, not assumed: ``python bench/loadgen.py --ceiling`` runs the generator against
a trivial keep-alive server (asyncio, a fixed answer, in a process of its own) on this
machine and prints the requests/s it reaches; bench/issue13.py prints it beside its table.
"""

import argparse
import asyncio
import http.client
import itertools
import json
import multiprocessing
import signal
import socket
import statistics
import threading
import time
import urllib.parse
from dataclasses import dataclass, field


class Connection:
    """One keep-alive connection with fixed headers (a token, or a session cookie)."""

    def __init__(self, url, headers=None, timeout=120):
        parts = urllib.parse.urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        self.prefix = parts.path.rstrip("/")
        self.headers = dict(headers or {})

    def send(self, method, path, body=None, headers=None):
        """(status, body bytes). ``body`` is bytes, or anything JSON can encode."""
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
        sent = self.headers | (headers or {})
        if body is not None:
            sent.setdefault("Content-Type", "application/json")
        try:
            self.connection.request(method, self.prefix + path, body, sent)
            response = self.connection.getresponse()
            return response.status, response.read()
        except (TimeoutError, ConnectionError, http.client.HTTPException):
            self.connection.close()  # the next request opens a new connection
            raise

    def close(self):
        self.connection.close()


@dataclass
class Result:
    jobs: int = 0
    records: int = 0
    elapsed: float = 0.0
    latencies: list = field(default_factory=list)  # seconds, one per job
    failures: list = field(default_factory=list)  # (job number, detail)

    @property
    def rate(self):
        """Records (or requests, for pages) per second of wall time."""
        return self.records / self.elapsed if self.elapsed else 0.0

    def percentile(self, share):
        """The share-th percentile latency in milliseconds (inclusive method)."""
        if not self.latencies:
            return float("nan")
        if len(self.latencies) == 1:
            return 1000 * self.latencies[0]
        values = sorted(self.latencies)
        return 1000 * statistics.quantiles(values, n=100, method="inclusive")[share - 1]

    @property
    def slowest(self):
        return 1000 * max(self.latencies) if self.latencies else float("nan")


def run(url, job, total, concurrency, headers=None):
    """Run ``job(connection, number)`` for numbers 0..total-1 on ``concurrency`` threads.

    ``job`` returns the records it stored (1 for a page read) or raises / returns a string
    naming a failure. Returns a Result."""
    result = Result(jobs=total)
    numbers = itertools.count()  # next() on it is atomic under the GIL
    lock = threading.Lock()
    start = threading.Barrier(concurrency + 1)

    def worker():
        connection = Connection(url, headers)
        latencies, failures, records = [], [], 0
        start.wait()
        while True:
            number = next(numbers)
            if number >= total:
                break
            began = time.perf_counter()
            try:
                outcome = job(connection, number)
            except Exception as error:  # noqa: BLE001 - a failed request is a figure too
                outcome = f"{type(error).__name__}: {error}"
            latencies.append(time.perf_counter() - began)
            if isinstance(outcome, str):
                failures.append((number, outcome[:300]))
            else:
                records += outcome
        connection.close()
        with lock:
            result.latencies.extend(latencies)
            result.failures.extend(failures)
            result.records += records

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    result.elapsed = time.perf_counter() - began
    return result


def get_job(path, expect=200):
    """A job that reads one page (a 200 with a body counts as one)."""

    def job(connection, number):
        status, body = connection.send("GET", path)
        if status != expect:
            return f"GET {path}: {status} {body[:200]!r}"
        return 1

    return job


# The trivial server of the ceiling measurement ------------------------------------------

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


async def _handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            writer.write(ANSWER)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def _serve(port, ready):
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a parent's handler is not for this process

    async def main():
        server = await asyncio.start_server(_handle, "127.0.0.1", port, backlog=128)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ceiling(total=20_000, concurrency=8):
    """Requests/s this generator reaches against a server that does nothing (a POST of
    a 1.5 KB JSON body, as a record post sends), and its p99 in ms."""
    port = free_port()
    ready = multiprocessing.Event()
    server = multiprocessing.Process(target=_serve, args=(port, ready), daemon=True)
    server.start()
    try:
        ready.wait(10)
        body = json.dumps({"x": "y" * 1500}).encode()

        def job(connection, number):
            status, _ = connection.send("POST", "/", body)
            return 1 if status == 200 else f"status {status}"

        run(f"http://127.0.0.1:{port}", job, min(total, 1000), concurrency)  # warm-up
        result = run(f"http://127.0.0.1:{port}", job, total, concurrency)
    finally:
        server.terminate()
        server.join()
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ceiling", action="store_true", help="measure against a null server")
    parser.add_argument("-n", type=int, default=20_000)
    parser.add_argument("-c", type=int, default=8)
    parser.add_argument("--url", help="GET this URL instead (requests/s)")
    args = parser.parse_args()
    if args.url:
        parts = urllib.parse.urlsplit(args.url)
        base = f"{parts.scheme}://{parts.netloc}"
        result = run(base, get_job(parts.path + ("?" + parts.query if parts.query else "")),
                     args.n, args.c)  # fmt: skip
    else:
        result = ceiling(args.n, args.c)
    print(
        f"{result.rate:.0f} requests/s at concurrency {args.c} over {args.n}; "
        f"p50 {result.percentile(50):.2f} ms, p99 {result.percentile(99):.2f} ms, "
        f"failures {len(result.failures)}"
    )


if __name__ == "__main__":
    main()
