"""`make demo`: the whole product on loopback, run as a user runs it. It must show a
failover by itself, answer on its API and dashboard while it runs, stop by itself
(DEMO_SECONDS) or on Ctrl-C, and leave no process, socket or key behind."""
import json
import os
import re
import signal
import subprocess
import threading
import time
import unittest
import urllib.request

from lstest import BUILD, LSTestCase, wait_for

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LOGS = re.compile(r"logs\s+(/\S+)/processes\.log")
API = re.compile(r"REST API\s+(http://127\.0\.0\.1:\d+)/routes")
DASH = re.compile(r"dashboard\s+(http://127\.0\.0\.1:\d+)/")
LINE = re.compile(r"^\s*(\d+)s\s+(a|b|-)\s+\S+", re.M)


def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read()


def shows_output(test):
    """A failure shows what the demo printed."""
    def wrapped(self):
        try:
            test(self)
        except AssertionError as e:
            raise AssertionError("%s\n--- the demo printed:\n%s" % (e, self.text())) from None
    wrapped.__name__ = test.__name__
    wrapped.__doc__ = test.__doc__
    return wrapped


def processes_mentioning(text):
    """Pids of live processes whose command line holds text."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmd:
            found.append((int(pid), cmd))
    return found


class Demo(LSTestCase):

    out = ()

    def start(self, argv, env=None):
        self.out = []
        p = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, env=dict(os.environ, **(env or {})), start_new_session=True)
        self.closers.append(lambda: p.poll() is None and (os.killpg(p.pid, signal.SIGKILL), p.wait()))

        def read():
            for line in p.stdout:
                self.out.append(line)
        t = threading.Thread(target=read, daemon=True)
        t.start()
        self.reader = t
        return p

    def text(self):
        return "".join(self.out)

    def wait_banner(self, p):
        def up():
            if p.poll() is not None:
                raise AssertionError("the demo exited %s:\n%s" % (p.returncode, self.text()))
            return LINE.search(self.text())
        wait_for(up, 120, what="the demo's first live line")
        t = self.text()
        return LOGS.search(t).group(1), API.search(t).group(1), DASH.search(t).group(1)

    def assert_nothing_left(self, tmp):
        self.assertFalse(os.path.exists(tmp), "the demo left %s" % tmp)
        self.assertEqual(processes_mentioning(tmp), [], "processes left behind")

    @shows_output
    def test_make_demo_shows_a_failover_and_stops_by_itself(self):
        p = self.start(["make", "--no-print-directory", "-s", "demo", "B=%s" % os.path.abspath(BUILD)],
                       env={"DEMO_SECONDS": "42"})
        tmp, api, dash = self.wait_banner(p)
        out = self.text()
        for what in ("dashboard  http://", "lsctl", " routes", " failover", "node a  eu-west",
                     "node b  us-east", "1% loss, 3 ms jitter"):
            self.assertIn(what, out)
        # The API and the dashboard answer while it runs.
        st, ctype, body = get(api + "/routes")
        routes = json.loads(body)
        self.assertEqual(st, 200)
        self.assertEqual(sorted(c["name"] for c in routes["routes"][0]["candidates"]), ["a", "b"])
        self.assertEqual(routes["routes"][0]["active"], "a", "the nearest node first")
        st, ctype, body = get(dash + "/")
        self.assertEqual(st, 200)
        self.assertIn("text/html", ctype)
        # Keys sit in the demo's 0700 temporary directory only.
        self.assertEqual(os.stat(tmp).st_mode & 0o077, 0)
        self.assertEqual(p.wait(120), 0, self.text())
        self.reader.join(5)
        out = self.text()
        lines = LINE.findall(out)
        self.assertGreaterEqual(len(lines), 30, out)
        # At 30 s the active node (a) died: the dataplane failed over to b by itself.
        self.assertIn(">>> node a degraded", out)
        self.assertRegex(out, r"switch a -> b: failover: ")
        self.assertTrue(any(r == "b" for _, r in lines[30:]), out)
        m = re.search(r"summary: (\d+) game packets sent, (\d+) lost; (\d+) switches \((\d+) failovers\)", out)
        self.assertIsNotNone(m, out)
        sent, lost, failovers = int(m.group(1)), int(m.group(2)), int(m.group(4))
        self.assertGreaterEqual(failovers, 1)
        self.assertGreater(sent, 64 * 35)
        self.assertLess(lost, sent / 20, "more than 5% of the game's packets lost")
        self.assertIn("stopped: every process ended, %s removed" % tmp, out)
        self.assert_nothing_left(tmp)

    @shows_output
    def test_ctrl_c_stops_everything_cleanly(self):
        p = self.start([os.path.join(ROOT, "deploy/demo"), "--build", os.path.abspath(BUILD)])
        tmp, api, _ = self.wait_banner(p)
        self.assertTrue(processes_mentioning(tmp))
        # Ctrl-C on a terminal: SIGINT to the foreground process group.
        os.killpg(p.pid, signal.SIGINT)
        self.assertEqual(p.wait(60), 0, self.text())
        self.reader.join(5)
        self.assertIn("stopped: every process ended", self.text())
        self.assertNotIn("Traceback", self.text())
        self.assertNotIn("did not stop", self.text())
        self.assert_nothing_left(tmp)


if __name__ == "__main__":
    unittest.main()
