"""shared/httpd against real clients on loopback, through the API fixture
(build/tests/api_fixture): the contract's answers, errors from the route table,
limits (body size, connections, idle time), garbage, slow clients, event streams and
slow readers, static files, the Bearer token, cross-site requests."""
import json
import os
import socket
import time
import unittest

import apifixture
import lstest
import openapi


class HttpdCase(lstest.LSTestCase):
    def setUp(self):
        super().setUp()
        self.fixtures = []

    def tearDown(self):
        bad = []
        for f in self.fixtures:
            was_alive = f.alive()
            rc = f.stop()
            if not was_alive and not getattr(f, "expect_exit", False):
                bad.append("api_fixture died (%s):\n%s" % (rc, f.output()))
            elif was_alive and rc != 0:
                bad.append("api_fixture exited %s:\n%s" % (rc, f.output()))
        super().tearDown()
        if bad:
            self.fail("\n".join(bad))

    def fixture(self, *args):
        f = apifixture.Fixture(self.tmp, *args)
        self.fixtures.append(f)
        return f

    def sock(self, port, timeout=5):
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.closers.append(s.close)
        return s


def recv_all(s, limit=1 << 20):
    out = b""
    while len(out) < limit:
        try:
            b = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not b:
            break
        out += b
    return out


def read_response(s):
    """One HTTP answer with a Content-Length, without waiting for the close."""
    data = b""
    while b"\r\n\r\n" not in data:
        b = s.recv(65536)
        if not b:
            return data
        data += b
    head, body = data.split(b"\r\n\r\n", 1)
    n = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v)
    while len(body) < n:
        b = s.recv(65536)
        if not b:
            break
        body += b
    return head + b"\r\n\r\n" + body


class TestContract(HttpdCase):
    def test_every_answer_validates(self):
        f = self.fixture()
        api = openapi.Client(f.base)
        for path in ("/health", "/status", "/routes", "/proxies", "/proxies/eu-1",
                     "/failovers", "/stats"):
            api.get(path)
        text = api.get("/metrics")
        self.assertIn("lightspeed_controller_switches_total 1", text)
        node = api.post("/proxies", {"name": "as-3", "address": "127.0.0.1:4436"}, status=201)
        self.assertEqual(node["state"], "unknown")
        self.assertEqual(api.get("/proxies/as-3")["name"], "as-3")
        api.expect_error("POST", "/proxies", 409, "exists",
                         {"name": "as-3", "address": "127.0.0.1:1"})
        sw = api.post("/failover", {"to": "us-2"})
        self.assertEqual((sw["from"], sw["to"], sw["reason"]), ("eu-1", "us-2", "manual"))
        self.assertEqual(api.get("/routes")["routes"][0]["active"], "us-2")
        self.assertEqual(api.get("/failovers")["failovers"][0]["to"], "us-2")
        api.expect_error("DELETE", "/proxies/us-2", 409, "conflict")
        self.assertEqual(api.call("DELETE", "/proxies/as-3")[1], {"removed": "as-3"})
        api.expect_error("GET", "/proxies/as-3", 404, "not_found")
        # HEAD is GET without a body.
        st, hd, body = api.raw("HEAD", "/status")
        self.assertEqual((st, body), (200, b""))

    def test_route_table_errors(self):
        f = self.fixture()
        api = openapi.Client(f.base)
        msg = api.expect_error("GET", "/nope", 404, "unknown_command")
        self.assertIn("/nope", msg)
        api.expect_error("GET", "/status/", 404, "unknown_command")
        api.expect_error("DELETE", "/status", 405, "method_not_allowed")
        st, hd, _ = api.raw("PUT", "/proxies")
        self.assertEqual((st, hd.get("Allow")), (405, "GET, POST"))
        st, hd, _ = api.raw("POST", "/proxies/eu-1")
        self.assertEqual((st, hd.get("Allow")), (405, "GET, DELETE"))
        api.expect_error("POST", "/failover", 400, "bad_json", b'{"to":')
        api.expect_error("POST", "/failover", 400, "bad_request", b'["eu-1"]')
        msg = api.expect_error("POST", "/failover", 400, "bad_request", {"too": "eu-1"})
        self.assertIn("too", msg)
        msg = api.expect_error("POST", "/failover", 400, "invalid", {"to": 7})
        self.assertIn("string", msg)
        api.expect_error("POST", "/proxies", 400, "invalid", {"name": "x"})
        api.expect_error("GET", "/status?x=1", 400, "bad_request")
        # A route that takes no body refuses one.
        api.expect_error("DELETE", "/proxies/us-2", 400, "bad_request", {"a": 1})
        # Still serving after all that.
        api.get("/health")


class TestHostile(HttpdCase):
    def test_huge_body_is_refused_unread(self):
        f = self.fixture("--max-body", "4096")
        s = self.sock(f.port)
        # 100 MB announced: the answer comes before (and without) the body.
        s.sendall(b"POST /failover HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n{")
        head = read_response(s)
        self.assertTrue(head.startswith(b"HTTP/1.1 413"), head[:200])
        body = head.split(b"\r\n\r\n", 1)[1]
        self.assertEqual(json.loads(body)["error"]["code"], "too_long")
        # Chunked, no length announced: counted as it comes, refused past the limit.
        s2 = self.sock(f.port)
        s2.sendall(b"POST /failover HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 1000
        for _ in range(8):
            s2.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        s2.sendall(b"0\r\n\r\n")
        self.assertTrue(read_response(s2).startswith(b"HTTP/1.1 413"))
        openapi.Client(f.base).get("/health")

    def test_garbage_does_not_hurt(self):
        # Some garbage leaves a connection waiting for more: the idle timeout ends it.
        f = self.fixture("--timeout", "2")
        junk = [
            b"\x00\xff\xfe\r\n\r\n",
            b"GET / HTTP/9.9\r\n\r\n",
            b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nX: " + b"A" * 100000 + b"\r\n\r\n",
            b"POST /failover HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
            b"\r\nzz\r\n",
            b"POST /failover HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -5\r\n\r\n",
            b"POST /failover HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\n\r\n\xff\xfe\x00{",
            b"GET /proxies/%00%ff HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            b"GET " + b"/a" * 20000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            os.urandom(4096),
        ]
        for j in junk:
            s = self.sock(f.port, timeout=10)
            try:
                s.sendall(j)
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            out = recv_all(s)
            if out:
                # Whatever MHD or we answer, it is an HTTP error status, never a 2xx.
                self.assertRegex(out[:12], rb"^HTTP/1\.[01] [45]\d\d", (j[:40], out[:100]))
            self.assertTrue(f.alive())
        api = openapi.Client(f.base)
        api.get("/status")
        # A body of bytes that are not UTF-8 JSON is a clean 400.
        api.expect_error("POST", "/failover", 400, "bad_json", b"\xff\xfe\x00{")

    def test_slow_clients_do_not_block_and_time_out(self):
        f = self.fixture("--timeout", "2")
        slow = []
        for i in range(6):
            s = self.sock(f.port, timeout=10)
            s.sendall(b"GET /status HTTP/1.1\r\nHost: 127.0.")  # and then nothing
            slow.append(s)
        body = self.sock(f.port, timeout=10)
        body.sendall(b"POST /failover HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{")
        slow.append(body)
        # Others are served at once while those dribble (one loop, never blocked).
        api = openapi.Client(f.base, timeout=2)
        t0 = time.monotonic()
        for _ in range(20):
            api.get("/health")
        self.assertLess(time.monotonic() - t0, 5)
        # The idle ones are closed by the server after its timeout (2 s; slack for a
        # loaded machine).
        t0 = time.monotonic()
        for s in slow:
            out = recv_all(s)
            self.assertNotIn(b"200 OK", out)
        self.assertLess(time.monotonic() - t0, 9)
        api.get("/health")

    def test_connection_limit(self):
        f = self.fixture("--max-conns", "8", "--timeout", "30")
        held = []
        for _ in range(8):
            s = self.sock(f.port)
            s.sendall(b"GET /status HTTP/1.1\r\n")
            held.append(s)
        time.sleep(0.3)
        over = self.sock(f.port, timeout=3)
        try:
            over.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            out = recv_all(over)
        except OSError:
            out = b""
        self.assertEqual(out, b"", "a connection beyond the limit was served")
        for s in held:
            s.close()
        lstest.wait_for(lambda: _health_ok(f.port), 5, what="service after the limit")


def fixture_post(api, path, body):
    """The fixture's test-only routes are not part of the contract: checked by hand."""
    st, _, data = api.raw("POST", path, body)
    assert st == 200, (path, st, data)
    return json.loads(data)


def _health_ok(port):
    try:
        return openapi.Client("http://127.0.0.1:%d" % port, timeout=1).raw(
            "GET", "/health")[0] == 200
    except OSError:
        return False


class TestEvents(HttpdCase):
    def test_stream_gets_published_events(self):
        f = self.fixture()
        api = openapi.Client(f.base)
        a = api.events(timeout=5)
        name, snap = next(a)
        self.assertEqual(name, "snapshot")
        self.assertEqual(snap["routes"][0]["active"], "eu-1")
        b = api.events(timeout=5)
        self.assertEqual(next(b)[0], "snapshot")
        fixture_post(api, "/fixture/publish", {"event": "sample", "count": 3, "data": {
            "name": "eu-1", "rtt_ms": 31.5, "jitter_ms": 1.0, "loss_up": 0, "loss_down": None}})
        for stream in (a, b):
            got = [next(stream) for _ in range(3)]
            self.assertEqual([g[0] for g in got], ["sample"] * 3)
            self.assertEqual(got[0][1]["rtt_ms"], 31.5)
        api.post("/failover")
        names = [next(a)[0], next(a)[0]]
        self.assertEqual(names, ["switch", "backup"])
        self.assertEqual(api.get("/stats")["api"]["streams"], 2)
        a.close()
        b.close()

        # A stream whose reader left is noticed at the next write (an event, or the
        # keepalive comment every 15 s) and its slot freed.
        def gone():
            fixture_post(api, "/fixture/publish", {"event": "dataplane",
                                                  "data": {"connected": True}})
            return api.get("/stats")["api"]["streams"] == 0
        lstest.wait_for(gone, 5, interval=0.1, what="closed streams forgotten")

    def test_event_published_from_a_timer_is_sent_at_once(self):
        # The fixture publishes samples from a loop timer, outside any request: each
        # must leave on that loop turn, not at the next network activity.
        f = self.fixture("--sample-ms", "200")
        ev = openapi.Client(f.base).events(timeout=3)
        self.assertEqual(next(ev)[0], "snapshot")
        t0 = time.monotonic()
        names = [next(ev)[0] for _ in range(6)]
        self.assertEqual(names, ["sample"] * 6)
        self.assertLess(time.monotonic() - t0, 5)
        ev.close()

    def test_slow_reader_loses_events_not_the_loop(self):
        f = self.fixture("--sse-backlog", "65536")
        api = openapi.Client(f.base)
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect(("127.0.0.1", f.port))
        self.closers.append(slow.close)
        slow.sendall(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        time.sleep(0.3)
        fast = api.events(timeout=5)
        self.assertEqual(next(fast)[0], "snapshot")
        pad = "x" * 3000
        t0 = time.monotonic()
        # Batches the size of a fast reader's backlog: it keeps up, the slow one cannot.
        for _ in range(150):
            fixture_post(api, "/fixture/publish", {"event": "decision", "count": 20, "data": {
                "time": "2026-01-01T00:00:00Z", "kind": "hold", "node": "eu-1",
                "detail": pad}})
            for _ in range(20):
                self.assertEqual(next(fast)[0], "decision")
        self.assertLess(time.monotonic() - t0, 60)
        st = api.get("/stats")["api"]
        self.assertGreater(st["events_dropped"], 0)
        self.assertGreaterEqual(st["events_sent"], 3000)
        # The slow reader, reading at last, is told how many it lost.
        fixture_post(api, "/fixture/publish", {"event": "dataplane", "data": {"connected": True}})
        slow.settimeout(3)
        data = b""
        while b"event: dropped" not in data:
            b = slow.recv(65536)
            if not b:
                break
            data += b
        self.assertIn(b"event: dropped", data)
        fast.close()


class TestStatic(HttpdCase):
    def test_files_types_and_no_traversal(self):
        root = os.path.join(self.tmp, "www")
        os.makedirs(os.path.join(root, "js"))
        outside = os.path.join(self.tmp, "secret.txt")
        for p, text in (("index.html", "<!doctype html><title>x</title>"),
                        ("js/app.js", "console.log(1)"), ("style.css", "body{}"),
                        (".hidden", "no"), ("../secret.txt", "secret")):
            with open(os.path.join(root, p), "w") as fh:
                fh.write(text)
        os.symlink(outside, os.path.join(root, "link.txt"))
        f = self.fixture("--static", root)
        api = openapi.Client(f.base)
        for path, ctype, text in (("/", "text/html", "<!doctype"),
                                  ("/index.html", "text/html", "<!doctype"),
                                  ("/js/app.js", "text/javascript", "console"),
                                  ("/style.css", "text/css", "body")):
            st, hd, body = api.raw("GET", path)
            self.assertEqual(st, 200, path)
            self.assertTrue(hd["Content-Type"].startswith(ctype), (path, hd))
            self.assertTrue(body.decode().startswith(text))
            self.assertEqual(hd.get("X-Content-Type-Options"), "nosniff")
        for path in ("/../secret.txt", "/js/../../secret.txt", "/%2e%2e/secret.txt",
                     "/js/%2e%2e/%2e%2e/secret.txt", "/.hidden", "/link.txt", "/js",
                     "/nothing.html", "/js//app.js", "/..%2fsecret.txt", "/%5c..%5csecret.txt"):
            s = self.sock(f.port)
            s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Connection: close\r\n\r\n")
            out = recv_all(s)
            self.assertRegex(out[:12], rb"HTTP/1\.1 4\d\d", path)
            self.assertNotIn(b"secret", out.split(b"\r\n\r\n", 1)[-1], path)
        # The API routes still win over files.
        api.get("/status")


class TestAccess(HttpdCase):
    def test_bearer_token(self):
        f = self.fixture("--token", "s3cret-token")
        api = openapi.Client(f.base)
        msg = api.expect_error("GET", "/status", 401, "unauthorized")
        self.assertIn("Bearer", msg)
        openapi.Client(f.base, token="wrong").expect_error("GET", "/status", 401,
                                                           "unauthorized")
        ok = openapi.Client(f.base, token="s3cret-token")
        ok.get("/status")
        self.assertEqual(ok.get("/stats")["api"]["auth_failures"], 2)
        self.assertIn("Authorization: Bearer", f.output())

    def test_beyond_loopback_needs_a_token(self):
        f = apifixture.Fixture(self.tmp, "--listen", "0.0.0.0:0", expect_fail=True)
        self.assertEqual(f.wait(), 1)
        self.assertIn("set a token", f.output())
        f.stop()
        g = self.fixture("--listen", "0.0.0.0:0", "--token", "t0k")
        self.assertIn("reachable from other hosts", g.output())
        openapi.Client(g.base).expect_error("GET", "/health", 401, "unauthorized")
        openapi.Client(g.base, token="t0k").get("/health")

    def test_cross_site_requests_refused(self):
        f = self.fixture()
        api = openapi.Client(f.base)
        host = "127.0.0.1:%d" % f.port
        api.expect_error("POST", "/failover", 403, "forbidden", {},
                         {"Origin": "http://evil.example"})
        # DNS rebinding: a foreign name pointing at loopback.
        api.expect_error("GET", "/status", 403, "forbidden", None,
                         {"Host": "evil.example:%d" % f.port})
        # The page served by this same server may.
        st, _ = api.call("POST", "/failover", {}, {"Origin": "http://" + host})
        self.assertEqual(st, 200)
        st, _ = api.call("GET", "/status", None, {"Host": "localhost:%d" % f.port})
        self.assertEqual(st, 200)


if __name__ == "__main__":
    unittest.main()
