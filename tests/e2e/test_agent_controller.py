"""The controller and the nodes' agents, end to end with real processes: proxies with
require_auth and their agents, the client dataplane, the controller registering over
QUIC under pinned certificates; nodes found through a real DNS server (dnsmasq on
loopback, SRV and TXT records) and through peer exchange; failover between nodes on
keys their agents issued; a wrong fingerprint refused. Every REST answer is validated
against api/openapi.yaml."""
import os
import shutil
import signal
import socket
import subprocess
import time

from agenttest import proxy_sessions, start_agent
from lstest import LSTestCase, free_port, steer_ok, wait_for
from test_controller import Controller, Traffic, client_has_route_table

FAST = "[limits]\npps = 200000\nbps = 400000000\n"
LSCTL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


class Dnsmasq:
    """dnsmasq on 127.0.0.1:PORT serving only the records given (no upstream)."""

    def __init__(self, case, records):
        self.port = free_port()
        self.log_path = case.path("dnsmasq-%d.log" % self.port)
        argv = [shutil.which("dnsmasq") or "/usr/sbin/dnsmasq", "--keep-in-foreground",
                "--no-resolv", "--no-hosts", "--no-poll", "--conf-file=/dev/null",
                "--listen-address=127.0.0.1", "--bind-interfaces", "--port=%d" % self.port,
                "--local-ttl=2", "--pid-file=", "--user=root", "--log-facility=-",
                "--log-queries"] + records
        self.log = open(self.log_path, "wb")
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(self._ready, 5, what="dnsmasq")
        case.closers.append(self.stop)

    def _ready(self):
        if self.p.poll() is not None:
            raise AssertionError("dnsmasq exited:\n" + open(self.log_path).read())
        return "started" in open(self.log_path).read()

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            self.p.wait(5)
        self.log.close()


class AgentControllerTest(LSTestCase):

    def route_client(self, game_server):
        """A client with no route of its own: the controller gives it every route."""
        from lstest import Proc
        local = free_port()
        sock = self.path("client-%d.sock" % local)
        argv = ["--game-server", "%s:%d" % game_server, "--local-port", str(local),
                "--socket", sock, "--keepalive-ms", "30", "--log-level", "debug"]
        c = Proc("lightspeed-client", argv, sock, self.tmp)
        c.local_port = local
        self.procs.append(c)
        if not client_has_route_table(sock):
            self.skipTest("lightspeed-client has no route table (docs/protocol.md 3.2 routes)")
        return c

    def node(self, name, *args, config="", **kw):
        proxy = self.proxy(config=FAST, auth=True)
        agent = start_agent(self, proxy, *args, config=config, node_id=name, **kw)
        wait_for(lambda: agent.health()[0] == 200, what="agent %s up" % name)
        return proxy, agent

    def controller(self, client, *args):
        c = Controller(self, ["--client-socket", client.sock_path, "--state-dir",
                              self.path("ctrl-state")] + list(args))
        self.closers.append(c.stop)
        return c

    def lsctl(self, c, *args):
        return subprocess.run([os.path.join(os.path.abspath(os.environ.get(
            "LS_BUILD", "build")), "bin", "lsctl"), "--api", "http://127.0.0.1:%d" % c.port]
            + list(args), capture_output=True, text=True, timeout=10)

    def registered(self, c, name):
        st, n = c.api.call("GET", "/proxies/%s" % name)
        if st == 404:
            return None  # not found yet (discovery)
        a = n["agent"]
        return n if a and a["state"] == "registered" and n["auth"] else None

    def test_pinned_registration_carries_traffic_and_restarts_heal(self):
        echo = self.echo()
        proxy, agent = self.node("a")
        client = self.route_client(echo.addr)
        c = self.controller(client, "--node", "a=127.0.0.1:%d,control=%d,fingerprint=%s" % (
            proxy.port, agent.port, agent.fp))
        n = wait_for(lambda: self.registered(c, "a"), 10, what="a registered")
        self.assertEqual(n["source"], "command_line")
        self.assertIsNone(n["via"])
        self.assertEqual(n["agent"]["fingerprint"], agent.fp)
        self.assertEqual(n["agent"]["pinned"], agent.fp)
        self.assertEqual(n["agent"]["pinned_by"], "config")
        sid = n["agent"]["session_id"]
        self.assertEqual(proxy_sessions(proxy), {sid})
        # The key reached the client dataplane: its route to a is authenticated with the
        # agent's session.
        route = next(r for r in steer_ok(client.sock_path, "routes")["routes"] if r["name"] == "a")
        self.assertEqual(route["session_id"], sid)
        wait_for(lambda: c.route()["active"] == "a", 10, what="a active")
        traffic = Traffic(client.local_port)
        self.closers.append(traffic.stop)
        wait_for(lambda: traffic.replies_after(time.monotonic() - 0.5) > 10, 5,
                 what="game traffic through a")
        wait_for(lambda: c.api.get("/proxies/a")["agent"]["control_rtt_ms"] is not None, 5,
                 what="the control path's RTT")
        # SERVER_INFO brings the node's own leg to the game server (ICMP from the agent):
        # /routes shows both legs and the whole path.
        if agent.health()[1]["counters"]["icmp"]["mode"] != "off":
            cand = wait_for(lambda: (lambda x: x if x["server_leg_ms"] is not None else None)(
                c.cand("a")), 8, what="the node's leg to the game server in /routes")
            self.assertGreater(cand["server_leg_ms"], 0)
            self.assertLess(cand["server_leg_ms"], 50)
            self.assertIsNotNone(cand["rtt_ms"])
            self.assertGreaterEqual(cand["path_rtt_ms"], cand["server_leg_ms"])
            self.assertEqual(c.api.get("/proxies/a")["server_leg_ms"] is not None, True)

        # The agent restarts (SIGKILL): the controller comes back by itself (the new
        # agent resets the old connection) and resumes the same session; traffic goes on.
        agent.stop(signal.SIGKILL)
        agent.expect_exit = True
        t0 = time.monotonic()
        agent2 = start_agent(self, proxy, state_dir=agent.state_dir, port=agent.port,
                             node_id="a")
        wait_for(lambda: agent2.health()[1]["counters"]["resumes"] >= 1, 2.0,
                 what="the controller re-registering within 2 s of the agent's restart")
        self.assertLess(time.monotonic() - t0, 2.5)
        self.assertEqual(c.api.get("/proxies/a")["agent"]["session_id"], sid)
        t1 = time.monotonic()
        wait_for(lambda: traffic.replies_after(t1) > 10, 2, what="traffic after the agent restart")

        # The proxy restarts (SIGKILL): its agent gives the session back within 2 s.
        proxy.stop(signal.SIGKILL)
        proxy.expect_exit = True
        t2 = time.monotonic()
        proxy2 = self.proxy(config=FAST, auth=True, port=proxy.port)
        wait_for(lambda: sid in proxy_sessions(proxy2), 2.0, what="the session re-added")
        wait_for(lambda: traffic.replies_after(time.monotonic() - 0.2) > 3, 2.5,
                 what="traffic through the restarted proxy")
        self.assertLess(time.monotonic() - t2, 2.5 + 0.5)
        self.assertEqual(traffic.duplicates(), [])

        # The controller dies: traffic keeps flowing (the session stays at the agent);
        # restarted, it resumes the same session and leaves the client's route alone.
        c.stop(signal.SIGKILL)
        t3 = time.monotonic()
        time.sleep(0.5)
        self.assertGreater(traffic.replies_after(t3), 10, "traffic stopped with the controller")
        c.start()
        n = wait_for(lambda: self.registered(c, "a"), 5, what="a registered after a restart")
        self.assertEqual(n["agent"]["session_id"], sid, "the restarted controller took a new key")
        route = next(r for r in steer_ok(client.sock_path, "routes")["routes"] if r["name"] == "a")
        self.assertEqual(route["session_id"], sid)
        self.assertEqual(proxy_sessions(proxy2), {sid})

    def test_dns_and_peer_discovery_then_failover_on_agent_keys(self):
        echo = self.echo()
        proxy_b, agent_b = self.node("node-b")
        peers = ('[[peer]]\nname = "node-b"\nregion = "eu"\naddress = "127.0.0.1:%d"\n'
                 'control_port = %d\nfingerprint = "%s"\n' % (proxy_b.port, agent_b.port,
                                                              agent_b.fp))
        proxy_a, agent_a = self.node("node-a", config=peers)
        dns = Dnsmasq(self, [
            "--srv-host=_lightspeed._udp.ls.test,node-a.ls.test,%d,0,0" % proxy_a.port,
            "--host-record=node-a.ls.test,127.0.0.1",
            '--txt-record=node-a.ls.test,control=%d,fingerprint=%s,region=us' % (
                agent_a.port, agent_a.fp)])
        client = self.route_client(echo.addr)
        cfg = self.write("ctrl.toml", '[discovery]\ndns = "ls.test"\ndns_server = "127.0.0.1:%d"\n'
                         % dns.port)
        c = self.controller(client, "-c", cfg)

        def both():
            ps = {p["name"]: p for p in c.api.get("/proxies")["proxies"]}
            ok = all(n in ps and ps[n]["agent"] and ps[n]["agent"]["state"] == "registered"
                     for n in ("node-a", "node-b"))
            return ps if ok else None
        ps = wait_for(both, 15, what="node-a from DNS and node-b from peer exchange, registered")
        self.assertEqual(ps["node-a"]["source"], "dns")
        self.assertEqual(ps["node-b"]["source"], "peer")
        self.assertEqual(ps["node-b"]["via"], "node-a")
        self.assertEqual(ps["node-a"]["agent"]["pinned"], agent_a.fp)
        self.assertEqual(ps["node-b"]["agent"]["pinned"], agent_b.fp)
        self.assertEqual(ps["node-a"]["region"], "us")
        # Each node's route carries the session its own agent issued.
        sa, sb = ps["node-a"]["agent"]["session_id"], ps["node-b"]["agent"]["session_id"]
        self.assertEqual(proxy_sessions(proxy_a), {sa})
        self.assertEqual(proxy_sessions(proxy_b), {sb})
        # Asked again at the records' TTL (2 s here).
        wait_for(lambda: open(dns.log_path).read().count("query[SRV] _lightspeed._udp.ls.test") >= 2, 6,
                 what="the SRV query repeated at its TTL")

        def armed():
            r = c.route()
            return r if r["active"] and r["backup"] else None
        r = wait_for(armed, 15, what="an active route and an armed backup")
        active, backup = r["active"], r["backup"]
        traffic = Traffic(client.local_port)
        self.closers.append(traffic.stop)
        wait_for(lambda: traffic.replies_after(time.monotonic() - 0.5) > 10, 5,
                 what="traffic through %s" % active)
        # The node in use dies: the client fails over to the standby, whose key its
        # agent issued ahead of need.
        (proxy_a if active == "node-a" else proxy_b).stop(signal.SIGKILL)
        (proxy_a if active == "node-a" else proxy_b).expect_exit = True
        t0 = time.monotonic()
        wait_for(lambda: traffic.replies_after(t0 + 0.1) > 10, 5,
                 what="traffic through %s after %s died" % (backup, active))
        wait_for(lambda: c.route()["active"] == backup, 5, what="the switch reported")
        self.assertEqual(traffic.duplicates(), [])
        # Both legs are in /routes: client to node, and the node's own to the game server.
        cand = c.cand(backup)
        self.assertIsNotNone(cand["rtt_ms"])
        self.assertIn("server_leg_ms", cand)

    def test_a_node_found_in_dns_is_used_only_once_it_passes_its_pin(self):
        echo = self.echo()
        proxy_a, agent_a = self.node("node-a")
        proxy_b, agent_b = self.node("node-b")
        wrong = agent_b.fp[:-1] + ("0" if agent_b.fp[-1] != "0" else "1")
        dns = Dnsmasq(self, [
            "--srv-host=_lightspeed._udp.ls.test,node-a.ls.test,%d,0,0" % proxy_a.port,
            "--srv-host=_lightspeed._udp.ls.test,node-b.ls.test,%d,0,0" % proxy_b.port,
            "--host-record=node-a.ls.test,127.0.0.1", "--host-record=node-b.ls.test,127.0.0.1",
            "--txt-record=node-a.ls.test,control=%d,fingerprint=%s" % (agent_a.port, agent_a.fp),
            "--txt-record=node-b.ls.test,control=%d,fingerprint=%s" % (agent_b.port, wrong)])
        client = self.route_client(echo.addr)
        cfg = self.write("ctrl.toml", '[discovery]\ndns = "ls.test"\ndns_server = "127.0.0.1:%d"\n'
                         % dns.port)
        c = self.controller(client, "-c", cfg)
        wait_for(lambda: self.registered(c, "node-a"), 10, what="node-a registered")

        def refused():
            st, n = c.api.call("GET", "/proxies/node-b")
            return n if st == 200 and n["agent"] and n["agent"]["state"] == "pin_refused" else None
        n = wait_for(refused, 10, what="node-b's certificate refused")
        self.assertEqual(n["source"], "dns")
        self.assertEqual(n["state"], "down")
        self.assertEqual(proxy_sessions(proxy_b), set(), "a node that failed its pin got a session")
        wait_for(lambda: c.route()["active"] == "node-a", 10, what="node-a active")
        time.sleep(1.0)
        r = c.route()
        self.assertEqual(r["active"], "node-a")
        self.assertIsNone(r["backup"], "a node that failed its pin was armed as the backup")
        routes = steer_ok(client.sock_path, "routes")["routes"]
        self.assertNotIn("node-b", [x["name"] for x in routes if x["session_id"] is not None])

    def test_wrong_fingerprint_refused_and_traffic_stays_on_the_other_node(self):
        echo = self.echo()
        proxy_a, agent_a = self.node("a")
        proxy_b, agent_b = self.node("b")
        wrong = agent_b.fp[:-1] + ("0" if agent_b.fp[-1] != "0" else "1")
        client = self.route_client(echo.addr)
        c = self.controller(
            client, "--node", "a=127.0.0.1:%d,control=%d,fingerprint=%s" % (
                proxy_a.port, agent_a.port, agent_a.fp),
            "--node", "b=127.0.0.1:%d,control=%d,fingerprint=%s" % (
                proxy_b.port, agent_b.port, wrong))
        wait_for(lambda: self.registered(c, "a"), 10, what="a registered")

        def refused():
            n = c.api.get("/proxies/b")
            return n if n["agent"]["state"] == "pin_refused" else None
        n = wait_for(refused, 10, what="b refused")
        self.assertEqual(n["state"], "down")
        self.assertEqual(n["agent"]["fingerprint"], agent_b.fp)
        self.assertEqual(n["agent"]["pinned"], wrong)
        self.assertFalse(n["auth"])
        self.assertIn("CERTIFICATE CHANGED", c.output())
        self.assertEqual(proxy_sessions(proxy_b), set(), "a refused node got a session")
        wait_for(lambda: c.route()["active"] == "a", 10, what="a active")
        traffic = Traffic(client.local_port)
        self.closers.append(traffic.stop)
        time.sleep(1.5)
        self.assertGreater(traffic.replies_after(0), 50)
        r = c.route()
        self.assertEqual(r["active"], "a")
        self.assertIsNone(r["backup"], "a refused node was armed as the backup")
        self.assertEqual(echo.sources() and len({p for p in echo.sources()}), 1)
        # A fingerprint of the configuration is changed there, not trusted away.
        c.api.expect_error("POST", "/proxies/b/trust", 409, "conflict")

    def test_changed_certificate_after_first_use_and_lsctl_trust(self):
        echo = self.echo()
        proxy, agent = self.node("n")
        client = self.route_client(echo.addr)
        spec = "n=127.0.0.1:%d,control=%d" % (proxy.port, agent.port)
        c = self.controller(client, "--node", spec)
        n = wait_for(lambda: self.registered(c, "n"), 10, what="n registered on first use")
        self.assertEqual(n["agent"]["pinned_by"], "first_use")
        self.assertEqual(n["agent"]["pinned"], agent.fp)
        known = open(os.path.join(self.path("ctrl-state"), "known_nodes")).read()
        self.assertIn("n " + agent.fp, known)
        # The node is rebuilt: a new identity (another state directory).
        agent.stop()
        agent.expect_exit = True
        agent2 = start_agent(self, proxy, port=agent.port, node_id="n",
                             state_dir=self.path("new-state"))
        self.assertNotEqual(agent2.fp, agent.fp)

        def refused():
            a = c.api.get("/proxies/n")["agent"]
            return a if a["state"] == "pin_refused" else None
        a = wait_for(refused, 10, what="the changed certificate refused")
        self.assertEqual(a["offered"], agent2.fp)
        self.assertEqual(a["pinned"], agent.fp)
        self.assertEqual(c.api.get("/proxies/n")["state"], "down")
        r = self.lsctl(c, "proxy", "n")
        self.assertIn("lsctl trust n", r.stdout)
        r = self.lsctl(c, "trust", "n")
        self.assertEqual(r.returncode, 0, r.stderr)
        n = wait_for(lambda: self.registered(c, "n"), 10, what="n registered after trust")
        self.assertEqual(n["agent"]["pinned"], agent2.fp)
        self.assertIn("n " + agent2.fp,
                      open(os.path.join(self.path("ctrl-state"), "known_nodes")).read())
        r = self.lsctl(c, "trust", "n")
        self.assertEqual(r.returncode, 1, "nothing left to trust")


class AgentNodeSpecTest(LSTestCase):

    def run_ctl(self, *args):
        from lstest import BIN
        return subprocess.run([os.path.join(BIN, "lightspeed-controller")] + list(args),
                              capture_output=True, text=True, timeout=10)

    def test_node_spec_with_an_agent(self):
        fp = "sha256:" + "ab" * 32
        r = self.run_ctl("--node", "a=127.0.0.1:4434,control=4433,fingerprint=" + fp, "--check")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("control_port = 4433", r.stdout)
        self.assertIn('fingerprint = "%s"' % fp, r.stdout)
        r = self.run_ctl("--node", "a=127.0.0.1:4434,control=4433", "--check")
        self.assertIn("trusted on first use", r.stdout)
        key = self.write("k", "00" * 16)
        for spec, what in (("a=127.0.0.1:4434,control=0", "control"),
                           ("a=127.0.0.1:4434,fingerprint=" + fp, "control=PORT"),
                           ("a=127.0.0.1:4434,control=1,fingerprint=sha256:00", "fingerprint"),
                           ("a=127.0.0.1:4434,control=1,session=1,key-file=" + key, "issues")):
            r = self.run_ctl("--node", spec, "--check")
            self.assertEqual(r.returncode, 1, spec)
            self.assertIn(what, r.stderr, spec)
        cfg = self.write("c.toml", '[discovery]\ndns = "ls.test"\ndns_server = "127.0.0.1:5353"\n'
                         '[[node]]\nname = "x"\naddress = "127.0.0.1:4434"\ncontrol_port = 4433\n')
        r = self.run_ctl("-c", cfg, "--check")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('dns = "ls.test"', r.stdout)
        bad = self.write("b.toml", '[discovery]\ndns_server = "not an address"\n')
        r = self.run_ctl("-c", bad, "--check")
        self.assertEqual(r.returncode, 1)
        self.assertIn("b.toml:2:", r.stderr)
