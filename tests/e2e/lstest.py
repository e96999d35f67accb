"""Helpers for the end-to-end tests: real binaries, real sockets, on loopback."""
import json
import os
import random
import select
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest

BUILD = os.environ.get("LS_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
BIN = os.path.join(BUILD, "bin")
NETSIM = os.path.join(os.path.abspath(BUILD), "tests", "ls-netsim")

KEEPALIVE, HANDSHAKE, FIN, AUTH = 0x1, 0x2, 0x4, 0x8
HDR = struct.Struct(">BBHIIIHH")


def ip2int(ip):
    return struct.unpack(">I", socket.inet_aton(ip))[0]


def pack_header(version=1, flags=0, token=0, seq=0, ts=0, src=("127.0.0.1", 1),
                dst=("127.0.0.1", 1), fec=None, session_id=None):
    b = HDR.pack((version << 4) | flags, token, seq & 0xffff, ts & 0xffffffff,
                 ip2int(src[0]), ip2int(dst[0]), src[1], dst[1])
    if version == 2:
        b += struct.pack(">HBB", *(fec or (0, 0, 0)))
    if session_id is not None:
        b += struct.pack(">I", session_id)
    return b


def unpack_header(data):
    v, token, seq, ts, sip, dip, sport, dport = HDR.unpack_from(data)
    return dict(version=v >> 4, flags=v & 0xf, token=token, seq=seq, ts=ts,
                src=(socket.inet_ntoa(struct.pack(">I", sip)), sport),
                dst=(socket.inet_ntoa(struct.pack(">I", dip)), dport))


def free_port(kind=socket.SOCK_DGRAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_for(pred, timeout=5.0, interval=0.02, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError("timed out waiting for %s" % what)


class Echo(threading.Thread):
    """A UDP game server: echoes each datagram (through `transform`) and records it."""

    def __init__(self, host="127.0.0.1", port=0, transform=None):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((host, port))
        self.addr = self.sock.getsockname()
        self.transform = transform or (lambda d: d)
        self.received = []          # (payload, source address)
        self.lock = threading.Lock()
        self._halt = False
        self.start()

    def run(self):
        while not self._halt:
            r, _, _ = select.select([self.sock], [], [], 0.05)
            if not r:
                continue
            try:
                data, peer = self.sock.recvfrom(65535)
            except OSError:
                return
            with self.lock:
                self.received.append((data, peer))
            out = self.transform(data)
            if out is not None:
                self.sock.sendto(out, peer)

    def count(self):
        with self.lock:
            return len(self.received)

    def payloads(self):
        with self.lock:
            return [d for d, _ in self.received]

    def sources(self):
        with self.lock:
            return {p for _, p in self.received}

    def close(self):
        self._halt = True
        self.join(1)
        self.sock.close()


class Steer:
    """A steering-socket connection: one JSON object per line."""

    def __init__(self, path, timeout=5.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.next_id = 1

    def send_raw(self, data):
        self.sock.sendall(data)

    def read_line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("steering socket closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def call(self, cmd, **args):
        rid = self.next_id
        self.next_id += 1
        self.send_raw((json.dumps(dict(id=rid, cmd=cmd, **args)) + "\n").encode())
        while True:
            msg = self.read_line()
            if msg.get("id") == rid:
                return msg

    def ok(self, cmd, **args):
        r = self.call(cmd, **args)
        if not r.get("ok"):
            raise AssertionError("%s failed: %r" % (cmd, r))
        return r["result"]

    def close(self):
        self.sock.close()


def steer_ok(path, cmd, **args):
    s = Steer(path)
    try:
        return s.ok(cmd, **args)
    finally:
        s.close()


class Proc:
    """A real LightSpeed process with a steering socket."""

    def __init__(self, name, args, sock_path, tmp, env=None, prefix=()):
        self.name = name
        self.sock_path = sock_path
        self.log_path = os.path.join(tmp, "%s-%d.log" % (name, random.randrange(1 << 30)))
        self.log = open(self.log_path, "wb")
        # prefix: what runs it, e.g. ("ip", "netns", "exec", NS) for a network namespace.
        self.p = subprocess.Popen(list(prefix) + [os.path.join(BIN, name)] + args, stdout=self.log,
                                  stderr=subprocess.STDOUT, env=env)
        try:
            wait_for(self._ready, 5, what="%s steering socket" % name)
        except AssertionError:
            self.p.kill()
            raise AssertionError("%s did not start:\n%s" % (name, self.output()))

    def _ready(self):
        if self.p.poll() is not None:
            raise AssertionError("%s exited with %s:\n%s" % (self.name, self.p.returncode,
                                                            self.output()))
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(self.sock_path)
            s.close()
            return True
        except OSError:
            return False

    def alive(self):
        return self.p.poll() is None

    def output(self):
        if not self.log.closed:  # stop() closes it; a dead process's log is still read
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def steer(self, cmd, **args):
        return steer_ok(self.sock_path, cmd, **args)

    def stats(self):
        return self.steer("stats")

    def stop(self, sig=signal.SIGTERM):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
                raise AssertionError("%s did not exit on signal %d" % (self.name, sig))
        self.log.close()
        return self.p.returncode


class Game:
    """A game socket on loopback talking to the client's local port."""

    def __init__(self, port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.dest = ("127.0.0.1", port)
        self.addr = self.sock.getsockname()

    def send(self, data):
        self.sock.sendto(data, self.dest)

    def recv_all(self, timeout=0.5):
        """Datagrams until nothing arrives for `timeout` seconds."""
        out = []
        while True:
            r, _, _ = select.select([self.sock], [], [], timeout)
            if not r:
                return out
            data, peer = self.sock.recvfrom(65535)
            out.append((data, peer))

    def exchange(self, payloads, window=32, timeout=3.0):
        """Send payloads keeping at most `window` unanswered; return the replies."""
        replies = []
        sent = 0
        deadline = time.monotonic() + timeout
        while len(replies) < len(payloads):
            while sent < len(payloads) and sent - len(replies) < window:
                self.send(payloads[sent])
                sent += 1
                deadline = time.monotonic() + timeout
            wait = deadline - time.monotonic()
            if wait <= 0:
                break
            r, _, _ = select.select([self.sock], [], [], wait)
            if r:
                data, peer = self.sock.recvfrom(65535)
                replies.append((data, peer))
        # Anything extra (a duplicate) would show up here.
        replies += self.recv_all(0.2)
        return replies

    def stream(self, payloads, at, action):
        """Send payloads without waiting for answers (reading what comes every 16), run
        action() right after payload number `at` left; return every reply."""
        replies = []
        for i, pl in enumerate(payloads):
            self.send(pl)
            if i == at:
                action()
            if i % 16 == 15:
                replies += self.recv_all(0.001)
        return replies + self.recv_all(1.0)

    def exchange_lossy(self, payloads, window=32, stall=0.05, drain=0.5):
        """Send payloads keeping at most `window` unanswered on a path that loses some:
        when no answer comes for `stall` seconds, those awaited count as lost and the
        window opens again. Returns every reply that came, late ones included."""
        replies = []
        sent = given_up = 0
        while sent < len(payloads):
            while sent < len(payloads) and sent - len(replies) - given_up < window:
                self.send(payloads[sent])
                sent += 1
            r, _, _ = select.select([self.sock], [], [], stall)
            if r:
                replies.append(self.sock.recvfrom(65535))
            else:
                given_up = sent - len(replies)
        return replies + self.recv_all(drain)

    def close(self):
        self.sock.close()


def numbered_payloads(n, seed, tag=b""):
    """n distinct payloads of 1..1400 bytes: a tag and a serial number, then filler."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        head = tag + b"%d;" % i
        size = rnd.randint(1, 1400)
        if size < len(head):
            # Short ones still must be unique: use the shortest unique form.
            body = (tag + i.to_bytes(4, "big"))[:max(size, 4 + len(tag))]
        else:
            body = head + bytes(rnd.getrandbits(8) for _ in range(size - len(head)))
        out.append(body)
    return out


class LSTestCase(unittest.TestCase):
    """Starts processes in a private temporary directory and stops them afterwards."""

    def setUp(self):
        self.tmpdir = tempfile.TemporaryDirectory(prefix="ls-e2e-")
        self.tmp = self.tmpdir.name
        self.procs = []
        self.closers = []

    def tearDown(self):
        problems = []
        for p in reversed(self.procs):
            was_alive = p.alive()
            try:
                rc = p.stop()
            except AssertionError as e:
                problems.append(str(e))
                continue
            if was_alive and rc != 0:
                problems.append("%s exited with %s:\n%s" % (p.name, rc, p.output()))
            elif not was_alive and not getattr(p, "expect_exit", False):
                problems.append("%s had died (status %s):\n%s" % (p.name, rc, p.output()))
        for c in reversed(self.closers):
            c()
        self.tmpdir.cleanup()
        if problems:
            self.fail("\n".join(problems))

    def echo(self, **kw):
        e = Echo(**kw)
        self.closers.append(e.close)
        return e

    def game(self, port):
        g = Game(port)
        self.closers.append(g.close)
        return g

    def path(self, name):
        return os.path.join(self.tmp, name)

    def proxy(self, *args, config=None, auth=False, allow=("127.0.0.0/8",), port=None):
        port = port or free_port()
        sock = self.path("proxy-%d.sock" % port)
        argv = ["--bind", "127.0.0.1:%d" % port, "--socket", sock, "--log-level", "debug"]
        for a in allow:
            argv += ["--allow", a]
        if not auth:
            argv.append("--insecure-no-auth")
        if config is not None:
            cfg = self.path("proxy-%d.toml" % port)
            with open(cfg, "w") as f:
                f.write(config)
            argv = ["-c", cfg] + argv
        p = Proc("lightspeed-proxy", argv + list(args), sock, self.tmp)
        p.port = port
        p.addr = ("127.0.0.1", port)
        self.procs.append(p)
        return p

    def client(self, proxy_port, game_server, *args, session=None, keepalive_ms=None):
        local = free_port()
        sock = self.path("client-%d.sock" % local)
        # proxy_port None: no --proxy (routes come by steering, route_add).
        argv = (["--proxy", "127.0.0.1:%d" % proxy_port] if proxy_port is not None else []) + [
                "--game-server", "%s:%d" % game_server, "--local-port", str(local),
                "--socket", sock, "--log-level", "debug"]
        if session:
            argv += ["--session-id", str(session[0]), "--key", session[1]]
        if keepalive_ms:
            argv += ["--keepalive-ms", str(keepalive_ms)]
        c = Proc("lightspeed-client", argv + list(args), sock, self.tmp)
        c.local_port = local
        self.procs.append(c)
        return c

    def netsim(self, upstream, up=None, down=None, seed=1, extra=()):
        """ls-netsim in front of `upstream` (tests/netsim/README.md); .addr is where to
        send, and its steering socket takes `set` and `stats`."""
        port = free_port()
        sock = self.path("netsim-%d.sock" % port)
        argv = ["--listen", "127.0.0.1:%d" % port, "--upstream", "%s:%d" % tuple(upstream),
                "--socket", sock, "--seed", str(seed), "--log-level", "debug"]
        if up is not None:
            argv += ["--up", up]
        if down is not None:
            argv += ["--down", down]
        # Proc joins its name to build/bin; an absolute path survives the join.
        p = Proc(NETSIM, argv + list(extra), sock, self.tmp)
        p.port = port
        p.addr = ("127.0.0.1", port)
        self.procs.append(p)
        return p

    def run_bin(self, name, *args):
        """Run a program of build/bin to completion (command-line checks)."""
        return subprocess.run([os.path.join(BIN, name)] + list(args), capture_output=True,
                              text=True, timeout=10)

    def write(self, name, text):
        p = self.path(name)
        with open(p, "w") as f:
            f.write(text)
        return p

    def udp(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.settimeout(2)
        self.closers.append(s.close)
        return s

    def assert_exchange(self, game, payloads, **kw):
        replies = game.exchange(payloads, **kw)
        got = [d for d, _ in replies]
        self.assertEqual(len(got), len(payloads),
                         "sent %d, got %d back" % (len(payloads), len(got)))
        self.assertEqual(sorted(got), sorted(payloads), "replies differ from what was sent")
        return replies


def udp_ports_of(pid):
    """Local UDP ports a process has open (from /proc)."""
    inodes = set()
    fddir = "/proc/%d/fd" % pid
    for fd in os.listdir(fddir):
        try:
            link = os.readlink(os.path.join(fddir, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    ports = set()
    with open("/proc/net/udp") as f:
        next(f)
        for line in f:
            parts = line.split()
            if parts[9] in inodes:
                ports.add(int(parts[1].split(":")[1], 16))
    return ports
