"""Drops a user can see, beyond the proxy's first ones (test_drops.py): a replayed
datagram names its sender and the session, and the client too says, once and with what
to do, why the game's packets go nowhere (no route, a key the proxy does not hold)."""
import re
import time

from lstest import LSTestCase, wait_for
from test_security import Relay, auth_config, is_data, KEY

OTHER_KEY = "ffeeddccbbaa99887766554433221100"


class DropLogMoreTest(LSTestCase):

    def test_a_replay_names_the_sender_and_the_session(self):
        echo = self.echo()
        proxy = self.proxy(config=auth_config(echo.addr[1]), auth=True)
        relay = Relay(proxy.addr)
        self.closers.append(relay.close)
        client = self.client(relay.addr[1], echo.addr, session=(9, KEY))
        game = self.game(client.local_port)
        self.assert_exchange(game, [b"first", b"second"])
        data = [p for p in relay.upstream if is_data(p) and b"second" in p]
        s = self.udp()
        for _ in range(3):
            s.sendto(data[0], proxy.addr)
        wait_for(lambda: re.search(r"warn: session 9: replayed or stale packets from "
                                   r"127\.0\.0\.1:%d dropped" % s.getsockname()[1],
                                   proxy.output()), 3, what="the replay warning")
        time.sleep(0.3)
        self.assertEqual(proxy.output().count("replayed or stale"), 1)

    def test_the_client_says_there_is_no_route(self):
        echo = self.echo()
        client = self.client(None, echo.addr)
        game = self.game(client.local_port)
        for i in range(5):
            game.send(b"nowhere %d" % i)
        wait_for(lambda: re.search(r"warn: 5 packets dropped \(no_route\); no active route: "
                                   r".*give --proxy HOST:PORT", client.output()),
                 3, what="the client's warning")
        self.assertEqual(client.stats()["drops"]["no_route"], 5)

    def test_a_wrong_key_is_told_on_both_sides(self):
        echo = self.echo()
        proxy = self.proxy(config=auth_config(echo.addr[1]), auth=True)
        client = self.client(proxy.port, echo.addr, session=(9, OTHER_KEY))
        game = self.game(client.local_port)
        for i in range(5):
            game.send(b"wrong key %d" % i)
        wait_for(lambda: re.search(r"warn: \d+ packets? dropped \(handshake\); route default: "
                                   r"proxy 127\.0\.0\.1:%d, session 9: .*--key-file" % proxy.port,
                                   client.output()), 4, what="the client's warning")
        wait_for(lambda: re.search(r"warn: \d+ datagram\(s\) from 127\.0\.0\.1:\d+ for session 9 "
                                   r"dropped: bad tag", proxy.output()), 3,
                 what="the proxy's warning")
        self.assertEqual(echo.count(), 0)
        # Once, then quiet for a while: not a line per packet.
        for i in range(20):
            game.send(b"more %d" % i)
        time.sleep(1.5)
        self.assertEqual(client.output().count("(handshake)"), 1)
