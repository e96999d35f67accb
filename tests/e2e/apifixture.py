"""Start the API fixture (build/tests/api_fixture): a real shared/httpd server serving
canned answers of api/openapi.yaml. Used by the HTTP server's tests and by lsctl's
tests that need no controller."""
import os
import signal
import subprocess
import time

import lstest

FIXTURE = os.path.join(os.path.abspath(lstest.BUILD), "tests", "api_fixture")
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools",
                    "api_fixture.json")


class Fixture:
    def __init__(self, tmp, *args, expect_fail=False):
        self.log_path = os.path.join(tmp, "api_fixture-%d-%d.log" % (os.getpid(),
                                                                      time.monotonic_ns()))
        self.log = open(self.log_path, "w+b")
        self.p = subprocess.Popen([FIXTURE, "--data", DATA] + list(args),
                                  stdout=subprocess.PIPE, stderr=self.log)
        self.port = None
        if expect_fail:
            return
        line = self.p.stdout.readline().decode()
        if not line.startswith("listening on "):
            self.p.kill()
            self.p.wait()
            raise AssertionError("api_fixture did not start: %r\n%s" % (line, self.output()))
        self.port = int(line.rsplit(":", 1)[1])
        self.base = "http://127.0.0.1:%d" % self.port

    def output(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def alive(self):
        return self.p.poll() is None

    def wait(self, timeout=5):
        return self.p.wait(timeout)

    def stop(self):
        """SIGTERM; returns the exit status (0: the loop closed cleanly)."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
                raise AssertionError("api_fixture did not exit on SIGTERM")
        self.p.stdout.close()
        self.log.close()
        return self.p.returncode
