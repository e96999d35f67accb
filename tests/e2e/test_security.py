"""An auth-on proxy is never an open relay: what it refuses, and the counters that show it.
Recorded datagrams replayed at any later time (across the 32-bit ts_us wrap, a restart
of either side, a session added again) are never forwarded, delivered or obeyed; the
address-validation nonce cannot be predicted, so nobody amplifies through the proxy."""
import os
import select
import socket
import struct
import threading
import time
import unittest

from lstest import (LSTestCase, AUTH, FIN, HANDSHAKE, KEEPALIVE, pack_header, unpack_header,
                    numbered_payloads, wait_for, free_port)
import wire

KEY = "00112233445566778899aabbccddeeff"
FAST = "[limits]\npps = 200000\nbps = 400000000\n"


def auth_config(echo_port, sid=9):
    return FAST + '[[session]]\nid = %d\nkey = "%s"\ndestinations = ["127.0.0.1:%d"]\n' % (
        sid, KEY, echo_port)


def is_data(p):
    """A game datagram (not a keepalive, FIN or handshake)."""
    return not unpack_header(p)["flags"] & (KEEPALIVE | FIN | HANDSHAKE)


def is_echo(p):
    h = unpack_header(p)
    return bool(h["flags"] & KEEPALIVE) and (h["src"][1] & 0xff) == 1


class Relay(threading.Thread):
    """An on-path observer between client and proxy: forwards both ways and records.
    The client sees it at .addr; the proxy sees it at the address of .up (which
    rebind() changes, as a NAT that picks a new port would). `mangle` may rewrite a
    datagram from the proxy on its way to the client (None drops it)."""

    def __init__(self, proxy_addr, mangle=None):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.addr = self.sock.getsockname()
        self.up = self._open()
        self.proxy = proxy_addr
        self.mangle = mangle
        self.client = None
        self.upstream = []
        self.downstream = []
        self.lock = threading.Lock()
        self._halt = False
        self.start()

    @staticmethod
    def _open():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        return s

    def up_addr(self):
        return self.up.getsockname()

    def rebind(self):
        with self.lock:
            old, self.up = self.up, self._open()
        old.close()

    def run(self):
        while not self._halt:
            with self.lock:
                socks = [self.sock, self.up]
            try:
                r, _, _ = select.select(socks, [], [], 0.05)
            except (OSError, ValueError):
                continue
            for s in r:
                try:
                    data, peer = s.recvfrom(65535)
                except OSError:
                    continue
                if s is self.sock:
                    self.client = peer
                    self.upstream.append(data)
                    with self.lock:
                        try:
                            self.up.sendto(data, self.proxy)
                        except OSError:
                            pass
                elif peer == self.proxy and self.client:
                    self.downstream.append(data)
                    if self.mangle:
                        data = self.mangle(data)
                    if data is not None:
                        self.sock.sendto(data, self.client)

    def close(self):
        self._halt = True
        self.join(1)
        self.sock.close()
        self.up.close()


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
        data = [p for p in relay.upstream if is_data(p) and b"second" in p]
        self.assertEqual(len(data), 1)
        before = proxy.stats()["drops"]["replay"]
        s = self.udp()
        s.sendto(data[0], proxy.addr)                 # from elsewhere
        relay.up.sendto(data[0], proxy.addr)          # from the client's own path
        wait_for(lambda: proxy.stats()["drops"]["replay"] >= before + 2, 3, what="replay drops")
        time.sleep(0.2)
        self.assertEqual(echo.payloads().count(b"second"), 1)
        # The session did not move to the replayer's address.
        self.assertEqual(proxy.steer("sessions")["sessions"][0]["client"],
                         "%s:%d" % relay.up_addr())

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
        # The route's first lifetime is one round trip away.
        wait_for(lambda: client.steer("status")["path"] == "up", 3, what="the path")
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


def sessions_of(proxy):
    return proxy.steer("sessions")["sessions"]


class ReplayTest(LSTestCase):
    """Recordings replayed later: across the ts wrap, restarts and re-added sessions."""

    def static_proxy(self, echo, *args, port=None, idle=None, offset_s=None):
        extra = list(args) + (["--idle-timeout", str(idle)] if idle else [])
        if offset_s is None:
            return self.proxy(*extra, config=auth_config(echo.addr[1]), auth=True, port=port)
        port = port or free_port()
        cfg = self.write("proxy-%d.toml" % port, auth_config(echo.addr[1]))
        sock = self.path("proxy-%d.sock" % port)
        p = wire.ShiftedProc("lightspeed-proxy",
                             ["-c", cfg, "--bind", "127.0.0.1:%d" % port, "--socket", sock,
                              "--allow", "127.0.0.0/8", "--log-level", "debug"] + extra,
                             sock, self.tmp, offset_s)
        p.port, p.addr = port, ("127.0.0.1", port)
        self.procs.append(p)
        return p

    def shifted_client(self, proxy_port, game_server, offset_s, local=None):
        local = local or free_port()
        sock = self.path("client-%d-%d.sock" % (local, offset_s))
        c = wire.ShiftedProc("lightspeed-client",
                             ["--proxy", "127.0.0.1:%d" % proxy_port, "--game-server",
                              "%s:%d" % game_server, "--local-port", str(local), "--socket",
                              sock, "--session-id", "9", "--key", KEY, "--log-level", "debug"],
                             sock, self.tmp, offset_s)
        c.local_port = local
        self.procs.append(c)
        return c

    @unittest.skipUnless(wire.can_shift_clock(), "needs root and unshare (time namespaces)")
    def test_a_datagram_recorded_an_hour_earlier_is_refused(self):
        # Client A records its packets; an hour later (its clock 3,600 s on, which puts
        # the old ts_us 36 to 72 minutes back, "newer" as a signed 32-bit difference)
        # client B runs the same session. A's recordings, replayed from anywhere, are
        # never forwarded, never move the session and never block B.
        echo = self.echo()
        proxy = self.static_proxy(echo)
        relay = Relay(proxy.addr)
        self.closers.append(relay.close)
        a = self.shifted_client(relay.addr[1], echo.addr, 0)
        game = self.game(a.local_port)
        wait_for(lambda: game.exchange([b"warm"], timeout=0.3), 5, what="client A's path")
        self.assert_exchange(game, [b"A-one", b"A-two", b"A-three"])
        recorded = [p for p in relay.upstream if is_data(p) and b"A-" in p]
        self.assertEqual(len(recorded), 3)
        a.kill()
        b = self.shifted_client(relay.addr[1], echo.addr, 3600)
        game_b = self.game(b.local_port)
        wait_for(lambda: game_b.exchange([b"warm-b"], timeout=0.3), 5, what="client B's path")
        mover = self.udp()
        before = echo.count()
        for p in recorded:
            mover.sendto(p, proxy.addr)         # from an attacker's address
            relay.up.sendto(p, proxy.addr)      # from the session's own address
        time.sleep(0.3)
        self.assertEqual(echo.count(), before, "a recording was forwarded")
        self.assertEqual(sessions_of(proxy)[0]["client"], "%s:%d" % relay.up_addr())
        self.assert_exchange(game_b, [b"B-%d" % i for i in range(20)])

    @unittest.skipUnless(wire.can_shift_clock(), "needs root and unshare (time namespaces)")
    def test_the_client_refuses_replies_recorded_before_a_proxy_restart(self):
        # Proxy A's replies are recorded; proxy B, on the same port an hour of clock
        # later, serves the client after a SIGKILL of A. Replayed towards the client,
        # A's replies are never delivered to the game, and B's still are.
        echo = self.echo()
        port = free_port()
        a = self.static_proxy(echo, port=port, offset_s=0)
        relay = Relay(("127.0.0.1", port))
        self.closers.append(relay.close)
        client = self.client(relay.addr[1], echo.addr, session=(9, KEY))
        game = self.game(client.local_port)
        wait_for(lambda: game.exchange([b"warm"], timeout=0.3), 5, what="the path")
        self.assert_exchange(game, [b"old-%d" % i for i in range(5)])
        recorded = [p for p in relay.downstream if is_data(p)]
        self.assertGreaterEqual(len(recorded), 5)
        a.kill()
        self.static_proxy(echo, port=port, offset_s=3600)
        wait_for(lambda: game.exchange([b"back"], timeout=0.3), 5, what="traffic through B")
        game.recv_all(0.2)
        for p in recorded:
            relay.sock.sendto(p, relay.client)   # as if from the proxy
        got = game.recv_all(0.5)
        self.assertEqual(got, [], "the game got a recorded reply")
        self.assert_exchange(game, [b"new-%d" % i for i in range(10)])

    def test_a_session_added_again_accepts_nothing_recorded_before(self):
        # A steered session: data and the client's FIN recorded (the FIN ends it); the
        # session added again, a new client on it, then session_del + session_add once
        # more under its feet. Nothing recorded before is forwarded again, the recorded
        # FIN ends nothing, the session does not move, and the client goes on.
        echo = self.echo()
        proxy = self.proxy(config=FAST, auth=True)
        args = dict(session_id=9, key=KEY, destinations=["127.0.0.1:%d" % echo.addr[1]])
        proxy.steer("session_add", **args)
        relay = Relay(proxy.addr)
        self.closers.append(relay.close)
        first = self.client(relay.addr[1], echo.addr, session=(9, KEY))
        game = self.game(first.local_port)
        wait_for(lambda: game.exchange([b"warm"], timeout=0.3), 5, what="the path")
        self.assert_exchange(game, [b"rec-%d" % i for i in range(5)])
        first.stop()
        first.expect_exit = True
        fins = wait_for(lambda: [p for p in relay.upstream if unpack_header(p)["flags"] & FIN],
                        2, what="the client's FIN")
        recorded = [p for p in relay.upstream if is_data(p) and b"rec-" in p]
        self.assertEqual(len(recorded), 5)
        wait_for(lambda: not sessions_of(proxy), 2, what="the FIN to end the session")
        proxy.steer("session_add", **args)
        second = self.client(relay.addr[1], echo.addr, session=(9, KEY))
        game = self.game(second.local_port)
        wait_for(lambda: game.exchange([b"warm2"], timeout=0.3), 5, what="the second client")
        proxy.steer("session_del", session_id=9)
        proxy.steer("session_add", **args)
        wait_for(lambda: game.exchange([b"again"], timeout=0.3), 5, what="the re-added session")
        before = echo.count()
        attacker = self.udp()
        for p in recorded + fins:
            relay.up.sendto(p, proxy.addr)
            attacker.sendto(p, proxy.addr)
        time.sleep(0.3)
        self.assertEqual(echo.count(), before, "a recording was forwarded")
        self.assertEqual(len(sessions_of(proxy)), 1, "a recorded FIN ended the session")
        self.assertEqual(sessions_of(proxy)[0]["client"], "%s:%d" % relay.up_addr())
        self.assert_exchange(game, [b"after-%d" % i for i in range(10)])

    def test_a_replayed_echo_keeps_no_session_alive(self):
        # The client answers the proxy's address check after its NAT port changed; the
        # answer is recorded and replayed, forever, after the client died: the session
        # still goes idle (an echo refreshes nothing unless it answers a request).
        echo = self.echo()
        proxy = self.static_proxy(echo, idle=2)
        relay = Relay(proxy.addr)
        self.closers.append(relay.close)
        client = self.client(relay.addr[1], echo.addr, session=(9, KEY))
        game = self.game(client.local_port)
        wait_for(lambda: game.exchange([b"warm"], timeout=0.3), 5, what="the path")
        relay.rebind()
        game.send(b"roam")  # pays for the address check; its answer may not fit
        wait_for(lambda: sessions_of(proxy)[0]["client"] == "%s:%d" % relay.up_addr() and
                 sessions_of(proxy)[0]["validated"], 3, what="the new address checked")
        echoes = [p for p in relay.upstream if is_echo(p)]
        self.assertTrue(echoes, "the client sent no keepalive reply")
        client.p.kill()
        client.p.wait()
        client.expect_exit = True
        end = time.monotonic() + 4.5
        while time.monotonic() < end:
            for p in echoes:
                relay.up.sendto(p, proxy.addr)
            time.sleep(0.2)
        self.assertIsNone(sessions_of(proxy)[0]["client"], "the session was kept alive")


class AmplificationTest(LSTestCase):
    """Nobody gets the proxy to send an address more than that address sent it."""

    @unittest.skipUnless(wire.can_spoof(), "needs root (raw sockets)")
    def test_a_predicted_nonce_validates_nothing(self):
        # The attack of the old xorshift nonces: three address checks sent to the
        # attacker's own addresses give away the generator, the next one (to a victim
        # whose address the attacker spoofs) is predicted, a forged echo "validates" the
        # victim, and a game server's big replies, with FEC 1:16 on top, are reflected
        # at it. The nonces now come from a keyed PRF: the victim stays unvalidated and
        # gets no more bytes than were sent in its name.
        echo = self.echo(transform=lambda d: d * 34)
        proxy = self.proxy(config="[limits]\npps = 100000\nbps = 100000000\n")
        outs = []
        for _ in range(3):
            s = self.udp()
            s.sendto(pack_header(seq=1, src=("127.0.0.1", 5), dst=echo.addr) + b"probe",
                     proxy.addr)
            while True:
                data, _ = s.recvfrom(4096)
                h = unpack_header(data)
                if h["flags"] & KEEPALIVE:
                    # Answer it, so that no re-check draws from the generator.
                    s.sendto(pack_header(flags=KEEPALIVE, seq=h["seq"], ts=h["ts"],
                                         src=("0.0.0.1", 1)), proxy.addr)
                    outs.append(h["ts"])
                    break
        predicted = wire.predict_next_low32(outs)
        victim = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        victim.bind(("127.0.0.5", 0))
        self.closers.append(victim.close)
        vaddr = victim.getsockname()
        spoof = wire.Spoofer()
        self.closers.append(spoof.close)
        # In the victim's name: a keepalive asking for FEC 1:16 on replies, then data.
        ka = pack_header(flags=KEEPALIVE, seq=1, src=(socket.inet_ntoa(b"\0\0\0\0"), 0),
                         dst=("0.0.0.0", (1 << 8) | 16))
        spoof.send(vaddr, proxy.addr, ka)
        spoof.send(vaddr, proxy.addr,
                   pack_header(seq=2, src=("127.0.0.1", 5), dst=echo.addr) + b"x" * 30)
        time.sleep(0.05)
        # The forged echo of the predicted check (seq 0 or 1: either numbering).
        for seq in (0, 1):
            spoof.send(vaddr, proxy.addr,
                       pack_header(flags=KEEPALIVE, seq=seq, ts=predicted or 0,
                                   src=("0.0.0.1", 1)))
        time.sleep(0.05)
        for i in range(200):
            spoof.send(vaddr, proxy.addr,
                       pack_header(seq=3 + i, src=("127.0.0.1", 5), dst=echo.addr) + b"y" * 30)
        time.sleep(0.5)
        # What the proxy sent to the victim's address against what came in its name,
        # both as the proxy counts them (tunnel datagrams, headers included).
        sess = [x for x in sessions_of(proxy) if x["client"] == "%s:%d" % vaddr]
        self.assertTrue(sess, "no session for the victim's address")
        ratio = sess[0]["tx_bytes"] / sess[0]["rx_bytes"]
        print("\n    amplification before validation: %d bytes to the victim for %d received "
              "in its name: %.3fx" % (sess[0]["tx_bytes"], sess[0]["rx_bytes"], ratio), end=" ")
        self.assertFalse(sess[0]["validated"], "the victim's address was validated")
        self.assertLessEqual(ratio, 1.0)

    def test_replies_and_their_parity_stay_within_the_session_budget(self):
        # FEC 1:16 on replies would send 17 datagrams per reply: the session's byte
        # budget (its bps, the request path's limit) bounds what goes to the client.
        echo = self.echo()
        bps = 40000
        cfg = ('[limits]\npps = 100000\nbps = %d\n[[session]]\nid = 9\nkey = "%s"\n'
               'destinations = ["127.0.0.1:%d"]\nfec = "1:16"\n' % (bps, KEY, echo.addr[1]))
        proxy = self.proxy(config=cfg, auth=True)
        client = self.client(proxy.port, echo.addr, session=(9, KEY))
        game = self.game(client.local_port)
        wait_for(lambda: game.exchange([b"warm"], timeout=0.3), 5, what="the path")
        t0 = time.monotonic()
        tx0 = sessions_of(proxy)[0]["tx_bytes"]
        for i in range(150):
            game.send(b"%d;" % i + b"z" * 150)
            time.sleep(0.01)
        game.recv_all(0.3)
        elapsed = time.monotonic() - t0
        sent = sessions_of(proxy)[0]["tx_bytes"] - tx0
        # One second of burst, then the rate.
        self.assertLessEqual(sent, bps * (elapsed + 1.0), (sent, elapsed))
        self.assertGreater(proxy.stats()["drops"]["rate_limited"], 0)


class PayloadLimitTest(LSTestCase):
    """1,472 bytes of payload, with or without AUTH, both ways."""

    def test_the_payload_limit_holds_without_auth(self):
        echo = self.echo(transform=lambda d: d + b"+" * 20 if d.startswith(b"grow") else d)
        proxy = self.proxy()
        s = self.udp()
        hdr = lambda seq: pack_header(seq=seq, src=("127.0.0.1", 5), dst=echo.addr)
        s.sendto(hdr(1) + b"a" * 1473, proxy.addr)
        s.sendto(hdr(2) + b"b" * 1472, proxy.addr)
        wait_for(lambda: echo.count() == 1, 2, what="the 1,472-byte packet")
        self.assertEqual(len(echo.payloads()[0]), 1472)
        self.assertGreaterEqual(proxy.stats()["drops"]["oversize"], 1)
        # A reply that outgrows the limit is refused on the way back too.
        before = proxy.stats()["drops"]["oversize"]
        s.sendto(hdr(3) + b"grow" + b"c" * 1460, proxy.addr)
        wait_for(lambda: proxy.stats()["drops"]["oversize"] > before, 2, what="reply oversize")
