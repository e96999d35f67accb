"""The client's candidate route table (docs/protocol.md 3.2): routes added, measured,
switched by name; an armed backup taken over in the same loop turn when the active proxy
dies (SIGKILL), nothing duplicated; fail-static without a backup; no route, no traffic
(counted)."""
import socket
import threading
import time

from lstest import LSTestCase, Steer, free_port, numbered_payloads, steer_ok, wait_for

KEY = "0f0e0d0c0b0a09080706050403020100"
LIMITS = "[limits]\npps = 20000\nbps = 40000000\n"


class Traffic(threading.Thread):
    """A game socket: 64 numbered packets/s, every echo noted with its arrival time."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.002)
        self.dest = ("127.0.0.1", port)
        self.sent = {}      # seq -> time sent
        self.got = []       # (seq, time)
        self.lock = threading.Lock()
        self._halt = False
        self.start()

    def run(self):
        n, nxt = 0, time.monotonic()
        while not self._halt:
            now = time.monotonic()
            if now >= nxt:
                with self.lock:
                    self.sent[n] = now
                self.sock.sendto(b"%d" % n, self.dest)
                n += 1
                nxt += 1 / 64
            try:
                d, _ = self.sock.recvfrom(2048)
                with self.lock:
                    self.got.append((int(d), time.monotonic()))
            except (socket.timeout, OSError, ValueError):
                pass

    def first_after(self, t):
        with self.lock:
            return next((at for _, at in self.got if at > t), None)

    def last_before(self, t):
        with self.lock:
            return max((at for _, at in self.got if at <= t), default=None)

    def seqs(self):
        with self.lock:
            return [s for s, _ in self.got]

    def sent_after(self, t):
        with self.lock:
            return [s for s, at in self.sent.items() if at > t]

    def stop(self):
        self._halt = True
        self.join(1)
        self.sock.close()


class Events(threading.Thread):
    """A subscriber noting every event with its arrival time."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.st = Steer(path, timeout=0.2)
        self.st.ok("subscribe")
        self.events = []
        self.lock = threading.Lock()
        self._halt = False
        self.start()

    def run(self):
        while not self._halt:
            try:
                ev = self.st.read_line()
            except (socket.timeout, OSError, ConnectionError, ValueError):
                continue
            if "event" in ev:
                with self.lock:
                    self.events.append((time.monotonic(), ev))

    def named(self, kind, **match):
        with self.lock:
            return [(t, e) for t, e in self.events if e["event"] == kind and
                    all(e.get(k) == v for k, v in match.items())]

    def stop(self):
        self._halt = True
        self.join(1)
        self.st.close()


class RouteTableTest(LSTestCase):

    def node(self, echo, sid, port=None):
        cfg = LIMITS + '[[session]]\nid = %d\nkey = "%s"\ndestinations = ["127.0.0.1:%d"]\n' % (
            sid, KEY, echo.addr[1])
        p = self.proxy(config=cfg, auth=True, port=port)
        p.sid = sid
        return p

    def add(self, client, name, proxy, **kw):
        return steer_ok(client.sock_path, "route_add", name=name,
                        proxy="127.0.0.1:%d" % proxy.port, session_id=proxy.sid, key=KEY, **kw)

    def routes(self, client):
        return steer_ok(client.sock_path, "routes")

    def route(self, client, name):
        return next(r for r in self.routes(client)["routes"] if r["name"] == name)

    def setup_two(self):
        echo = self.echo()
        pa, pb = self.node(echo, 11), self.node(echo, 12)
        client = self.client(None, echo.addr, keepalive_ms=30)
        self.add(client, "a", pa)
        self.add(client, "b", pb, probe_ms=50)
        wait_for(lambda: all(r["state"] == "up" and r["rtt_us"] for r in
                             self.routes(client)["routes"]), 5, what="both routes measured")
        return echo, pa, pb, client

    def test_the_table_and_its_errors(self):
        echo = self.echo()
        pa = self.node(echo, 11)
        client = self.client(None, echo.addr, keepalive_ms=30)
        # No route: the game's packets are counted as no_route, never sent.
        game = self.game(client.local_port)
        for _ in range(5):
            game.send(b"nowhere")
        wait_for(lambda: client.stats()["drops"]["no_route"] == 5, 2, what="no_route drops")
        st = client.steer("status")
        self.assertIsNone(st["route"])
        self.assertIsNone(st["proxy"])
        r = self.add(client, "a", pa)
        self.assertEqual((r["name"], r["active"], r["auth"], r["probe_ms"]), ("a", False, True, 250))
        s = Steer(client.sock_path)
        self.closers.append(s.close)
        err = lambda cmd, **a: s.call(cmd, **a)["error"]["code"]
        args = dict(proxy="127.0.0.1:%d" % pa.port, session_id=pa.sid, key=KEY)
        self.assertEqual(err("route_add", name="a", **args), "exists")
        self.assertEqual(err("route_add", name="bad name", proxy="127.0.0.1:9"), "invalid")
        self.assertEqual(err("route_add", name="x" * 32, proxy="127.0.0.1:9"), "invalid")
        self.assertEqual(err("route_add", name="k", proxy="127.0.0.1:9", session_id=3), "invalid")
        # One session to one proxy runs in one route.
        self.assertEqual(err("route_add", name="twin", **args), "conflict")
        for i in range(7):
            s.ok("route_add", name="r%d" % i, proxy="127.0.0.1:%d" % (20000 + i))
        self.assertEqual(err("route_add", name="r7", proxy="127.0.0.1:9"), "full")
        self.assertEqual(err("route_del", name="nope"), "not_found")
        s.ok("route_del", name="r6")
        self.assertEqual(err("set_route", name="nope"), "not_found")
        s.ok("set_route", name="a")
        self.assertEqual(err("route_del", name="a"), "conflict")
        self.assertEqual(err("arm_backup", name="a"), "conflict")
        self.assertEqual(s.ok("arm_backup", name="r0"), {"backup": "r0"})
        s.ok("route_del", name="r0")
        self.assertIsNone(self.routes(client)["backup"], "deleting the backup disarms it")
        self.assertEqual(s.ok("arm_backup", name=None), {"backup": None})
        # Traffic flows through the active route, measured with the fast keepalives.
        self.assert_exchange(game, [b"p%d" % i for i in range(50)])
        ra = self.route(client, "a")
        self.assertTrue(ra["active"])
        self.assertEqual(ra["state"], "up")
        self.assertGreater(ra["replies"], 0)
        self.assertEqual(ra["missed"], 0)
        # replace: new parameters for the active route, losing nothing.
        pa2 = self.node(echo, 13)
        s.ok("route_add", name="a", proxy="127.0.0.1:%d" % pa2.port, session_id=13, key=KEY,
             replace=True)
        self.assert_exchange(game, [b"q%d" % i for i in range(50)])
        self.assertEqual(self.route(client, "a")["proxy"], "127.0.0.1:%d" % pa2.port)
        wait_for(lambda: self.route(client, "a")["state"] == "up", 3, what="the new a up")
        self.assert_exchange(game, [b"r%d" % i for i in range(50)])
        wait_for(lambda: pa2.stats()["forwarded_packets"] >= 50, 3, what="traffic through pa2")

    def test_standbys_are_measured_and_switched_to_by_name(self):
        echo, pa, pb, client = self.setup_two()
        ev = Events(client.sock_path)
        self.closers.append(ev.stop)
        steer_ok(client.sock_path, "set_route", name="a")
        traffic = Traffic(client.local_port)
        self.closers.append(traffic.stop)
        time.sleep(0.5)
        # Every route's samples are events; the standby's at its own pace.
        wait_for(lambda: ev.named("route_sample", name="b") and ev.named("route_sample", name="a"),
                 3, what="route_sample of both")
        sent_a = self.route(client, "a")["keepalives_sent"]
        sent_b = self.route(client, "b")["keepalives_sent"]
        time.sleep(1.0)
        da = self.route(client, "a")["keepalives_sent"] - sent_a
        db = self.route(client, "b")["keepalives_sent"] - sent_b
        self.assertGreater(da, db, "the active route is probed faster (30 ms against 50 ms)")
        t = time.monotonic()
        steer_ok(client.sock_path, "set_route", name="b")
        wait_for(lambda: ev.named("switch", to="b", reason="steer"), 2, what="switch event")
        wait_for(lambda: ev.named("switch_gap", to="b"), 2, what="switch_gap event")
        wait_for(lambda: pb.stats()["forwarded_packets"] > 20, 3, what="traffic through b")
        time.sleep(0.5)
        traffic.stop()
        seqs = traffic.seqs()
        self.assertEqual(len(seqs), len(set(seqs)), "duplicated")
        self.assertEqual(sorted(set(range(min(seqs), max(seqs) + 1)) - set(seqs)), [],
                         "lost in the switch")
        self.assertLess(t, time.monotonic())

    def test_the_first_route_reports_no_gap(self):
        # Nothing was delivered before the first route: there is no gap to report (a
        # gap measured from "never" read as hours).
        echo, pa, pb, client = self.setup_two()
        ev = Events(client.sock_path)
        self.closers.append(ev.stop)
        steer_ok(client.sock_path, "set_route", name="a")
        traffic = Traffic(client.local_port)
        self.closers.append(traffic.stop)
        wait_for(lambda: pa.stats()["forwarded_packets"] > 20, 3, what="traffic through a")
        steer_ok(client.sock_path, "set_route", name="b")
        gap = wait_for(lambda: ev.named("switch_gap", to="b"), 2, what="switch_gap to b")
        self.assertLess(gap[0][1]["gap_us"], 2000000, gap)
        self.assertEqual(ev.named("switch_gap", to="a"), [])

    def test_fast_failover_to_the_armed_backup(self):
        echo, pa, pb, client = self.setup_two()
        ev = Events(client.sock_path)
        self.closers.append(ev.stop)
        steer_ok(client.sock_path, "set_route", name="a")
        self.assertEqual(steer_ok(client.sock_path, "arm_backup", name="b"), {"backup": "b"})
        traffic = Traffic(client.local_port)
        self.closers.append(traffic.stop)
        time.sleep(1.0)
        t_kill = time.monotonic()
        pa.p.kill()
        pa.p.wait()
        pa.expect_exit = True
        sw = wait_for(lambda: ev.named("switch", reason="failover"), 3, what="failover")
        t_switch, e = sw[0]
        self.assertEqual((e["from"], e["to"]), ("a", "b"))
        wait_for(lambda: ev.named("backup", name=None), 2, what="backup disarmed event")
        first = wait_for(lambda: traffic.first_after(t_switch), 3, what="echoes through b")
        wait_for(lambda: ev.named("route_state", name="a", state="down"), 2, what="a down")
        routes = self.routes(client)
        self.assertEqual((routes["active"], routes["backup"]), ("b", None))
        print("\n    failover: SIGKILL to switch %.0f ms, to the first echo through the "
              "backup %.0f ms" % ((t_switch - t_kill) * 1000, (first - t_kill) * 1000), end=" ")
        time.sleep(0.5)
        traffic.stop()
        seqs = traffic.seqs()
        self.assertEqual(len(seqs), len(set(seqs)), "duplicated")
        # What the game sent once the client had switched all came back.
        after = [s for s in traffic.sent_after(t_switch + 0.05)]
        self.assertTrue(after)
        self.assertEqual(sorted(set(after) - set(seqs)), [], "lost after the switch")
        gap = wait_for(lambda: ev.named("switch_gap", to="b"), 2, what="switch_gap")
        self.assertGreater(gap[0][1]["gap_us"], 0)

    def test_fail_static_without_a_backup(self):
        echo, pa, pb, client = self.setup_two()
        steer_ok(client.sock_path, "set_route", name="a")
        pa.p.kill()
        pa.p.wait()
        pa.expect_exit = True
        wait_for(lambda: self.route(client, "a")["state"] == "down", 3, what="a down")
        wait_for(lambda: self.route(client, "a")["missed"] >= 5, 3, what="missed growing")
        time.sleep(0.3)
        self.assertEqual(self.routes(client)["active"], "a", "switched without a backup")
        # The proxy comes back (same port, same static session): the route is up again.
        self.node(echo, 11, port=pa.port)
        wait_for(lambda: self.route(client, "a")["state"] == "up", 5, what="a up again")
        self.assertGreaterEqual(self.route(client, "a")["flips"], 2)


class DirectRouteTest(LSTestCase):
    """The direct route (docs/protocol.md 3.2): no tunnel, the game server answered
    from a socket of the client's own; only that server's answers are delivered."""

    def test_direct_route_goes_to_the_game_server_itself(self):
        echo = self.echo()
        p = self.proxy(config=LIMITS)
        c = self.client(p.port, echo.addr, keepalive_ms=30)
        game = self.game(c.local_port)
        self.assert_exchange(game, numbered_payloads(100, seed=3))
        via_proxy = echo.sources()

        # Refused: a direct route takes nothing of a proxy.
        for bad in ({"proxy": "127.0.0.1:%d" % p.port}, {"session_id": 1, "key": KEY}):
            r = Steer(c.sock_path).call("route_add", name="home", direct=True, **bad)
            self.assertEqual(r["error"]["code"], "invalid", r)
        r = Steer(c.sock_path).call("route_add", name="nowhere")
        self.assertEqual(r["error"]["code"], "invalid", r)
        self.assertIn("direct:true", r["error"]["message"])

        route = c.steer("route_add", name="home", direct=True)
        self.assertTrue(route["direct"])
        self.assertEqual(route["proxy"], "127.0.0.1:%d" % echo.addr[1])
        self.assertEqual(route["paths"], [])
        c.steer("set_route", name="home")
        fwd = p.stats()["forwarded_packets"]
        self.assert_exchange(game, numbered_payloads(500, seed=4))
        st = c.stats()
        self.assertGreaterEqual(st["direct_tx_packets"], 500)
        self.assertGreaterEqual(st["direct_rx_packets"], 500)
        self.assertEqual(p.stats()["forwarded_packets"], fwd, "nothing went through the proxy")
        # The game server sees the client's own socket, not the proxy's.
        direct_src = echo.sources() - via_proxy
        self.assertEqual(len(direct_src), 1, echo.sources())

        # Someone else sending to that socket is not delivered to the game.
        rogue = self.udp()
        for i in range(20):
            rogue.sendto(b"rogue-%d" % i, next(iter(direct_src)))
        wait_for(lambda: c.stats()["drops"]["unexpected_source"] >= 20, 3,
                 what="the rogue datagrams counted")
        self.assertEqual([d for d in game.recv_all(0.2) if d[0].startswith(b"rogue")], [])

        # Back through the tunnel: the proxy forwards again, nothing lost.
        c.steer("set_route", name="default")
        self.assert_exchange(game, numbered_payloads(200, seed=5))
        self.assertGreaterEqual(p.stats()["forwarded_packets"], fwd + 200)
        # The route in use cannot turn direct underneath the game.
        r = Steer(c.sock_path).call("route_add", name="default", direct=True, replace=True)
        self.assertEqual(r["error"]["code"], "conflict", r)
