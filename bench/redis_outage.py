#!/usr/bin/env python3
"""API latency with Redis answering, hung (SIGSTOP: it accepts connections and never
answers) and stopped: gunicorn as shipped on PostgreSQL, with a redis-server of its own.

Each phase sends N requests at concurrency C, a third of each kind: a page read (the
throttle and the Markdown cache ask Redis), a training run posted (the throttle), and a
failed deployment posted (the throttle, and a notification handed to the broker). Prints
requests/s and latency percentiles per phase, and how many notifications wait for the
outbox's sweep at the end.

  python bench/redis_outage.py [-n 600] [-c 8]

Needs what .ci/run starts (PostgreSQL with the mlwiki role) and `make test` once.
"""

import argparse
import http.client
import json
import os
import queue
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv" / "bin" / "python")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(check, what):
    deadline = time.monotonic() + 60
    while not check():
        if time.monotonic() > deadline:
            sys.exit(f"{what} did not come up")
        time.sleep(0.1)


def answers(port, path="/healthz/"):
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request("GET", path)
        return connection.getresponse().status == 200
    except OSError:
        return False


def redis_answers(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def setup(env):
    db = env["DATABASE_URL"].rsplit("/", 1)[1]
    for sql in (f"DROP DATABASE IF EXISTS {db}", f"CREATE DATABASE {db}"):
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "mlwiki", "-d", "postgres", "-qc", sql],
                       check=True)  # fmt: skip
    subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v0"], env=env, cwd=ROOT, check=True)
    script = """
from django.contrib.auth.models import User
from wiki.history import Actor, Source
from wiki.services.notifications import configure
from wiki.services.pages import edit_page
from wiki.services.projects import create_project
from wiki.services.tokens import create_token
actor = Actor(User.objects.create_user('bench'), Source.CLI)
project = create_project(actor=actor, slug='bench', name='Benchmark', owner_team='bench')
page = project.pages.get(category='overview')
edit_page(page, actor=actor, base_revision=None, change_reason='bench',
          body='# Overview\\n\\nSome *Markdown* with a [[model]] link.\\n' * 20)
configure(project, actor=actor, webhook_url='http://127.0.0.1:9/')
print(create_token(actor=actor, user=actor.user, name='bench', scopes=['records:write'],
                   projects=['bench'])[1])
"""
    done = subprocess.run([PY, "manage.py", "shell", "--no-imports", "-c", script], env=env,
                          cwd=ROOT, check=True, capture_output=True, text=True)  # fmt: skip
    return done.stdout.strip().splitlines()[-1]


def run_phase(port, token, n, concurrency):
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    jobs = queue.Queue()
    for number in range(n):
        jobs.put(number)
    latencies, failures = [], []

    def work():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            try:
                number = jobs.get_nowait()
            except queue.Empty:
                return
            kind = number % 3
            if kind == 0:
                method, path, body = "GET", "/api/v1/projects/bench/pages/overview/", None
            elif kind == 1:
                method, path = "POST", "/api/v1/projects/bench/training-runs/"
                body = {"model_version": "1.0", "status": "succeeded",
                        "started_at": "2024-06-01T10:00:00Z", "metrics": {"auc": 0.8}}  # fmt: skip
            else:
                method, path = "POST", "/api/v1/projects/bench/deployments/"
                body = {"model_version": "1.0", "environment": f"env-{number}",
                        "status": "failed", "started_at": "2024-06-01T10:00:00Z"}  # fmt: skip
            started = time.perf_counter()
            payload = json.dumps(body).encode() if body else None
            connection.request(method, path, payload, headers)
            response = connection.getresponse()
            response.read()
            latencies.append(time.perf_counter() - started)
            if response.status >= 400:
                failures.append(response.status)

    started = time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, sorted(latencies), failures


def report(name, elapsed, latencies, failures):
    def ms(q):
        return 1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))]

    mean = 1000 * statistics.mean(latencies)
    print(
        f"{name:8} {len(latencies) / elapsed:7.1f} req/s   mean {mean:6.1f} ms   p50 {ms(0.5):6.1f}"
        f"   p90 {ms(0.9):6.1f}   p99 {ms(0.99):6.1f}   max {1000 * latencies[-1]:7.1f} ms"
        f"   errors {len(failures)}"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=600, help="requests per phase")
    parser.add_argument("-c", type=int, default=8, help="concurrency")
    args = parser.parse_args()
    redis_port, web_port = free_port(), free_port()
    env = os.environ | {
        "DATABASE_URL": "postgres://mlwiki@127.0.0.1:5432/mlwiki_bench_redis",
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "DEBUG": "false", "ALLOWED_HOSTS": "127.0.0.1", "SECURE_SSL_REDIRECT": "false",
        "SECRET_KEY": secrets.token_urlsafe(50), "AUDIT_HMAC_KEY": secrets.token_urlsafe(50),
        "API_THROTTLE_RATE": "100000000/minute", "WEB_CONCURRENCY": "2", "LOG_LEVEL": "ERROR",
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as directory:
        redis = subprocess.Popen(
            ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", directory],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        web = None
        try:
            wait_until(lambda: redis_answers(redis_port), "redis-server")
            token = setup(env)
            web = subprocess.Popen(
                [str(ROOT / ".venv" / "bin" / "gunicorn"), "--config", "deploy/gunicorn.conf.py",
                 "--bind", f"127.0.0.1:{web_port}", "--access-logfile", "/dev/null"],
                env=env, cwd=ROOT, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            wait_until(lambda: answers(web_port), "gunicorn")
            run_phase(web_port, token, 60, args.c)  # warm-up
            print(f"{args.n} requests per phase at concurrency {args.c}; {os.cpu_count()} cores")
            report("normal", *run_phase(web_port, token, args.n, args.c))
            redis.send_signal(signal.SIGSTOP)
            report("hung", *run_phase(web_port, token, args.n, args.c))
            redis.send_signal(signal.SIGCONT)
            wait_until(lambda: redis_answers(redis_port), "redis-server, resumed")
            report("back", *run_phase(web_port, token, args.n, args.c))
            redis.terminate()
            redis.wait()
            report("stopped", *run_phase(web_port, token, args.n, args.c))
        finally:
            for process in (web, redis):
                if process is not None and process.poll() is None:
                    process.send_signal(signal.SIGCONT)
                    process.terminate()
                    process.wait()
        script = (
            "from wiki.models import Delivery;"
            "print(Delivery.objects.filter(status='pending', due_at__isnull=True).count())"
        )
        waiting = subprocess.run([PY, "manage.py", "shell", "--no-imports", "-c", script],
                                 env=env, cwd=ROOT, capture_output=True, text=True)  # fmt: skip
        kept = waiting.stdout.strip()
        print(f"notifications never handed to the broker, kept for the sweep: {kept}")


if __name__ == "__main__":
    main()
