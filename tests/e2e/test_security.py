"""An auth-on proxy is never an open relay: what it refuses, and the counters that show it."""
import os
import select
import socket
import threading
import time

from lstest import (LSTestCase, AUTH, KEEPALIVE, pack_header, unpack_header,
                    numbered_payloads, wait_for)

KEY = "00112233445566778899aabbccddeeff"
FAST = "[limits]\npps = 200000\nbps = 400000000\n"


def auth_config(echo_port, sid=9):
    return FAST + '[[session]]\nid = %d\nkey = "%s"\ndestinations = ["127.0.0.1:%d"]\n' % (
        sid, KEY, echo_port)


class Relay(threading.Thread):
    """An on-path observer between client and proxy: forwards both ways and records."""

    def __init__(self, proxy_addr):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.addr = self.sock.getsockname()
        self.proxy = proxy_addr
        self.client = None
        self.upstream = []
        self._halt = False
        self.start()

    def run(self):
        while not self._halt:
            r, _, _ = select.select([self.sock], [], [], 0.05)
            if not r:
                continue
            data, peer = self.sock.recvfrom(65535)
            if peer == self.proxy:
                if self.client:
                    self.sock.sendto(data, self.client)
            else:
                self.client = peer
                self.upstream.append(data)
                self.sock.sendto(data, self.proxy)

    def close(self):
        self._halt = True
        self.join(1)
        self.sock.close()


class SecurityTest(LSTestCase):

    def test_unauthenticated_and_forged_packets_never_reach_the_server(self):
        echo = self.echo()
        proxy = self.proxy(config=auth_config(echo.addr[1]), auth=True)
        s = self.udp()
        body = b"let me in"
        # No AUTH flag at all.
        s.sendto(pack_header(seq=1, src=("127.0.0.1", 1000), dst=echo.addr) + body, proxy.addr)
        # AUTH with the right session id and token but a made-up tag.
        s.sendto(pack_header(flags=AUTH, token=9, seq=2, src=("127.0.0.1", 1000), dst=echo.addr,
                             session_id=9) + body + os.urandom(8), proxy.addr)
        # AUTH with a wrong token for the session.
        s.sendto(pack_header(flags=AUTH, token=8, seq=3, src=("127.0.0.1", 1000), dst=echo.addr,
                             session_id=9) + body + os.urandom(8), proxy.addr)
        # AUTH for a session that does not exist.
        s.sendto(pack_header(flags=AUTH, token=77, seq=4, src=("127.0.0.1", 1000), dst=echo.addr,
                             session_id=77) + body + os.urandom(8), proxy.addr)
        # A keepalive without auth is not answered either.
        s.sendto(pack_header(flags=KEEPALIVE, seq=5), proxy.addr)
        drops = wait_for(lambda: (lambda d: d if d["unauthenticated"] >= 2 and
                                  d["bad_tag"] >= 2 and d["unknown_session"] >= 1 else None)(
            proxy.stats()["drops"]), 3, what="drop counters")
        self.assertEqual(drops["unauthenticated"], 2)
        self.assertEqual(drops["bad_tag"], 2)
        self.assertEqual(drops["unknown_session"], 1)
        s.settimeout(0.5)
        with self.assertRaises(socket.timeout):
            s.recvfrom(2048)  # never answered
        time.sleep(0.2)
        self.assertEqual(echo.count(), 0)
        self.assertEqual(proxy.stats()["forwarded_packets"], 0)

    def test_replayed_authenticated_packet_is_dropped(self):
        echo = self.echo()
        proxy = self.proxy(config=auth_config(echo.addr[1]), auth=True)
        relay = Relay(proxy.addr)
        self.closers.append(relay.close)
        client = self.client(relay.addr[1], echo.addr, session=(9, KEY))
        game = self.game(client.local_port)
        self.assert_exchange(game, [b"first", b"second", b"third"])
        data = [p for p in relay.upstream
                if not unpack_header(p)["flags"] & KEEPALIVE and p.endswith(b"", )]
        data = [p for p in data if b"second" in p]
        self.assertEqual(len(data), 1)
        before = proxy.stats()["drops"]["replay"]
        s = self.udp()
        s.sendto(data[0], proxy.addr)                 # from elsewhere
        relay.sock.sendto(data[0], proxy.addr)        # from the client's own path
        wait_for(lambda: proxy.stats()["drops"]["replay"] >= before + 2, 3, what="replay drops")
        time.sleep(0.2)
        self.assertEqual(echo.payloads().count(b"second"), 1)
        # The session did not move to the replayer's address.
        self.assertEqual(proxy.steer("sessions")["sessions"][0]["client"],
                         "%s:%d" % relay.addr)

    def test_denied_destination_is_refused(self):
        # Only 127.0.0.1 is let through; 127.0.0.2 stays in the denied 127/8 range.
        trap = self.echo(host="127.0.0.2")
        echo = self.echo()
        proxy = self.proxy(allow=("127.0.0.1/32",))
        s = self.udp()
        s.sendto(pack_header(seq=1, src=("127.0.0.1", 5), dst=trap.addr) + b"x", proxy.addr)
        s.sendto(pack_header(seq=2, src=("127.0.0.1", 5), dst=("0.0.0.0", 9)) + b"x", proxy.addr)
        s.sendto(pack_header(seq=3, src=("127.0.0.1", 5), dst=echo.addr) + b"ok", proxy.addr)
        wait_for(lambda: proxy.stats()["drops"]["denied_destination"] >= 2, 2, what="denials")
        wait_for(lambda: echo.count() == 1, 2, what="the allowed packet")
        time.sleep(0.2)
        self.assertEqual(trap.count(), 0)

    def test_destination_outside_the_session_is_not_allowed(self):
        echo = self.echo()
        other = self.echo()
        proxy = self.proxy(config=auth_config(echo.addr[1]), auth=True)
        client = self.client(proxy.port, other.addr, session=(9, KEY))
        game = self.game(client.local_port)
        game.send(b"to a server the session may not reach")
        wait_for(lambda: proxy.stats()["drops"]["not_allowed"] >= 1, 3, what="not_allowed")
        self.assertEqual(other.count(), 0)

    def test_unvalidated_address_gets_no_more_than_it_sent(self):
        # A "game server" that answers 10 bytes with 1,000: an amplifier.
        echo = self.echo(transform=lambda d: d * 100)
        proxy = self.proxy()
        s = self.udp()
        s.settimeout(0.3)
        # A spoofer never answers the proxy's keepalive challenge.
        for i in range(5):
            s.sendto(pack_header(seq=i + 1, src=("127.0.0.1", 5), dst=echo.addr) + b"0123456789",
                     proxy.addr)
        wait_for(lambda: echo.count() == 5, 2, what="forwarding")
        got = 0
        challenge = None
        try:
            while True:
                data, _ = s.recvfrom(4096)
                h = unpack_header(data)
                if h["flags"] & KEEPALIVE:
                    challenge = h
                else:
                    got += len(data)
        except socket.timeout:
            pass
        self.assertIsNotNone(challenge, "the proxy sent no validation challenge")
        sent_bytes = 5 * (20 + 10)
        self.assertLessEqual(got, sent_bytes)
        wait_for(lambda: proxy.stats()["drops"]["unvalidated_limit"] >= 4, 2,
                 what="unvalidated_limit drops")
        # Answer the challenge: the address is validated and the big replies flow.
        reply = pack_header(flags=KEEPALIVE, seq=challenge["seq"], ts=challenge["ts"],
                            src=("0.0.0.1", 1), dst=("0.0.0.0", 0))
        s.sendto(reply, proxy.addr)
        wait_for(lambda: proxy.steer("sessions")["sessions"][0]["validated"], 2,
                 what="validation")
        s.sendto(pack_header(seq=10, src=("127.0.0.1", 5), dst=echo.addr) + b"0123456789",
                 proxy.addr)
        data, _ = s.recvfrom(4096)
        self.assertEqual(len(data), 20 + 1000)

    def test_rate_limit_per_client(self):
        echo = self.echo()
        proxy = self.proxy(config="[limits]\npps = 50\nbps = 1000000\n")
        s = self.udp()
        for i in range(400):
            s.sendto(pack_header(seq=i + 1, src=("127.0.0.1", 5), dst=echo.addr) + b"x",
                     proxy.addr)
        wait_for(lambda: proxy.stats()["drops"]["rate_limited"] > 0, 2, what="rate limit")
        time.sleep(0.3)
        st = proxy.stats()
        self.assertEqual(st["drops"]["rate_limited"] + st["forwarded_packets"], 400)
        # A one-second bucket of 50 plus refill during the burst: far below 400.
        self.assertLess(st["forwarded_packets"], 120)
        self.assertGreaterEqual(st["forwarded_packets"], 50)
