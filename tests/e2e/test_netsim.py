"""ls-netsim, the impairment emulator the tests and benchmarks use instead of tc netem:
it must do what its SPEC says, count exactly what it did, and be reproducible."""
import collections
import json
import os
import random
import socket
import statistics
import struct
import subprocess
import threading
import time

from lstest import NETSIM, LSTestCase, Steer, free_port, wait_for

LOSS_KEYS = ("lost_random", "lost_burst", "rate_dropped", "queue_full", "send_errors")


class Endpoint(threading.Thread):
    """A UDP socket on loopback that records every datagram it receives with its
    arrival time; datagrams start with a 4-byte sequence number."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.addr = self.sock.getsockname()
        self.got = []  # (seq or None, arrival time, length, payload)
        self.lock = threading.Lock()
        self._halt = False
        self.start()

    def run(self):
        while not self._halt:
            try:
                data = self.sock.recv(65535)
            except socket.timeout:
                continue
            except OSError:
                if self._halt:
                    return
                continue  # an ICMP error reported on the socket; keep listening
            t = time.monotonic()
            seq = struct.unpack_from(">I", data)[0] if len(data) >= 4 else None
            with self.lock:
                self.got.append((seq, t, len(data), data))

    def count(self):
        with self.lock:
            return len(self.got)

    def records(self):
        with self.lock:
            return list(self.got)

    def seqs(self):
        return [r[0] for r in self.records()]

    def clear(self):
        with self.lock:
            self.got = []

    def wait_quiet(self, quiet=0.3, timeout=10.0):
        """Wait until nothing has arrived for `quiet` seconds."""
        end = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while time.monotonic() < end:
            n = self.count()
            if n != last:
                last, since = n, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return n
            time.sleep(0.02)
        raise AssertionError("traffic did not stop")

    def close(self):
        self._halt = True
        self.join(1)
        self.sock.close()


def payload(seq, size=64):
    return struct.pack(">I", seq) + b"\xa5" * (size - 4)


def blast(sock, dest, payloads, chunk=50, pause=0.001):
    """Send quickly but in chunks, so no socket buffer on the way overflows."""
    times = []
    for i, p in enumerate(payloads):
        times.append(time.monotonic())
        sock.sendto(p, dest)
        if i % chunk == chunk - 1:
            time.sleep(pause)
    return times


def runs_of(lost, n):
    """Lengths of the runs of consecutive lost sequence numbers in 0..n-1."""
    runs, cur = [], 0
    for s in range(n):
        if s in lost:
            cur += 1
        elif cur:
            runs.append(cur)
            cur = 0
    if cur:
        runs.append(cur)
    return runs


def late_arrivals(seqs):
    """First arrivals of a sequence number below one already seen: what a receiver
    calls reordered."""
    seen, top, late = set(), -1, 0
    for s in seqs:
        if s in seen:
            continue
        seen.add(s)
        if s < top:
            late += 1
        top = max(top, s)
    return late


class NetsimTest(LSTestCase):

    def endpoint(self):
        e = Endpoint()
        self.closers.append(e.close)
        return e


    def finish(self, p):
        """Stop it with SIGTERM and return the JSON line it printed on the way out."""
        rc = p.stop()
        p.expect_exit = True
        with open(p.log_path, "rb") as f:
            lines = f.read().decode(errors="replace").splitlines()
        self.assertEqual(rc, 0, "\n".join(lines))
        finals = [l for l in lines if l.startswith('{"up"')]
        self.assertEqual(len(finals), 1, "\n".join(lines))
        return json.loads(finals[0])

    def drained(self, p):
        """Stats once nothing is waiting in the delay queue any more."""
        def idle():
            st = p.stats()
            return st if st["up"]["queued"] == 0 and st["down"]["queued"] == 0 else None
        return wait_for(idle, 5, what="an empty delay queue")

    def assert_balanced(self, st):
        for d in ("up", "down"):
            c = st[d]
            self.assertEqual(c["received"] + c["duplicated"],
                             c["sent"] + c["queued"] + sum(c[k] for k in LOSS_KEYS),
                             "%s counters do not add up: %r" % (d, c))

    # ---- loss ----

    def test_random_loss_within_bounds_and_counted(self):
        sink = self.endpoint()
        ns = self.netsim(sink.addr, up="loss=10%", seed=7)
        src = self.endpoint()
        n = 5000
        blast(src.sock, ns.addr, [payload(i) for i in range(n)])
        sink.wait_quiet()
        got = set(sink.seqs())
        lost = n - len(got)
        self.assertEqual(len(got), sink.count(), "loss alone must not duplicate")
        self.assertTrue(0.08 * n <= lost <= 0.12 * n, "lost %d of %d" % (lost, n))
        st = self.drained(ns)
        self.assertEqual(st["up"]["received"], n)
        self.assertEqual(st["up"]["lost_random"], lost)
        self.assertEqual(st["up"]["sent"], len(got))
        self.assertEqual(st["up"]["lost_burst"], 0)
        self.assertEqual(st["up"]["socket_drops"], 0)
        self.assert_balanced(st)
        final = self.finish(ns)
        self.assertEqual(final["up"], st["up"])
        self.assertEqual(final["spec"]["up"], "loss=10%")
        self.assertEqual(final["seed"], 7)

    def _lost_both_ways(self, seed, n=2000):
        """Send n packets through an echo with loss and duplication both ways; return
        the sequence numbers lost going up, lost in total, and duplicated."""
        echo = self.echo()
        ns = self.netsim(echo.addr, up="loss=10%,dup=3%", down="loss=10%,dup=3%", seed=seed)
        cli = self.endpoint()
        blast(cli.sock, ns.addr, [payload(i) for i in range(n)], chunk=25, pause=0.002)
        cli.wait_quiet()
        st = self.drained(ns)
        self.assert_balanced(self.finish(ns))
        up_seen = [struct.unpack_from(">I", d)[0] for d in echo.payloads()]
        back = cli.seqs()
        self.assertEqual(st["up"]["sent"], len(up_seen))
        self.assertEqual(st["down"]["received"], len(up_seen))
        self.assertEqual(st["down"]["sent"], len(back))
        dups = {s for s, k in collections.Counter(back).items() if k > 1}
        return set(range(n)) - set(up_seen), set(range(n)) - set(back), dups

    def test_same_seed_same_decisions(self):
        a = self._lost_both_ways(seed=1234)
        b = self._lost_both_ways(seed=1234)
        c = self._lost_both_ways(seed=1235)
        self.assertTrue(a[0] and a[1] and a[2])
        self.assertEqual(a, b, "the same seed must lose and duplicate the same packets")
        self.assertNotEqual(a[1], c[1], "another seed should lose other packets")

    def test_burst_loss_has_longer_runs(self):
        sink = self.endpoint()
        ns = self.netsim(sink.addr, up="loss=5%", seed=3)
        src = self.endpoint()
        n = 10000
        result = {}
        for spec in ("loss=5%", "burst=5%:4"):
            ns.steer("set", dir="up", spec=spec)
            ns.steer("reset")
            sink.clear()
            blast(src.sock, ns.addr, [payload(i) for i in range(n)])
            sink.wait_quiet()
            lost = set(range(n)) - set(sink.seqs())
            st = self.drained(ns)
            self.assertEqual(st["up"]["lost_random"] + st["up"]["lost_burst"], len(lost))
            self.assert_balanced(st)
            runs = runs_of(lost, n)
            result[spec] = (len(lost) / n, statistics.mean(runs), st["up"])
        frac, mean_run, c = result["loss=5%"]
        self.assertTrue(0.04 <= frac <= 0.06, "random loss %.3f" % frac)
        self.assertLess(mean_run, 1.2)
        self.assertEqual(c["lost_burst"], 0)
        frac, mean_run, c = result["burst=5%:4"]
        self.assertTrue(0.03 <= frac <= 0.075, "burst loss %.3f" % frac)
        self.assertTrue(3.0 <= mean_run <= 5.5, "mean burst %.2f, configured 4" % mean_run)
        self.assertEqual(c["lost_random"], 0)
        self.assertGreater(mean_run, 2.5 * result["loss=5%"][1])
        # The explicit Gilbert-Elliott form of the same model reads back as itself.
        r = ns.steer("set", dir="up", spec="ge=1.3%:25%")
        self.assertEqual(r["up"], "ge=1.3%:25%:100%")

    # ---- delay, jitter, order ----

    def _rtt_ms(self, ns, cli, n=15):
        out = []
        for i in range(n):
            cli.clear()
            t0 = time.monotonic()
            cli.sock.sendto(payload(i), ns.addr)
            wait_for(lambda: cli.count() > 0, 2, 0.0005, "an echo")
            out.append((cli.records()[0][1] - t0) * 1000)
        return statistics.median(out)

    def test_delay_adds_to_rtt(self):
        echo = self.echo()
        ns = self.netsim(echo.addr)
        cli = self.endpoint()
        base = self._rtt_ms(ns, cli)
        self.assertLess(base, 10)
        ns.steer("set", dir="up", spec="delay=20ms")
        added = self._rtt_ms(ns, cli) - base
        self.assertTrue(19.5 <= added <= 25, "delay=20ms added %.2f ms" % added)
        r = ns.steer("set", dir="down", spec="delay=5ms")
        self.assertEqual(r, {"up": "delay=20ms", "down": "delay=5ms"})
        added = self._rtt_ms(ns, cli) - base
        self.assertTrue(24.5 <= added <= 30, "20ms + 5ms added %.2f ms" % added)
        ns.steer("set", dir="both", spec="delay=1500us")
        added = self._rtt_ms(ns, cli) - base
        self.assertTrue(2.8 <= added <= 6, "2 x 1500us added %.2f ms" % added)
        st = self.drained(ns)
        self.assertGreater(st["up"]["delayed"], 0)
        self.assertEqual(st["up"]["sent"], 60)
        self.assertEqual(st["down"]["sent"], 60)

    def _one_way(self, ns, sink, src, n=400):
        sink.clear()
        times = blast(src.sock, ns.addr, [payload(i) for i in range(n)], chunk=4, pause=0.0005)
        sink.wait_quiet()
        recs = sink.records()
        self.assertEqual(len(recs), n)
        delays = [(t - times[s]) * 1000 for s, t, _, _ in recs]
        return [s for s, _, _, _ in recs], delays

    def test_jitter_reorders_unless_order(self):
        sink = self.endpoint()
        ns = self.netsim(sink.addr, up="delay=10ms,jitter=5ms")
        src = self.endpoint()
        seqs, delays = self._one_way(ns, sink, src)
        self.assertGreater(min(delays), 4.9)
        self.assertLess(statistics.median(delays), 13)
        self.assertGreater(statistics.pstdev(delays), 2.0, "uniform +-5ms has sd 2.9ms")
        self.assertGreater(late_arrivals(seqs), 10, "jitter alone should reorder")
        ns.steer("set", dir="up", spec="delay=10ms,jitter=5ms,order")
        seqs, delays = self._one_way(ns, sink, src)
        self.assertEqual(seqs, sorted(seqs), "order must keep FIFO")
        self.assertGreater(min(delays), 4.9)
        ns.steer("set", dir="up", spec="delay=10ms,jitter=2ms:normal")
        seqs, delays = self._one_way(ns, sink, src)
        self.assertTrue(1.2 <= statistics.pstdev(delays) <= 3.5)
        st = self.drained(ns)
        self.assertEqual(st["up"]["reordered"], 0, "jitter's reordering is not reorder=")
        self.assertEqual(st["up"]["delayed"], 1200)

    # ---- duplication and reordering ----

    def test_dup_count_matches_receiver(self):
        sink = self.endpoint()
        ns = self.netsim(sink.addr, up="dup=10%", seed=11)
        src = self.endpoint()
        n = 3000
        blast(src.sock, ns.addr, [payload(i) for i in range(n)])
        sink.wait_quiet()
        seqs = sink.seqs()
        self.assertEqual(set(seqs), set(range(n)))
        extra = len(seqs) - n
        st = self.drained(ns)
        self.assertEqual(st["up"]["duplicated"], extra)
        self.assertTrue(0.08 * n <= extra <= 0.12 * n, "duplicated %d of %d" % (extra, n))
        self.assertEqual(late_arrivals(seqs), 0, "a copy follows its original")
        self.assert_balanced(st)

    def test_reorder_count_matches_receiver(self):
        sink = self.endpoint()
        ns = self.netsim(sink.addr, up="reorder=10%", seed=12)
        src = self.endpoint()
        n = 3000
        blast(src.sock, ns.addr, [payload(i) for i in range(n)])
        sink.wait_quiet()
        seqs = sink.seqs()
        self.assertEqual(sorted(seqs), list(range(n)))
        late = late_arrivals(seqs)
        st = self.drained(ns)
        self.assertEqual(st["up"]["reordered"], late)
        # A held packet's successor is never held itself: about p/(1+p) are reordered.
        self.assertTrue(0.065 * n <= late <= 0.12 * n, "reordered %d of %d" % (late, n))
        # Each late packet is exactly one place late: it comes right after its successor.
        pos = {s: i for i, s in enumerate(seqs)}
        for s in range(n - 1):
            if pos[s] > pos[s + 1]:
                self.assertEqual(pos[s], pos[s + 1] + 1)
        self.assert_balanced(st)

    # ---- rate ----

    def test_rate_limit_caps_throughput(self):
        sink = self.endpoint()
        ns = self.netsim(sink.addr, up="rate=2mbit")
        src = self.endpoint()
        n, size = 1000, 1000
        # About 8 Mbit/s for one second: four times the rate.
        t0 = time.monotonic()
        times = []
        for i in range(n):
            times.append(time.monotonic())
            src.sock.sendto(payload(i, size), ns.addr)
            if i % 10 == 9:
                time.sleep(max(0, t0 + (i + 1) / 1000.0 - time.monotonic()))
        sink.wait_quiet()
        recs = sink.records()
        st = self.drained(ns)
        self.assertEqual(st["up"]["received"], n)
        self.assertEqual(st["up"]["sent"], len(recs))
        self.assertGreater(st["up"]["rate_dropped"], n // 2)
        self.assertEqual(st["up"]["sent"] + st["up"]["rate_dropped"], n)
        span = recs[-1][1] - recs[0][1]
        mbit = sum(r[2] for r in recs[1:]) * 8 / span / 1e6
        self.assertTrue(1.8 <= mbit <= 2.1, "throughput %.3f Mbit/s at rate=2mbit" % mbit)
        # The default queue (15000B at 2mbit: 60 ms) bounds the queueing delay.
        worst = max((t - times[s]) * 1000 for s, t, _, _ in recs)
        self.assertLess(worst, 75)
        self.assertEqual(self.finish(ns)["spec"]["up"], "rate=2mbit:15000B:0B")

    def test_queue_cap_counts_queue_full(self):
        sink = self.endpoint()
        ns = self.netsim(sink.addr, up="delay=300ms", extra=["--queue-cap", "100"])
        src = self.endpoint()
        blast(src.sock, ns.addr, [payload(i) for i in range(300)])
        wait_for(lambda: sink.count() >= 100, 3, what="the delayed packets")
        sink.wait_quiet()
        st = self.drained(ns)
        self.assertEqual(sink.seqs(), list(range(100)))
        self.assertEqual(st["up"]["queue_full"], 200)
        self.assertEqual(st["up"]["sent"], 100)
        self.assert_balanced(st)

    # ---- robustness ----

    def test_garbage_and_oversize_forwarded_to_each_client(self):
        echo = self.echo()
        ns = self.netsim(echo.addr)
        clients = [self.endpoint() for _ in range(5)]
        rnd = random.Random(5)
        sizes = [0, 1, 3, 1472, 1473, 2048, 2049, 9000, 65000, 65507]
        sent = {c.addr: [] for c in clients}
        for i in range(40):
            for c in clients:
                size = sizes[i] if i < len(sizes) else rnd.randint(0, 4000)
                data = os.urandom(size)
                sent[c.addr].append(data)
                c.sock.sendto(data, ns.addr)
                wait_for(lambda: c.count() == len(sent[c.addr]), 2, 0.001, "an echo")
        for c in clients:
            self.assertEqual([r[3] for r in c.records()], sent[c.addr])
        st = self.drained(ns)
        self.assertEqual(st["clients"], 5)
        self.assertEqual(st["up"]["received"], 200)
        self.assertEqual(st["up"]["sent"], 200)
        self.assertEqual(st["down"]["sent"], 200)
        self.assertEqual(len(echo.sources()), 5, "one upstream socket per client")

        # Now everything at once, impaired, fire and forget: it must all add up.
        ns.steer("set", spec="delay=2ms,jitter=2ms,reorder=20%,dup=20%,loss=5%,"
                             "burst=5%:3,rate=50mbit:64kB:64kB")
        for i in range(300):
            c = clients[i % 5]
            c.sock.sendto(os.urandom(rnd.choice([0, 5, 700, 3000, 30000, 65507])), ns.addr)
        for c in clients:
            c.wait_quiet()
        st = self.drained(ns)
        self.assertEqual(st["up"]["received"], 500)
        self.assert_balanced(st)
        self.assertGreater(st["up"]["rate_dropped"], 0)

        # And junk on the control socket.
        s = Steer(ns.sock_path)
        for line in (b"\n", b"nonsense\n", b"{}\n", b'{"cmd":"set"}\n',
                     b'{"cmd":"set","dir":"sideways","spec":"loss=1%"}\n',
                     b'{"cmd":"set","spec":7}\n', b"\xff\xfe\n",
                     b'{"cmd":"set","spec":"' + b"loss=1%," * 500 + b'"}\n'):
            s.send_raw(line)
        bad = s.call("set", dir="up", spec="loss=150%")
        self.assertFalse(bad["ok"])
        self.assertEqual(bad["error"]["code"], "invalid")
        self.assertIn("100%", bad["error"]["message"])
        s.close()
        self.assertTrue(ns.alive())
        self.assert_balanced(self.finish(ns))

    # ---- run time control ----

    def test_set_changes_impairment_at_run_time(self):
        sink = self.endpoint()
        ns = self.netsim(sink.addr, seed=9)
        src = self.endpoint()
        n = 1000
        phases = []
        for spec in ("none", "loss=50%", "none"):
            r = ns.steer("set", dir="up", spec=spec)
            self.assertEqual(r["up"], spec)
            self.assertEqual(r["down"], "none")
            sink.clear()
            blast(src.sock, ns.addr, [payload(i) for i in range(n)])
            sink.wait_quiet()
            phases.append(len(set(sink.seqs())))
        self.assertEqual(phases[0], n)
        self.assertTrue(0.4 * n <= phases[1] <= 0.6 * n, "kept %d of %d" % (phases[1], n))
        self.assertEqual(phases[2], n)
        st = self.drained(ns)
        self.assertEqual(st["up"]["lost_random"], n - phases[1])
        self.assertEqual(st["spec"], {"up": "none", "down": "none"})
        ns.steer("reset", dir="up")
        self.assertEqual(ns.stats()["up"]["received"], 0)
        help_cmds = {c["cmd"] for c in ns.steer("help")["commands"]}
        self.assertTrue({"stats", "set", "reset"} <= help_cmds)

    def test_command_line(self):
        out = subprocess.run([NETSIM, "--help"], capture_output=True, text=True, timeout=5)
        self.assertEqual(out.returncode, 0)
        for word in ("loss=P", "burst=AVG:LEN", "ge=P_GB:P_BG", "rate=R", "reorder=P"):
            self.assertIn(word, out.stdout)
        port = free_port()
        for args, msg in ((["--up", "loss=5"], "fraction"),
                          (["--down", "delay=5"], "unit"),
                          (["--up", "burst=10%:0.5"], "at least 1"),
                          (["--seed", "x"], "--seed"),
                          (["--bogus"], "try --help")):
            out = subprocess.run([NETSIM, "--listen", "127.0.0.1:%d" % port,
                                  "--upstream", "127.0.0.1:9"] + args,
                                 capture_output=True, text=True, timeout=5)
            self.assertEqual(out.returncode, 2, args)
            self.assertIn(msg, out.stderr, args)
        out = subprocess.run([NETSIM, "--upstream", "127.0.0.1:9"], capture_output=True,
                             text=True, timeout=5)
        self.assertEqual(out.returncode, 2)
        self.assertIn("required", out.stderr)
