"""The dashboard in a real browser (Debian's chromium through playwright-core, from
web/node_modules) against a mesh of real processes: nodes and live values appear and
update, a click fails over (the page and GET /routes agree), a killed node is marked
down, an API refusal is shown, FEC is set from the page, phone width, keyboard, no
console errors, no request but to loopback; a screenshot is saved under build/."""
import os
import subprocess
import unittest

import lstest
import openapi
from lstest import LSTestCase, wait_for
from mesh import Mesh

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(ROOT, "tests", "browser", "dashboard.mjs")
MODULES = os.path.join(ROOT, "web", "node_modules", "playwright-core")


class DashboardTest(LSTestCase):
    def test_dashboard_in_chromium(self):
        self.assertTrue(os.path.isdir(MODULES),
                        "web/node_modules is missing: run `make deps` (npm ci in web/)")
        self.assertTrue(os.access("/usr/bin/chromium", os.X_OK), "no /usr/bin/chromium")
        m = Mesh(self, dashboard=True)
        m.wait_measured()
        dash = "http://127.0.0.1:%d/" % m.dash_port
        # The dashboard's origin serves the API too, by the same contract.
        openapi.Client(dash).get("/routes")
        shot = os.path.join(os.path.abspath(lstest.BUILD), "dashboard.png")
        p = subprocess.Popen(["node", SCRIPT, dash, shot], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        out = []
        try:
            for line in p.stdout:
                out.append(line.rstrip())
                if line.startswith("ASK routes-active b"):
                    r = m.api.get("/routes")["routes"][0]
                    self.assertEqual(r["active"], "b", "GET /routes after the click")
                    p.stdin.write("ok\n")
                    p.stdin.flush()
                elif line.startswith("ASK kill a"):
                    m.pa.expect_exit = True
                    m.pa.p.kill()
                    p.stdin.write("ok\n")
                    p.stdin.flush()
            rc = p.wait(120)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        text = "\n".join(out)
        self.assertEqual(rc, 0, "browser test failed:\n" + text)
        self.assertIn("screenshot saved", text)
        wait_for(lambda: m.ctl.cand("a")["state"] == "down", 5, what="a down in /routes")


if __name__ == "__main__":
    unittest.main()
