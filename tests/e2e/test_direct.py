"""The direct route as a candidate ([direct] route = true; README, lightspeed-controller):
measured by ICMP from the PC, chosen only when no relayed route saves [direct] gain_ms
(or the direct path loses), and a switch between direct and relayed, which gives the
game server a new address, waits for [direct] quiet_ms without game traffic unless the
user forces it. The real controller, client and proxy; ICMP to 127.0.0.1."""
import signal
import time

from test_controller import Controller, Traffic
from lstest import LSTestCase, wait_for

CONF = """[direct]
route = %s
interval_ms = 100
quiet_ms = 1000

[[node]]
name = "a"
address = "127.0.0.1:%d"
"""


class DirectRouteControllerTest(LSTestCase):

    def direct(self, c):
        return c.route()["direct"]

    def test_direct_only_when_no_relay_pays_and_only_when_the_game_is_quiet(self):
        echo = self.echo()
        a = self.proxy()
        na = self.netsim(a.addr, up="delay=2ms", down="delay=2ms")
        client = self.client(None, echo.addr, keepalive_ms=30)
        # At first the direct route is no candidate: the relay carries the game.
        conf = self.write("controller.toml", CONF % ("false", na.port))
        c = Controller(self, ["-c", conf, "--client-socket", client.sock_path,
                              "--state-dir", self.path("state"), "--dashboard", "off"])
        self.closers.append(c.stop)
        wait_for(lambda: c.api.get("/status")["active"] == "a", 10, 0.1, "a active")
        d = self.direct(c)
        self.assertFalse(d["route"])
        self.assertFalse(d["in_use"])
        self.assertIsNone(d["why"])
        game = Traffic(client.local_port)
        self.closers.append(game.stop)
        wait_for(lambda: game.replies_after(0) > 10, 5, what="game traffic through a")

        # 2. The user enables it: the direct path (ICMP, 0.1 ms) wins, since a relay 4 ms
        #    away saves nothing like 10 ms; but the game is on, so the switch waits.
        with open(conf, "w") as f:
            f.write(CONF % ("true", na.port))
        c.p.send_signal(signal.SIGHUP)
        wait_for(lambda: self.direct(c)["waiting_for_quiet"], 10, 0.1,
                 "the switch to direct waiting for a quiet game")
        d = self.direct(c)
        self.assertTrue(d["route"])
        self.assertTrue(d["why"].startswith("direct: no relayed route saves 10 ms"), d)
        self.assertTrue(next(r for r in client.steer("routes")["routes"]
                             if r["name"] == "direct")["direct"])
        time.sleep(1.5)
        self.assertEqual(c.api.get("/status")["active"], "a", "switched mid-match")
        self.assertIn("waits for 1.0 s without game traffic", c.output())

        # 3. The match ends: after a second of quiet the route goes direct, and the log
        #    says the game server will see a new address.
        game.stop()
        wait_for(lambda: c.api.get("/status")["active"] == "direct", 10, 0.1, "direct active")
        d = self.direct(c)
        self.assertTrue(d["in_use"])
        self.assertFalse(d["waiting_for_quiet"])
        self.assertIn("egress a -> direct", c.output())
        self.assertIn("the game server will see a new address", c.output())
        # The game's packets now go to the game server itself.
        sources = echo.sources()
        g = self.game(client.local_port)
        self.assertEqual(len(g.exchange([b"direct-%d" % i for i in range(50)])), 50)
        self.assertEqual(len(echo.sources() - sources), 1)
        self.assertGreaterEqual(client.stats()["direct_tx_packets"], 50)

        # 4. The user forces the relay mid-match: it happens at once, and going back to
        #    direct waits for the next quiet moment.
        game = Traffic(client.local_port)
        self.closers.append(game.stop)
        wait_for(lambda: game.replies_after(0) > 10, 5, what="game traffic, direct")
        sw = c.api.post("/failover", {"to": "a"})
        self.assertEqual(sw["to"], "a")
        self.assertEqual(c.api.get("/status")["active"], "a")
        wait_for(lambda: self.direct(c)["waiting_for_quiet"], 5, 0.1, "direct waiting again")
        time.sleep(1.5)
        self.assertEqual(c.api.get("/status")["active"], "a")
