"""Capture mode end to end, in network namespaces: a PC, a node and a game server joined
by veth pairs (capture_tools.Topology). A game process on the PC sends to the server's
address as it would without LightSpeed; the client in capture mode diverts it through
the proxy on the node. What the server receives is counted by a packet capture in the
server's namespace; what the game receives is checked byte for byte with its source."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from capture_tools import Topology, finish, have_netns, wait_ready
from lstest import BIN, LSTestCase, Proc, free_port, steer_ok, wait_for
from test_controller import Controller

KEY = "00112233445566778899aabbccddeeff"
KEY_B = "ffeeddccbbaa99887766554433221100"


@unittest.skipUnless(have_netns(), "needs root for network namespaces")
class CaptureTest(LSTestCase):

    def setUp(self):
        super().setUp()
        self.net = Topology("cap")
        self.closers.append(self.net.close)

    # ---- the pieces ----------------------------------------------------------------

    def proxy(self, port=4434, sid=1, key=KEY, servers=None):
        net = self.net
        cfg = self.path("proxy-%d.toml" % port)
        dests = servers or ["%s:7000-9000" % net.srv_ip]
        with open(cfg, "w") as f:
            f.write("[limits]\npps = 100000\nbps = 1000000000\n[[session]]\nid = %d\nkey = \"%s\"\n"
                    "destinations = [%s]\n" % (sid, key, ", ".join('"%s"' % d for d in dests)))
        sock = self.path("proxy-%d.sock" % port)
        p = Proc("lightspeed-proxy", ["-c", cfg, "--bind", "%s:%d" % (net.node_pc_ip, port),
                                      "--socket", sock, "--allow", "10.0.0.0/8", "--log-level",
                                      "debug"], sock, self.tmp, prefix=("ip", "netns", "exec", net.node))
        self.procs.append(p)
        return p

    def client(self, *args, env=None, proxy_port=4434, capture_flag=True):
        net = self.net
        sock = self.path("client.sock")
        argv = ["--capture"] if capture_flag else []
        argv += ["--proxy", "%s:%d" % (net.node_pc_ip, proxy_port), "--session-id",
                 "1", "--key", KEY, "--socket", sock, "--log-level", "debug"] + list(args)
        c = Proc("lightspeed-client", argv, sock, self.tmp, env=env, prefix=net.nsenter(net.pc))
        self.procs.append(c)
        wait_for(lambda: c.steer("status")["path"] == "up", 5, what="the client's path up")
        return c

    def sniff(self):
        s = self.net.helper(self.net.srv, "sniff", self.net.if_sv)
        wait_ready(s)
        return s

    def echo(self, *ports):
        e = self.net.helper(self.net.srv, "echo", *ports)
        wait_ready(e)
        return e

    def game(self, port, count, *extra, host=None, argv0=None):
        return self.net.helper(self.net.pc, "game", host or self.net.srv_ip, port, count, "--size",
                               "1-1400", "--pps", "300", *extra, argv0=argv0)

    def kernel_state(self):
        """(the client's nftables table present, its ip rule present) in the PC namespace."""
        tables = self.net.sh(self.net.pc, "nft", "list", "tables")
        rules = self.net.sh(self.net.pc, "ip", "rule", "show")
        return "lightspeed_client" in tables, "fwmark 0x4c53" in rules

    def assert_direct_again(self, sniffer_counts_before=None):
        net = self.net
        sn = self.sniff()
        g = finish(self.game(7777, 50), 20)
        counts = finish(sn)["udp"]
        self.assertEqual(g["exact"], 50, g)
        self.assertEqual(g["sources"], {"%s:7777" % net.srv_ip: 50})
        self.assertEqual(counts.get("%s>7777" % net.pc_ip), 50, counts)
        self.assertNotIn("%s>7777" % net.node_srv_ip, counts)

    def as_user(self, *caps):
        """The prefix that runs a program in the PC namespace as user 65534 holding caps
        (ambient) and nothing else (the bounding set)."""
        c = "-all" + "".join(",+" + x for x in caps)
        return self.net.nsenter(self.net.pc) + ("setpriv", "--reuid=65534", "--regid=65534",
                                                "--clear-groups", "--inh-caps=" + c,
                                                "--ambient-caps=" + c, "--bounding-set=" + c)

    def profile_env(self, tag, name, processes, extra=""):
        """A profile directory holding one game, tag.toml; the environment that reads it."""
        os.mkdir(self.path("profiles"))
        with open(self.path("profiles/%s.toml" % tag), "w") as f:
            f.write('[game]\nname = "%s"\nprocesses = ["%s"]\nports = ["7777"]\n%s'
                    % (name, processes, extra))
        return dict(os.environ, LIGHTSPEED_PROFILE_PATH=self.path("profiles"))

    def user_run_dir(self):
        run = tempfile.mkdtemp(prefix="ls-e2e-caprun-%d-" % os.getpid())
        os.chmod(run, 0o777)
        self.closers.append(lambda: shutil.rmtree(run, ignore_errors=True))
        return run

    # ---- the tests ------------------------------------------------------------------

    def test_capture_diverts_the_game_through_the_node_and_stops_cleanly(self):
        net = self.net
        echo = self.echo(7777, 5000)
        self.proxy()
        client = self.client("--ports", "7000-9000")
        self.assertEqual(self.kernel_state(), (True, True))
        sn = self.sniff()
        game = self.game(7777, 400)
        other = net.helper(net.pc, "game", net.srv_ip, 5000, 40, "--pps", "100")
        g = finish(game, 30)
        o = finish(other, 30)
        counts = finish(sn)["udp"]

        # Every reply came back, byte for byte, from the server's address and port.
        self.assertEqual(g["exact"], 400, g)
        self.assertEqual(g["distinct"], 400)
        self.assertEqual(g["sources"], {"%s:7777" % net.srv_ip: 400})
        # The server saw the game only from the node: none of its datagrams came direct.
        self.assertEqual(counts.get("%s>7777" % net.pc_ip, 0), 0, counts)
        self.assertEqual(counts.get("%s>7777" % net.node_srv_ip), 400, counts)
        # Other UDP on the machine went its own way, untouched.
        self.assertEqual(o["exact"], 40)
        self.assertEqual(counts.get("%s>5000" % net.pc_ip), 40, counts)

        st = client.steer("status")
        self.assertEqual(st["mode"], "capture")
        cap = st["capture"]
        self.assertEqual(cap["received"], 400)
        self.assertEqual(cap["diverted"], 400)
        self.assertEqual(cap["injected"], 400)
        self.assertEqual(cap["ports"], ["7000-9000"])
        self.assertEqual(cap["server"], "auto")
        self.assertEqual([s["server"] for s in cap["servers"]], ["%s:7777" % net.srv_ip])
        self.assertEqual(sum(client.stats()["drops"].values()), 0, client.stats()["drops"])
        sources = finish(echo)["sources"]
        self.assertEqual(set(k.split(":")[0] for k in sources), {net.node_srv_ip, net.pc_ip})

        # SIGTERM: the table and the rule go at once; the game goes direct again.
        self.procs.remove(client)
        self.assertEqual(client.stop(signal.SIGTERM), 0)
        self.assertEqual(self.kernel_state(), (False, False))
        self.echo(7777)
        self.assert_direct_again()

    def test_sigkill_leaves_nothing_behind_and_the_next_start_is_clean(self):
        self.echo(7777)
        self.proxy()
        client = self.client("--ports", "7777")
        self.assertEqual(self.kernel_state(), (True, True))
        self.procs.remove(client)
        client.p.send_signal(signal.SIGKILL)
        client.p.wait(5)
        client.log.close()
        # The table went with the client's netlink socket; its watchdog took the rule.
        self.assertFalse(self.kernel_state()[0])
        wait_for(lambda: self.kernel_state() == (False, False), 3, what="the ip rule removed")
        self.assert_direct_again()

        # A stale copy (as a kernel without owned tables would leave it) goes at the next
        # start, and --cleanup removes one by hand.
        self.net.sh(self.net.pc, "nft", "add", "table", "ip", "lightspeed_client")
        self.net.sh(self.net.pc, "ip", "rule", "add", "fwmark", "0x4c53", "lookup", "19539",
                    "pref", "100")
        r = subprocess.run(list(self.net.nsenter(self.net.pc)) +
                           [os.path.join(BIN, "lightspeed-client"), "--cleanup"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("no capture-mode diversion left", r.stdout)
        self.assertEqual(self.kernel_state(), (False, False))
        self.net.sh(self.net.pc, "nft", "add", "table", "ip", "lightspeed_client")
        # This time capture mode comes from the configuration file, not the flags.
        with open(self.path("client.toml"), "w") as f:
            f.write('[client]\ncapture = true\nports = ["7777"]\ngame_server = "auto"\n')
        client2 = self.client("-c", self.path("client.toml"), capture_flag=False)
        self.assertEqual(client2.steer("status")["capture"]["ports"], ["7777"])
        self.assertEqual(self.kernel_state(), (True, True))
        self.assertIn("flags owner", self.net.sh(self.net.pc, "nft", "list", "table", "ip",
                                                  "lightspeed_client"))
        # While one runs, --cleanup leaves it alone and says why.
        r = subprocess.run(list(self.net.nsenter(self.net.pc)) +
                           [os.path.join(BIN, "lightspeed-client"), "--cleanup"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("another lightspeed-client is capturing", r.stderr)

    def test_only_the_games_process_is_diverted_found_by_its_profile(self):
        net = self.net
        tag = "capgame%d" % os.getpid()
        env = self.profile_env(tag, "Captured", "%s.exe" % tag, '[tunnel]\nfec = "2:1"\n')
        self.echo(7777)
        self.proxy()
        # The game, as Wine runs it, in a cgroup of its own (a launcher's scope).
        game = self.game(7777, 200, "--wait", argv0="C:\\Games\\%s.exe" % tag)
        wait_ready(game)
        mnt = subprocess.run(["awk", '$9 == "cgroup2" { print $5; exit }', "/proc/self/mountinfo"],
                             stdout=subprocess.PIPE, text=True).stdout.strip()
        cg = os.path.join(mnt, "ls-e2e-capture-%d" % os.getpid())
        os.mkdir(cg)

        def gone():
            game.kill()
            game.wait()
            os.rmdir(cg)
        self.closers.append(gone)
        with open(os.path.join(cg, "cgroup.procs"), "w") as f:
            f.write(str(game.pid))
        client = self.client("--game", tag, env=env)
        cap = client.steer("status")["capture"]
        self.assertEqual(cap["game"], tag)
        self.assertEqual(cap["pid"], game.pid)
        self.assertIn("ls-e2e-capture-", cap["match"])
        self.assertEqual(client.steer("status")["fec"], "2:1")   # the profile's
        sn = self.sniff()
        other = self.game(7777, 60)                            # same port, another program
        game.stdin.write("go\n")
        game.stdin.flush()
        g = finish(game, 30)
        o = finish(other, 30)
        counts = finish(sn)["udp"]
        self.assertEqual(g["exact"], 200)
        self.assertEqual(o["exact"], 60)
        self.assertEqual(g["sources"], {"%s:7777" % net.srv_ip: 200})
        # The game's datagrams came through the node (data and FEC parity); the other
        # program's came direct, each of them.
        self.assertGreaterEqual(counts.get("%s>7777" % net.node_srv_ip, 0), 200, counts)
        self.assertEqual(counts.get("%s>7777" % net.pc_ip), 60, counts)
        self.assertEqual(client.steer("status")["capture"]["received"], 200)

    def test_the_games_user_decides_when_it_has_no_cgroup_of_its_own(self):
        """The game in the machine's root cgroup, as a user of its own: its sockets are
        matched by their owner's uid, and root's datagrams to the same port go direct."""
        net = self.net
        tag = "uidgame%d" % os.getpid()
        env = self.profile_env(tag, "By User", tag)
        self.echo(7777)
        self.proxy()
        tools = os.path.join(os.path.dirname(os.path.abspath(__file__)), "capture_tools.py")
        # The system's python: the user may not reach a root-only interpreter's directory.
        python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
        game = net.exec(net.pc, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        "bash", "-c", 'exec -a "$0" "$@"', tag, python, tools, "game",
                        net.srv_ip, "7777", "120", "--size", "1-1400", "--pps", "300", "--wait",
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        text=True)
        wait_ready(game)
        with open("/proc/%d/cgroup" % game.pid) as f:
            root_cgroup = "0::/\n" in f.read().splitlines(True)
        client = self.client("--game", tag, env=env)
        cap = client.steer("status")["capture"]
        self.assertEqual(cap["pid"], game.pid)
        if root_cgroup:
            self.assertEqual(cap["match"], "uid 65534")
        else:
            self.assertTrue(cap["match"].startswith("cgroup "), cap["match"])
        sn = self.sniff()
        other = self.game(7777, 50)                           # root, same port
        game.stdin.write("go\n")
        game.stdin.flush()
        g = finish(game, 30)
        o = finish(other, 30)
        counts = finish(sn)["udp"]
        self.assertEqual(g["exact"], 120, g)
        self.assertEqual(g["sources"], {"%s:7777" % net.srv_ip: 120})
        self.assertEqual(o["exact"], 50, o)
        self.assertEqual(counts.get("%s>7777" % net.node_srv_ip), 120, counts)
        if root_cgroup:
            self.assertEqual(counts.get("%s>7777" % net.pc_ip), 50, counts)
        self.assertEqual(client.steer("status")["capture"]["received"], 120)

    def test_a_named_game_server_is_the_only_one_diverted(self):
        """--game-server HOST:PORT: datagrams to that server go through the node; the same
        socket's datagrams to another server on the same port go direct."""
        net = self.net
        srv2 = "10.%d.2.3" % net.net
        net.sh(net.srv, "ip", "addr", "add", srv2 + "/24", "dev", net.if_sv)
        self.echo("%s:7777" % net.srv_ip, "%s:7777" % srv2)
        self.proxy()
        client = self.client("--ports", "7000-9000", "--game-server", "%s:7777" % net.srv_ip)
        cap = client.steer("status")["capture"]
        self.assertEqual(cap["server"], "%s:7777" % net.srv_ip)
        sn = self.sniff()
        g = finish(self.game(7777, 200, host="%s,%s" % (net.srv_ip, srv2)), 30)
        counts = finish(sn)["udp"]
        self.assertEqual(g["exact"], 200, g)
        self.assertEqual(g["sources"], {"%s:7777" % net.srv_ip: 100, "%s:7777" % srv2: 100})
        # The sniffer counts by source and port: the node's 100 are the named server's,
        # the PC's 100 the other's, which went direct.
        self.assertEqual(counts.get("%s>7777" % net.node_srv_ip), 100, counts)
        self.assertEqual(counts.get("%s>7777" % net.pc_ip), 100, counts)
        cap = client.steer("status")["capture"]
        self.assertEqual(cap["received"], 100)
        self.assertEqual([s["server"] for s in cap["servers"]], ["%s:7777" % net.srv_ip])

    def test_game_auto_follows_the_controllers_detection(self):
        net = self.net
        tag = "autogame%d" % os.getpid()
        env = self.profile_env(tag, "Auto Game", tag)
        self.echo(7777)
        self.proxy()
        client = self.client("--game", "auto", env=env)
        cap = client.steer("status")["capture"]
        self.assertIsNone(cap["game"])
        self.assertEqual(cap["ports"], [])
        conf = self.path("controller.toml")
        with open(conf, "w") as f:
            f.write("[games]\nscan_ms = 200\n")
        ctrl = Controller(self, ["-c", conf, "--client-socket", client.sock_path, "--state-dir",
                                 self.path("state")], env=env)
        self.closers.append(ctrl.stop)
        game = self.game(7777, 150, "--wait", argv0=tag)
        wait_ready(game)
        # The controller finds it, tells the client, and the client applies the profile.
        wait_for(lambda: client.steer("status")["capture"]["game"] == tag, 5,
                 what="set_game applied")
        cap = client.steer("status")["capture"]
        self.assertEqual(cap["pid"], game.pid)
        self.assertEqual(cap["ports"], ["7777"])
        self.assertEqual(ctrl.api.get("/status")["game"]["id"], tag)
        sn = self.sniff()
        game.stdin.write("go\n")
        game.stdin.flush()
        g = finish(game, 30)
        counts = finish(sn)["udp"]
        self.assertEqual(g["exact"], 150)
        self.assertEqual(counts.get("%s>7777" % net.pc_ip, 0), 0, counts)
        self.assertEqual(counts.get("%s>7777" % net.node_srv_ip), 150, counts)

    def test_two_servers_each_on_its_own_route(self):
        net = self.net
        srv2 = "10.%d.2.3" % net.net
        net.sh(net.srv, "ip", "addr", "add", srv2 + "/24", "dev", net.if_sv)
        self.echo("%s:7777" % net.srv_ip, "%s:7777" % srv2)
        pa = self.proxy(4434, 1, KEY, ["%s:7777" % net.srv_ip])
        pb = self.proxy(4435, 2, KEY_B, ["%s:7777" % srv2])
        client = self.client("--ports", "7777")
        sock = client.sock_path
        steer_ok(sock, "route_add", name="b", proxy="%s:4435" % net.node_pc_ip, session_id=2,
                 key=KEY_B)
        wait_for(lambda: next(r for r in steer_ok(sock, "routes")["routes"]
                              if r["name"] == "b")["state"] == "up", 5, what="route b up")
        steer_ok(sock, "capture_route", server=srv2, name="b")
        # One game socket talks to both servers in turn; another to the first only.
        both = self.game(7777, 300, host="%s,%s" % (net.srv_ip, srv2))
        one = self.game(7777, 100)
        g2, g1 = finish(both, 30), finish(one, 30)
        self.assertEqual(g2["exact"], 300)
        self.assertEqual(g2["sources"], {"%s:7777" % net.srv_ip: 150, "%s:7777" % srv2: 150})
        self.assertEqual(g1["exact"], 100)
        self.assertEqual(pa.stats()["forwarded_packets"], 250)
        self.assertEqual(pb.stats()["forwarded_packets"], 150)
        cap = client.steer("status")["capture"]
        routes = {s["server"]: s["route"] for s in cap["servers"]}
        self.assertEqual(routes, {"%s:7777" % net.srv_ip: None, "%s:7777" % srv2: "b"})

    def test_capture_runs_with_cap_net_admin_and_cap_net_raw_alone(self):
        """As the unit or setcap runs it: an unprivileged user holding the two
        capabilities and nothing else (setpriv sets them ambient and bounds the rest)."""
        net = self.net
        self.echo(7777)
        self.proxy()
        sock = os.path.join(self.user_run_dir(), "client.sock")
        as_user = self.as_user
        argv = ["--capture", "--ports", "7777", "--proxy", "%s:4434" % net.node_pc_ip,
                "--session-id", "1", "--key", KEY, "--socket", sock]
        # Either one missing: refused, saying which, and nothing left behind.
        for caps, needs in (((), "CAP_NET_ADMIN"), (("net_raw",), "CAP_NET_ADMIN"),
                            (("net_admin",), "CAP_NET_RAW")):
            r = subprocess.run(list(as_user(*caps)) + [os.path.join(BIN, "lightspeed-client")] +
                               argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               timeout=10)
            self.assertEqual(r.returncode, 1, (caps, r.stderr))
            self.assertIn("capture mode needs %s" % needs, r.stderr, caps)
            self.assertEqual(self.kernel_state(), (False, False))
        c = Proc("lightspeed-client", argv, sock, self.tmp,
                 prefix=as_user("net_admin", "net_raw"))
        self.procs.append(c)
        wait_for(lambda: c.steer("status")["path"] == "up", 5, what="the client's path up")
        with open("/proc/%d/status" % c.p.pid) as f:
            st = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
        self.assertEqual(st["Uid"].split()[0], "65534")
        # CAP_NET_ADMIN is bit 12, CAP_NET_RAW bit 13: these two and nothing else.
        self.assertEqual(int(st["CapEff"], 16), (1 << 12) | (1 << 13))
        self.assertEqual(int(st["CapBnd"], 16), (1 << 12) | (1 << 13))
        self.assertEqual(self.kernel_state(), (True, True))
        sn = self.sniff()
        g = finish(self.game(7777, 100), 30)
        counts = finish(sn)["udp"]
        self.assertEqual(g["exact"], 100, g)
        self.assertEqual(g["sources"], {"%s:7777" % net.srv_ip: 100})
        self.assertEqual(counts.get("%s>7777" % net.pc_ip, 0), 0, counts)
        self.assertEqual(counts.get("%s>7777" % net.node_srv_ip), 100, counts)
        # It takes everything down itself, and --cleanup runs with the same two.
        self.procs.remove(c)
        self.assertEqual(c.stop(signal.SIGTERM), 0)
        self.assertEqual(self.kernel_state(), (False, False))
        r = subprocess.run(list(as_user("net_admin", "net_raw")) +
                           [os.path.join(BIN, "lightspeed-client"), "--cleanup"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("no capture-mode diversion left", r.stdout)

    def test_redirect_mode_runs_with_no_capability_at_all(self):
        """Redirect mode (the game pointed at 127.0.0.1) as an unprivileged user holding no
        capability: it runs and carries the game, and the machine keeps no trace of it."""
        net = self.net
        self.echo(7777)
        self.proxy()
        sock = os.path.join(self.user_run_dir(), "client.sock")
        local = free_port()
        c = Proc("lightspeed-client", ["--proxy", "%s:4434" % net.node_pc_ip, "--session-id", "1",
                                       "--key", KEY, "--socket", sock, "--game-server",
                                       "%s:7777" % net.srv_ip, "--local-port", str(local)],
                 sock, self.tmp, prefix=self.as_user())
        self.procs.append(c)
        wait_for(lambda: c.steer("status")["path"] == "up", 5, what="the client's path up")
        with open("/proc/%d/status" % c.p.pid) as f:
            st = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
        self.assertEqual(st["Uid"].split()[0], "65534")
        self.assertEqual(int(st["CapEff"], 16), 0)
        self.assertEqual(int(st["CapBnd"], 16), 0)
        self.assertEqual(c.steer("status")["mode"], "redirect")
        self.assertEqual(self.kernel_state(), (False, False))
        sn = self.sniff()
        g = finish(self.game(local, 100, host="127.0.0.1"), 30)
        counts = finish(sn)["udp"]
        self.assertEqual(g["exact"], 100, g)
        self.assertEqual(g["sources"], {"127.0.0.1:%d" % local: 100})
        self.assertEqual(counts.get("%s>7777" % net.node_srv_ip), 100, counts)
        self.assertEqual(counts.get("%s>7777" % net.pc_ip, 0), 0, counts)

    def test_capture_refuses_what_it_cannot_do(self):
        client = os.path.join(BIN, "lightspeed-client")
        r = subprocess.run([client, "--capture", "--proxy", "127.0.0.1:4434"],
                           stderr=subprocess.PIPE, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("capture mode needs a game", r.stderr)
        r = subprocess.run([client, "--capture", "--game", "nosuchgame"], stderr=subprocess.PIPE,
                           text=True, env=dict(os.environ, LIGHTSPEED_PROFILE_PATH=self.tmp))
        self.assertEqual(r.returncode, 1)
        self.assertIn("no profile 'nosuchgame'", r.stderr)
        r = subprocess.run([client, "--game", "cs2", "--game-server", "1.2.3.4:5",
                            "--local-port", "7000"], stderr=subprocess.PIPE, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("goes with capture mode", r.stderr)
        r = subprocess.run([client, "--capture", "--ports", "9000-7000"], stderr=subprocess.PIPE,
                           text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--ports", r.stderr)


if __name__ == "__main__":
    unittest.main()
