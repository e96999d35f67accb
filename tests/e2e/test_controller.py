"""lightspeed-controller end to end: the real controller steering the real client
through two real proxies, each behind its own ls-netsim with a different delay, an echo
server as the game server; every REST answer validated against api/openapi.yaml."""
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

import openapi
from lstest import BIN, LSTestCase, Proc, free_port, steer_ok, wait_for

LSCTL = os.path.join(BIN, "lsctl")


class Controller:
    """A running lightspeed-controller and a validating client of its API."""

    def __init__(self, case, args, port=None, token=None, env=None):
        self.case = case
        self.env = env
        self.port = port or free_port(socket.SOCK_STREAM)
        self.args = ["--api", "127.0.0.1:%d" % self.port, "--log-level", "debug"] + list(args)
        self.api = openapi.Client("http://127.0.0.1:%d" % self.port, token=token)
        self.log_path = case.path("controller-%d.log" % self.port)
        self.start()

    def start(self):
        self.log = open(self.log_path, "ab")
        self.p = subprocess.Popen([os.path.join(BIN, "lightspeed-controller")] + self.args,
                                  stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        end = time.monotonic() + 5
        while time.monotonic() < end:
            if self.p.poll() is not None:
                raise AssertionError("controller exited %s:\n%s" % (self.p.returncode, self.output()))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise AssertionError("controller: no API after 5 s:\n" + self.output())

    def output(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, sig=signal.SIGTERM):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            self.p.wait(5)
        self.log.close()
        return self.p.returncode

    def route(self):
        return self.api.get("/routes")["routes"][0]

    def cand(self, name):
        return next(c for c in self.route()["candidates"] if c["name"] == name)


class Traffic(threading.Thread):
    """A game socket sending numbered packets at `pps` to the client and recording
    every reply (payload -> count) with when it came."""

    def __init__(self, port, pps=64):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.005)
        self.dest = ("127.0.0.1", port)
        self.interval = 1.0 / pps
        self.sent = []             # (seq, time)
        self.replies = {}          # seq -> count
        self.reply_times = []      # (time, seq)
        self.lock = threading.Lock()
        self.halt = False
        self.start()

    def run(self):
        seq = 0
        nxt = time.monotonic()
        while not self.halt:
            now = time.monotonic()
            if now >= nxt:
                self.sock.sendto(b"game-%08d" % seq, self.dest)
                with self.lock:
                    self.sent.append((seq, now))
                seq += 1
                nxt += self.interval
            try:
                data, _ = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            n = int(data[5:])
            with self.lock:
                self.replies[n] = self.replies.get(n, 0) + 1
                self.reply_times.append((time.monotonic(), n))

    def stop(self):
        self.halt = True
        self.join(2)
        self.sock.close()

    def sent_between(self, t0, t1):
        with self.lock:
            return [s for s, t in self.sent if t0 <= t < t1]

    def last_reply(self):
        with self.lock:
            return self.reply_times[-1][0] if self.reply_times else 0

    def replies_after(self, t):
        with self.lock:
            return sum(1 for rt, _ in self.reply_times if rt > t)

    def duplicates(self):
        with self.lock:
            return sorted(s for s, k in self.replies.items() if k > 1)

    def missing(self, seqs):
        with self.lock:
            return [s for s in seqs if s not in self.replies]


class ControllerCommandLine(LSTestCase):

    def run_ctl(self, *args):
        return subprocess.run([os.path.join(BIN, "lightspeed-controller")] + list(args),
                              capture_output=True, text=True, timeout=10)

    def test_help_version_check(self):
        r = self.run_ctl("--help")
        self.assertEqual(r.returncode, 0)
        for flag in ("-c FILE", "--client-socket PATH", "--api ADDR:PORT", "--node NAME=HOST:PORT",
                     "--state-dir DIR", "--check"):
            self.assertIn(flag, r.stdout)
        r = self.run_ctl("--version")
        self.assertEqual(r.returncode, 0)
        self.assertTrue(r.stdout.startswith("lightspeed-controller "))
        cfg = self.write("c.toml", '[select]\nhold_ms = 2500\n[[node]]\nname = "a"\n'
                         'address = "127.0.0.1:4434"\nregion = "eu-west"\n')
        key = self.write("b.key", "000102030405060708090a0b0c0d0e0f\n")
        r = self.run_ctl("-c", cfg, "--node", "b=127.0.0.1:4435,session=7,key-file=" + key,
                         "--api", "127.0.0.1:9123", "--check")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('api = "127.0.0.1:9123"', r.stdout)
        self.assertIn("hold_ms = 2500", r.stdout)
        self.assertIn('name = "a"', r.stdout)
        self.assertIn('name = "b"', r.stdout)
        self.assertIn("session_id = 7", r.stdout)
        self.assertNotIn("0a0b0c0d", r.stdout)

    def test_bad_input_exit_codes(self):
        r = self.run_ctl("--bogus")
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown option '--bogus'", r.stderr)
        cfg = self.write("bad.toml", "[select]\nmargin_ratio = 0.5\n")
        r = self.run_ctl("-c", cfg, "--check")
        self.assertEqual(r.returncode, 1)
        self.assertIn("bad.toml:2:16:", r.stderr)
        r = self.run_ctl("--node", "no-address", "--check")
        self.assertEqual(r.returncode, 1)
        self.assertIn("--node:", r.stderr)
        r = self.run_ctl("--api", "0.0.0.0:9000", "--check")
        self.assertEqual(r.returncode, 1)
        self.assertIn("api_token", r.stderr)
        r = self.run_ctl("-c", self.path("missing.toml"), "--check")
        self.assertEqual(r.returncode, 1)


class ControllerApi(LSTestCase):
    """The API with no dataplane, and the errors that come from the route table."""

    def test_no_dataplane(self):
        c = Controller(self, ["--client-socket", self.path("nobody.sock"), "--state-dir",
                              self.path("state"), "--node", "a=127.0.0.1:4434"])
        self.closers.append(c.stop)
        api = c.api
        st, h = api.call("GET", "/health")
        self.assertEqual(st, 503)
        self.assertEqual(h["status"], "not_ready")
        self.assertFalse(h["dataplane"])
        r = api.get("/routes")
        self.assertFalse(r["dataplane"])
        self.assertEqual([x["name"] for x in r["routes"][0]["candidates"]], ["a"])
        self.assertIsNone(r["routes"][0]["active"])
        s = api.get("/status")
        self.assertFalse(s["dataplane"]["connected"])
        self.assertEqual(s["nodes"]["total"], 1)
        api.get("/proxies")
        self.assertEqual(api.get("/proxies/a")["source"], "command_line")
        api.get("/failovers")
        self.assertIsNone(api.get("/stats")["dataplane"])
        st, text = api.call("GET", "/metrics")
        self.assertEqual(st, 200)
        self.assertIn("lightspeed_controller_dataplane_connected 0", text)
        api.expect_error("POST", "/failover", 503, "not_ready")
        api.expect_error("POST", "/proxies", 503, "not_ready", {"name": "b", "address": "127.0.0.1:1"})
        api.expect_error("GET", "/proxies/nope", 404, "not_found")
        api.expect_error("GET", "/nope", 404, "unknown_command")
        api.expect_error("DELETE", "/routes", 405, "method_not_allowed")
        api.expect_error("POST", "/failover", 400, "bad_request", {"too": "a"})
        api.expect_error("POST", "/failover", 400, "invalid", {"to": 5})
        st, hd, body = api.raw("POST", "/failover", b"{not json", {"Content-Type": "application/json"})
        self.assertEqual(st, 400)
        openapi.spec().check("POST", "/failover", st, hd, body)
        # Hostile bodies: over the limit (refused before it is read), nested past the
        # parser's depth, binary; the controller answers each and stays up.
        js = {"Content-Type": "application/json"}
        for raw, status, code in ((b'{"name":"' + b"x" * 100000 + b'"}', 413, "too_long"),
                                  (b'{"to":' + b"[" * 5000 + b"]" * 5000 + b"}", 400, "bad_json"),
                                  (bytes(range(256)) * 4, 400, "bad_json")):
            st, hd, body = api.raw("POST", "/proxies", raw, js)
            self.assertEqual((st, json.loads(body)["error"]["code"]), (status, code), body[:200])
            openapi.spec().check("POST", "/proxies", st, hd, body)
        self.assertEqual(api.call("GET", "/health")[0], 503)

    def test_token_off_loopback(self):
        tok = self.write("token", "s3cret-token-for-tests\n")
        cfg = self.write("c.toml", '[controller]\napi_token_file = "%s"\n' % tok)
        port = free_port(socket.SOCK_STREAM)
        c = Controller(self, ["-c", cfg, "--client-socket", self.path("nobody.sock"),
                              "--state-dir", self.path("state"), "--api", "0.0.0.0:%d" % port],
                       port=port, token="s3cret-token-for-tests")
        self.closers.append(c.stop)
        c.api.get("/routes")
        anon = openapi.Client("http://127.0.0.1:%d" % port)
        anon.expect_error("GET", "/routes", 401, "unauthorized")
        wrong = openapi.Client("http://127.0.0.1:%d" % port, token="s3cret-token-for-tesTs")
        wrong.expect_error("GET", "/routes", 401, "unauthorized")
        self.assertIn("token", c.output().lower())

    def test_reload(self):
        cfg = self.write("c.toml", '[[node]]\nname = "a"\naddress = "127.0.0.1:4434"\n')
        c = Controller(self, ["-c", cfg, "--client-socket", self.path("nobody.sock"),
                              "--state-dir", self.path("state")])
        self.closers.append(c.stop)
        names = lambda: [n["name"] for n in c.api.get("/proxies")["proxies"]]
        self.assertEqual(names(), ["a"])
        # A broken file: said so with its position, the running configuration stays.
        self.write("c.toml", '[[node]]\nname = "a"\naddress = "127.0.0.1:4434"\nbogus = 1\n')
        c.p.send_signal(signal.SIGHUP)
        wait_for(lambda: "running configuration stays" in c.output(), 3, what="reload refusal")
        self.assertIn("c.toml:4:1", c.output())
        self.assertEqual(names(), ["a"])
        # A good one: b joins, a leaves.
        self.write("c.toml", '[[node]]\nname = "b"\naddress = "127.0.0.1:4435"\n')
        c.p.send_signal(signal.SIGHUP)
        wait_for(lambda: names() == ["b"], 3, what="reloaded node table")


def client_has_route_table(path):
    try:
        steer_ok(path, "routes")
        return True
    except AssertionError:
        return False


class ControllerEndToEnd(LSTestCase):
    """Section 6's scenario, in one run (each step builds on the one before)."""

    DELAY_A, DELAY_B = 15, 40      # ms each way
    RAISED_A = 60                  # ms each way: a's RTT 120 > b's 80 * 1.1 + 5

    def route_client(self, game_server):
        """A client with no route of its own: the controller gives it every route."""
        local = free_port()
        sock = self.path("client-%d.sock" % local)
        argv = ["--game-server", "%s:%d" % game_server, "--local-port", str(local),
                "--socket", sock, "--keepalive-ms", "30", "--log-level", "debug"]
        try:
            c = Proc("lightspeed-client", argv, sock, self.tmp)
        except AssertionError as e:
            if "proxy" in str(e):
                self.skipTest("lightspeed-client still requires --proxy")
            raise
        c.local_port = local
        self.procs.append(c)
        return c

    def lsctl(self, c, *args):
        return subprocess.run([LSCTL, "--api", "http://127.0.0.1:%d" % c.port] + list(args),
                              capture_output=True, text=True, timeout=10)

    def test_nearest_switch_failover_manual_fail_static_adopt(self):
        echo = self.echo()
        pa = self.proxy()
        pb = self.proxy()
        na = self.netsim(pa.addr, up="delay=%dms" % self.DELAY_A, down="delay=%dms" % self.DELAY_A)
        nb = self.netsim(pb.addr, up="delay=%dms" % self.DELAY_B, down="delay=%dms" % self.DELAY_B)
        client = self.route_client(echo.addr)
        if not client_has_route_table(client.sock_path):
            self.skipTest("lightspeed-client has no route table (docs/protocol.md 3.2 routes)")
        state = self.path("state")
        args = ["--client-socket", client.sock_path, "--state-dir", state,
                "--node", "a=127.0.0.1:%d" % na.port, "--node", "b=127.0.0.1:%d" % nb.port]
        c = Controller(self, args)
        self.closers.append(lambda: c.stop())

        # 1. Both measured, RTTs within 20% of the emulated ones, the nearer active.
        def measured():
            r = c.route()
            ok = r["active"] == "a" and r["backup"] == "b" and all(
                x["samples"] >= 5 and x["rtt_p50_ms"] is not None for x in r["candidates"])
            return r if ok else None
        r = wait_for(measured, 10, what="both nodes measured, a active, b armed")
        for name, delay in (("a", self.DELAY_A), ("b", self.DELAY_B)):
            got = next(x for x in r["candidates"] if x["name"] == name)["rtt_p50_ms"]
            self.assertLess(abs(got - 2 * delay) / (2 * delay), 0.2, "%s: %.1f ms" % (name, got))
        self.assertEqual(r["why"]["strategy"], "nearest")
        self.assertEqual(steer_ok(client.sock_path, "routes")["active"], "a")
        # The direct path: the echo server on loopback answers ICMP echo (or, without
        # CAP_NET_RAW and outside ping_group_range, it is said to be unavailable).
        d = wait_for(lambda: (lambda d: d if d["state"] != "unknown" else None)(c.route()["direct"]),
                     5, what="the direct path measured or said unavailable")
        if d["state"] == "measured":
            a = next(x for x in c.route()["candidates"] if x["name"] == "a")
            self.assertLess(d["rtt_ms"], 5.0)
            self.assertLess(d["gain_ms"], -20.0)  # a's 30 ms path against going direct
            self.assertAlmostEqual(d["gain_pct"], 100.0 * d["gain_ms"] / d["rtt_ms"], delta=0.01)
        else:
            self.assertEqual((d["state"], d["rtt_ms"], d["gain_ms"]), ("unavailable", None, None))
            self.assertIn("direct path: no ICMP socket", c.output())

        traffic = Traffic(client.local_port)
        self.closers.append(traffic.stop)
        time.sleep(1.0)

        # 2. a's path slows down at run time: b wins by the margin, sustained for the
        # window (5 s): exactly one switch, not before the window, nothing lost or
        # duplicated.
        t_slow = time.monotonic()
        steer_ok(na.sock_path, "set", dir="both", spec="delay=%dms" % self.RAISED_A)
        wait_for(lambda: c.route()["active"] == "b", 15, what="switch to b")
        t_switch = time.monotonic()
        hold = c.route()["why"]["margin"]["window_s"]
        self.assertGreaterEqual(t_switch - t_slow, hold, "switched before the window")
        self.assertLess(t_switch - t_slow, hold + 5, "switched long after the window")
        time.sleep(1.5)
        hist = c.api.get("/failovers")["failovers"]
        self.assertEqual([(h["from"], h["to"], h["reason"]) for h in hist],
                         [("a", "b", "selection"), (None, "a", "initial")])
        seqs = traffic.sent_between(t_slow - 1, t_switch + 0.5)
        self.assertGreater(len(seqs), 64 * 5)
        self.assertEqual(traffic.missing(seqs), [], "lost in the switch")
        self.assertEqual(traffic.duplicates(), [], "duplicated")
        wait_for(lambda: c.route()["backup"] == "a", 3, what="a armed as backup")

        # 3. SIGKILL the active proxy: the dataplane fails over to the armed backup by
        # itself; the API and lsctl show it.
        t_kill = time.monotonic()
        pb.expect_exit = True
        pb.p.kill()
        wait_for(lambda: traffic.replies_after(t_kill + 0.3) > 20, 5,
                 what="traffic through a after the kill")
        wait_for(lambda: c.route()["active"] == "a", 3, what="active a in /routes")
        first = wait_for(lambda: (lambda h: h if h["gap_ms"] is not None else None)(
            c.api.get("/failovers")["failovers"][0]), 3, what="the failover's measured gap")
        self.assertEqual((first["from"], first["to"], first["reason"]), ("b", "a", "failover"))
        # The dataplane's gap: last game packet before to first after, through a path of
        # 120 ms round trip, after 3 missed 30 ms keepalives.
        self.assertGreater(first["gap_ms"], 60)
        self.assertLess(first["gap_ms"], 2000)
        # Health's transition, logged once, in the words of the issue.
        wait_for(lambda: "node b: healthy -> down" in c.output(), 3, what="b's down line")
        downs = re.findall(r"node b: \w+ -> down \(.*\)", c.output())
        self.assertEqual(len(downs), 1, downs)
        self.assertRegex(downs[0], r"^node b: healthy -> down \([3-9] probes lost\)$")
        if os.access(LSCTL, os.X_OK):
            out = self.lsctl(c, "routes")
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertIn("a", out.stdout)
            out = self.lsctl(c, "--json", "history")
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertEqual(json.loads(out.stdout)["failovers"][0]["reason"], "failover")

        # 4. The node comes back; a manual failover moves the route back to it.
        self.proxy(port=pb.port)
        wait_for(lambda: c.cand("b")["state"] == "healthy", 10, what="b healthy again")
        if os.access(LSCTL, os.X_OK):
            out = self.lsctl(c, "failover", "--to", "b")
            self.assertEqual(out.returncode, 0, out.stderr)
        else:
            c.api.post("/failover", {"to": "b"})
        self.assertEqual(c.route()["active"], "b")
        self.assertEqual(steer_ok(client.sock_path, "routes")["active"], "b")
        c.api.expect_error("POST", "/failover", 409, "conflict", {"to": "b"})

        # 5. Kill the controller: traffic keeps flowing (fail-static).
        c.stop(signal.SIGKILL)
        t_dead = time.monotonic()
        time.sleep(2.0)
        self.assertGreater(traffic.replies_after(t_dead + 0.2), 64, "traffic stopped with the controller")
        self.assertEqual(steer_ok(client.sock_path, "routes")["active"], "b")

        # 6. Restart it: it reports the route in use and changes nothing.
        c.start()
        wait_for(lambda: c.route()["active"] == "b" and c.route()["backup"] == "a", 5,
                 what="restarted controller reporting b, a armed")
        time.sleep(3.0)
        self.assertEqual(c.route()["active"], "b")
        self.assertEqual(steer_ok(client.sock_path, "routes")["active"], "b")
        hist = c.api.get("/failovers")["failovers"]
        self.assertEqual(hist[0]["reason"], "manual")   # kept across the restart, none added
        self.assertEqual(len(hist), 4)
        self.assertIn("adopted", c.output())
        traffic.stop()
        self.assertEqual(traffic.duplicates(), [], "duplicated")

    def test_lsctl_dead_api(self):
        if not os.access(LSCTL, os.X_OK):
            self.skipTest("no lsctl")
        port = free_port(socket.SOCK_STREAM)
        r = subprocess.run([LSCTL, "--api", "http://127.0.0.1:%d" % port, "routes"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 3)
        self.assertTrue(r.stderr.strip())


class ControllerDataplaneLink(LSTestCase):
    """dplink against the real client: the client restarted under the controller, a
    client that already holds a route of its own, and the controller's own switches
    never read back as someone else's."""

    def start(self, own_route=False):
        """Echo server, proxies a and b, a client (with --proxy to a: its own route
        "default"), the controller with nodes a and b, steering it."""
        echo, pa, pb = self.echo(), self.proxy(), self.proxy()
        client = self.client(pa.port if own_route else None, echo.addr, keepalive_ms=30)
        if not client_has_route_table(client.sock_path):
            self.skipTest("lightspeed-client has no route table (docs/protocol.md 3.2 routes)")
        c = Controller(self, ["--client-socket", client.sock_path, "--state-dir", self.path("state"),
                              "--dashboard", "off", "--node", "a=127.0.0.1:%d" % pa.port,
                              "--node", "b=127.0.0.1:%d" % pb.port])
        self.closers.append(lambda: c.stop())
        wait_for(lambda: (lambda r: r["active"] and r["backup"])(c.route()), 10,
                 what="an active route and an armed backup")
        return echo, client, c

    def test_client_restarted_under_the_controller(self):
        echo, client, c = self.start()
        # The client dies: the API says so, the controller keeps its state.
        client.expect_exit = True
        client.p.kill()
        client.p.wait()
        c.api.expect_error("POST", "/failover", 503, "not_ready")
        st, h = c.api.call("GET", "/health")
        self.assertEqual((st, h["dataplane"]), (503, False))
        # A new client on the same socket and port, with an empty table: the controller
        # reconnects by itself, gives it both routes, picks one and arms the other.
        again = Proc("lightspeed-client", ["--game-server", "%s:%d" % echo.addr, "--local-port",
                                           str(client.local_port), "--socket", client.sock_path,
                                           "--keepalive-ms", "30"], client.sock_path, self.tmp)
        self.procs.append(again)
        wait_for(lambda: (lambda r: r["active"] and r["backup"] and len(r["routes"]) == 2)(
            steer_ok(again.sock_path, "routes")), 10, what="the restarted client steered again")
        self.assertEqual(c.api.call("GET", "/health")[0], 200)
        game = self.game(client.local_port)
        want = [b"after-restart-%d" % i for i in range(20)]
        self.assertEqual(sorted(d for d, _ in game.exchange(want)), sorted(want))
        out = c.output()
        self.assertIn("lost (", out)
        self.assertEqual(out.count("dataplane: connected to"), 2, out)
        self.assertEqual(c.api.get("/stats")["controller"]["dataplane_connects"], 2)

    def test_adopts_a_route_the_client_already_has(self):
        echo, client, c = self.start(own_route=True)
        time.sleep(1.0)
        # The client's own route ("default", from --proxy) is adopted, in use as it was.
        r = c.route()
        self.assertEqual(r["active"], "default")
        self.assertEqual(c.api.get("/proxies/default")["source"], "dataplane")
        self.assertEqual(steer_ok(client.sock_path, "routes")["active"], "default")
        self.assertEqual(c.api.get("/failovers")["failovers"], [])
        self.assertIn("adopted from the dataplane's table", c.output())
        self.assertIn("active default", c.output())

    def test_own_switches_are_never_read_as_someone_elses(self):
        echo, client, c = self.start()
        wait_for(lambda: all(x["state"] == "healthy" for x in c.route()["candidates"]), 5,
                 what="both healthy")
        # Manual failovers back to back for a while: the `routes` polls of the link run
        # in between, and one asked just before a switch is answered just after it.
        made, end = 0, time.monotonic() + 2.5
        while time.monotonic() < end and made < 200:
            st, body = c.api.call("POST", "/failover", {})
            self.assertEqual(st, 200, body)
            made += 1
        time.sleep(0.5)
        hist = c.api.get("/failovers")["failovers"]
        self.assertEqual([h["reason"] for h in hist if h["reason"] != "manual"], ["initial"])
        self.assertEqual(len(hist), made + 1)
        self.assertNotIn("steered by another client", json.dumps(hist))
        self.assertEqual(steer_ok(client.sock_path, "routes")["active"], c.route()["active"])
