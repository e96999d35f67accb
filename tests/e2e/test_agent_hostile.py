"""lightspeed-agent under hostile input, with real processes (docs/protocol.md 2.2, 2.5):
a real proxy (require_auth) and agent, a controller's QUIC client holding a registered
session whose game traffic flows through the proxy, and build/tests/quic_hostile
speaking QUIC to the agent and misbehaving: malformed frames, unknown types, oversized
lengths, out-of-order requests, random frames, streams left open; handshakes from many
source addresses that prove their address and fall silent; a flood of Initials that
never answer. The agent must answer or count each, hold its limits, stay up, and leave
the registered session alone."""
import threading
import time

from agenttest import CtlClient, hostile, proxy_sessions, start_agent
from lstest import LSTestCase, numbered_payloads, wait_for

FAST = "[limits]\npps = 200000\nbps = 400000000\n"


class AgentHostileTest(LSTestCase):

    def node(self, config):
        echo = self.echo()
        proxy = self.proxy(config=FAST, auth=True)
        agent = start_agent(self, proxy, config=config)
        wait_for(lambda: agent.health()[0] == 200, what="agent connected to the proxy")
        return echo, proxy, agent

    def session(self, agent, proxy, echo):
        """A controller's registered session carrying game traffic (the bystander)."""
        ctl = CtlClient(self, agent.port, fingerprint=agent.fp,
                        dests=["127.0.0.1:%d" % echo.addr[1]], ping_ms=50)
        s = ctl.register()
        client = self.client(proxy.port, echo.addr, session=(s["session_id"], s["key"]))
        wait_for(lambda: client.steer("status")["path"] == "up", 3, what="the path")
        game = self.game(client.local_port)
        self.assert_exchange(game, numbered_payloads(20, seed=1))
        return ctl, s, game

    def assert_bystander_unharmed(self, agent, proxy, ctl, s, game, seed):
        self.assertTrue(agent.alive(), "the agent died")
        self.assertEqual(ctl.events_of("lost"), [], "the registered controller lost its agent")
        self.assertTrue(ctl.ok("ping 3")["rtt_us"])
        self.assertIn(s["session_id"], proxy_sessions(proxy))
        self.assert_exchange(game, numbered_payloads(50, seed=seed))

    def quic(self, agent):
        return agent.health()[1]["counters"]["quic"]

    def test_bad_requests_are_answered_and_the_connection_stays(self):
        echo, proxy, agent = self.node("[quic]\nstream_timeout_ms = 500\n")
        ctl, s, game = self.session(agent, proxy, echo)
        before = self.quic(agent)
        lines = hostile(agent, "streams", "--dest", "127.0.0.1:%d" % echo.addr[1],
                        "--random", "300", "--seed", "8")
        got = {line["case"]: line for line in lines if "case" in line}
        expect = {
            "unknown type 0x42": "unknown_type",
            "an answer type (PONG) sent to the agent": "unknown_type",
            "an ERROR sent to the agent": "unknown_type",
            "length 0": "malformed",
            "PING with a short body": "malformed",
            "PING with a byte too many": "malformed",
            "the stream ends inside the frame": "malformed",
            "a frame and a byte after it": "malformed",
            "length 65535 announced": "too_long",
            "600 bytes of one request": "too_long",
            "REGISTER of protocol version 9": "version",
            "REGISTER of game 200": "malformed",
            "REGISTER with unknown flag bits": "malformed",
            "REGISTER with 17 destinations announced": "malformed",
            "REGISTER resuming session 0": "malformed",
            "REGISTER resuming a session the agent never issued": "unknown_session",
            "REGISTER to a destination the node does not serve": "denied",
            "a destination with host bits under its prefix": "malformed",
            "DISCONNECT reason 9": "malformed",
            "SERVER_INFO request with a body": "malformed",
            "PEERS request with a body": "malformed",
            "ALLOW before REGISTER": "not_registered",
            "ALLOW with its last port below its first": "malformed",
            "REGISTER again on the same connection": "registered",
            "ALLOW of a destination the node does not serve": "denied",
        }
        for case, code in expect.items():
            self.assertIn(case, got, "quic_hostile did not run %r" % case)
            self.assertEqual((got[case]["answer"], got[case]["code"]), ("ERROR", code),
                             "%s: %r" % (case, got[case]))
        self.assertEqual(got["REGISTER"]["answer"], "REGISTER_ACK", got["REGISTER"])
        rnd = got["random frames"]
        self.assertEqual(rnd["answered"] + rnd["reset"], rnd["sent"], rnd)
        self.assertEqual(rnd["unanswered"], 0, rnd)
        # Streams left open are reset after the stream timeout; the connection goes on.
        self.assertEqual(got["streams left open"]["reset"], 3, got["streams left open"])
        self.assertEqual(got["PING at the end"]["answer"], "PONG")
        self.assertEqual((got["DISCONNECT"]["answer"], got["DISCONNECT"]["code"]),
                         ("DISCONNECT", 0))
        summary = next(line for line in lines if line.get("summary"))
        self.assertTrue(summary["connection_open"], summary)

        after = self.quic(agent)
        self.assertGreaterEqual(after["malformed"] - before["malformed"], 14)
        self.assertGreaterEqual(after["unknown_types"] - before["unknown_types"], 3)
        self.assertGreaterEqual(after["too_long"] - before["too_long"], 2)
        self.assertGreaterEqual(after["stream_timeouts"] - before["stream_timeouts"], 3)
        # The hostile peer's own session went with its DISCONNECT; the bystander's stays.
        wait_for(lambda: proxy_sessions(proxy) == {s["session_id"]}, 3,
                 what="only the bystander's session at the proxy")
        self.assert_bystander_unharmed(agent, proxy, ctl, s, game, seed=2)

    def test_half_open_handshakes_are_bounded_in_total_and_per_address(self):
        limits = ("[quic]\nmax_half_open = 24\nmax_half_open_per_addr = 2\nretry_after = 4\n"
                  "handshake_timeout_ms = 2000\n")
        echo, proxy, agent = self.node(limits)
        ctl, s, game = self.session(agent, proxy, echo)
        before = self.quic(agent)
        # 20 addresses x 5 handshakes that prove their address and then fall silent.
        lines = hostile(agent, "halfopen", "--sources", "20", "--per-source", "5",
                        "--first-source", "127.0.0.10", "--wait-ms", "700")
        held_now = self.quic(agent)["handshakes"]
        per = [line for line in lines if "source" in line]
        total = next(line for line in lines if line.get("total"))
        self.assertEqual(len(per), 20)
        for p in per:
            self.assertLessEqual(p["held"], 2, "over max_half_open_per_addr: %r" % p)
            self.assertEqual(p["silent"], 0, "the agent ignored a proven address: %r" % p)
        self.assertLessEqual(total["held"], 24, total)
        self.assertEqual(total["held"], 24, "the agent held fewer than its limit: %r" % total)
        self.assertEqual(total["held"] + total["refused"], 100, total)
        self.assertGreaterEqual(total["retried"], 100 - 4, total)
        self.assertLessEqual(held_now, 24)
        after = self.quic(agent)
        self.assertGreaterEqual(after["refused"] - before["refused"], 76)
        self.assertEqual(after["connections"], 1, "only the bystander's connection is open")
        # The registered session is untouched while the handshake slots are full.
        self.assert_bystander_unharmed(agent, proxy, ctl, s, game, seed=3)
        # The silent handshakes time out and give their slots back; a new controller
        # then gets in.
        wait_for(lambda: self.quic(agent)["handshakes"] == 0, 5,
                 what="the half-open handshakes to time out")
        self.assertGreaterEqual(self.quic(agent)["handshake_failures"]
                                - before["handshake_failures"], 24)
        other = CtlClient(self, agent.port, fingerprint=agent.fp,
                          dests=["127.0.0.1:%d" % echo.addr[1]])
        other.register()
        self.assertEqual(len(proxy_sessions(proxy)), 2)

    def test_a_flood_of_initials_costs_no_state_and_retry_lets_controllers_in(self):
        limits = "[quic]\nmax_half_open = 24\nmax_half_open_per_addr = 2\nretry_after = 4\n"
        echo, proxy, agent = self.node(limits)
        ctl, s, game = self.session(agent, proxy, echo)
        before = self.quic(agent)
        result = {}

        def flood():
            result["lines"] = hostile(agent, "flood", "--rate", "3000", "--seconds", "4",
                                      "--sources", "32", "--first-source", "127.0.1.10")
        t = threading.Thread(target=flood)
        t.start()
        try:
            time.sleep(0.5)
            peak = 0
            # A new controller gets in during the flood: it answers its Retry.
            newcomer = CtlClient(self, agent.port, fingerprint=agent.fp,
                                 dests=["127.0.0.1:%d" % echo.addr[1]])
            t0 = time.monotonic()
            newcomer.register()
            joined = time.monotonic() - t0
            while t.is_alive():
                peak = max(peak, self.quic(agent)["handshakes"])
                # The bystander's traffic meanwhile.
                self.assert_exchange(game, numbered_payloads(10, seed=int(time.time())))
                time.sleep(0.1)
        finally:
            t.join()
        sent = result["lines"][0]["sent"]
        self.assertGreater(sent, 6000, result)
        after = self.quic(agent)
        # Beyond retry_after handshakes in progress every Initial was asked for its
        # address, so the deaf senders hold at most retry_after handshakes (each
        # source one: per address a second one needs a Retry too).
        self.assertGreaterEqual(after["retries"] - before["retries"], sent * 0.9,
                                (sent, after, before))
        self.assertLessEqual(peak, 4 + 1, "state for senders that never answered")
        self.assertLess(joined, 5.0)
        self.assertEqual(after["connections"], 2)
        self.assert_bystander_unharmed(agent, proxy, ctl, s, game, seed=4)
        self.assertEqual(len(proxy_sessions(proxy)), 2)

    def test_one_address_cannot_fill_the_node_with_abandoned_sessions(self):
        echo, proxy, agent = self.node("max_sessions_per_addr = 3\n")
        ctl, s, game = self.session(agent, proxy, echo)
        dest = "127.0.0.1:%d" % echo.addr[1]
        # Register and vanish, ten times, from one address: each session stays (its
        # connection until the idle timeout, then detached for its controller to
        # resume) and counts against the address until it holds 3.
        r = hostile(agent, "sessions", "--count", "10", "--first-source", "127.0.2.10",
                    "--dest", dest)[0]
        self.assertEqual(r, {"acks": 3, "full": 7, "other": 0})
        h = agent.health()[1]
        self.assertEqual(h["counters"]["refused_addr"], 7)
        self.assertEqual(h["sessions"]["active"], 1 + 3)
        # Another address is not held to the first one's sessions.
        r = hostile(agent, "sessions", "--count", "1", "--first-source", "127.0.2.11",
                    "--dest", dest)[0]
        self.assertEqual(r["acks"], 1)
        self.assertEqual(len(proxy_sessions(proxy)), 1 + 3 + 1)
        self.assert_bystander_unharmed(agent, proxy, ctl, s, game, seed=5)

    def test_initials_that_do_not_decrypt_meet_retry_too(self):
        # 1200 random bytes under an Initial's header: each would cost the agent a
        # connection's setup and be gone at once (never a handshake in progress), so
        # the admission also counts connections taken on trust per second.
        echo, proxy, agent = self.node("[quic]\nretry_after = 4\n")
        ctl, s, game = self.session(agent, proxy, echo)
        before = self.quic(agent)
        t0 = time.monotonic()
        r = hostile(agent, "flood", "--kind", "crafted", "--rate", "5000", "--seconds", "2",
                    "--sources", "16", "--first-source", "127.0.4.10")[0]
        elapsed = time.monotonic() - t0
        after = self.quic(agent)
        self.assertGreater(r["sent"], 8000, r)
        taken = after["handshake_failures"] - before["handshake_failures"]
        self.assertLessEqual(taken, 4 * (int(elapsed) + 2), "connections set up for garbage")
        self.assertGreaterEqual(after["retries"] - before["retries"], r["sent"] - taken, r)
        self.assert_bystander_unharmed(agent, proxy, ctl, s, game, seed=6)
