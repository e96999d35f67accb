"""lsctl against the real controller (tests/e2e/mesh.py: echo server, two proxies
behind ls-netsim, client, controller): every command, --json byte-compatible with the
contract, add/remove at run time, failover and its refusals, history, and watch seeing
the switch it caused."""
import json
import os
import subprocess
import threading
import time

import openapi
from lstest import BIN, LSTestCase, wait_for
from mesh import Mesh

LSCTL = os.path.join(BIN, "lsctl")


class LsctlControllerTest(LSTestCase):
    def lsctl(self, m, *args, timeout=15):
        env = {k: v for k, v in os.environ.items() if not k.startswith("LSCTL_")}
        env["LSCTL_API"] = m.base
        return subprocess.run([LSCTL] + list(args), capture_output=True, text=True, env=env,
                              timeout=timeout)

    def test_every_command_against_the_controller(self):
        m = Mesh(self)
        m.wait_measured()
        spec = openapi.spec()

        r = self.lsctl(m, "status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("active       a", r.stdout)
        self.assertIn("dataplane    connected", r.stdout)
        r = self.lsctl(m, "routes")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"\*  a\s+healthy")
        self.assertRegex(r.stdout, r"b  b\s+healthy")
        r = self.lsctl(m, "proxies")
        self.assertRegex(r.stdout, r"\na\s+127\.0\.0\.1:\d+\s+command_line")
        r = self.lsctl(m, "proxy", "b")
        self.assertIn("role         backup", r.stdout)
        r = self.lsctl(m, "stats")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("fec          setting", r.stdout)

        # --json: what the API answers, valid against the contract.
        for args, path in ((["status"], "/status"), (["routes"], "/routes"),
                           (["proxies"], "/proxies"), (["proxy", "a"], "/proxies/a"),
                           (["history"], "/failovers"), (["stats"], "/stats")):
            r = self.lsctl(m, "--json", *args)
            self.assertEqual(r.returncode, 0, (args, r.stderr))
            spec.check("GET", path, 200, {"Content-Type": "application/json"},
                       r.stdout.encode())

        # A node added and removed at run time.
        r = self.lsctl(m, "add", "c", "127.0.0.1:%d" % m.nb.port, "--region", "test")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("region       test", r.stdout)
        wait_for(lambda: any(n["name"] == "c" for n in m.api.get("/proxies")["proxies"]), 5,
                 what="c listed")
        r = self.lsctl(m, "add", "c", "127.0.0.1:1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("(exists)", r.stderr)
        r = self.lsctl(m, "remove", "c")
        self.assertEqual((r.returncode, r.stdout), (0, "removed c\n"), r.stderr)
        r = self.lsctl(m, "remove", "a")
        self.assertEqual(r.returncode, 1)
        self.assertIn("(conflict)", r.stderr)

        # watch sees the switch that failover makes.
        out = {}

        def watch():
            out["r"] = self.lsctl(m, "watch", "--count", "400", timeout=30)
        t = threading.Thread(target=watch)
        t.start()
        time.sleep(1.0)
        r = self.lsctl(m, "failover", "--to", "b")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("switched a -> b (manual", r.stdout)
        self.assertEqual(m.ctl.route()["active"], "b")
        t.join(40)
        w = out["r"]
        self.assertEqual(w.returncode, 0, w.stderr)
        lines = w.stdout.splitlines()
        self.assertIn("snapshot", lines[0])
        self.assertTrue(any(" switch " in l and "a -> b (manual" in l for l in lines),
                        "\n".join(lines[-20:]))
        self.assertTrue(any(" sample " in l for l in lines))

        r = self.lsctl(m, "failover", "--to", "b")
        self.assertEqual(r.returncode, 1)
        self.assertIn("(conflict)", r.stderr)
        r = self.lsctl(m, "failover", "--to", "nope")
        self.assertEqual(r.returncode, 1)
        self.assertIn("(not_found)", r.stderr)
        r = self.lsctl(m, "--json", "history")
        hist = json.loads(r.stdout)["failovers"]
        self.assertEqual((hist[0]["from"], hist[0]["to"], hist[0]["reason"]), ("a", "b", "manual"))
        r = self.lsctl(m, "history")
        self.assertRegex(r.stdout.splitlines()[1], r"\sa\s+b\s+manual\s")
