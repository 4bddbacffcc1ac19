"""A real S3-compatible server for the tests: moto's server (moto[server] from PyPI) in a
process of its own on 127.0.0.1, which a test may stop (the storage is down) and start
again (empty: its buckets are kept in memory), or pause (hung)."""

import signal
import socket
import subprocess
import sys
import time

import boto3
from botocore.config import Config

# moto accepts any keys; these only have to be the same on both sides.
ACCESS_KEY, SECRET_KEY, REGION = "mlwiki-test", "mlwiki-test-secret", "us-east-1"


class S3Server:
    def __init__(self, bucket="mlwiki-exports"):
        with socket.socket() as probe:  # a free port
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.bucket = bucket
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self.process = None

    def start(self):
        """Start the server and create the bucket (once the server answers)."""
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, "moto's server stopped as it started"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "moto's server did not start in 60 s"
                time.sleep(0.05)
        self.client().create_bucket(Bucket=self.bucket)

    def stop(self):
        self.process.send_signal(signal.SIGCONT)  # if paused
        self.process.terminate()
        self.process.wait(timeout=30)

    def pause(self):
        """SIGSTOP: connections are still accepted but never answered, as by a hung server."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self):
        self.process.send_signal(signal.SIGCONT)

    def client(self):
        """A boto3 client of the test's own, to look at the bucket from outside mlwiki."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
            config=Config(connect_timeout=5, read_timeout=30),
        )

    def keys(self):
        listing = self.client().list_objects_v2(Bucket=self.bucket)
        return [item["Key"] for item in listing.get("Contents", [])]

    def read(self, key):
        return self.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def environment(self):
        """The variables that point mlwiki at this server (README, "Object storage")."""
        return {
            "AWS_STORAGE_BUCKET_NAME": self.bucket,
            "AWS_S3_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_S3_REGION_NAME": REGION,
        }
