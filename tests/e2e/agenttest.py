"""Helpers for the agent's end-to-end tests: a real lightspeed-agent, the controller's
QUIC client driven as a process (build/tests/ctl_client), and a hostile QUIC peer
(build/tests/quic_hostile)."""
import json
import os
import queue
import re
import subprocess
import threading
import time
import urllib.request

from lstest import BUILD, BIN, Proc, free_port, wait_for

CTL_CLIENT = os.path.join(os.path.abspath(BUILD), "tests", "ctl_client")
HOSTILE = os.path.join(os.path.abspath(BUILD), "tests", "quic_hostile")
FP_RE = re.compile(r"certificate (sha256:[0-9a-f]{64})")


class AgentProc(Proc):
    """lightspeed-agent: ready once it has printed its certificate line (every socket is
    open by then)."""

    def _ready(self):
        if self.p.poll() is not None:
            raise AssertionError("%s exited with %s:\n%s" % (self.name, self.p.returncode,
                                                            self.output()))
        m = FP_RE.search(self.output())
        if m:
            self.fp = m.group(1)
        return bool(m)

    def http(self, path, token=None):
        """(status, body bytes, content type) of GET path."""
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.http_port, path))
        if token:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, r.read(), r.headers.get("Content-Type")
        except urllib.error.HTTPError as e:
            return e.code, e.read(), e.headers.get("Content-Type")

    def health(self):
        st, body, _ = self.http("/health")
        return st, json.loads(body)


def start_agent(tc, proxy, *args, config="", node_id="node-a", region="lo", state_dir=None,
                port=None, http_port=None, destinations=('127.0.0.1',), env=None):
    """An agent for proxy (its steering socket), serving the given destinations, on
    loopback ports of its own. Restart one by passing the same state_dir and port."""
    port = port or free_port()
    http_port = http_port or free_port(kind=__import__("socket").SOCK_STREAM)
    state_dir = state_dir or tc.path("agent-state-%d" % port)
    cfg = tc.path("agent-%d.toml" % port)
    with open(cfg, "w") as f:
        f.write("[agent]\ndestinations = [%s]\nallow = [\"127.0.0.0/8\"]\n" %
                ", ".join('"%s"' % d for d in destinations))
        f.write(config)
    argv = ["-c", cfg, "--listen", "127.0.0.1:%d" % port, "--http", "127.0.0.1:%d" % http_port,
            "--proxy-socket", proxy.sock_path, "--state-dir", state_dir, "--node-id", node_id,
            "--region", region, "--log-level", "debug"]
    a = AgentProc("lightspeed-agent", argv + list(args), None, tc.tmp, env=env)
    a.port = port
    a.http_port = http_port
    a.state_dir = state_dir
    a.config_path = cfg
    tc.procs.append(a)
    return a


class CtlClient:
    """The controller's QUIC client as a process: one command per line in, one JSON line
    out per answer; events ("registered", "lost", "revoked") are kept in .events."""

    def __init__(self, tc, agent_port, *args, fingerprint=None, dests=(), name="node",
                 state_dir=None, ping_ms=200):
        argv = [CTL_CLIENT, "--agent", "127.0.0.1:%d" % agent_port, "--name", name,
                "--ping-ms", str(ping_ms)]
        if fingerprint:
            argv += ["--fingerprint", fingerprint]
        if state_dir:
            argv += ["--state-dir", state_dir]
        for d in dests:
            argv += ["--dest", d]
        self.log_path = tc.path("ctl-client-%d.log" % id(self))
        self.errf = open(self.log_path, "wb")
        self.p = subprocess.Popen(argv + list(args), stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=self.errf, text=True,
                                  bufsize=1)
        self.answers = queue.Queue()
        self.events = []
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        tc.closers.append(self.close)

    def _read(self):
        for line in self.p.stdout:
            msg = json.loads(line)
            if "event" in msg:
                msg["t"] = time.monotonic()
                with self.lock:
                    self.events.append(msg)
            else:
                self.answers.put(msg)

    def cmd(self, line, timeout=15):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        return self.answers.get(timeout=timeout)

    def ok(self, line, timeout=15):
        r = self.cmd(line, timeout)
        if not r.get("ok"):
            raise AssertionError("ctl_client %r: %r\n%s" % (line, r, self.stderr()))
        return r

    def register(self):
        self.ok("register 8000")
        return self.ok("state")["session"]

    def events_of(self, kind):
        with self.lock:
            return [e for e in self.events if e["event"] == kind]

    def stderr(self):
        self.errf.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()

    def close(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.write("quit\n")
                self.p.stdin.flush()
                self.p.wait(3)
            except (OSError, subprocess.TimeoutExpired):
                self.p.kill()
                self.p.wait()
        self.errf.close()


def proxy_sessions(proxy):
    """Ids of the sessions the proxy holds."""
    return {s["session_id"] for s in proxy.steer("sessions")["sessions"]}


def hostile(agent, mode, *args, timeout=60):
    """Run quic_hostile to its end; its JSON lines."""
    r = subprocess.run([HOSTILE, mode, "--agent", "127.0.0.1:%d" % agent.port] + list(args),
                       capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError("quic_hostile %s: exit %d\n%s" % (mode, r.returncode, r.stderr))
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
