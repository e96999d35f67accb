"""lightspeed-agent with a real lightspeed-proxy (require_auth on) and the controller's
QUIC client (build/tests/ctl_client): sessions issued over QUIC under a pinned
certificate carry real game traffic through the proxy; DISCONNECT revokes at once;
agent and proxy restarts heal by themselves; /health and /metrics (promtool)."""
import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import time

from agenttest import CtlClient, hostile, proxy_sessions, start_agent
from lstest import LSTestCase, numbered_payloads, pack_header, wait_for

FAST = "[limits]\npps = 200000\nbps = 400000000\n"


class AgentTest(LSTestCase):

    def node(self, *args, config="", **kw):
        """Echo game server, auth-on proxy, agent."""
        echo = self.echo()
        proxy = self.proxy(config=FAST, auth=True)
        agent = start_agent(self, proxy, *args, config=config, **kw)
        wait_for(lambda: agent.health()[0] == 200, what="agent connected to the proxy")
        return echo, proxy, agent

    def keyed_client(self, proxy, echo, s, **kw):
        """A client dataplane on the session, once its first lifetime is up (the
        handshake is one round trip, docs/protocol.md 1.8)."""
        client = self.client(proxy.port, echo.addr, session=(s["session_id"], s["key"]), **kw)
        wait_for(lambda: client.steer("status")["path"] == "up", 3, what="the path")
        return client

    def registered_client(self, agent, echo, **kw):
        ctl = CtlClient(self, agent.port, fingerprint=agent.fp,
                        dests=["127.0.0.1:%d" % echo.addr[1]], **kw)
        return ctl, ctl.register()

    def test_registered_session_carries_traffic_and_nothing_else_does(self):
        echo, proxy, agent = self.node()
        ctl, s = self.registered_client(agent, echo)
        self.assertEqual(s["fingerprint"], agent.fp)
        self.assertEqual(s["node_id"], "node-a")
        self.assertEqual(s["region"], "lo")
        self.assertEqual(s["data_port"], proxy.port)
        self.assertEqual(len(s["key"]), 32)
        self.assertEqual(s["destinations"], ["127.0.0.1:%d" % echo.addr[1]])
        # The agent answered only once the proxy held it.
        self.assertIn(s["session_id"], proxy_sessions(proxy))
        client = self.keyed_client(proxy, echo, s)
        game = self.game(client.local_port)
        self.assert_exchange(game, numbered_payloads(200, seed=8))

        # Without the session (or with a guessed key) nothing gets through.
        before = echo.count()
        for session in (None, (s["session_id"], "00" * 16), (s["session_id"] ^ 1, s["key"])):
            other = self.client(proxy.port, echo.addr, session=session)
            g2 = self.game(other.local_port)
            for i in range(20):
                g2.send(b"nope %d" % i)
            self.assertEqual(g2.recv_all(0.5), [])
        self.assertEqual(echo.count(), before, "the echo server saw an unregistered client")
        drops = proxy.stats()["drops"]
        self.assertGreater(drops["unauthenticated"] + drops["bad_tag"] + drops["unknown_session"], 0)

    def test_disconnect_revokes_at_once(self):
        echo, proxy, agent = self.node()
        ctl, s = self.registered_client(agent, echo)
        client = self.keyed_client(proxy, echo, s)
        game = self.game(client.local_port)
        self.assert_exchange(game, numbered_payloads(20, seed=2))
        ctl.ok("disconnect")
        # When the controller has its answer the proxy has forgotten the key.
        self.assertNotIn(s["session_id"], proxy_sessions(proxy))
        before = echo.count()
        for i in range(20):
            game.send(b"after %d" % i)
        self.assertEqual(game.recv_all(0.5), [])
        self.assertEqual(echo.count(), before)
        st, h = agent.health()
        self.assertEqual(h["sessions"]["active"], 0)
        self.assertEqual(h["counters"]["disconnects"], 1)

    def test_agent_restart_resumes_and_traffic_never_stops(self):
        echo, proxy, agent = self.node()
        ctl, s = self.registered_client(agent, echo, ping_ms=100)
        client = self.keyed_client(proxy, echo, s)
        game = self.game(client.local_port)
        self.assert_exchange(game, numbered_payloads(20, seed=3))
        agent.stop(signal.SIGKILL)
        agent.expect_exit = True
        t0 = time.monotonic()
        # The proxy keeps forwarding while no agent runs (fail-static).
        self.assert_exchange(game, numbered_payloads(20, seed=4))
        agent2 = start_agent(self, proxy, state_dir=agent.state_dir, port=agent.port)
        self.assertEqual(agent2.fp, agent.fp, "the certificate is kept across restarts")
        r = ctl.ok("wait-registered 5000")
        regs = ctl.events_of("registered")
        self.assertTrue(regs[-1]["resumed"], regs[-1])
        self.assertEqual(regs[-1]["session_id"], s["session_id"])
        self.assertLess(regs[-1]["t"] - t0, 2.0 + 1.0, "re-registered within 2 s of the restart")
        self.assertIn(s["session_id"], proxy_sessions(proxy))
        self.assert_exchange(game, numbered_payloads(50, seed=5))
        h = agent2.health()[1]
        self.assertEqual(h["counters"]["adopted"], 1)
        self.assertEqual(h["counters"]["resumes"], 1)
        self.assertEqual(h["sessions"]["active"], 1)

    def test_an_agent_killed_right_after_a_registration_loses_nothing(self):
        echo, proxy, agent = self.node()
        ctl, s = self.registered_client(agent, echo, ping_ms=100)
        # At once, no pause for a later write: the session the proxy was given is on
        # disk before the proxy had it.
        agent.stop(signal.SIGKILL)
        agent.expect_exit = True
        self.assertIn(s["session_id"], proxy_sessions(proxy))
        agent2 = start_agent(self, proxy, state_dir=agent.state_dir, port=agent.port)
        ctl.ok("wait-registered 5000")
        regs = ctl.events_of("registered")
        self.assertTrue(regs[-1]["resumed"], regs[-1])
        self.assertEqual(regs[-1]["session_id"], s["session_id"])
        self.assertEqual(proxy_sessions(proxy), {s["session_id"]})
        h = agent2.health()[1]
        self.assertEqual(h["counters"]["adopted"], 1)
        self.assertEqual(h["counters"]["resumes"], 1)
        self.assertEqual(h["counters"]["registrations"], 0, "a new key instead of a resume")
        # And the key still carries traffic.
        client = self.keyed_client(proxy, echo, s)
        self.assert_exchange(self.game(client.local_port), numbered_payloads(20, seed=11))

    def test_proxy_restart_is_healed_by_the_agent(self):
        echo, proxy, agent = self.node()
        ctl, s = self.registered_client(agent, echo)
        client = self.keyed_client(proxy, echo, s, keepalive_ms=50)
        game = self.game(client.local_port)
        self.assert_exchange(game, numbered_payloads(20, seed=6))
        proxy.stop(signal.SIGKILL)
        proxy.expect_exit = True
        t0 = time.monotonic()
        proxy2 = self.proxy(config=FAST, auth=True, port=proxy.port)
        # Same socket path (it is named after the port): the agent finds it again.
        self.assertEqual(proxy2.sock_path, proxy.sock_path)
        wait_for(lambda: s["session_id"] in proxy_sessions(proxy2), timeout=2.0,
                 what="the agent to re-add its session within 2 s")
        healed = time.monotonic() - t0
        self.assertLess(healed, 2.0)
        # The session is back: the client's next lifetime begins there and game
        # traffic flows both ways again.

        def flows():
            game.send(b"ping-after-restart")
            return any(d == b"ping-after-restart" for d, _ in game.recv_all(0.2))
        wait_for(flows, timeout=2.0, what="traffic through the restarted proxy")
        self.assertLess(time.monotonic() - t0, 2.0 + 0.5)
        self.assertGreaterEqual(agent.health()[1]["counters"]["readded"], 1)

    def test_capacity_answers_disconnect_3(self):
        echo, proxy, agent = self.node(config="capacity = 1\n")
        ctl, s = self.registered_client(agent, echo)
        second = CtlClient(self, agent.port, fingerprint=agent.fp,
                           dests=["127.0.0.1:%d" % echo.addr[1]])
        r = second.cmd("register 1500")
        self.assertFalse(r["ok"])
        lost = second.events_of("lost")
        self.assertTrue(lost and lost[0]["state"] == "full", lost)
        self.assertIn("DISCONNECT 3", lost[0]["why"])
        self.assertEqual(agent.health()[1]["counters"]["refused_full"], 1)
        self.assertEqual(proxy_sessions(proxy), {s["session_id"]})

    def test_wrong_fingerprint_is_refused_and_stays_refused(self):
        echo, proxy, agent = self.node()
        bad = agent.fp[:-1] + ("0" if agent.fp[-1] != "0" else "1")
        ctl = CtlClient(self, agent.port, fingerprint=bad, dests=["127.0.0.1:%d" % echo.addr[1]])
        r = ctl.cmd("register 3000")
        self.assertFalse(r["ok"])
        self.assertEqual(r["state"], "pin_refused")
        self.assertIn("CERTIFICATE CHANGED", ctl.stderr())
        self.assertEqual(proxy_sessions(proxy), set())
        h = agent.health()[1]
        self.assertEqual(h["counters"]["registrations"], 0)
        self.assertEqual(h["counters"]["quic"]["accepted"], 0)

    def test_destinations_outside_the_policy_are_refused(self):
        echo, proxy, agent = self.node()
        ctl = CtlClient(self, agent.port, fingerprint=agent.fp, dests=["198.51.100.7:27015"])
        r = ctl.cmd("register 1500")
        self.assertFalse(r["ok"])
        lost = ctl.events_of("lost")
        self.assertIn("not among the destinations", lost[0]["why"])
        self.assertEqual(proxy_sessions(proxy), set())

    def test_server_info_reports_the_nodes_leg(self):
        echo, proxy, agent = self.node(config="icmp_interval_ms = 100\n")
        ctl, s = self.registered_client(agent, echo)
        h = agent.health()[1]
        if h["counters"]["icmp"]["mode"] == "off":
            self.skipTest("no ICMP socket here (needs CAP_NET_RAW or ping_group_range)")

        def leg():
            info = ctl.ok("info")
            return info["legs"] and info["legs"][0]["rtt_us"] is not None and info
        info = wait_for(leg, timeout=5, what="a measured leg")
        self.assertEqual(info["legs"][0]["ip"], "127.0.0.1")
        self.assertLess(info["legs"][0]["rtt_us"], 100000)
        self.assertEqual(info["active"], 1)
        self.assertEqual(info["capacity"], 1000)

    def test_peers_are_told(self):
        fp = "sha256:" + "ab" * 32
        peers = ('[[peer]]\nname = "node-b"\nregion = "eu"\naddress = "127.0.0.2:4434"\n'
                 'control_port = 5433\nfingerprint = "%s"\n'
                 '[[peer]]\nname = "node-c"\naddress = "127.0.0.3:4434"\n' % fp)
        echo, proxy, agent = self.node(config=peers)
        ctl = CtlClient(self, agent.port, "--peers", fingerprint=agent.fp,
                        dests=["127.0.0.1:%d" % echo.addr[1]])
        ctl.register()
        p = ctl.ok("peers")["peers"]
        self.assertEqual(p, [
            {"name": "node-b", "region": "eu", "ip": "127.0.0.2", "data_port": 4434,
             "control_port": 5433, "fingerprint": fp},
            {"name": "node-c", "region": "", "ip": "127.0.0.3", "data_port": 4434,
             "control_port": 4433, "fingerprint": None}])

    def test_health_and_metrics(self):
        echo, proxy, agent = self.node()
        ctl, s = self.registered_client(agent, echo)
        client = self.keyed_client(proxy, echo, s)
        game = self.game(client.local_port)
        self.assert_exchange(game, numbered_payloads(30, seed=9))
        st, h = agent.health()
        self.assertEqual(st, 200)
        for k in ("status", "version", "node_id", "region", "uptime_s", "sessions", "counters",
                  "fingerprint"):
            self.assertIn(k, h)
        self.assertEqual(h["status"], "ok")
        self.assertEqual(h["fingerprint"], agent.fp)
        self.assertEqual(h["sessions"]["active"], 1)
        self.assertEqual(h["counters"]["quic"]["connections"], 1)
        # The proxy's counters arrive every second.
        wait_for(lambda: (agent.health()[1]["counters"]["proxy"] or {}).get(
            "forwarded_packets", 0) >= 30, what="the proxy's counters in /health")
        # Drops by reason come from the proxy: unauthenticated datagrams straight at it.
        u = self.udp()
        for i in range(5):
            u.sendto(pack_header(seq=i) + b"no session", proxy.addr)

        def metric(text, line_start):
            for line in text.splitlines():
                if line.startswith(line_start + " "):
                    return float(line.split()[-1])
            return None

        def dropped():
            t = agent.http("/metrics")[1].decode()
            v = metric(t, 'lightspeed_drops_total{reason="unauthenticated"}')
            return t if v is not None and v >= 5 else None
        wait_for(dropped, 3, what="the proxy's drops by reason in /metrics")
        self.assertGreaterEqual(proxy.stats()["drops"]["unauthenticated"], 5)
        if h["counters"]["icmp"]["mode"] != "off":
            # The node's leg to the session's game server, as a histogram.
            wait_for(lambda: (metric(agent.http("/metrics")[1].decode(),
                                     "lightspeed_relay_latency_seconds_count") or 0) >= 1, 4,
                     what="a leg measured into the latency histogram")
        st, body, ctype = agent.http("/metrics")
        self.assertEqual(st, 200)
        self.assertTrue(ctype.startswith("text/plain"), ctype)
        text = body.decode()
        for name in ("lightspeed_relayed_packets_total", "lightspeed_relayed_bytes_total",
                     "lightspeed_drops_total", "lightspeed_fec_recoveries_total",
                     "lightspeed_sessions", "lightspeed_relay_latency_seconds_bucket",
                     "lightspeed_quic_connections"):
            self.assertIn(name, text)
        self.assertIn('lightspeed_relayed_packets_total{direction="up"} 30', text)
        self.assertIn("lightspeed_sessions 1\n", text)
        promtool = shutil.which("promtool")
        if not promtool:
            self.fail("promtool is missing (Debian package prometheus; make deps installs it)")
        r = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True,
                           timeout=20)
        self.assertEqual(r.returncode, 0, r.stdout.decode() + r.stderr.decode())
        # Unknown routes and methods fall out of the route table.
        self.assertEqual(agent.http("/nope")[0], 404)

    def test_state_is_private_and_check_prints_the_configuration(self):
        echo, proxy, agent = self.node()
        for f in ("agent.crt", "agent.key", "quic.secret"):
            mode = stat.S_IMODE(os.stat(os.path.join(agent.state_dir, f)).st_mode)
            self.assertEqual(mode, 0o600, f)
        # The fingerprint printed and served is the SHA-256 of the certificate's DER, as
        # anyone can compute it from the file; the key is ECDSA P-256 (or Ed25519).
        with open(os.path.join(agent.state_dir, "agent.crt")) as f:
            der = ssl.PEM_cert_to_DER_cert(f.read())
        self.assertEqual(agent.fp, "sha256:" + hashlib.sha256(der).hexdigest())
        self.assertEqual(agent.health()[1]["fingerprint"], agent.fp)
        ec = b"\x06\x07\x2a\x86\x48\xce\x3d\x02\x01" + b"\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07"
        ed25519 = b"\x30\x05\x06\x03\x2b\x65\x70"
        self.assertTrue(ec in der or ed25519 in der, "neither ECDSA P-256 nor Ed25519")
        r = self.run_bin("lightspeed-agent", "-c", agent.config_path, "--check")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('destinations = ["127.0.0.1"]', r.stdout)
        bad = self.write("bad.toml", "[agent]\nidle_timeout = 1\n")
        r = self.run_bin("lightspeed-agent", "-c", bad, "--check")
        self.assertEqual(r.returncode, 1)
        self.assertIn("bad.toml:2:", r.stderr)
        r = self.run_bin("lightspeed-agent", "--bogus")
        self.assertEqual(r.returncode, 2)
        r = self.run_bin("lightspeed-agent", "--help")
        self.assertEqual(r.returncode, 0)
        for opt in ("--config", "--listen", "--http", "--proxy-socket", "--state-dir",
                    "--node-id", "--region", "--check"):
            self.assertIn(opt, r.stdout)
        # The example make install puts in /etc/lightspeed is valid as shipped.
        shipped = os.path.join(os.path.dirname(__file__), "..", "..", "deploy", "config",
                               "agent.toml")
        r = self.run_bin("lightspeed-agent", "-c", shipped, "--check")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('listen = "0.0.0.0:4433"', r.stdout)
        self.assertIn('http = "127.0.0.1:8080"', r.stdout)

    def test_systemd_readiness_watchdog_and_stop(self):
        """Type=notify: READY=1 once the ports answer, WATCHDOG=1 from the loop at half
        WatchdogSec, STOPPING=1 on SIGTERM (the protocol of sd_notify(3), on a socket
        of the test's own)."""
        path = self.path("notify-%d.sock" % os.getpid())
        ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        ns.bind(path)
        self.closers.append(ns.close)
        ns.settimeout(5)
        env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="200000")
        echo = self.echo()
        proxy = self.proxy(config=FAST, auth=True)
        agent = start_agent(self, proxy, env=env)
        first = ns.recv(4096).decode()
        self.assertIn("READY=1", first.split("\n"))
        self.assertIn("STATUS=node node-a, certificate %s" % agent.fp, first)
        # Ready means ready: HTTP and QUIC answer at once.
        self.assertEqual(agent.health()[0], 200)
        ctl, s = self.registered_client(agent, echo)
        self.assertIn(s["session_id"], proxy_sessions(proxy))
        t0, beats = time.monotonic(), 0
        while time.monotonic() - t0 < 1.5:
            if ns.recv(4096) == b"WATCHDOG=1":
                beats += 1
        self.assertGreaterEqual(beats, 4, "WATCHDOG=1 every 100 ms for WATCHDOG_USEC=200000")
        agent.expect_exit = True
        agent.p.send_signal(signal.SIGTERM)
        got = b""
        while b"STOPPING=1" not in got:
            got = ns.recv(4096)
        self.assertEqual(agent.p.wait(5), 0)
        # The unit that uses it is one systemd accepts.
        unit = self.path("lightspeed-agent.service")
        with open(os.path.join(os.path.dirname(__file__), "..", "..", "deploy", "systemd",
                               "lightspeed-agent.service.in")) as f:
            text = f.read()
        self.assertIn("Type=notify\n", text)
        self.assertIn("WatchdogSec=", text)
        with open(unit, "w") as f:
            f.write(text.replace("@BINDIR@", os.path.dirname(agent.p.args[0])).replace("@DOCDIR@", "/usr/local/share/doc/lightspeed"))
        tool = shutil.which("systemd-analyze")
        if not tool:
            self.fail("systemd-analyze is missing (Debian package systemd; make deps)")
        r = subprocess.run([tool, "verify", unit], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn("lightspeed-agent.service", r.stderr)

    def test_garbage_and_a_flood_leave_the_agent_and_its_sessions_up(self):
        echo, proxy, agent = self.node()
        ctl, s = self.registered_client(agent, echo, ping_ms=50)
        client = self.keyed_client(proxy, echo, s)
        game = self.game(client.local_port)
        u = self.udp()
        rnd = __import__("random").Random(7)
        # Random datagrams, Initial-looking ones (long header, version 1), short headers.
        for i in range(3000):
            n = rnd.choice([0, 1, 5, 21, 40, 1200, 1400, 1500])
            head = rnd.choice([b"", b"\xc0\x00\x00\x00\x01", b"\x40"])
            u.sendto((head + bytes(rnd.getrandbits(8) for _ in range(n)))[:1500],
                     ("127.0.0.1", agent.port))
        # The registered session still works, over QUIC and over the tunnel.
        self.assertTrue(ctl.ok("ping 5")["rtt_us"])
        self.assert_exchange(game, numbered_payloads(50, seed=10))
        h = agent.health()[1]
        self.assertEqual(h["counters"]["quic"]["connections"], 1)
        self.assertGreater(h["counters"]["quic"]["dropped"], 0)
        self.assertTrue(agent.alive())

    def test_a_closed_connection_ends_its_session_and_a_silent_one_expires(self):
        echo, proxy, agent = self.node(config="idle_timeout = 2\nresume_grace = 1\n")
        dest = "127.0.0.1:%d" % echo.addr[1]
        # CONNECTION_CLOSE with code 0: the controller is done; the key dies with it.
        r = hostile(agent, "sessions", "--count", "1", "--leave", "close", "--dest", dest)[0]
        self.assertEqual(r["acks"], 1)
        wait_for(lambda: proxy_sessions(proxy) == set(), 2, what="the session revoked on close")
        self.assertEqual(agent.health()[1]["counters"]["closed"], 1)
        # Gone without a word: kept through the idle timeout and the resume grace (a
        # restarting controller would resume it), then revoked.
        t0 = time.monotonic()
        r = hostile(agent, "sessions", "--count", "1", "--leave", "vanish", "--dest", dest)[0]
        self.assertEqual(r["acks"], 1)
        time.sleep(1.5)
        self.assertEqual(len(proxy_sessions(proxy)), 1, "revoked before idle timeout + grace")
        wait_for(lambda: proxy_sessions(proxy) == set(), 6, what="the silent session revoked")
        self.assertGreaterEqual(time.monotonic() - t0, 2.5)
        h = agent.health()[1]
        self.assertEqual(h["counters"]["expired"], 1)
        self.assertEqual(h["sessions"]["active"], 0)
