"""lightspeed-client --observe in network namespaces: the game's servers, rates and sizes
recorded with libpcap while nothing is diverted, the game's sockets told apart from
another program's on the same ports through the profile's process name."""
import json
import os
import select
import subprocess
import tempfile
import unittest

from capture_tools import Topology, finish, have_netns, wait_ready
from lstest import BIN

PROFILE = """[game]
name = "Observed Game"
processes = ["ls-observed-game"]
ports = ["7000-9000"]
"""


@unittest.skipUnless(have_netns(), "needs root for network namespaces")
class ObserveTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="ls-observe-")
        with open(os.path.join(self.tmp.name, "observedgame.toml"), "w") as f:
            f.write(PROFILE)
        self.net = Topology("obs")

    def tearDown(self):
        self.net.close()
        self.tmp.cleanup()

    def test_observe_records_servers_rates_sizes_and_diverts_nothing(self):
        net = self.net
        echo = net.helper(net.srv, "echo", 7777, 7800)
        wait_ready(echo)
        env = dict(os.environ, LIGHTSPEED_PROFILE_PATH=self.tmp.name)
        # The game is not running yet: observe finds it when it starts.
        obs = net.exec(net.pc, os.path.join(BIN, "lightspeed-client"), "--observe", "--game",
                       "observedgame", "--seconds", "6", "--json", env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # It says on stderr when it is capturing (stdout is the report alone).
        r, _, _ = select.select([obs.stderr], [], [], 10)
        started = obs.stderr.readline() if r else ""
        self.assertIn("observing UDP ports 7000-9000 on ", started)
        self.assertIn("game observedgame (not running", started)
        # The game (named as its profile says) and another program, on the same ports.
        game = net.helper(net.pc, "game", net.srv_ip, 7777, 150, "--size", "100-300",
                          "--pps", "50", argv0="ls-observed-game")
        other = net.helper(net.pc, "game", net.srv_ip, 7800, 40, "--size", "500-500",
                           "--pps", "20")
        g = finish(game, 20)
        o = finish(other, 20)
        out, err = obs.communicate(timeout=20)
        self.assertEqual(obs.returncode, 0, err)
        report = json.loads(out.strip().splitlines()[-1])
        servers = finish(echo)["sources"]

        # Nothing was diverted: every datagram reached the server from the PC itself.
        self.assertEqual(servers.get("%s:%d" % (net.pc_ip, g["local_port"])), 150)
        self.assertEqual(servers.get("%s:%d" % (net.pc_ip, o["local_port"])), 40)
        self.assertEqual(g["exact"], 150)

        by = {(s["server"], s["local_port"]): s for s in report["servers"]}
        gs = by[("%s:7777" % net.srv_ip, g["local_port"])]
        os_ = by[("%s:7800" % net.srv_ip, o["local_port"])]
        self.assertIs(gs["game"], True)
        self.assertIs(os_["game"], False)
        self.assertIsNotNone(report["pid"])
        # Every datagram seen once each way, with its exact sizes.
        self.assertEqual(gs["up"]["packets"], 150)
        self.assertEqual(gs["down"]["packets"], 150)
        self.assertEqual((gs["up"]["size_min"], gs["up"]["size_max"]), (100, 300))
        self.assertEqual(gs["down"]["size_max"], 300)
        self.assertEqual(os_["up"]["packets"], 40)
        self.assertEqual((os_["up"]["size_min"], os_["up"]["size_max"]), (500, 500))
        # 150 datagrams in about 3 s: roughly 50 per second (a loaded machine sends late).
        self.assertTrue(25 <= gs["up"]["pps"] <= 60, gs["up"]["pps"])
        # The suggestion comes from the game's flows only.
        self.assertEqual(report["suggested"]["ports"], ["7777"])
        self.assertEqual(report["suggested"]["size_max"], 300)

    def test_observe_refuses_what_it_cannot_do(self):
        client = os.path.join(BIN, "lightspeed-client")
        r = subprocess.run([client, "--observe"], stderr=subprocess.PIPE, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("needs --game NAME or --ports LIST", r.stderr)
        r = subprocess.run([client, "--observe", "--game", "nosuchgame"], stderr=subprocess.PIPE,
                           text=True, env=dict(os.environ, LIGHTSPEED_PROFILE_PATH=self.tmp.name))
        self.assertEqual(r.returncode, 1)
        self.assertIn("no profile 'nosuchgame'", r.stderr)
        r = subprocess.run([client, "--observe", "--ports", "9000-7000"], stderr=subprocess.PIPE,
                           text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("--ports", r.stderr)


if __name__ == "__main__":
    unittest.main()
