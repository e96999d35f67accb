"""Relays and multipath (docs/protocol.md 1.9) across network namespaces: a client on a
PC reaching one egress E straight, through relay R1 and through relay R2, every leg
through its own ls-netsim (tests/e2e/multipath_net.py). Kill a relay, lose 30% on a
leg, lose 10% on the path that carries the data: the game sees every packet once, and
the game server sees one source address throughout."""
import os
import select
import shutil
import signal
import subprocess
import time
import unittest

from lstest import BIN, NETSIM, Echo, Game, LSTestCase, Proc, numbered_payloads, wait_for
from multipath_net import Mesh, have_netns, inside

KEY = "000102030405060708090a0b0c0d0e0f"
GRANT = {"r1": (101, "101112131415161718191a1b1c1d1e1f"),
         "r2": (102, "202122232425262728292a2b2c2d2e2f")}
SID = 9
PORT = 4434            # every node's tunnel port (each in its own namespace)
LIMITS = "[limits]\npps = 20000\nbps = 40000000\n"
# One-way delays: the direct leg, and each of a relay's two legs.
DIRECT_DELAY, LEG_DELAY = "6ms", "4ms"
PPS = 400


class NsProc(Proc):
    """A LightSpeed program (or ls-netsim) started in a network namespace."""

    def __init__(self, ns, binary, args, sock_path, tmp):
        ip = shutil.which("ip") or "/usr/sbin/ip"
        self.name = os.path.basename(binary)
        self.sock_path = sock_path
        self.log_path = os.path.join(tmp, "%s-%s.log" % (self.name, os.path.basename(sock_path)))
        self.log = open(self.log_path, "wb")
        # `ip netns exec` execs the program itself: signals reach it.
        self.p = subprocess.Popen([ip, "netns", "exec", ns, binary] + args, stdout=self.log,
                                  stderr=subprocess.STDOUT)
        try:
            wait_for(self._ready, 5, what="%s steering socket" % self.name)
        except AssertionError:
            self.p.kill()
            raise AssertionError("%s did not start:\n%s" % (self.name, self.output()))


def stream(game, payloads, pps, actions):
    """Send payloads at pps, reading replies as they come; actions maps a packet number
    to a function run right after it left. Returns every reply payload."""
    got = []
    t0 = time.monotonic()
    for i, pl in enumerate(payloads):
        game.send(pl)
        if i in actions:
            actions[i]()
        while True:
            wait = t0 + (i + 1) / pps - time.monotonic()
            r, _, _ = select.select([game.sock], [], [], max(wait, 0))
            if not r:
                break
            got.append(game.sock.recvfrom(65535)[0])
    return got + [d for d, _ in game.recv_all(1.0)]


@unittest.skipUnless(have_netns(), "needs root for network namespaces")
class MultipathTest(LSTestCase):

    def setUp(self):
        super().setUp()
        self.mesh = Mesh()
        self.closers.append(self.mesh.close)

    def node(self, ns, binary, args, config=None, tag=None):
        name = tag or ns
        sock = self.path("%s-%s.sock" % (os.path.basename(binary), name))
        if config is not None:
            cfg = self.write("%s.toml" % name, config)
            args = ["-c", cfg] + args
        p = NsProc(self.mesh.ns(ns), binary, args + ["--socket", sock], sock, self.tmp)
        self.procs.append(p)
        return p

    def netsim(self, at, to, to_port, delay):
        """The leg from node `at` to node `to` (to_port there): ls-netsim in `at`'s
        namespace on `at`'s own address of the leg; returns (proc, "ip:port")."""
        listen = "%s:%d" % (self.mesh.addr[(at, to)], 5000)
        p = self.node(at, NETSIM,
                      ["--listen", listen, "--upstream", "%s:%d" % (self.mesh.addr[(to, at)], to_port),
                       "--seed", "7", "--up", "delay=%s" % delay, "--down", "delay=%s" % delay],
                      tag="%s-%s" % (at, to))
        return p, listen

    def build(self, mode, fec="off"):
        mesh = self.mesh
        with inside(mesh.ns("srv")):
            self.server = Echo(host=mesh.addr[("srv", "e")])
        self.closers.append(self.server.close)
        srv = "%s:%d" % self.server.addr
        proxy = os.path.join(BIN, "lightspeed-proxy")
        self.e = self.node("e", proxy, ["--bind", "0.0.0.0:%d" % PORT], config=LIMITS)
        self.e.steer("session_add", session_id=SID, key=KEY, destinations=[srv])
        self.legs = {}
        self.relays = {}
        for r in ("r1", "r2"):
            leg, hop = self.netsim(r, "e", PORT, LEG_DELAY)
            self.legs[r + "-e"] = leg
            rp = self.node(r, proxy, ["--bind", "0.0.0.0:%d" % PORT], config=LIMITS)
            rp.steer("grant_add", session_id=GRANT[r][0], key=GRANT[r][1], next_hops=[hop])
            self.relays[r] = (rp, hop)
        direct_leg, direct = self.netsim("pc", "e", PORT, DIRECT_DELAY)
        self.legs["pc-e"] = direct_leg
        self.local = 7777
        client = os.path.join(BIN, "lightspeed-client")
        self.c = self.node("pc", client, [
            "--proxy", direct, "--game-server", srv, "--local-port", str(self.local),
            "--session-id", str(SID), "--key", KEY, "--path-mode", mode, "--fec", fec])
        for r in ("r1", "r2"):
            leg, via = self.netsim("pc", r, PORT, LEG_DELAY)
            self.legs["pc-" + r] = leg
            self.c.steer("path_add", route="default", name=r, relay=via,
                         session_id=GRANT[r][0], key=GRANT[r][1], next_hop=self.relays[r][1])
        wait_for(lambda: all(p["state"] == "up" for p in self.ways()), 5,
                 what="every path up")
        with inside(mesh.ns("pc")):
            self.game = Game(self.local)
        self.closers.append(self.game.close)

    def ways(self):
        """The route's paths as the client shows them."""
        return self.c.steer("routes")["routes"][0]["paths"]

    def way(self, name):
        return {p["name"]: p for p in self.ways()}[name]

    def check_delivery(self, sent, got, at_most_lost=0):
        self.assertEqual(len(got), len(set(got)), "a packet was delivered twice")
        lost = len(sent) - len(set(got) & set(sent))
        self.assertLessEqual(lost, at_most_lost, "%d of %d lost" % (lost, len(sent)))
        # The egress forwarded each game packet once, from one address.
        self.assertEqual(len(self.server.payloads()), len(set(self.server.payloads())),
                         "the game server got a packet twice")
        self.assertEqual(len(self.server.sources()), 1, self.server.sources())
        return lost

    def test_duplicate_loses_nothing_when_a_relay_dies_and_a_leg_loses_30_percent(self):
        self.build("duplicate")
        payloads = numbered_payloads(3000, seed=11)
        r1 = self.relays["r1"][0]

        def kill_r1():
            r1.p.send_signal(signal.SIGKILL)
            r1.expect_exit = True

        def lose_direct():
            self.legs["pc-e"].steer("set", dir="both", spec="loss=30%%,delay=%s" % DIRECT_DELAY)

        got = stream(self.game, payloads, PPS, {1000: kill_r1, 2000: lose_direct})
        lost = self.check_delivery(payloads, got)
        print("\n    duplicate over 3 paths, R1 killed at 1000, direct leg 30%% lossy from 2000:"
              " %d of %d lost, none twice" % (lost, len(payloads)), end=" ")
        st = self.c.stats()
        self.assertGreater(st["drops"]["duplicates"], 0)
        self.assertEqual(st["drops"]["replay"], 0)
        est = self.e.stats()
        self.assertGreater(est["drops"]["duplicates"], 0)
        self.assertEqual(est["drops"]["replay"], 0)
        self.assertEqual(est["forwarded_packets"], len(payloads))
        # R1's path went down; the direct one shows its loss; R2 carries on.
        wait_for(lambda: self.way("r1")["state"] == "down", 3, what="r1 down")
        self.assertEqual(self.way("r2")["state"], "up")

    def test_split_repairs_a_lossy_data_path(self):
        self.build("split", fec="4:3")
        self.assertEqual(self.way("direct")["role"], "data")
        # The path that carries the data starts losing 10% each way.
        self.legs["pc-e"].steer("set", dir="both", spec="loss=10%%,delay=%s" % DIRECT_DELAY)
        payloads = numbered_payloads(3000, seed=12)
        got = stream(self.game, payloads, PPS, {})
        lost = self.check_delivery(payloads, got, at_most_lost=len(payloads) // 1000)
        st = self.c.stats()
        print("\n    split 4:3 over 3 paths, the data path 10%% lossy each way: %d of %d lost "
              "(%d rebuilt here)" % (lost, len(payloads), st["fec"]["recovered"]), end=" ")
        # The client saw the loss and moved the data to a clean path; the lossy one
        # carries parity now.
        wait_for(lambda: self.way("direct")["role"] == "parity", 5, what="data moved off")
        self.assertGreater(self.way("direct")["loss_up"], 0.03)

    def test_each_leg_is_measured(self):
        self.build("single")
        # R2's second leg (R2 to E) loses 30%: the path through R2 shows it end to end,
        # its first leg (the hop to R2) does not.
        self.legs["r2-e"].steer("set", dir="both", spec="loss=30%%,delay=%s" % LEG_DELAY)
        wait_for(lambda: (self.way("r2")["loss_up"] or 0) > 0.1, 8, what="r2's loss")
        p = self.way("r2")
        self.assertLess(p["hop"]["loss_up"] or 0, 0.05)
        self.assertLess(p["hop"]["loss_down"] or 0, 0.05)
        self.assertGreater(p["rtt_us"], p["hop"]["rtt_us"])
        self.assertEqual(self.way("direct")["role"], "data")


if __name__ == "__main__":
    unittest.main()
