"""lsctl against a real HTTP server: the API fixture (build/tests/api_fixture, canned
answers of api/openapi.yaml served by shared/httpd). What a user sees per command,
--json byte for byte, exit codes 0/1/2/3, errors on stderr, --help, the token, colour
only on a terminal and never with NO_COLOR, and `watch` both live and line by line.
(The same commands against the real controller are in the controller's tests.)"""
import json
import os
import pty
import select
import subprocess
import threading
import time

import apifixture
import lstest
import openapi

LSCTL = os.path.join(lstest.BIN, "lsctl")


class LsctlCase(lstest.LSTestCase):
    def setUp(self):
        super().setUp()
        self.fixtures = []

    def tearDown(self):
        for f in self.fixtures:
            alive = f.alive()
            rc = f.stop()
            if not alive or rc != 0:
                self.fail("api_fixture: alive=%s rc=%s\n%s" % (alive, rc, f.output()))
        super().tearDown()

    def fixture(self, *args):
        f = apifixture.Fixture(self.tmp, *args)
        self.fixtures.append(f)
        return f

    def lsctl(self, *args, api=None, env=None, timeout=15):
        e = {k: v for k, v in os.environ.items() if not k.startswith("LSCTL_")}
        e.pop("NO_COLOR", None)
        if api:
            e["LSCTL_API"] = api
        e.update(env or {})
        return subprocess.run([LSCTL] + list(args), capture_output=True, text=True,
                              env=e, timeout=timeout)

    def lsctl_tty(self, *args, api, env=None, timeout=15, during=None):
        """Run lsctl with its stdout on a pseudo-terminal; returns (rc, output)."""
        master, slave = pty.openpty()
        e = {k: v for k, v in os.environ.items() if not k.startswith("LSCTL_")}
        e.pop("NO_COLOR", None)
        e["LSCTL_API"] = api
        e["TERM"] = "xterm"
        e.update(env or {})
        p = subprocess.Popen([LSCTL] + list(args), stdout=slave, stderr=subprocess.PIPE,
                             env=e)
        os.close(slave)
        if during:
            threading.Thread(target=during, daemon=True).start()
        out = b""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    b = os.read(master, 65536)
                except OSError:
                    break
                if not b:
                    break
                out += b
            elif p.poll() is not None:
                break
        os.close(master)
        rc = p.wait(5)
        p.stderr.close()
        return rc, out.decode(errors="replace")


class TestCommands(LsctlCase):
    def test_each_command_text(self):
        f = self.fixture()
        want = {
            "status": ["active       eu-1", "backup       us-2", "direct RTT   52.4 ms",
                       "nodes        2 (1 healthy, 1 degraded, 0 down, 0 unknown)"],
            "routes": ["game server 127.0.0.1:27015 (strategy nearest)",
                       "active  eu-1: lowest score, score 30.6",
                       "direct  52.4 ms: the route gains 22.2 ms (42%)", "*  eu-1",
                       "b  us-2"],
            "proxies": ["eu-1  127.0.0.1:4434  config", "us-2  127.0.0.1:4435  api"],
            "history": ["initial", "first route: eu-1 scores lowest (30.6)"],
            "stats": ["17 rebuilt, 1 blocks lost beyond repair", "game_rx_packets"],
        }
        for cmd, lines in want.items():
            r = self.lsctl(cmd, api=f.base)
            self.assertEqual(r.returncode, 0, (cmd, r.stderr))
            self.assertEqual(r.stderr, "")
            for line in lines:
                self.assertIn(line, r.stdout, cmd)
            self.assertNotIn("\033[", r.stdout, "colour on a pipe")
        r = self.lsctl("proxy", "us-2", api=f.base)
        self.assertEqual(r.returncode, 0)
        self.assertIn("state        degraded (3 flips)", r.stdout)
        self.assertIn("server leg   4.5 ms", r.stdout)

    def test_json_is_the_apis_bytes(self):
        f = self.fixture()
        api = openapi.Client(f.base)
        for cmd, path in (("routes", "/routes"), ("proxies", "/proxies"),
                          ("history", "/failovers"), ("proxy", "/proxies/eu-1")):
            args = [cmd, "eu-1"] if cmd == "proxy" else [cmd]
            r = self.lsctl("--json", *args, api=f.base)
            self.assertEqual(r.returncode, 0, r.stderr)
            st, hd, body = api.raw("GET", path)
            self.assertEqual(r.stdout.encode(), body, cmd)
            api.spec.check("GET", path, 200, {"Content-Type": "application/json"},
                           r.stdout.encode())
        # --json may also come after the command.
        r = self.lsctl("status", "--json", api=f.base)
        self.assertEqual(json.loads(r.stdout)["active"], "eu-1")

    def test_change_commands(self):
        f = self.fixture()
        r = self.lsctl("add", "as-3", "127.0.0.1:4436", "--region", "asia", api=f.base)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("name         as-3", r.stdout)
        self.assertIn("region       asia", r.stdout)
        r = self.lsctl("add", "as-3", "127.0.0.1:4436", api=f.base)
        self.assertEqual(r.returncode, 1)
        self.assertIn("exists already (exists)", r.stderr)
        self.assertEqual(r.stdout, "")
        r = self.lsctl("failover", "--to", "us-2", api=f.base)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("switched eu-1 -> us-2 (manual", r.stdout)
        routes = openapi.Client(f.base).get("/routes")
        self.assertEqual(routes["routes"][0]["active"], "us-2")
        r = self.lsctl("history", api=f.base)
        self.assertRegex(r.stdout.splitlines()[1], r"eu-1\s+us-2\s+manual")
        r = self.lsctl("failover", api=f.base)  # to the backup, now eu-1
        self.assertIn("us-2 -> eu-1", r.stdout)
        r = self.lsctl("remove", "eu-1", api=f.base)
        self.assertEqual(r.returncode, 1)
        self.assertIn("fail over first", r.stderr)
        r = self.lsctl("remove", "as-3", api=f.base)
        self.assertEqual((r.returncode, r.stdout), (0, "removed as-3\n"))
        r = self.lsctl("proxy", "as-3", api=f.base)
        self.assertEqual(r.returncode, 1)
        self.assertIn("not_found", r.stderr)
        # A refusal with --json: the API's error object on stderr, nothing on stdout.
        r = self.lsctl("--json", "failover", "--to", "nope", api=f.base)
        self.assertEqual((r.returncode, r.stdout), (1, ""))
        self.assertEqual(json.loads(r.stderr)["error"]["code"], "not_found")

    def test_usage_errors_send_nothing(self):
        f = self.fixture()
        api = openapi.Client(f.base)
        before = api.get("/stats")["api"]["requests"]
        for args in (["add", "x"], ["add", "x", "nohost"], ["add", "bad name!", "h:1"],
                     ["add", "x", "h:1", "--key", "abc"], ["add", "x", "h:1", "--session-id",
                                                           "5"],
                     ["add", "x", "h:1", "--probe-ms", "5"], ["add", "x", "h:1", "--bogus", "1"],
                     ["proxy"], ["proxy", "a", "b"], ["remove"], ["failover", "--to"],
                     ["failover", "extra"], ["status", "extra"], ["watch", "--count", "0"],
                     ["frobnicate"], [], ["--api"], ["--api", "ftp://x", "status"]):
            r = self.lsctl(*args, api=f.base)
            self.assertEqual(r.returncode, 2, (args, r.stdout, r.stderr))
            self.assertNotEqual(r.stderr, "", args)
            self.assertEqual(r.stdout, "", args)
        self.assertEqual(api.get("/stats")["api"]["requests"], before + 1)

    def test_help(self):
        r = self.lsctl("--help")
        self.assertEqual(r.returncode, 0)
        for c in ("status", "routes", "proxies", "proxy", "add", "remove", "failover",
                  "history", "stats", "watch"):
            self.assertRegex(r.stdout, r"\n  %s\s" % c)
            h = self.lsctl(c, "--help")
            self.assertEqual(h.returncode, 0, c)
            self.assertTrue(h.stdout.startswith("usage: lsctl "), c)
            self.assertIn(" %s" % c, h.stdout.splitlines()[0])

    def test_unreachable_exits_3(self):
        port = lstest.free_port(lstest.socket.SOCK_STREAM)
        for args in (["status"], ["watch"], ["failover"]):
            r = self.lsctl(*args, api="http://127.0.0.1:%d" % port)
            self.assertEqual(r.returncode, 3, (args, r.stderr))
            self.assertIn("cannot reach the API at http://127.0.0.1:%d" % port, r.stderr)
            self.assertIn("lightspeed-controller running", r.stderr)
        # The default URL, and $LSCTL_API over it, and --api over that.
        f = self.fixture()
        r = self.lsctl("--api", f.base, "status", api="http://127.0.0.1:%d" % port)
        self.assertEqual(r.returncode, 0)

    def test_token(self):
        f = self.fixture("--token", "tok-123")
        r = self.lsctl("status", api=f.base)
        self.assertEqual(r.returncode, 1)
        self.assertIn("unauthorized", r.stderr)
        self.assertIn("--token", r.stderr)
        self.assertEqual(self.lsctl("--token", "tok-123", "status", api=f.base).returncode, 0)
        self.assertEqual(self.lsctl("status", api=f.base,
                                    env={"LSCTL_TOKEN": "tok-123"}).returncode, 0)


class TestTerminal(LsctlCase):
    def test_colour_on_a_terminal_only_without_no_color(self):
        f = self.fixture()
        rc, out = self.lsctl_tty("routes", api=f.base)
        self.assertEqual(rc, 0)
        self.assertIn("\033[32mhealthy\033[0m", out)
        rc, out = self.lsctl_tty("routes", api=f.base, env={"NO_COLOR": "1"})
        self.assertEqual(rc, 0)
        self.assertNotIn("\033[", out)
        self.assertIn("healthy", out)

    def test_watch_lines(self):
        f = self.fixture("--sample-ms", "100")
        r = self.lsctl("watch", "--count", "4", api=f.base)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), 4)
        self.assertRegex(lines[0], r"^\d\d:\d\d:\d\d\.\d{3} snapshot  active eu-1, backup us-2")
        self.assertRegex(lines[1], r" sample    (eu-1|us-2) rtt \d+\.\d ms")
        r = self.lsctl("--json", "watch", "--count", "3", api=f.base)
        spec = openapi.spec()
        for line in r.stdout.splitlines():
            ev = json.loads(line)
            spec.check_event(ev["event"], ev["data"])

    def test_watch_live_table(self):
        f = self.fixture("--sample-ms", "100")
        api = openapi.Client(f.base)

        def switch():
            time.sleep(1.0)
            api.post("/failover", {"to": "us-2"})
        rc, out = self.lsctl_tty("watch", "--count", "25", api=f.base, during=switch)
        self.assertEqual(rc, 0, out[-2000:])
        frames = out.split("\033[H\033[2J")
        self.assertGreater(len(frames), 3, "not redrawn in place")
        self.assertRegex(frames[1], r"\*  \S*eu-1")
        last = frames[-1]
        self.assertIn("latest events:", last)
        self.assertIn("eu-1 -> us-2 (manual", last)
        self.assertRegex(last, r"\*  \S*us-2")
        self.assertRegex(last, r"b  \S*eu-1")


if __name__ == "__main__":
    import unittest
    unittest.main()
