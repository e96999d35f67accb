"""Restarts that just work: SIGKILL either side mid-traffic, start it again, and the game's
packets flow again within a second, with nothing logged at error level (static sessions
from the config, and steered ones added again as an agent would)."""
import re
import socket
import threading
import time

from lstest import LSTestCase, wait_for, free_port

KEY = "00112233445566778899aabbccddeeff"
LIMITS = "[limits]\npps = 20000\nbps = 40000000\n"
ERROR_LINE = re.compile(r"^(?:<\d>|\S+Z )?lightspeed-[a-z]+: error: ", re.M)


class Pinger(threading.Thread):
    """A game socket sending 64 numbered packets/s and noting when each echo came."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.005)
        self.dest = ("127.0.0.1", port)
        self.echoes = []   # monotonic arrival times
        self.lock = threading.Lock()
        self._halt = False
        self.start()

    def run(self):
        n = 0
        next_send = time.monotonic()
        while not self._halt:
            now = time.monotonic()
            if now >= next_send:
                try:
                    self.sock.sendto(b"tick-%d" % n, self.dest)
                except OSError:
                    pass
                n += 1
                next_send += 1 / 64
            try:
                self.sock.recvfrom(2048)
                with self.lock:
                    self.echoes.append(time.monotonic())
            except (socket.timeout, OSError):
                pass

    def count(self):
        with self.lock:
            return len(self.echoes)

    def first_after(self, t):
        with self.lock:
            return next((e for e in self.echoes if e > t), None)

    def last_before(self, t):
        with self.lock:
            return max((e for e in self.echoes if e <= t), default=None)

    def close(self):
        self._halt = True
        self.join(1)
        self.sock.close()


class RestartTest(LSTestCase):

    def setup(self, steered):
        self.echo_srv = self.echo()
        self.port = free_port()
        self.cfg = LIMITS
        if not steered:
            self.cfg += '[[session]]\nid = 9\nkey = "%s"\ndestinations = ["127.0.0.1:%d"]\n' % (
                KEY, self.echo_srv.addr[1])
        self.steered = steered
        px = self.start_proxy()
        self.local = free_port()
        cl = self.start_client()
        # A session that has run a while: both ends' seqs far past a replay window.
        game = self.game(self.local)
        wait_for(lambda: game.exchange([b"warm"], timeout=0.3), 5, what="the path")
        got = game.exchange([b"burst-%d" % i for i in range(2500)], window=64)
        self.assertGreater(len(got), 2400)
        pinger = Pinger(self.local)
        self.closers.append(pinger.close)
        wait_for(lambda: pinger.count() > 20, 5, what="traffic before the restart")
        return px, cl, pinger

    def start_proxy(self):
        px = self.proxy(config=self.cfg, auth=True, port=self.port)
        if self.steered:
            # What the agent does for a proxy that (re)starts.
            px.steer("session_add", session_id=9, key=KEY,
                     destinations=["127.0.0.1:%d" % self.echo_srv.addr[1]])
        return px

    def start_client(self):
        return self.client(self.port, self.echo_srv.addr, "--local-port", str(self.local),
                           session=(9, KEY))

    def kill(self, proc):
        proc.p.kill()
        proc.p.wait()
        proc.expect_exit = True
        return time.monotonic()

    def measure(self, which, steered):
        px, cl, pinger = self.setup(steered)
        time.sleep(0.3)
        victim = px if which == "proxy" else cl
        t_kill = self.kill(victim)
        new = self.start_proxy() if which == "proxy" else self.start_client()
        t_ready = time.monotonic()
        first = wait_for(lambda: pinger.first_after(t_ready), 5,
                         what="traffic after the restart")
        before = pinger.last_before(t_kill)
        wait_for(lambda: pinger.count() > 0 and pinger.first_after(first + 0.5), 3,
                 what="traffic to go on after the restart")
        gap_kill = first - before
        gap_ready = first - t_ready
        print("\n    %s %s restart: gap %.0f ms from the last echo before the SIGKILL, "
              "%.0f ms after the new process was ready" %
              ("steered" if steered else "static", which, gap_kill * 1000, gap_ready * 1000),
              end=" ")
        self.assertLess(gap_ready, 1.0)
        for p in (new, px if which == "client" else cl):
            self.assertIsNone(ERROR_LINE.search(p.output()), p.output())

    def test_static_proxy_restart(self):
        self.measure("proxy", False)

    def test_static_client_restart(self):
        self.measure("client", False)

    def test_steered_proxy_restart(self):
        self.measure("proxy", True)

    def test_steered_client_restart(self):
        self.measure("client", True)


class DegradedTest(LSTestCase):

    def test_path_is_degraded_while_game_replies_are_dropped(self):
        # Keepalives are answered, but every game reply arrives spoilt (its tag broken
        # on the way): the client says "degraded", not "up", and "up" again once the
        # replies get through.
        from test_security import Relay, is_data
        spoil = {"on": False}

        def mangle(d):
            if spoil["on"] and is_data(d):
                return d[:-1] + bytes([d[-1] ^ 1])
            return d

        echo = self.echo()
        cfg = LIMITS + '[[session]]\nid = 9\nkey = "%s"\ndestinations = ["127.0.0.1:%d"]\n' % (
            KEY, echo.addr[1])
        proxy = self.proxy(config=cfg, auth=True)
        relay = Relay(proxy.addr, mangle=mangle)
        self.closers.append(relay.close)
        client = self.client(relay.addr[1], echo.addr, session=(9, KEY), keepalive_ms=100)
        pinger = Pinger(client.local_port)
        self.closers.append(pinger.close)
        wait_for(lambda: client.steer("status")["path"] == "up", 5, what="path up")
        spoil["on"] = True
        wait_for(lambda: client.steer("status")["path"] == "degraded", 4, what="degraded")
        self.assertGreater(client.stats()["drops"]["bad_tag"], 0)
        spoil["on"] = False
        wait_for(lambda: client.steer("status")["path"] == "up", 4, what="up again")
