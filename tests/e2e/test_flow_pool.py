"""The proxy opens, binds and allocates a game socket's upstream socket outside the
packet path: a new game socket's first datagram goes out through a socket that was
ready before it came, and the spare is replaced only after the loop turn's sends."""
import re
import subprocess
import time

from lstest import LSTestCase, wait_for

KEY = "00112233445566778899aabbccddeeff"
FAST = "[limits]\npps = 200000\nbps = 400000000\n"


class FlowPoolTest(LSTestCase):

    def test_new_game_sockets_never_open_a_socket_on_the_packet_path(self):
        echo = self.echo()
        cfg = FAST + '[[session]]\nid = 9\nkey = "%s"\ndestinations = ["127.0.0.1:%d"]\n' % (
            KEY, echo.addr[1])
        proxy = self.proxy(config=cfg, auth=True)
        client = self.client(proxy.port, echo.addr, session=(9, KEY))
        wait_for(lambda: client.steer("status")["path"] == "up", 3, what="the path")
        out = self.path("strace.txt")
        tr = subprocess.Popen(["strace", "-e", "trace=epoll_wait,recvmmsg,sendmmsg,sendto,"
                               "socket,bind", "-o", out, "-p", str(proxy.p.pid)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        for i in range(6):
            self.assert_exchange(self.game(client.local_port), [b"game socket %d" % i])
        time.sleep(0.3)
        tr.terminate()
        tr.wait(5)
        with open(out) as f:
            calls = [m.group(1) for m in re.finditer(r"^(?:\d+\s+)?(\w+)\(", f.read(), re.M)]
        # Each new flow took a spare socket; the pool was refilled after.
        self.assertGreaterEqual(calls.count("socket"), 6, calls)
        turns, turn = [], []
        for c in calls:
            if c == "epoll_wait":
                turns.append(turn)
                turn = []
            else:
                turn.append(c)
        turns.append(turn)
        for t in turns:
            if "socket" in t:
                first = t.index("socket")
                self.assertFalse([c for c in t[first:] if c in ("sendmmsg", "sendto")],
                                 "a send after socket() in one loop turn: %s" % t)
                self.assertIn("sendmmsg", t[:first], t)
