"""The controller's paths to an egress (docs/protocol.md 1.9, api/openapi.yaml /paths):
the real controller steering the real client, whose route to egress e runs through
relays r1, r2, r3 (real proxies with grants, each behind its own ls-netsim), and a
second egress f. A path that starts losing is replaced by a spare path to the same
egress (the game server sees the same address); a better egress is held back while a
path to e works; only when none does, the egress changes, and the log says the game
server will see a new address. lsctl shows the paths and sets the path mode."""
import signal
import subprocess
import time

from test_controller import LSCTL, Controller, Traffic
from lstest import LSTestCase, wait_for

KEY_E = "000102030405060708090a0b0c0d0e0f"
KEY_F = "101112131415161718191a1b1c1d1e1f"
SID_E, SID_F = 9, 10
FAST = "[limits]\npps = 200000\nbps = 400000000\n"
DELAY_F = 10                   # ms each way: f is worse than e at first


def grant_key(i):
    return "%02x" % (0xa0 + i) * 16


class ControllerPathsTest(LSTestCase):

    def lsctl(self, c, *args):
        return subprocess.run([LSCTL, "--api", "http://127.0.0.1:%d" % c.port] + list(args),
                              capture_output=True, text=True, timeout=10)

    def node_paths(self, c, node):
        return next(n for n in c.api.get("/paths")["nodes"] if n["node"] == node)

    def path_names(self, c, node):
        return sorted(p["name"] for p in self.node_paths(c, node)["paths"])

    def test_a_bad_path_is_replaced_and_the_egress_changes_only_when_no_path_works(self):
        echo = self.echo()
        e = self.proxy(config=FAST, auth=True)
        e.steer("session_add", session_id=SID_E, key=KEY_E,
                destinations=["127.0.0.1:%d" % echo.addr[1]])
        f = self.proxy(config=FAST, auth=True)
        f.steer("session_add", session_id=SID_F, key=KEY_F,
                destinations=["127.0.0.1:%d" % echo.addr[1]])
        nf = self.netsim(f.addr, up="delay=%dms" % DELAY_F, down="delay=%dms" % DELAY_F)
        relays, nets = [], []
        for i in range(3):
            r = self.proxy(config=FAST, auth=True)
            r.steer("grant_add", session_id=100 + i, key=grant_key(i),
                    next_hops=["127.0.0.1:%d" % e.port])
            relays.append(r)
            nets.append(self.netsim(r.addr, seed=i + 1))
        client = self.client(None, echo.addr, keepalive_ms=30)
        conf = ("[multipath]\nmode = \"duplicate\"\npaths = 2\ndirect = false\n"
                "replace_after_ms = 300\n\n"
                "[[node]]\nname = \"e\"\naddress = \"127.0.0.1:%d\"\nsession_id = %d\n"
                "key = \"%s\"\n\n"
                "[[node]]\nname = \"f\"\naddress = \"127.0.0.1:%d\"\nsession_id = %d\n"
                "key = \"%s\"\n" % (e.port, SID_E, KEY_E, nf.port, SID_F, KEY_F))
        for i, n in enumerate(nets):
            conf += ("\n[[relay]]\nname = \"r%d\"\naddress = \"127.0.0.1:%d\"\n"
                     "session_id = %d\nkey = \"%s\"\nnodes = [\"e\"]\n"
                     % (i + 1, n.port, 100 + i, grant_key(i)))
        c = Controller(self, ["-c", self.write("controller.toml", conf), "--client-socket",
                              client.sock_path, "--state-dir", self.path("state"),
                              "--dashboard", "off"])
        self.closers.append(c.stop)

        # 1. e active, its route on r1 and r2 (the direct path gone), in duplicate mode;
        #    r3 is the spare; f has no relays and is left alone.
        def placed():
            p = self.node_paths(c, "e")
            return (c.api.get("/status")["active"] == "e" and
                    sorted(x["name"] for x in p["paths"]) == ["r1", "r2"] and
                    all(x["state"] == "up" for x in p["paths"]) and
                    p["path_mode"] == "duplicate")
        wait_for(placed, 15, 0.1, "e active on paths r1 and r2")
        pe = self.node_paths(c, "e")
        self.assertTrue(pe["managed"])
        for p in pe["paths"]:
            self.assertTrue(p["relay"])
            self.assertGreaterEqual(p["score_ms"], p["rtt_ms"])
            self.assertIsNotNone(p["hop_rtt_ms"], "the relay's own leg measured")
        self.assertEqual([s["name"] for s in pe["spares"]], ["r3"])
        self.assertFalse(self.node_paths(c, "f")["managed"])
        out = self.lsctl(c, "paths")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("spares: r3", out.stdout)
        self.assertIn("mode duplicate", out.stdout)

        game = Traffic(client.local_port)
        self.closers.append(game.stop)
        wait_for(lambda: game.replies_after(0) > 20, 5, what="game traffic through the relays")

        # 2. The leg to r1 loses 30%: r1 is replaced by r3, e stays the egress, and in
        #    duplicate mode no game packet is lost or delivered twice meanwhile.
        t0 = time.monotonic()
        nets[0].steer("set", dir="both", spec="loss=30%")
        wait_for(lambda: self.path_names(c, "e") == ["r2", "r3"], 20, 0.1,
                 "r1 replaced by r3")
        time.sleep(0.5)
        self.assertEqual(game.missing(game.sent_between(t0, time.monotonic() - 0.3)), [])
        self.assertEqual(game.duplicates(), [])
        self.assertIn("path r1 replaced by r3", c.output())
        self.assertIn("the address the game server sees, stay the same", c.output())
        self.assertEqual(c.api.get("/status")["active"], "e")
        pe = self.node_paths(c, "e")
        self.assertEqual(pe["replaced"], 1)
        spare = next(s for s in pe["spares"] if s["name"] == "r1")
        self.assertIsNotNone(spare["resting_ms"])
        wait_for(lambda: all(x["state"] == "up" for x in self.node_paths(c, "e")["paths"]),
                 5, 0.1, "r3 up")

        # 3. Both of e's paths slow down beyond f: f wins on score, but a path to e
        #    works, so the egress stays.
        # In two steps: one step to 40 ms would look like the path's death.
        for spec in ("delay=10ms", "delay=20ms"):
            for n in nets[1:]:
                n.steer("set", dir="both", spec=spec)
            time.sleep(1)
        wait_for(lambda: c.api.get("/paths")["egress_hold"], 20, 0.1,
                 "the switch to f held back")
        self.assertIn("a path to the egress e works: the egress stays", c.output())
        self.assertEqual(c.api.get("/status")["active"], "e")

        # The mode goes through lsctl to the client.
        out = self.lsctl(c, "mode", "--node", "e", "split")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("node e: path mode split", out.stdout)
        route_e = next(r for r in client.steer("routes")["routes"] if r["name"] == "e")
        self.assertEqual(route_e["path_mode"], "split")
        self.assertEqual(self.lsctl(c, "mode", "sideways").returncode, 2)
        c.api.expect_error("POST", "/route/mode", 404, "not_found", {"mode": "single",
                                                                     "node": "nobody"})

        # 4. The egress itself dies: no path to it works, so the route goes to f, and the
        #    log says the game server will see a new address.
        e.expect_exit = True
        e.p.send_signal(signal.SIGKILL)
        wait_for(lambda: c.api.get("/status")["active"] == "f", 15, 0.1, "f active")
        wait_for(lambda: "egress e -> f" in c.output(), 5, 0.1, "the egress change logged")
        line = next(l for l in c.output().splitlines() if "egress e -> f" in l)
        self.assertIn("no path to it works", line)
        self.assertIn("the game server will see a new address", line)
        n0 = game.replies_after(0)
        wait_for(lambda: game.replies_after(0) > n0 + 20, 5, what="game traffic through f")
        self.assertEqual(game.duplicates(), [])
