"""Attacker's tools for the security tests: spoofed UDP through a raw socket (root),
the state recovery of an xorshift64* generator from the low halves of three outputs,
and processes started in a time namespace (their CLOCK_MONOTONIC shifted)."""
import os
import shutil
import socket
import struct

from lstest import BIN, Proc


def can_spoof():
    return os.geteuid() == 0


class Spoofer:
    """Sends UDP datagrams with any source address (IP_HDRINCL; loopback only)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        self.sent_bytes = 0     # UDP payload bytes, as the receiver counts them

    def send(self, src, dst, payload):
        udp = struct.pack(">HHHH", src[1], dst[1], 8 + len(payload), 0) + payload
        ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                         socket.inet_aton(src[0]), socket.inet_aton(dst[0]))
        self.sock.sendto(ip + udp, (dst[0], 0))
        self.sent_bytes += len(payload)

    def close(self):
        self.sock.close()


# ---- xorshift64* (the generator the proxy's validation nonces once came from) -------

M64 = (1 << 64) - 1
MULT = 0x2545F4914F6CDD1D


def _step(x):
    x ^= x >> 12
    x ^= (x << 25) & M64
    x ^= x >> 27
    return x


def predict_next_low32(outs):
    """Given the low 32 bits of three consecutive xorshift64* outputs, the low 32 bits of
    the next one, or None when the equations have no unique solution. The state update
    is linear over GF(2), and the low half of state * MULT depends only on the low half
    of the state, so each output gives 32 linear equations in the state's 64 bits."""
    inv = pow(MULT & 0xffffffff, -1, 1 << 32)
    lows = [(o * inv) & 0xffffffff for o in outs]   # low halves of the states
    # Images of the basis vectors under 0, 1 and 2 steps.
    images = []
    for i in range(64):
        e = 1 << i
        images.append([e, _step(e), _step(_step(e))])
    rows = []   # (mask over the 64 unknown bits of the first state, value)
    for k in range(3):
        for j in range(32):
            mask = 0
            for i in range(64):
                if images[i][k] >> j & 1:
                    mask |= 1 << i
            rows.append([mask, lows[k] >> j & 1])
    # Gaussian elimination.
    pivots = {}
    for mask, val in rows:
        for bit, (pm, pv) in pivots.items():
            if mask >> bit & 1:
                mask ^= pm
                val ^= pv
        if not mask:
            if val:
                return None
            continue
        bit = mask.bit_length() - 1
        for b2, (pm, pv) in list(pivots.items()):
            if pm >> bit & 1:
                pivots[b2] = [pm ^ mask, pv ^ val]
        pivots[bit] = [mask, val]
    if len(pivots) < 64:
        return None
    x = 0
    for bit, (pm, pv) in pivots.items():
        if pv:
            x |= 1 << bit
    for _ in range(3):
        x = _step(x)
    return (x * MULT) & 0xffffffff


# ---- time namespaces --------------------------------------------------------------

def can_shift_clock():
    return os.geteuid() == 0 and shutil.which("unshare") is not None


class ShiftedProc(Proc):
    """A program of build/bin whose monotonic clock runs `offset_s` seconds ahead (the
    program runs as the child of unshare, which exits with its status)."""

    def __init__(self, name, args, sock_path, tmp, offset_s):
        super().__init__(shutil.which("unshare"),
                         ["--time", "--monotonic", str(int(offset_s)), "--fork",
                          "--kill-child=SIGKILL", os.path.join(BIN, name)] + args,
                         sock_path, tmp)
        self.name = name

    def child_pid(self):
        with open("/proc/%d/task/%d/children" % (self.p.pid, self.p.pid)) as f:
            kids = f.read().split()
        return int(kids[0]) if kids else None

    def signal(self, sig):
        pid = self.child_pid()
        if pid:
            os.kill(pid, sig)

    def kill(self):
        """SIGKILL the program itself; unshare then exits too."""
        import signal as _s
        self.signal(_s.SIGKILL)
        self.p.wait(5)
        self.expect_exit = True

    def stop(self, sig=None):
        import signal as _s
        import subprocess
        if self.p.poll() is None:
            try:
                self.signal(sig or _s.SIGTERM)
            except (OSError, ValueError):
                pass
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
                raise AssertionError("%s did not exit on signal" % self.name)
        self.log.close()
        return self.p.returncode
