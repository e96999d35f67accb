"""Drops a user can see: the first drop of each reason is logged at warn with what to do,
--check and session_add refuse destinations the proxy would never reach, and a session
that runs out of flows gives the least recently used quiet one away. And the proxy's
sends are batched per socket however many game sockets a session has."""
import os
import re
import shutil
import subprocess
import time
import unittest

from lstest import LSTestCase, pack_header, wait_for, numbered_payloads, Game

KEY = "00112233445566778899aabbccddeeff"
FAST = "[limits]\npps = 200000\nbps = 400000000\n"


def session_cfg(dest, extra=""):
    return FAST + extra + '[[session]]\nid = 9\nkey = "%s"\ndestinations = ["%s"]\n' % (KEY, dest)


class DropLogTest(LSTestCase):

    def test_a_denied_destination_says_to_allow_it(self):
        # The quick start on loopback without --allow: nothing comes back, and the
        # proxy's log says why and what to do.
        echo = self.echo()
        proxy = self.proxy(config=session_cfg("127.0.0.1:%d" % echo.addr[1]), auth=True,
                           allow=())
        client = self.client(proxy.port, echo.addr, session=(9, KEY))
        game = self.game(client.local_port)
        wait_for(lambda: client.steer("status")["path"] == "up", 3, what="the path")
        for i in range(5):
            game.send(b"hello %d" % i)
        line = wait_for(lambda: re.search(r"warn: session 9: packets to 127\.0\.0\.1:%d dropped"
                                          r".*--allow" % echo.addr[1], proxy.output()),
                        3, what="the warning")
        self.assertTrue(line)
        self.assertEqual(echo.count(), 0)
        # Once, not once per packet.
        self.assertEqual(proxy.output().count("packets to 127.0.0.1:%d dropped" % echo.addr[1]),
                         1)

    def test_not_allowed_names_the_session_destinations(self):
        echo = self.echo()
        other = self.echo()
        proxy = self.proxy(config=session_cfg("127.0.0.1:%d" % echo.addr[1]), auth=True)
        client = self.client(proxy.port, other.addr, session=(9, KEY))
        game = self.game(client.local_port)
        wait_for(lambda: client.steer("status")["path"] == "up", 3, what="the path")
        game.send(b"elsewhere")
        wait_for(lambda: re.search(r"warn: session 9: packets to 127\.0\.0\.1:%d dropped: not "
                                   r"among the session's destinations \(127\.0\.0\.1:%d\)" %
                                   (other.addr[1], echo.addr[1]), proxy.output()),
                 3, what="the warning")

    def test_unknown_session_and_bad_tag_name_the_peer_and_session(self):
        echo = self.echo()
        proxy = self.proxy(config=session_cfg("127.0.0.1:%d" % echo.addr[1]), auth=True)
        s = self.udp()
        me = "127.0.0.1:%d" % s.getsockname()[1]
        s.sendto(pack_header(flags=8, token=77, seq=1, session_id=77) + b"x" + os.urandom(8),
                 proxy.addr)
        s.sendto(pack_header(flags=8, token=9, seq=2, session_id=9) + b"x" + os.urandom(8),
                 proxy.addr)
        wait_for(lambda: re.search(r"warn: 1 datagram\(s\) from %s for session 77 dropped: no "
                                   r"such session" % me, proxy.output()), 3, what="unknown")
        wait_for(lambda: re.search(r"warn: 1 datagram\(s\) from %s for session 9 dropped: bad "
                                   r"tag" % me, proxy.output()), 3, what="bad tag")

    def test_check_warns_and_session_add_refuses_a_denied_destination(self):
        cfg = self.write("p.toml", session_cfg("10.1.2.3:27015"))
        r = self.run_bin("lightspeed-proxy", "-c", cfg, "--check")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("10.1.2.3:27015 is in the denied range 10.0.0.0/8", r.stderr)
        self.assertIn("allow", r.stderr)
        r = self.run_bin("lightspeed-proxy", "-c", cfg, "--check", "--allow", "10.0.0.0/8")
        self.assertNotIn("denied range", r.stderr)
        proxy = self.proxy(config=FAST, auth=True)
        from lstest import Steer
        st = Steer(proxy.sock_path)
        self.closers.append(st.close)
        ans = st.call("session_add", session_id=3, key=KEY, destinations=["192.168.1.1:9"])
        self.assertFalse(ans["ok"])
        self.assertEqual(ans["error"]["code"], "invalid")
        self.assertIn("192.168.0.0/16", ans["error"]["message"])
        ans = st.call("session_add", session_id=3, key=KEY, destinations=["127.0.0.1:9"])
        self.assertTrue(ans["ok"], ans)


class FlowTest(LSTestCase):

    def test_new_game_sockets_take_the_place_of_quiet_ones(self):
        # A game that opens a socket per match or reconnect: ten in a row, each
        # answered in full, with max_flows at its default of 8.
        echo = self.echo()
        proxy = self.proxy(config=session_cfg("127.0.0.1:%d" % echo.addr[1]), auth=True)
        client = self.client(proxy.port, echo.addr, session=(9, KEY))
        wait_for(lambda: client.steer("status")["path"] == "up", 3, what="the path")
        for g in range(10):
            game = self.game(client.local_port)
            payloads = [b"s%d-%d" % (g, i) for i in range(100)]
            self.assert_exchange(game, payloads)
            game.close()
            time.sleep(0.25)  # the socket goes quiet, as a finished match's does
        self.assertEqual(proxy.stats()["drops"]["flow_limit"], 0)
        self.assertLessEqual(proxy.stats()["flows"], 8)

    def test_busy_flows_are_kept_and_the_drop_is_logged(self):
        # With every flow busy, a ninth game socket is refused (counted and logged),
        # and the busy ones lose nothing.
        echo = self.echo()
        proxy = self.proxy(config=session_cfg("127.0.0.1:%d" % echo.addr[1]), auth=True)
        client = self.client(proxy.port, echo.addr, session=(9, KEY))
        wait_for(lambda: client.steer("status")["path"] == "up", 3, what="the path")
        games = [self.game(client.local_port) for _ in range(9)]
        for g in games[:8]:
            self.assert_exchange(g, [b"first"])
        # All eight busy (each sent within the quiet time), then the ninth.
        for g in games[:8]:
            g.send(b"busy")
        games[8].send(b"ninth")
        wait_for(lambda: proxy.stats()["drops"]["flow_limit"] >= 1, 3, what="flow_limit")
        wait_for(lambda: "raise [proxy] max_flows" in proxy.output(), 3, what="the warning")


@unittest.skipUnless(shutil.which("strace"), "needs strace")
class BatchingTest(LSTestCase):

    def test_eight_flows_do_not_mean_one_sendmmsg_per_packet(self):
        echo = self.echo()
        proxy = self.proxy(config=session_cfg("127.0.0.1:%d" % echo.addr[1]), auth=True)
        client = self.client(proxy.port, echo.addr, session=(9, KEY))
        wait_for(lambda: client.steer("status")["path"] == "up", 3, what="the path")
        games = [self.game(client.local_port) for _ in range(8)]
        for g in games:
            self.assert_exchange(g, [b"open"])
        out = self.path("strace.txt")
        tr = subprocess.Popen(["strace", "-f", "-c", "-e", "trace=sendmmsg,sendto,sendmsg",
                               "-o", out, "-p", str(proxy.p.pid)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        n = 2000
        for i in range(n):
            games[i % 8].send(b"%d" % i)
            if i % 64 == 63:
                time.sleep(0.002)
        time.sleep(1.0)
        for g in games:
            g.recv_all(0.05)
        tr.terminate()
        tr.wait(5)
        with open(out) as f:
            text = f.read()
        calls = sum(int(m.group(1)) for m in re.finditer(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)"
                                                         r"(?:\s+\d+)?\s+send", text, re.M))
        print("\n    %d datagrams each way over 8 flows: %d send calls" % (n, calls), end=" ")
        self.assertGreater(calls, 0, text)
        # Both directions, 2n datagrams: one call per packet would be 2n.
        self.assertLess(calls, n, text)
