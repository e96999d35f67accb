"""What the benchmark scripts share (tests/bench/run and tests/bench/fec_run): starting
and stopping processes, reading their "port N" and key=value lines, steering sockets,
quantiles, and the machine's idle share."""
import json
import os
import select
import socket
import subprocess
import time


class BenchError(Exception):
    pass


class Procs:
    """Every process started here, so that all of them are stopped whatever happens."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.procs = []

    def start(self, name, cpu, argv, announce=False):
        """Start argv pinned to cpu (None: not pinned). With announce, wait for its
        "port N" line."""
        log = os.path.join(self.tmp, "%s-%d.log" % (name, len(self.procs)))
        err = open(log, "wb")
        p = subprocess.Popen((["taskset", "-c", cpu] if cpu is not None else []) + argv,
                             stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
        err.close()
        p.ls_name, p.ls_log = name, log
        self.procs.append(p)
        if announce:
            line = self.read_line(p, 5)
            if not line.startswith("port "):
                raise BenchError("%s: expected 'port N', got %r%s" % (name, line, self.tail(p)))
            p.ls_port = int(line.split()[1])
        return p

    def read_line(self, p, timeout):
        """One stdout line of p within timeout seconds ("" on timeout or exit)."""
        r, _, _ = select.select([p.stdout], [], [], timeout)
        if not r:
            return ""
        return p.stdout.readline().decode(errors="replace").strip()

    def wait_output(self, p, timeout):
        """Wait for p to exit and return its stdout."""
        try:
            out, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BenchError("%s did not finish within %.0f s" % (p.ls_name, timeout))
        if p.returncode != 0:
            raise BenchError("%s exited %d%s" % (p.ls_name, p.returncode, self.tail(p)))
        return out.decode(errors="replace").strip()

    @staticmethod
    def tail(p):
        try:
            with open(p.ls_log, "rb") as f:
                text = f.read().decode(errors="replace").strip()
        except OSError:
            return ""
        return (":\n    " + "\n    ".join(text.splitlines()[-8:])) if text else ""

    def finish(self, p, timeout=5.0):
        """Stop p with SIGTERM and return what it printed on the way out."""
        if p.poll() is None:
            p.terminate()
        out = self.wait_output(p, timeout)
        if p in self.procs:
            self.procs.remove(p)
        return out

    def stop(self, p):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(2)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p.stdout:
            p.stdout.close()
        if p in self.procs:
            self.procs.remove(p)

    def stop_all(self):
        for p in list(reversed(self.procs)):
            self.stop(p)


def kv(line):
    """Parse "a=1 b=2.5 c=x" into a dict (numbers converted)."""
    out = {}
    for item in line.split():
        k, _, v = item.partition("=")
        try:
            out[k] = float(v)
        except ValueError:
            out[k] = v
    return out


def nearest_rank(sorted_values, q):
    rank = min(max(int(q * len(sorted_values) + 0.999999), 1), len(sorted_values))
    return sorted_values[rank - 1]


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def steer(path, cmd, timeout=5.0, **args):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall((json.dumps(dict(args, id=1, cmd=cmd)) + "\n").encode())
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                raise BenchError("steering socket %s closed" % path)
            buf += chunk
    finally:
        s.close()
    msg = json.loads(buf.split(b"\n", 1)[0])
    if not msg.get("ok"):
        raise BenchError("%s: %r" % (cmd, msg))
    return msg["result"]


def wait_steering(procs, p, path, timeout=5.0, cmd="status"):
    """Wait until p answers cmd on its steering socket; return the answer."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if p.poll() is not None:
            raise BenchError("%s exited %d%s" % (p.ls_name, p.returncode, procs.tail(p)))
        try:
            return steer(path, cmd, 1.0)
        except (OSError, BenchError, ValueError):
            time.sleep(0.02)
    raise BenchError("%s: no steering socket after %.0f s%s" % (p.ls_name, timeout, procs.tail(p)))


def machine_idle(seconds):
    """Percentage of all CPUs' time idle over the next `seconds` (other load = noise)."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return v[3] + v[4], sum(v)
    i0, t0 = sample()
    time.sleep(seconds)
    i1, t1 = sample()
    return 100.0 * (i1 - i0) / max(t1 - t0, 1)


def cpu_seconds(pid):
    """User + system CPU time of pid so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def verdict(ok):
    return "PASS" if ok else "MISS"


