"""The dashboard in a real browser (Debian's chromium through playwright-core, from
web/node_modules) against a mesh of real processes: nodes and live values appear and
update, a click fails over (the page and GET /routes agree), a killed node is marked
down, an API refusal is shown, FEC is set from the page, Cloudflare WARP's state and a
with/without comparison asked from the page (a stand-in warp-cli: WARP cannot run in
the tests), the detected game and its profile, phone width, keyboard, no console
errors, no request but to loopback; a screenshot is saved under build/."""
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
STANDIN = os.path.join(ROOT, "tests", "e2e", "standin", "warp-cli")


class DashboardTest(LSTestCase):
    def test_dashboard_in_chromium(self):
        self.assertTrue(os.path.isdir(MODULES),
                        "web/node_modules is missing: run `make deps` (npm ci in web/)")
        self.assertTrue(os.access("/usr/bin/chromium", os.X_OK), "no /usr/bin/chromium")
        # WARP connected as the user left it (a stand-in warp-cli that logs its calls), and
        # a game profile whose process the test starts when the page asks.
        tag = "lsdash%d" % os.getpid()
        os.mkdir(self.path("profiles"))
        with open(self.path("profiles/%s.toml" % tag), "w") as f:
            f.write('[game]\nname = "Dash Game"\nprocesses = ["%s"]\nports = ["7000-9000"]\n'
                    'anti_cheat = "Test Anti-Cheat"\n[traffic]\npps = 60\nsize_min = 40\n'
                    'size_max = 700\n[tunnel]\nfec = "auto"\nkeepalive_ms = 30\n' % tag)
        with open(self.path("warp.state"), "w") as f:
            f.write("connected\n")
        conf = self.path("controller.toml")
        with open(conf, "w") as f:
            f.write('[games]\nscan_ms = 200\n[warp]\ncli = "%s"\ncheck_ms = 1000\n'
                    'measure_ms = 1000\n' % STANDIN)
        env = dict(os.environ, LIGHTSPEED_PROFILE_PATH=self.path("profiles"),
                   WARP_STANDIN_STATE=self.path("warp.state"),
                   WARP_STANDIN_LOG=self.path("warp.calls"))
        m = Mesh(self, dashboard=True, ctl_args=["-c", conf], ctl_env=env)
        m.wait_measured()

        def warp_calls():
            with open(self.path("warp.calls")) as f:
                return [x for x in f.read().split() if x != "status"]
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
                elif line.startswith("ASK warp untouched"):
                    self.assertEqual(warp_calls(), [], "WARP toggled before the click")
                    p.stdin.write("ok\n")
                    p.stdin.flush()
                elif line.startswith("ASK warp compared"):
                    # The click's comparison: away from the state the user left and back.
                    self.assertEqual(warp_calls(), ["disconnect", "connect"])
                    last = m.api.get("/status")["warp"]["comparison"]["last"]
                    self.assertEqual((last["before"], last["kept"]), ("connected", "connected"))
                    p.stdin.write("ok\n")
                    p.stdin.flush()
                elif line.startswith("ASK game on"):
                    game = subprocess.Popen(["bash", "-c", 'exec -a "%s" sleep 60' % tag])
                    self.closers.append(lambda: (game.kill(), game.wait()))
                    wait_for(lambda: m.api.get("/status")["game"], 5, what="the game in /status")
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
