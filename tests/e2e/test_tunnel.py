"""Game traffic through the real client and proxy, on loopback."""
import socket
import time

from lstest import (LSTestCase, numbered_payloads, steer_ok, wait_for, Steer)

# Generous limits so the bulk tests measure the tunnel, not the rate limiter.
FAST = "[limits]\npps = 200000\nbps = 400000000\n"
KEY = "000102030405060708090a0b0c0d0e0f"
SID = 9


def keyed(echo):
    """A static authenticated session to the echo server (what the tests run on, as a
    public node would: --insecure-no-auth only where no-auth is the point)."""
    return FAST + '[[session]]\nid = %d\nkey = "%s"\ndestinations = ["127.0.0.1:%d"]\n' % (
        SID, KEY, echo.addr[1])


class TunnelTest(LSTestCase):

    def ready(self, client):
        """The route's first lifetime is up (one round trip after start)."""
        wait_for(lambda: client.steer("status")["path"] == "up", 3, what="the path")

    def test_10000_packets_byte_identical_none_lost_none_duplicated(self):
        echo = self.echo()
        proxy = self.proxy(config=keyed(echo), auth=True)
        client = self.client(proxy.port, echo.addr, session=(SID, KEY))
        self.ready(client)
        game = self.game(client.local_port)
        payloads = numbered_payloads(10000, seed=1)
        self.assertEqual(len(set(payloads)), len(payloads))
        replies = self.assert_exchange(game, payloads)
        # Replies come from the client's local port, as if from the game server.
        self.assertEqual({peer for _, peer in replies}, {("127.0.0.1", client.local_port)})
        self.assertEqual(echo.count(), 10000)
        st = client.stats()
        self.assertEqual(st["delivered_packets"], 10000)
        self.assertEqual(st["game_rx_packets"], 10000)
        pst = proxy.stats()
        self.assertEqual(pst["forwarded_packets"], 10000)
        self.assertEqual(pst["reply_packets"], 10000)
        self.assertEqual(sum(pst["drops"].values()), 0, pst["drops"])

    def test_game_server_sees_one_stable_port_per_game_socket(self):
        echo = self.echo()
        proxy = self.proxy(config=keyed(echo), auth=True)
        client = self.client(proxy.port, echo.addr, session=(SID, KEY))
        self.ready(client)
        a, b = self.game(client.local_port), self.game(client.local_port)
        pa = numbered_payloads(300, seed=2, tag=b"A")
        pb = numbered_payloads(300, seed=3, tag=b"B")
        # Interleave the two sockets' traffic, reading replies as they come.
        ra, rb = [], []
        for i, (x, y) in enumerate(zip(pa, pb)):
            a.send(x)
            b.send(y)
            if i % 8 == 7:
                ra += [d for d, _ in a.recv_all(0.001)]
                rb += [d for d, _ in b.recv_all(0.001)]
        ra += [d for d, _ in a.recv_all(1.0)]
        rb += [d for d, _ in b.recv_all(1.0)]
        self.assertEqual(sorted(ra), sorted(pa), "socket A got others' replies or lost some")
        self.assertEqual(sorted(rb), sorted(pb), "socket B got others' replies or lost some")
        # Two game sockets: two stable upstream ports at the game server.
        self.assertEqual(len(echo.sources()), 2)
        self.assertEqual(proxy.stats()["flows"], 2)

    def test_static_session_key_authenticated_traffic_flows(self):
        echo = self.echo()
        cfg = FAST + '[[session]]\nid = 70000\nkey = "%s"\ndestinations = ["127.0.0.1:%d"]\n' % (
            KEY, echo.addr[1])
        proxy = self.proxy(config=cfg, auth=True)
        client = self.client(proxy.port, echo.addr, session=(70000, KEY))
        game = self.game(client.local_port)
        self.assert_exchange(game, numbered_payloads(2000, seed=4))
        sessions = proxy.steer("sessions")["sessions"]
        self.assertEqual(len(sessions), 1)
        self.assertEqual(sessions[0]["session_id"], 70000)
        self.assertTrue(sessions[0]["static"])
        wait_for(lambda: proxy.steer("sessions")["sessions"][0]["validated"], 3,
                 what="client address validation")
        self.assertEqual(sum(proxy.stats()["drops"].values()), 0)
        self.assertTrue(client.steer("status")["auth"])

    def test_session_added_by_steering(self):
        echo = self.echo()
        proxy = self.proxy(config=FAST, auth=True)
        r = proxy.steer("session_add", session_id=5, key=KEY,
                        destinations=["127.0.0.1:%d" % echo.addr[1]])
        self.assertEqual(r["session_id"], 5)
        s = Steer(proxy.sock_path)
        dup = s.call("session_add", session_id=5, key=KEY, destinations=["127.0.0.1"])
        self.assertEqual(dup["error"]["code"], "exists")
        bad = s.call("session_add", session_id=6, key="abc", destinations=["127.0.0.1"])
        self.assertEqual(bad["error"]["code"], "invalid")
        s.close()
        client = self.client(proxy.port, echo.addr, session=(5, KEY))
        game = self.game(client.local_port)
        self.assert_exchange(game, numbered_payloads(200, seed=5))
        proxy.steer("session_del", session_id=5)
        self.assertEqual(proxy.steer("sessions")["sessions"], [])
        game.send(b"after delete")
        self.assertEqual(game.recv_all(0.5), [])
        wait_for(lambda: proxy.stats()["drops"]["unknown_session"] >= 1, 2,
                 what="unknown_session drop")

    def test_keepalive_measures_rtt_and_path(self):
        echo = self.echo()
        proxy = self.proxy(config=keyed(echo), auth=True)
        client = self.client(proxy.port, echo.addr, session=(SID, KEY), keepalive_ms=20)
        st = wait_for(lambda: (lambda s: s if s["path"] == "up" and s["rtt_us"] else None)(
            client.steer("status")), 3, what="path up with an RTT")
        self.assertGreater(st["rtt_us"], 0)
        self.assertLess(st["rtt_us"], 100000)
        self.assertEqual(st["keepalive_ms"], 20)
        wait_for(lambda: client.stats()["keepalive_replies"] >= 10, 3, what="10 replies")
        stats = client.stats()
        self.assertGreaterEqual(stats["rtt"]["count"], 10)
        self.assertLessEqual(stats["rtt"]["p50_us"], stats["rtt"]["p99_us"])
        # The path goes down when the proxy vanishes, and an event says so.
        sub = Steer(client.sock_path)
        sub.ok("subscribe")
        proxy.stop()
        self.procs.remove(proxy)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            ev = sub.read_line()
            if ev.get("event") == "path" and ev.get("state") == "down":
                break
        else:
            self.fail("no path down event")
        self.assertEqual(client.steer("status")["path"], "down")
        sub.close()

    def test_set_route_switches_without_loss_or_duplicates(self):
        echo = self.echo()
        p1 = self.proxy(config=keyed(echo), auth=True)
        p2 = self.proxy(config=keyed(echo), auth=True)
        client = self.client(p1.port, echo.addr, session=(SID, KEY))
        self.ready(client)
        game = self.game(client.local_port)
        payloads = numbered_payloads(3000, seed=6)

        def switch():
            # The new route's handshake takes a round trip: until its lifetime is
            # up the game's packets go on through the old one.
            r = client.steer("set_route", proxy="127.0.0.1:%d" % p2.port, session_id=SID,
                             key=KEY)
            self.assertEqual(r["proxy"], "127.0.0.1:%d" % p2.port)

        replies = game.stream(payloads, 1500, switch)
        got = [d for d, _ in replies]
        f1, f2 = p1.stats()["forwarded_packets"], p2.stats()["forwarded_packets"]
        self.assert_once(echo, payloads, "forwarded %d + %d" % (f1, f2))
        self.assertEqual(len(got), len(payloads))
        self.assertEqual(sorted(got), sorted(payloads))
        self.assertEqual(f1 + f2, 3000)
        self.assertGreater(f1, 1000)
        self.assertGreater(f2, 1000)
        self.assertEqual(client.stats()["route_changes"], 1)

    def assert_once(self, echo, payloads, detail):
        """The game server got each payload exactly once; if not, say which, and how
        many each proxy forwarded."""
        seen = {}
        for d in echo.payloads():
            seen[d] = seen.get(d, 0) + 1
        index = {p: i for i, p in enumerate(payloads)}
        twice = sorted(index.get(d, -1) for d, n in seen.items() if n > 1)
        missing = sorted(i for p, i in index.items() if p not in seen)
        self.assertEqual((twice, missing), ([], []),
                         "packets the game server got twice %s, never %s (%s)" % (
                             twice[:20], missing[:20], detail))

    def test_packets_held_for_a_lifetime_go_once(self):
        # A slow first handshake (a 100 ms leg each way): the game's first packets wait
        # in the hold; a set_route to another keyed route meanwhile, which is up first,
        # takes them. Nothing goes twice, nothing is lost, nothing is dropped.
        echo = self.echo()
        p1 = self.proxy(config=keyed(echo), auth=True)
        p2 = self.proxy(config=keyed(echo), auth=True)
        slow = self.netsim(p1.addr, up="delay=100ms", down="delay=100ms")
        client = self.client(slow.port, echo.addr, session=(SID, KEY))
        game = self.game(client.local_port)
        held = numbered_payloads(20, seed=61, tag=b"held")
        for pl in held:
            game.send(pl)
        wait_for(lambda: client.stats()["game_rx_packets"] == 20, 2, what="the game's packets")
        client.steer("set_route", proxy="127.0.0.1:%d" % p2.port, session_id=SID, key=KEY)
        more = numbered_payloads(200, seed=62, tag=b"more")
        replies = game.exchange(more)
        replies += game.recv_all(0.5)
        got = sorted(d for d, _ in replies)
        self.assert_once(echo, held + more, "forwarded %d + %d" % (
            p1.stats()["forwarded_packets"], p2.stats()["forwarded_packets"]))
        self.assertEqual(got, sorted(held + more))
        self.assertEqual(client.stats()["drops"]["handshake"], 0)
        self.assertEqual(p1.stats()["forwarded_packets"] + p2.stats()["forwarded_packets"], 220)

    def test_client_fin_ends_proxy_session(self):
        echo = self.echo()
        proxy = self.proxy(config=FAST, auth=True)
        proxy.steer("session_add", session_id=SID, key=KEY,
                    destinations=["127.0.0.1:%d" % echo.addr[1]])
        client = self.client(proxy.port, echo.addr, session=(SID, KEY))
        self.ready(client)
        game = self.game(client.local_port)
        self.assert_exchange(game, [b"hello"])
        self.assertEqual(proxy.steer("status")["sessions"], 1)
        self.assertEqual(client.stop(), 0)
        self.procs.remove(client)
        wait_for(lambda: proxy.steer("status")["sessions"] == 0, 3, what="session end on FIN")

    def test_idle_session_expires(self):
        echo = self.echo()
        proxy = self.proxy("--idle-timeout", "1", config=FAST, auth=True)
        proxy.steer("session_add", session_id=SID, key=KEY,
                    destinations=["127.0.0.1:%d" % echo.addr[1]])
        client = self.client(proxy.port, echo.addr, session=(SID, KEY))
        self.ready(client)
        self.assert_exchange(self.game(client.local_port), [b"x"])
        # Gone without a FIN: the proxy forgets the session by itself.
        client.p.kill()
        client.p.wait()
        client.expect_exit = True
        wait_for(lambda: proxy.steer("status")["sessions"] == 0, 4, what="idle expiry")
        self.assertGreaterEqual(proxy.stats()["sessions_expired"], 1)

    def test_insecure_no_auth_still_carries_traffic(self):
        # The one mode without keys (tests and trusted networks only).
        echo = self.echo()
        proxy = self.proxy(config=FAST)
        client = self.client(proxy.port, echo.addr)
        self.assert_exchange(self.game(client.local_port), numbered_payloads(200, seed=9))
        self.assertIn("AUTHENTICATION IS OFF", proxy.output())
