"""The controller's side of capture mode: game detection from /proc against processes
started under a profile's names, and Cloudflare WARP detection. WARP cannot run in the
tests: a stand-in warp-cli (tests/e2e/standin/warp-cli) answers as warp-cli does, and
its connect/disconnect create and remove a TUN interface named CloudflareWARP with a
route, in a network namespace (this kernel has no dummy interfaces; WARP's own
interface is a TUN device too). Every answer is validated against api/openapi.yaml."""
import os
import signal
import socket
import subprocess
import time

from capture_tools import Topology, have_netns
from lstest import BIN, LSTestCase, Proc, free_port, wait_for
from test_controller import Controller
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
STANDIN = os.path.join(HERE, "standin", "warp-cli")


class NsController(Controller):
    """The controller inside a network namespace; its API (on that namespace's
    loopback) reached from here through two socat bridges over a Unix socket."""

    def __init__(self, case, net, ns, args, env):
        self.net, self.ns = net, ns
        self.inner = free_port(socket.SOCK_STREAM)
        self.bridge_path = case.path("api-bridge.sock")
        super().__init__(case, args, env=env)

    def start(self):
        self.log = open(self.log_path, "ab")
        args = [a if a != "127.0.0.1:%d" % self.port else "127.0.0.1:%d" % self.inner
                for a in self.args]
        self.p = self.net.exec(self.ns, os.path.join(BIN, "lightspeed-controller"), *args,
                               stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        self.net.exec(self.ns, "socat", "UNIX-LISTEN:%s,fork" % self.bridge_path,
                      "TCP:127.0.0.1:%d" % self.inner, stderr=subprocess.DEVNULL)
        self.bridge = subprocess.Popen(["socat", "TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork" % self.port,
                                        "UNIX-CONNECT:%s" % self.bridge_path],
                                       stderr=subprocess.DEVNULL)
        self.net.procs.append(self.bridge)

        def up():
            if self.p.poll() is not None:
                raise AssertionError("controller exited:\n" + self.output())
            try:
                return self.api.call("GET", "/health")[0] in (200, 503)
            except Exception:
                return False
        wait_for(up, 10, what="the controller's API through the bridge")


class GameDetectTest(LSTestCase):

    def write(self, name, text):
        with open(self.path(name), "w") as f:
            f.write(text)
        return self.path(name)

    def test_game_detected_from_a_process_started_under_a_profile_name(self):
        tag = "lsdetect%d" % os.getpid()
        os.mkdir(self.path("profiles"))
        self.write("profiles/%s.toml" % tag,
                   '[game]\nname = "Detect Me"\nprocesses = ["%s.exe"]\nports = ["7000-9000", "27015"]\n'
                   'anti_cheat = "Test Anti-Cheat"\n[traffic]\npps = 60\nsize_min = 50\n'
                   'size_max = 900\n[tunnel]\nfec = "4:2"\n' % tag)
        conf = self.write("controller.toml", '[games]\nscan_ms = 200\n[warp]\ncli = "/nonexistent/warp-cli"\n')
        env = dict(os.environ, LIGHTSPEED_PROFILE_PATH=self.path("profiles"))
        c = Controller(self, ["-c", conf, "--client-socket", self.path("nobody.sock"),
                              "--state-dir", self.path("state")], env=env)
        self.closers.append(c.stop)
        self.assertIsNone(c.api.get("/status")["game"])

        # A name that only starts like the game's is not the game.
        other = subprocess.Popen(["bash", "-c", 'exec -a "%s.exe.bak" sleep 30' % tag])
        self.closers.append(other.kill)
        time.sleep(0.6)
        self.assertIsNone(c.api.get("/status")["game"])

        # As Wine starts a Windows game: a Windows path in argv[0].
        game = subprocess.Popen(["bash", "-c", 'exec -a "C:\\\\Games\\\\%s.exe" sleep 30' % tag])
        self.closers.append(game.kill)
        g = wait_for(lambda: c.api.get("/status")["game"], 5, what="the game in /status")
        self.assertEqual(g["id"], tag)
        self.assertEqual(g["name"], "Detect Me")
        self.assertEqual(g["pid"], game.pid)
        self.assertEqual(g["uid"], os.getuid())
        self.assertEqual(g["ports"], ["7000-9000", "27015"])
        self.assertEqual(g["anti_cheat"], "Test Anti-Cheat")
        self.assertIsNone(g["relay"])
        self.assertEqual(g["profile"], {"file": self.path("profiles/%s.toml" % tag), "fec": "4:2",
                                        "keepalive_ms": None, "pps": 60, "size_min": 50,
                                        "size_max": 900, "notes": None})
        # lsctl status shows it, as the API gave it.
        r = subprocess.run([os.path.join(BIN, "lsctl"), "--api", "http://127.0.0.1:%d" % c.port,
                            "status"], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("game         Detect Me (%s, process %d, anti-cheat Test Anti-Cheat)"
                      % (tag, game.pid), r.stdout)

        game.kill()
        game.wait()
        wait_for(lambda: c.api.get("/status")["game"] is None, 5, what="the game gone from /status")
        out = c.output()
        self.assertIn("game: Detect Me is on (process %d" % game.pid, out)
        self.assertIn("game: none running", out)


class WarpTest(LSTestCase):

    def standin_env(self, state, **extra):
        with open(self.path("warp.state"), "w") as f:
            f.write(state + "\n")
        env = dict(os.environ, WARP_STANDIN_STATE=self.path("warp.state"),
                   WARP_STANDIN_LOG=self.path("warp.calls"))
        env.update(extra)
        return env

    def calls(self):
        try:
            with open(self.path("warp.calls")) as f:
                return f.read().split()
        except FileNotFoundError:
            return []

    def test_warp_status_from_a_stand_in_warp_cli_never_toggled_without_permission(self):
        env = self.standin_env("connected")
        conf = self.path("controller.toml")
        with open(conf, "w") as f:
            f.write('[warp]\ncli = "%s"\ncheck_ms = 1000\n' % STANDIN)
        c = Controller(self, ["-c", conf, "--client-socket", self.path("nobody.sock"),
                              "--state-dir", self.path("state"), "--node", "a=127.0.0.1:4434"],
                       env=env)
        self.closers.append(c.stop)
        w = wait_for(lambda: (lambda w: w if w["status"] == "connected" else None)(
            c.api.get("/status")["warp"]), 5, what="WARP connected in /status")
        self.assertTrue(w["installed"])
        self.assertEqual(w["cli"], STANDIN)
        self.assertEqual(w["detail"], "Status update: Connected")
        self.assertFalse(w["allow_toggle"])
        self.assertFalse(w["interface"]["present"])
        self.assertEqual(w["comparison"], {"state": "idle", "last": None})

        # The user disconnects WARP: the controller sees it at its next check.
        with open(self.path("warp.state"), "w") as f:
            f.write("disconnected\n")
        wait_for(lambda: c.api.get("/status")["warp"]["status"] == "disconnected", 5,
                 what="WARP disconnected in /status")
        # Asked to compare without a dataplane: refused, and nothing toggled.
        c.api.expect_error("POST", "/warp/compare", 409, "conflict")
        time.sleep(1.5)
        calls = self.calls()
        self.assertTrue(calls and set(calls) == {"status"}, calls)

    def test_warp_without_warp_cli(self):
        c = Controller(self, ["--client-socket", self.path("nobody.sock"), "--state-dir",
                              self.path("state")],
                       env=dict(os.environ, PATH="/nonexistent"))
        self.closers.append(c.stop)
        w = c.api.get("/status")["warp"]
        self.assertFalse(w["installed"])
        self.assertIsNone(w["cli"])
        self.assertIsNone(w["status"])
        st, body = c.api.call("POST", "/warp/compare")
        self.assertEqual(st, 409)
        self.assertIn("not installed", body["error"]["message"])

    def compare_setup(self, state, on_ms, off_ms, allow, measure_ms=1500, conf_extra="",
                      env_extra=None):
        """echo, proxy behind ls-netsim, a client with no route, a controller with node a
        through the netsim; the stand-in warp-cli's connect/disconnect set the netsim's
        delay, as WARP would change the path's RTT."""
        echo = self.echo()
        pa = self.proxy()
        na = self.netsim(pa.addr, up="delay=%dms" % (on_ms if state == "connected" else off_ms),
                         down="delay=%dms" % (on_ms if state == "connected" else off_ms))
        setd = ("echo '{\"cmd\":\"set\",\"dir\":\"both\",\"spec\":\"delay=%dms\"}' | "
                "socat - UNIX-CONNECT:" + na.sock_path + " >/dev/null")
        env = self.standin_env(state, WARP_STANDIN_ON=setd % on_ms, WARP_STANDIN_OFF=setd % off_ms,
                               **(env_extra or {}))
        sock = self.path("client.sock")
        client = Proc("lightspeed-client", ["--game-server", "%s:%d" % echo.addr, "--local-port",
                                            str(free_port()), "--socket", sock], sock, self.tmp)
        self.procs.append(client)
        conf = self.path("controller.toml")
        with open(conf, "w") as f:
            f.write('[warp]\ncli = "%s"\ncheck_ms = 1000\nmeasure_ms = %d\nallow_toggle = %s\n%s'
                    % (STANDIN, measure_ms, "true" if allow else "false", conf_extra))
        c = Controller(self, ["-c", conf, "--client-socket", sock, "--state-dir", self.path("state"),
                              "--node", "a=127.0.0.1:%d" % na.port], env=env)
        self.closers.append(c.stop)
        return c

    def last_comparison(self, c, timeout=20):
        return wait_for(lambda: c.api.get("/status")["warp"]["comparison"]["last"], timeout,
                        what="a finished comparison")

    def test_warp_compared_at_start_when_allowed_and_kept_when_faster_with_stand_in_warp_cli(self):
        c = self.compare_setup("disconnected", on_ms=3, off_ms=20, allow=True)
        last = self.last_comparison(c)
        self.assertEqual((last["before"], last["kept"]), ("disconnected", "connected"), last)
        a = last["nodes"][0]
        self.assertEqual(a["name"], "a")
        self.assertLess(a["with_ms"], 15)        # 2 x 3 ms emulated
        self.assertGreater(a["without_ms"], 30)  # 2 x 20 ms
        self.assertEqual(c.api.get("/status")["warp"]["status"], "connected")
        self.assertEqual([x for x in self.calls() if x != "status"], ["connect"])

    def test_warp_put_back_when_not_better_compare_asked_through_the_api_with_stand_in_warp_cli(self):
        c = self.compare_setup("disconnected", on_ms=25, off_ms=5, allow=False)
        # Not allowed to toggle: nothing happens by itself.
        wait_for(lambda: any(x["samples"] >= 5 for x in c.route()["candidates"]), 10,
                 what="node a measured")
        time.sleep(1.0)
        self.assertEqual([x for x in self.calls() if x != "status"], [])
        st, body = c.api.call("POST", "/warp/compare")
        self.assertEqual(st, 202, body)
        self.assertEqual(c.api.call("POST", "/warp/compare")[0], 409)  # one at a time
        last = self.last_comparison(c)
        self.assertEqual((last["before"], last["kept"]), ("disconnected", "disconnected"), last)
        self.assertIn("not better", last["reason"])
        self.assertEqual(c.api.get("/status")["warp"]["status"], "disconnected")
        self.assertEqual([x for x in self.calls() if x != "status"], ["connect", "disconnect"])

    def test_warp_never_toggled_while_a_game_is_on_with_stand_in_warp_cli(self):
        """A game on: a comparison is refused; a game starting during one stops it and
        WARP is put back as the user left it."""
        tag = "lswarpgame%d" % os.getpid()
        os.mkdir(self.path("profiles"))
        with open(self.path("profiles/%s.toml" % tag), "w") as f:
            f.write('[game]\nname = "Warp Game"\nprocesses = ["%s"]\nports = ["7777"]\n' % tag)
        c = self.compare_setup("disconnected", on_ms=3, off_ms=20, allow=False, measure_ms=5000,
                               conf_extra="[games]\nscan_ms = 200\n",
                               env_extra={"LIGHTSPEED_PROFILE_PATH": self.path("profiles")})
        wait_for(lambda: any(x["samples"] >= 5 for x in c.route()["candidates"]), 10,
                 what="node a measured")

        def play():
            g = subprocess.Popen(["bash", "-c", 'exec -a "%s" sleep 60' % tag])
            self.closers.append(g.kill)
            wait_for(lambda: c.api.get("/status")["game"], 5, what="the game in /status")
            return g
        game = play()
        st, body = c.api.call("POST", "/warp/compare")
        self.assertEqual(st, 409, body)
        self.assertIn("a game is being played", body["error"]["message"])
        self.assertEqual([x for x in self.calls() if x != "status"], [])
        game.kill()
        game.wait()
        wait_for(lambda: c.api.get("/status")["game"] is None, 5, what="the game gone")

        # A comparison under way, WARP connected for its second half: the game starts.
        self.assertEqual(c.api.call("POST", "/warp/compare")[0], 202)
        wait_for(lambda: "connect" in self.calls(), 15, what="WARP connected to compare")
        play()
        last = self.last_comparison(c)
        self.assertEqual((last["before"], last["kept"]), ("disconnected", "disconnected"), last)
        self.assertIn("a game started", last["reason"])
        wait_for(lambda: c.api.get("/status")["warp"]["status"] == "disconnected", 5,
                 what="WARP disconnected again")
        self.assertEqual([x for x in self.calls() if x != "status"], ["connect", "disconnect"])
        self.assertIn("warp: comparison stopped: a game started", c.output())

    @unittest.skipUnless(have_netns(), "needs root for network namespaces")
    def test_warp_interface_and_routes_with_stand_in_warp_cli_and_tun_in_a_network_namespace(self):
        net = Topology("warp")
        self.closers.append(net.close)
        covered = "10.%d.9.0/24" % net.net
        # What WARP changes when it connects: its interface, its address, its routes.
        on = ("ip tuntap add dev CloudflareWARP mode tun && ip link set CloudflareWARP up && "
              "ip addr add 172.16.0.2/32 dev CloudflareWARP && "
              "ip route add %s dev CloudflareWARP" % covered)
        off = "ip link del CloudflareWARP"
        env = self.standin_env("disconnected", WARP_STANDIN_ON=on, WARP_STANDIN_OFF=off)
        conf = self.path("controller.toml")
        with open(conf, "w") as f:
            f.write('[warp]\ncli = "%s"\ncheck_ms = 1000\n' % STANDIN)
        c = NsController(self, net, net.pc,
                         ["-c", conf, "--client-socket", self.path("nobody.sock"), "--state-dir",
                          self.path("state"), "--node", "a=10.%d.9.7:4434" % net.net,
                          "--node", "b=10.%d.1.1:4434" % net.net], env=env)
        self.closers.append(c.stop)
        w = wait_for(lambda: (lambda w: w if w["status"] == "disconnected" else None)(
            c.api.get("/status")["warp"]), 5, what="WARP disconnected")
        self.assertFalse(w["interface"]["present"])
        self.assertEqual(w["routes"], [])
        self.assertEqual(w["nodes_via_warp"], [])

        # The user connects WARP (not the controller: its calls are logged apart).
        user = dict(env)
        user.pop("WARP_STANDIN_LOG")
        subprocess.run(["ip", "netns", "exec", net.pc, STANDIN, "connect"], env=user, check=True,
                       stdout=subprocess.DEVNULL)
        w = wait_for(lambda: (lambda w: w if w["status"] == "connected" and w["routes"] else None)(
            c.api.get("/status")["warp"]), 5, what="WARP connected with its routes")
        self.assertEqual(w["interface"], {"name": "CloudflareWARP", "present": True, "up": True,
                                          "address": "172.16.0.2"})
        self.assertIn(covered, w["routes"])
        self.assertEqual(w["nodes_via_warp"], ["a"])

        subprocess.run(["ip", "netns", "exec", net.pc, STANDIN, "disconnect"], env=user,
                       check=True, stdout=subprocess.DEVNULL)
        w = wait_for(lambda: (lambda w: w if w["status"] == "disconnected" and
                              not w["interface"]["present"] else None)(c.api.get("/status")["warp"]),
                     5, what="WARP gone")
        self.assertEqual(w["nodes_via_warp"], [])
        self.assertEqual(set(self.calls()), {"status"})


if __name__ == "__main__":
    unittest.main()
