"""Network namespaces for the capture-mode tests: a PC, a node and a game server.

    PC  pc0 10.NN.1.2/24 --veth-- 10.NN.1.1/24 NODE 10.NN.2.1/24 --veth-- 10.NN.2.2/24 SERVER

The node routes between the two links, so the game's traffic reaches the server
directly when nothing diverts it (the server then sees the PC's address, 10.NN.1.2)
and through the proxy on the node when the client captures it (the server sees the
node's address, 10.NN.2.1). Names carry the test process's pid, so parallel runs never
meet. Run as a script, this file is also the helpers started inside a namespace:

    capture_tools.py game HOST PORT COUNT [--size A-B] [--pps N] [--bind PORT] [--wait]
        sends COUNT numbered datagrams (after a line on stdin, with --wait), prints one
        JSON object: what came back, from where; HOST may be "H1,H2": they alternate
    capture_tools.py echo [ADDR:]PORT...
        an echo server on those ports (a reply leaves from the address it came to when an
        ADDR is given); prints "ready", then on stdin EOF one JSON object listing every
        datagram's source
    capture_tools.py sniff IFACE
        counts IPv4 UDP datagrams by (source, destination port) with an AF_PACKET socket;
        prints "ready", then on stdin EOF one JSON object
"""
import json
import os
import select
import socket
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def run(*cmd, check=True):
    r = subprocess.run(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if check and r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(cmd), r.stdout.strip()))
    return r.stdout


def have_netns():
    """True when this process may make network namespaces (root)."""
    return os.geteuid() == 0 and subprocess.run(
        ["ip", "netns", "list"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


class Topology:
    """The three namespaces; close() removes them (and so everything in them)."""

    made = 0

    def __init__(self, tag="cap"):
        pid = os.getpid()
        Topology.made += 1
        tag = "%s%d" % (tag, Topology.made)
        self.net = 64 + (pid + Topology.made) % 150  # 10.NN.x.y, NN in 64..213
        self.names = {k: "ls-%s-%d-%s" % (tag, pid, k) for k in ("pc", "node", "srv")}
        short = "%d%d" % (pid % 100000, Topology.made % 10)
        self.if_pc, self.if_npc = "lp%sa" % short, "lp%sb" % short
        self.if_nsv, self.if_sv = "ls%sa" % short, "ls%sb" % short
        self.pc_ip = "10.%d.1.2" % self.net
        self.node_pc_ip = "10.%d.1.1" % self.net
        self.node_srv_ip = "10.%d.2.1" % self.net
        self.srv_ip = "10.%d.2.2" % self.net
        self.procs = []
        try:
            self._build()
        except Exception:
            self.close()
            raise

    @property
    def pc(self):
        return self.names["pc"]

    @property
    def node(self):
        return self.names["node"]

    @property
    def srv(self):
        return self.names["srv"]

    def _build(self):
        for n in self.names.values():
            run("ip", "netns", "add", n)
            run("ip", "-n", n, "link", "set", "lo", "up")
        run("ip", "link", "add", self.if_pc, "netns", self.pc, "type", "veth", "peer", "name",
            self.if_npc, "netns", self.node)
        run("ip", "link", "add", self.if_nsv, "netns", self.node, "type", "veth", "peer", "name",
            self.if_sv, "netns", self.srv)
        for ns, dev, addr in ((self.pc, self.if_pc, self.pc_ip),
                              (self.node, self.if_npc, self.node_pc_ip),
                              (self.node, self.if_nsv, self.node_srv_ip),
                              (self.srv, self.if_sv, self.srv_ip)):
            run("ip", "-n", ns, "addr", "add", addr + "/24", "dev", dev)
            run("ip", "-n", ns, "link", "set", dev, "up")
        run("ip", "-n", self.pc, "route", "add", "default", "via", self.node_pc_ip)
        run("ip", "-n", self.srv, "route", "add", "default", "via", self.node_srv_ip)
        run("ip", "netns", "exec", self.node, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")

    def nsenter(self, ns):
        """The prefix that runs a program in namespace ns without `ip netns exec`'s new
        mount namespace (which hides /sys/fs/cgroup: the client reads cgroups there)."""
        return ("nsenter", "--net=/run/netns/" + ns)

    def exec(self, ns, *cmd, **kw):
        """A process in namespace ns (killed by close())."""
        p = subprocess.Popen(["ip", "netns", "exec", ns] + list(cmd), **kw)
        self.procs.append(p)
        return p

    def sh(self, ns, *cmd, check=True):
        return run("ip", "netns", "exec", ns, *cmd, check=check)

    def helper(self, ns, *args, argv0=None):
        """capture_tools.py ARGS in namespace ns, with pipes; argv0 names the process as a
        game's would be named (what profile detection reads)."""
        cmd = [sys.executable, os.path.join(HERE, "capture_tools.py")] + [str(a) for a in args]
        if argv0:
            cmd = ["bash", "-c", 'exec -a "$0" "$@"', argv0] + cmd
        return self.exec(ns, *cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass
            for f in (p.stdin, p.stdout, p.stderr):
                if f:
                    f.close()
        for n in self.names.values():
            subprocess.run(["ip", "netns", "del", n], stderr=subprocess.DEVNULL)


def wait_ready(p, timeout=5):
    """Read a helper's "ready" line."""
    r, _, _ = select.select([p.stdout], [], [], timeout)
    line = p.stdout.readline() if r else ""
    if line.strip() != "ready":
        raise RuntimeError("helper did not start: %r %s" % (line, p.stderr.read() if p.poll() is not None else ""))


def finish(p, timeout=10):
    """Close a helper's stdin and read its JSON report."""
    out, err = p.communicate(timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError("helper failed (%s): %s" % (p.returncode, err))
    return json.loads(out.strip().splitlines()[-1])


def payload(i, size):
    """Datagram i: its number, then filler that depends on it, size bytes in all."""
    head = b"%d;" % i
    body = bytes((i * 31 + k) & 0xff for k in range(max(0, size - len(head))))
    return (head + body)[:max(size, len(head))]


# ---- the helpers, run inside a namespace ---------------------------------------------

def main_game(argv):
    host, port, count = argv[0], int(argv[1]), int(argv[2])
    lo, hi, pps, bind, wait = 64, 64, 200.0, 0, False
    i = 3
    while i < len(argv):
        if argv[i] == "--wait":
            wait = True
            i += 1
            continue
        if argv[i] == "--size":
            lo, hi = (int(x) for x in argv[i + 1].split("-"))
        elif argv[i] == "--pps":
            pps = float(argv[i + 1])
        elif argv[i] == "--bind":
            bind = int(argv[i + 1])
        i += 2
    hosts = host.split(",")
    if wait:
        # The socket is made after the go: a socket belongs to the cgroup its process
        # was in when it made it (the test moves the process first).
        print("ready", flush=True)
        sys.stdin.readline()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("0.0.0.0", bind))
    sent = {}
    replies = []
    interval = 1.0 / pps
    t0 = time.monotonic()

    def drain(wait):
        end = time.monotonic() + wait
        while True:
            left = end - time.monotonic()
            r, _, _ = select.select([s], [], [], max(0, left))
            if not r:
                return
            data, peer = s.recvfrom(65535)
            replies.append((data, peer))

    for k in range(count):
        size = lo + (k * 7919) % (hi - lo + 1)
        d = payload(k, size)
        sent[k] = d
        s.sendto(d, (hosts[k % len(hosts)], port))
        drain(max(0, t0 + (k + 1) * interval - time.monotonic()))
    drain(1.0)
    exact = 0
    sources = {}
    for data, peer in replies:
        key = "%s:%d" % peer
        sources[key] = sources.get(key, 0) + 1
        try:
            n = int(data.split(b";", 1)[0])
        except ValueError:
            continue
        if sent.get(n) == data:
            exact += 1
    print(json.dumps(dict(local_port=s.getsockname()[1], sent=count, replies=len(replies),
                          exact=exact, sources=sources,
                          distinct=len({d for d, _ in replies}))))


def main_echo(argv):
    socks = []
    for p in argv:
        addr, _, port = p.rpartition(":")
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.bind((addr or "0.0.0.0", int(port)))
        socks.append(s)
    seen = {}
    print("ready", flush=True)
    while True:
        r, _, _ = select.select(socks + [sys.stdin], [], [], 1.0)
        for s in r:
            if s is sys.stdin:
                if not sys.stdin.readline():
                    print(json.dumps(dict(sources=seen)))
                    return
                continue
            data, peer = s.recvfrom(65535)
            key = "%s:%d" % peer
            seen[key] = seen.get(key, 0) + 1
            s.sendto(data, peer)


def main_sniff(argv):
    ETH_P_ALL = 0x0003
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((argv[0], 0))
    counts = {}
    print("ready", flush=True)
    while True:
        r, _, _ = select.select([s, sys.stdin], [], [], 1.0)
        if sys.stdin in r:
            if not sys.stdin.readline():
                # What is still queued counts too.
                s.setblocking(False)
                try:
                    while True:
                        _count(s.recv(65535), counts)
                except BlockingIOError:
                    pass
                print(json.dumps(dict(udp=counts)))
                return
        if s in r:
            _count(s.recv(65535), counts)


def _count(frame, counts):
    if len(frame) < 14 + 28 or frame[12:14] != b"\x08\x00":
        return
    ip = frame[14:]
    ihl = (ip[0] & 0x0f) * 4
    if ip[9] != 17 or len(ip) < ihl + 8:
        return
    src = socket.inet_ntoa(ip[12:16])
    dport = struct.unpack(">H", ip[ihl + 2:ihl + 4])[0]
    key = "%s>%d" % (src, dport)
    counts[key] = counts.get(key, 0) + 1


if __name__ == "__main__":
    {"game": main_game, "echo": main_echo, "sniff": main_sniff}[sys.argv[1]](sys.argv[2:])
