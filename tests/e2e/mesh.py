"""A mesh of real processes for the tests that need the whole product on loopback:
an echo game server, two proxies (a and b) each behind its own ls-netsim with a
different delay, the client, and the controller (with its dashboard when asked)."""
import os
import socket
import subprocess

from lstest import BIN, Proc, free_port, steer_ok, wait_for
from test_controller import Controller

WEB = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "web"))


class Mesh:
    def __init__(self, case, delay_a=15, delay_b=40, dashboard=False, ctl_args=(), ctl_env=None):
        self.echo = case.echo()
        self.pa = case.proxy()
        self.pb = case.proxy()
        self.na = case.netsim(self.pa.addr, up="delay=%dms" % delay_a, down="delay=%dms" % delay_a)
        self.nb = case.netsim(self.pb.addr, up="delay=%dms" % delay_b, down="delay=%dms" % delay_b)
        self.client = self._client(case)
        args = ["--client-socket", self.client.sock_path, "--state-dir", case.path("state"),
                "--node", "a=127.0.0.1:%d" % self.na.port,
                "--node", "b=127.0.0.1:%d" % self.nb.port]
        self.dash_port = None
        if dashboard:
            self.dash_port = free_port(socket.SOCK_STREAM)
            args += ["--dashboard", "127.0.0.1:%d" % self.dash_port, "--web-root", WEB]
        else:
            args += ["--dashboard", "off"]
        self.ctl = Controller(case, args + list(ctl_args), env=ctl_env)
        case.closers.append(lambda: self.ctl.stop())
        self.api = self.ctl.api
        self.base = "http://127.0.0.1:%d" % self.ctl.port

    def _client(self, case):
        """The client with no route of its own: the controller gives it a and b."""
        # A client without the route table (docs/protocol.md 3.2) needs --proxy.
        usage = subprocess.run([os.path.join(BIN, "lightspeed-client"), "--help"],
                               capture_output=True, text=True).stdout
        if "[--proxy" not in usage:
            case.skipTest("lightspeed-client has no route table (docs/protocol.md 3.2)")
        local = free_port()
        sock = case.path("client-%d.sock" % local)
        argv = ["--game-server", "%s:%d" % self.echo.addr, "--local-port", str(local),
                "--socket", sock, "--keepalive-ms", "30", "--log-level", "debug"]
        c = Proc("lightspeed-client", argv, sock, case.tmp)
        c.local_port = local
        case.procs.append(c)
        try:
            steer_ok(sock, "routes")
        except AssertionError:
            case.skipTest("lightspeed-client has no route table (docs/protocol.md 3.2)")
        return c

    def wait_measured(self, timeout=10):
        def ok():
            r = self.ctl.route()
            return (r["active"] == "a" and r["backup"] == "b" and
                    all(c["samples"] >= 3 for c in r["candidates"]))
        wait_for(ok, timeout, what="both nodes measured, a active, b armed")
