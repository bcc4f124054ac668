"""Fixtures of the server tests: `unmask serve` started on loopback.

`serve(*flags)` starts the program ($UNMASK_BIN) with `--port 0` and the
flags, reads the address it prints on its first line of stdout, and stops it
at the end of the test (SIGTERM, then SIGKILL if it does not exit within
30 s). `tiny` is one server shared by a module, on the embedded tiny-llada.
"""
import os
import re
import signal
import subprocess
import time

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("UNMASK_BIN", os.path.join(ROOT, "build", "apps", "unmask"))


class Server:
    def __init__(self, flags):
        self.flags = list(flags)
        self.proc = subprocess.Popen([BIN, "serve", "--port", "0", *self.flags], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if not re.match(r"^http://127\.0\.0\.1:\d+$", line):
            self.proc.kill()
            raise RuntimeError(f"unmask serve printed {line!r}; stderr: {self.proc.stderr.read()}")
        self.url = line
        self.port = int(line.rsplit(":", 1)[1])

    @property
    def v1(self):
        return self.url + "/v1"

    def metrics(self):
        """The unlabelled samples of /metrics as floats (name -> value)."""
        out = {}
        for line in requests.get(self.url + "/metrics", timeout=10).text.splitlines():
            if line.startswith("#") or "{" in line:
                continue
            name, value = line.split(" ")
            out[name] = float(value)
        return out

    def wait_for(self, predicate, timeout=10.0):
        """Polls /metrics until predicate(metrics) holds; the last metrics, or None after timeout."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = self.metrics()
            if predicate(m):
                return m
            time.sleep(0.02)
        return None

    def stop(self, timeout=30.0):
        """SIGTERM and the exit status (None if it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        return self.proc.returncode


@pytest.fixture
def serve():
    started = []

    def start(*flags):
        s = Server(flags)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


@pytest.fixture(scope="module")
def tiny():
    s = Server(["--gen-length", "32", "--block-length", "32"])
    yield s
    assert s.stop() == 0


def generate(*args):
    """The text `unmask generate -q ARGS` prints (its trailing newline dropped)."""
    out = subprocess.run([BIN, "generate", "-q", *args], check=True, capture_output=True, text=True).stdout
    return out[:-1] if out.endswith("\n") else out
