"""Garbage at every socket leaves every process running, answering and forwarding."""
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import threading
import time

from lstest import (LSTestCase, Steer, pack_header, numbered_payloads, udp_ports_of,
                    free_port, wait_for, AUTH, KEEPALIVE, FIN)

KEY = "0f0e0d0c0b0a09080706050403020100"
FAST = "[limits]\npps = 200000\nbps = 400000000\n"


def junk_datagrams(rnd, dst):
    """Random bytes, every truncation of valid headers, bad versions and flags, oversize."""
    out = [os.urandom(rnd.randint(0, 64)) for _ in range(300)]
    full = [pack_header(seq=1, src=("127.0.0.1", 9), dst=dst) + b"payload",
            pack_header(version=2, seq=2, src=("127.0.0.1", 9), dst=dst, fec=(1, 0, 4)) + b"p",
            pack_header(flags=AUTH, token=3, seq=3, dst=dst, session_id=3) + b"p" + b"\0" * 8,
            pack_header(version=2, flags=AUTH, token=3, dst=dst, fec=(1, 4, 4),
                        session_id=3) + b"\0" * 8]
    for f in full:
        out += [f[:n] for n in range(len(f))]
    out += [bytes([v << 4]) + os.urandom(30) for v in range(16)]
    out += [bytes([0x10 | 0x2]) + bytes(30), bytes([0x10 | KEEPALIVE | FIN]) + bytes(30)]
    out += [pack_header(version=2, fec=(0, 200, 3)) + b"x"]
    out += [pack_header(dst=dst) + os.urandom(n) for n in (1473, 1600, 2047, 2048, 4000, 9000)]
    out += [b"\xff" * 65000]
    return out


JSON_JUNK = [b"\n", b"not json\n", b"{\n", b"[1,2,3]\n", b'"cmd"\n', b"{}\n",
             b'{"cmd":42}\n', b'{"cmd":"nope"}\n', b'{"cmd":"set_route"}\n',
             b'{"cmd":"set_route","proxy":"999.1.1.1:1"}\n',
             b'{"cmd":"session_add","session_id":-1}\n',
             b'{"cmd":"session_add","session_id":1,"key":"zz","destinations":[1]}\n',
             b'{"cmd":"session_del","session_id":"x"}\n', b'{"cmd":"stats","format":7}\n',
             b'{"id":1,"id":2,"cmd":"status"}\n', b"\x00\xff\xfe binary \x80\n",
             b'{"cmd":"status"' + b" " * 70000 + b"}\n", b"\r\n"]


class RobustnessTest(LSTestCase):

    def _chain(self, auth=False):
        echo = self.echo()
        if auth:
            cfg = FAST + '[[session]]\nid = 3\nkey = "%s"\ndestinations = ["127.0.0.1:%d"]\n' % (
                KEY, echo.addr[1])
            proxy = self.proxy(config=cfg, auth=True)
            client = self.client(proxy.port, echo.addr, session=(3, KEY))
        else:
            proxy = self.proxy(config=FAST)
            client = self.client(proxy.port, echo.addr)
        return echo, proxy, client, self.game(client.local_port)

    def _still_fine(self, echo, proxy, client, game, seed):
        self.assertTrue(proxy.alive(), proxy.output())
        self.assertTrue(client.alive(), client.output())
        self.assertIn("sessions", proxy.steer("status"))
        self.assertIn("proxy", client.steer("status"))
        self.assert_exchange(game, numbered_payloads(200, seed=seed))

    def _throw_garbage(self, echo, proxy, client, rnd):
        s = self.udp()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        # Every UDP socket the client has: its local game port and its tunnel socket.
        targets = [proxy.addr] + [("127.0.0.1", p) for p in udp_ports_of(client.p.pid)]
        self.assertGreaterEqual(len(targets), 3)
        for t in targets:
            for d in junk_datagrams(rnd, echo.addr):
                try:
                    s.sendto(d, t)
                except OSError:
                    pass  # larger than the socket allows: fine
                time.sleep(0.0002)
        for path in (proxy.sock_path, client.sock_path):
            st = Steer(path)
            for j in JSON_JUNK:
                st.send_raw(j)
            st.send_raw(b'{"id":99,"cmd":"status"}\n')
            answers = []
            while True:
                msg = st.read_line()
                answers.append(msg)
                if msg.get("id") == 99:
                    break
            errors = [a["error"]["code"] for a in answers if not a.get("ok")]
            self.assertIn("bad_json", errors)
            self.assertIn("bad_request", errors)
            self.assertIn("unknown_command", errors)
            self.assertIn("too_long", errors)
            self.assertIn("invalid", errors)
            self.assertTrue(answers[-1]["ok"])
            st.close()
        return targets

    def test_garbage_everywhere_unauthenticated(self):
        echo, proxy, client, game = self._chain()
        self.assert_exchange(game, [b"warm up"])
        self._throw_garbage(echo, proxy, client, random.Random(1))
        self._still_fine(echo, proxy, client, game, 11)
        d = proxy.stats()["drops"]
        for reason in ("malformed", "bad_version", "fec_range", "oversize"):
            self.assertGreater(d[reason], 0, reason)
        cd = client.stats()["drops"]
        self.assertGreater(sum(cd.values()), 0)

    def test_garbage_everywhere_authenticated(self):
        echo, proxy, client, game = self._chain(auth=True)
        self.assert_exchange(game, [b"warm up"])
        # Junk sent straight to an auth-on proxy is never forwarded...
        s = self.udp()
        junk = junk_datagrams(random.Random(4), echo.addr)
        before = proxy.stats()["rx_packets"]
        for d in junk:
            s.sendto(d[:65000], proxy.addr)
            time.sleep(0.0002)
        wait_for(lambda: proxy.stats()["rx_packets"] - before >= len(junk) * 0.9, 3,
                 what="junk received")
        self.assertEqual(proxy.stats()["forwarded_packets"], 1)
        self.assertEqual(echo.count(), 1)
        # ...while junk the "game" sends to the client's local port is game traffic.
        self._throw_garbage(echo, proxy, client, random.Random(2))
        self._still_fine(echo, proxy, client, game, 12)
        d = proxy.stats()["drops"]
        self.assertGreater(d["unauthenticated"], 0)
        self.assertGreater(d["bad_tag"] + d["unknown_session"], 0)

    def test_traffic_flows_while_steering_peers_come_and_go(self):
        echo, proxy, client, game = self._chain()
        stop = threading.Event()

        def pester():
            rnd = random.Random(3)
            while not stop.is_set():
                for path in (proxy.sock_path, client.sock_path):
                    try:
                        st = Steer(path, timeout=1)
                        st.send_raw(rnd.choice(JSON_JUNK))
                        if rnd.random() < 0.5:
                            st.send_raw(b'{"cmd":"subscribe"}\n')
                        st.close()  # vanish, possibly mid-answer
                    except OSError:
                        pass

        t = threading.Thread(target=pester, daemon=True)
        t.start()
        try:
            self.assert_exchange(game, numbered_payloads(3000, seed=13))
        finally:
            stop.set()
            t.join(2)
        self._still_fine(echo, proxy, client, game, 14)

    def test_slow_subscriber_loses_events_and_does_not_stall_forwarding(self):
        echo, proxy, client, game = self._chain(auth=True)
        self.assert_exchange(game, [b"warm up"])
        subs = []
        for path in (proxy.sock_path, client.sock_path):
            st = Steer(path)
            st.ok("subscribe")
            subs.append(st)  # not read until the end
        # Events faster than anyone reads them: every session added and deleted is two
        # events on the proxy, every backup armed or disarmed one on the client. Far more than the
        # 64 KiB a subscriber may have waiting, plus what the kernel buffers.
        ctl = Steer(proxy.sock_path)
        for i in range(2500):
            ctl.ok("session_add", session_id=5000 + i % 7, key=KEY,
                   destinations=["127.0.0.1:%d" % echo.addr[1]])
            ctl.ok("session_del", session_id=5000 + i % 7)
        ctl.close()
        cctl = Steer(client.sock_path)
        cctl.ok("route_add", name="spare", proxy="127.0.0.1:9")
        for i in range(3000):
            cctl.ok("arm_backup", name="spare" if i % 2 == 0 else None)
        cctl.close()
        self.assert_exchange(game, numbered_payloads(2000, seed=15))
        for proc in (proxy, client):
            steering = proc.stats()["steering"]
            self.assertGreater(steering["events_dropped"], 0, (proc.name, steering))
            self.assertEqual(steering["cut_off"], 0, steering)
        # The subscriber catches up: whole lines only (an event is dropped whole, never
        # cut), and new events reach it again.
        for st in subs:
            st.sock.settimeout(2)
            seen = 0
            try:
                while True:
                    msg = st.read_line()
                    self.assertIn("event", msg)
                    seen += 1
                    if seen > 100 and msg["event"] == "counters":
                        break
            except socket.timeout:
                pass
            self.assertGreater(seen, 100)
            st.close()

    def test_every_command_refuses_unknown_arguments(self):
        echo, proxy, client, game = self._chain()
        for proc in (proxy, client):
            st = Steer(proc.sock_path)
            cmds = st.ok("help")["commands"]
            names = {c["cmd"] for c in cmds}
            self.assertTrue({"status", "stats", "help", "subscribe"} <= names, names)
            for c in cmds:
                # Required arguments present and well typed: only the stray key is wrong.
                r = st.call(c["cmd"], bogus=1, **self._valid_args(c))
                self.assertFalse(r["ok"], (proc.name, c["cmd"], r))
                self.assertEqual(r["error"]["code"], "invalid", (proc.name, c["cmd"], r))
                self.assertIn("unknown argument 'bogus'", r["error"]["message"])
                for a in c["args"]:
                    self.assertTrue(a["help"] and a["type"], (c["cmd"], a))
            # A wrong type is refused before the handler, with what it must be.
            if proc is proxy:
                r = st.call("session_del", session_id="7")
                self.assertEqual(r["error"]["message"],
                                 "session_id must be an integer in 1..4294967295")
                r = st.call("session_add", session_id=7, key=KEY)
                self.assertIn("destinations is missing", r["error"]["message"])
            else:
                r = st.call("set_fec", fec=2)
                self.assertIn("fec must be a string", r["error"]["message"])
            st.close()
        self._still_fine(echo, proxy, client, game, 17)

    @staticmethod
    def _valid_args(cmd):
        samples = {"session_id": 99, "key": KEY, "destinations": ["127.0.0.1:1"],
                   "proxy": "127.0.0.1:9", "fec": "off", "name": "x", "command": "status",
                   "next_hops": ["127.0.0.1:9"], "route": "x", "mode": "single",
                   "game": "cs2", "server": "127.0.0.1"}
        return {a["key"]: samples[a["key"]] for a in cmd["args"] if a["required"]}

    def test_too_many_steering_connections_are_refused(self):
        echo, proxy, client, game = self._chain()
        conns = []
        for _ in range(32):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(proxy.sock_path)
            conns.append(s)
        # Every one of the 32 is served...
        probe = Steer(proxy.sock_path)  # the 33rd
        probe.sock.settimeout(3)
        r = probe.read_line()
        self.assertEqual(r["ok"], False)
        self.assertEqual(r["error"]["code"], "full")
        self.assertEqual(probe.sock.recv(100), b"")  # and closed
        probe.close()
        for s in conns[:3]:
            s.sendall(b'{"id":1,"cmd":"status"}\n')
            self.assertTrue(json.loads(s.recv(65536))["ok"])
        for s in conns:
            s.close()
        # ...and once they are gone, a newcomer is served again.
        wait_for(lambda: Steer(proxy.sock_path).ok("stats")["steering"]["connections"] == 1,
                 3, what="the 32 connections closed")
        st = proxy.stats()["steering"]
        self.assertGreaterEqual(st["refused"], 1)
        self._still_fine(echo, proxy, client, game, 16)


class SteeringFloodTest(LSTestCase):
    """One write of 64 KiB of {"cmd":"sessions"} lines with 1,000 sessions held."""

    FLOOD = b'{"cmd":"sessions"}\n' * (65536 // 19)

    def test_sessions_flood_does_not_stall_forwarding(self):
        echo = self.echo()
        cfg = FAST + '[[session]]\nid = 3\nkey = "%s"\ndestinations = ["127.0.0.1:%d"]\n' % (
            KEY, echo.addr[1])
        proxy = self.proxy("--max-sessions", "2000", config=cfg, auth=True)
        client = self.client(proxy.port, echo.addr, session=(3, KEY))
        game = self.game(client.local_port)
        st = Steer(proxy.sock_path)
        for i in range(1000):
            st.ok("session_add", session_id=10000 + i, key="%032x" % i,
                  destinations=["127.0.0.1:%d" % (1024 + i)])
        self.assert_exchange(game, [b"warm up"])
        before = proxy.stats()["steering"]["requests"]

        # A peer that floods and never reads; another that floods and reads it all.
        mute = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        mute.connect(proxy.sock_path)
        self.closers.append(mute.close)
        mute.sendall(self.FLOOD)
        stop = threading.Event()
        got = {"lines": 0, "bytes": 0}

        def reader():
            r = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            r.connect(proxy.sock_path)
            r.sendall(self.FLOOD)
            r.settimeout(0.2)
            buf = b""
            while not stop.is_set():
                try:
                    d = r.recv(1 << 20)
                except socket.timeout:
                    continue
                if not d:
                    break
                buf += d
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    assert json.loads(line)["ok"], line[:200]
                    got["lines"] += 1
            r.close()

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        try:
            # What a player sees: every packet of a 64/s game comes back, promptly.
            rtts = []
            game.sock.settimeout(5)
            for i in range(200):
                t0 = time.monotonic()
                game.send(b"ping %d" % i)
                self.assertEqual(game.sock.recvfrom(2048)[0], b"ping %d" % i)
                rtts.append(time.monotonic() - t0)
                time.sleep(max(0.0, 1 / 64 - rtts[-1]))
            # And another steering peer is answered meanwhile.
            t0 = time.monotonic()
            self.assertEqual(proxy.steer("status")["sessions"], 1001)
            status_s = time.monotonic() - t0
        finally:
            stop.set()
            t.join(3)
        rtts.sort()
        self.assertLess(rtts[len(rtts) // 2], 0.05, rtts)
        self.assertLess(rtts[-1], 1.0, rtts)
        self.assertLess(status_s, 1.0)
        self.assertGreater(got["lines"], 0)
        # The peer that does not read is not served beyond its first answers...
        handled = proxy.stats()["steering"]["requests"] - before
        self.assertLess(handled, got["lines"] + 100)
        # ...and is cut off after 10 s of reading nothing (docs/protocol.md 3).
        wait_for(lambda: proxy.stats()["steering"]["cut_off"] == 1, 15, interval=0.5,
                 what="the mute peer cut off")
        mute.settimeout(5)
        try:
            while mute.recv(1 << 20):
                pass  # what the kernel held for it, then the end
        except ConnectionResetError:
            pass  # closed with its unread requests pending: the end, too
        self.assertTrue(proxy.alive())
        self.assert_exchange(game, numbered_payloads(100, seed=18))


def half_close(path, data):
    """Send data, shut down the write side, return all that comes back until the end."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(path)
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            d = s.recv(65536)
            if not d:
                return out
            out += d
    finally:
        s.close()


class SteeringSocketTest(LSTestCase):
    """What a user does by hand at a steering socket."""

    def _both(self):
        echo = self.echo()
        proxy = self.proxy(config=FAST)
        client = self.client(proxy.port, echo.addr)
        return proxy, client

    def test_answers_survive_a_half_close_by_socat(self):
        if not shutil.which("socat"):
            self.skipTest("socat is not installed")
        for proc in self._both():
            for i in range(100):
                r = subprocess.run(["socat", "-", "UNIX-CONNECT:" + proc.sock_path],
                                   input=b'{"cmd":"stats"}\n', capture_output=True, timeout=10)
                self.assertEqual(r.returncode, 0, r.stderr)
                lines = r.stdout.splitlines()
                self.assertEqual(len(lines), 1, (proc.name, i, r.stdout[:200]))
                self.assertTrue(json.loads(lines[0])["ok"])

    def test_answers_survive_shutdown_of_the_write_side(self):
        for proc in self._both():
            for i in range(300):
                n = 1 + i % 5
                # The last request without its newline: the end of input ends it.
                data = half_close(proc.sock_path, b'{"id":1,"cmd":"status"}\n' * (n - 1) +
                                  b'{"id":1,"cmd":"status"}')
                lines = data.splitlines()
                self.assertEqual(len(lines), n, (proc.name, i, data[:300]))
                for line in lines:
                    self.assertTrue(json.loads(line)["ok"])

    def test_raw_prometheus_text(self):
        for proc, prefix in zip(self._both(), ("lightspeed_proxy", "lightspeed_client")):
            text = half_close(proc.sock_path,
                              b'{"cmd":"stats","format":"prometheus","raw":true}\n')
            self.assertTrue(text.startswith(b"# HELP "), text[:100])
            self.assertIn(b"\n%s_steering_requests_total " % prefix.encode(), text)
            self.assertNotIn(b'"ok"', text)
            if shutil.which("promtool"):
                r = subprocess.run(["promtool", "check", "metrics"], input=text,
                                   capture_output=True, timeout=10)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            r = Steer(proc.sock_path).call("stats", raw=True)
            self.assertEqual(r["error"]["code"], "invalid")

    def test_steering_counters_are_spelled_alike(self):
        proxy, client = self._both()
        a, b = proxy.stats()["steering"], client.stats()["steering"]
        self.assertEqual(sorted(a), sorted(b))
        for key in ("connections", "connections_total", "requests", "errors",
                    "events_sent", "events_dropped", "refused", "cut_off"):
            self.assertIn(key, a)

    def test_socket_path_never_replaces_a_file(self):
        victim = self.write("precious.toml", "# not a socket\n")
        for name, args in (("lightspeed-proxy", ["--insecure-no-auth", "--bind",
                                                  "127.0.0.1:0"]),
                           ("lightspeed-client", ["--proxy", "127.0.0.1:9", "--game-server",
                                                  "127.0.0.1:9", "--local-port",
                                                  str(free_port())])):
            r = self.run_bin(name, "--socket", victim, *args)
            self.assertNotEqual(r.returncode, 0, (name, r.stderr))
            self.assertIn("is not a socket", r.stderr)
            with open(victim) as f:
                self.assertEqual(f.read(), "# not a socket\n")


class ConfigTest(LSTestCase):

    def test_a_test_filter_matching_nothing_fails(self):
        run = os.path.join(os.path.dirname(os.path.abspath(__file__)), "run.py")
        r = subprocess.run([sys.executable, run, "--build", os.environ["LS_BUILD"],
                            "no_such_test_anywhere"], capture_output=True, text=True,
                           timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no test matches 'no_such_test_anywhere'", r.stdout)
        self.assertIn("e2e: 0 passed, 1 failed", r.stdout)

    def test_proxy_config_errors_name_file_line_column(self):
        cases = [
            ("[proxy]\nbind = \"0.0.0.0:4434\"\nbogus = 1\n", ":3:1: unknown key 'bogus'"),
            ("[proxy]\nidle_timeout = \"soon\"\n", ":2:16: "),
            ("[nope]\n", ":1:1: unknown section"),
            ("[proxy]\nbind = \"0.0.0.0:99999\"\n", ":2:8: "),
            ("[[session]]\nid = 1\nkey = \"xyz\"\ndestinations = [\"1.2.3.4\"]\n", ":3:7: "),
            ("[proxy]\nallow = [\"10.0.0.0/33\"]\n", ":2:"),
            ("[[session]]\nid = 1\nkey = \"%s\"\ndestinations = [\"1.2.3.4\"]\nfec = \"2\"\n" % KEY,
             ":5:7: 'fec': "),
            ("[proxy]\nsocket = \"\"\n", ":2:10: 'socket' must be a path"),
            # Found after loading: still where the [[session]] stands.
            ("[[session]]\nid = 1\nkey = \"%s\"\ndestinations = [\"1.2.3.4\"]\n\n"
             "[[session]]\nid = 2\nkey = \"%s\"\n" % (KEY, KEY),
             ":6:1: [[session]] #2: 'destinations' is missing"),
            (("[[session]]\nid = 7\nkey = \"%s\"\ndestinations = [\"1.2.3.4\"]\n" % KEY) * 2,
             ":5:1: [[session]] #2: id 7 is already used by #1 (line 1)"),
        ]
        for text, want in cases:
            cfg = self.write("bad.toml", text)
            r = self.run_bin("lightspeed-proxy", "-c", cfg, "--check")
            self.assertEqual(r.returncode, 1, (text, r.stdout, r.stderr))
            self.assertIn("lightspeed-proxy: " + cfg + want, r.stderr, text)
            # The same message when starting, at error level.
            r = self.run_bin("lightspeed-proxy", "-c", cfg, "--socket", self.path("bad.sock"))
            self.assertEqual(r.returncode, 1, (text, r.stdout, r.stderr))
            self.assertIn(cfg + want, r.stderr, text)

    def test_client_config_errors_and_check(self):
        head = "[client]\nproxy = \"127.0.0.1:4434\"\ngame_server = \"127.0.0.1:7777\"\n"
        for text, want in ((head + "local_port = 0\n", ":4:14: "),
                           (head + "local_port = 7000\nsocket = \"\"\n", ":5:10: "),
                           (head + "local_port = 7000\nfec = \"lots\"\n", ":5:7: ")):
            cfg = self.write("c.toml", text)
            r = self.run_bin("lightspeed-client", "-c", cfg, "--check")
            self.assertEqual(r.returncode, 1, text)
            self.assertIn(cfg + want, r.stderr, text)
        good = self.write("g.toml", "[client]\nproxy = \"127.0.0.1:4434\"\n"
                          "game_server = \"127.0.0.1:7777\"\nlocal_port = 7000\n"
                          "keepalive_ms = 250\n")
        r = self.run_bin("lightspeed-client", "-c", good, "--check")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("keepalive_ms = 250", r.stdout)
        self.assertIn("local_port = 7000", r.stdout)

    def test_proxy_check_prints_effective_config(self):
        cfg = self.write("p.toml", "[proxy]\nidle_timeout = 30\n[limits]\npps = 77\n")
        r = self.run_bin("lightspeed-proxy", "-c", cfg, "--check", "--bind", "127.0.0.1:5555")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("idle_timeout = 30", r.stdout)
        self.assertIn("pps = 77", r.stdout)
        self.assertIn('bind = "127.0.0.1:5555"', r.stdout)

    def test_command_line_errors(self):
        for name, args in [("lightspeed-proxy", ["--bind", "nonsense"]),
                           ("lightspeed-proxy", ["--allow", "1.2.3.4/40"]),
                           ("lightspeed-proxy", ["--no-such-flag"]),
                           ("lightspeed-client", ["--proxy", "127.0.0.1:1"]),
                           ("lightspeed-client", ["--proxy", "127.0.0.1:1", "--game-server",
                                                  "127.0.0.1:2", "--local-port", "3",
                                                  "--session-id", "1"]),
                           ("lightspeed-client", ["--proxy", "127.0.0.1:1", "--game-server",
                                                  "127.0.0.1:2", "--local-port", "3",
                                                  "--keepalive-ms", "5"])]:
            r = self.run_bin(name, *args)
            self.assertEqual(r.returncode, 2, (name, args, r.stderr))
            self.assertTrue(r.stderr.strip(), (name, args))
        for name in ("lightspeed-proxy", "lightspeed-client"):
            r = self.run_bin(name, "--help")
            self.assertEqual(r.returncode, 0)
            self.assertIn("Usage", r.stdout + r.stderr)

    def test_log_lines_carry_a_timestamp_and_the_start_line_the_version(self):
        version = self.run_bin("lightspeed-proxy", "--version").stdout.split()[1]
        proxy = self.proxy(auth=True)
        client = self.client(proxy.port, ("127.0.0.1", 9))
        stamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z lightspeed-")
        for p, start in ((proxy, "lightspeed-proxy %s: listening on" % version),
                         (client, "lightspeed-client %s: game ->" % version)):
            wait_for(lambda: start in p.output(), 5, what=start)
            lines = [ln for ln in p.output().splitlines() if ln.strip()]
            self.assertTrue(lines)
            for ln in lines:
                self.assertRegex(ln, stamp)

    def test_second_instance_on_same_socket_is_refused(self):
        proxy = self.proxy()
        r = self.run_bin("lightspeed-proxy", "--insecure-no-auth", "--bind", "127.0.0.1:0",
                         "--socket", proxy.sock_path)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("another process", r.stderr)
        self.assertIn("sessions", proxy.steer("status"))
