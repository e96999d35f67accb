"""Network namespaces for the relay and multipath tests: a PC, an egress node E, two
relay nodes R1 and R2 and a game server, each in its own namespace, joined by veth
pairs with addresses of their own (documentation ranges, which no proxy denies):

    PC --- E --- SRV        PC 203.0.113.2    E 203.0.113.1   (the direct leg)
    PC --- R1 --- E         PC 203.0.113.18   R1 203.0.113.17; R1 203.0.113.50  E 203.0.113.49
    PC --- R2 --- E         PC 203.0.113.34   R2 203.0.113.33; R2 203.0.113.66  E 203.0.113.65
                            E 198.51.100.1    SRV 198.51.100.2

Every leg runs through an ls-netsim in the sending node's namespace, listening on that
node's own address of the leg, so a test loses, delays or cuts one leg at run time
through netsim's steering socket. Names carry the test process's pid, so parallel runs
never meet; close() removes the namespaces and everything in them.

Sockets of the test itself (the game, the game server) are made inside a namespace
with `inside(ns)`: a socket stays in the namespace it was made in."""
import contextlib
import ctypes
import os
import subprocess

CLONE_NEWNET = 0x40000000


def run(*cmd):
    r = subprocess.run(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(cmd), r.stdout.strip()))
    return r.stdout


def have_netns():
    """True when this process may make network namespaces (root)."""
    return os.geteuid() == 0 and subprocess.run(
        ["ip", "netns", "list"], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL).returncode == 0


_libc = ctypes.CDLL(None, use_errno=True)


@contextlib.contextmanager
def inside(ns):
    """Run the block with this thread in namespace ns (sockets made here stay there)."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    there = os.open("/run/netns/%s" % ns, os.O_RDONLY)
    try:
        if _libc.setns(there, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns %s" % ns)
        try:
            yield
        finally:
            if _libc.setns(home, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(home)
        os.close(there)


# (namespace a, address in a, namespace b, address in b): the links.
LINKS = [
    ("pc", "203.0.113.2", "e", "203.0.113.1", 28),
    ("pc", "203.0.113.18", "r1", "203.0.113.17", 28),
    ("pc", "203.0.113.34", "r2", "203.0.113.33", 28),
    ("r1", "203.0.113.50", "e", "203.0.113.49", 28),
    ("r2", "203.0.113.66", "e", "203.0.113.65", 28),
    ("e", "198.51.100.1", "srv", "198.51.100.2", 24),
]


class Mesh:
    """The five namespaces and their links. addr[(a, b)] is a's address towards b."""

    def __init__(self, tag="mp"):
        pid = os.getpid()
        self.names = {k: "ls-%s-%d-%s" % (tag, pid, k) for k in ("pc", "e", "r1", "r2", "srv")}
        self.addr = {}
        try:
            for n in self.names.values():
                run("ip", "netns", "add", n)
                run("ip", "-n", n, "link", "set", "lo", "up")
            for i, (a, ia, b, ib, plen) in enumerate(LINKS):
                va, vb = "v%d%s" % (i, b), "v%d%s" % (i, a)
                run("ip", "link", "add", va, "netns", self.names[a], "type", "veth", "peer",
                    "name", vb, "netns", self.names[b])
                run("ip", "-n", self.names[a], "addr", "add", "%s/%d" % (ia, plen), "dev", va)
                run("ip", "-n", self.names[b], "addr", "add", "%s/%d" % (ib, plen), "dev", vb)
                run("ip", "-n", self.names[a], "link", "set", va, "up")
                run("ip", "-n", self.names[b], "link", "set", vb, "up")
                self.addr[(a, b)] = ia
                self.addr[(b, a)] = ib
        except Exception:
            self.close()
            raise

    def ns(self, node):
        return self.names[node]

    def close(self):
        for n in self.names.values():
            subprocess.run(["ip", "netns", "del", n], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
