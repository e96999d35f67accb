"""Deployment: `make install` / `make uninstall` into a scratch root, the installed
systemd units checked by systemd-analyze (verify, and the security exposure of each),
and the daemons' sd_notify messages (READY=1, WATCHDOG=1, STOPPING=1) arriving on a
NOTIFY_SOCKET as systemd would read them."""
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import threading
import time
import unittest

from lstest import BIN, BUILD, LSTestCase, free_port, wait_for

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DAEMONS = ("proxy", "client", "agent", "controller")
UNITS = DAEMONS + ("capture",)
PREFIX = "/usr/local"
# systemd-analyze security's exposure (0 safest, 10 worst) each unit must stay under.
EXPOSURE_MAX = {"proxy": 2.0, "client": 2.0, "agent": 2.5, "controller": 2.5, "capture": 5.0}


def make(*args, env=None):
    return subprocess.run(["make", "--no-print-directory", "-s", "-C", ROOT,
                           "B=%s" % os.path.abspath(BUILD)] + list(args),
                          capture_output=True, text=True, timeout=300, env=env)


def files_under(root):
    out = set()
    for d, _, names in os.walk(root):
        for n in names:
            out.add(os.path.relpath(os.path.join(d, n), root))
    return out


class Install(LSTestCase):

    def install(self, dest, *extra):
        r = make("install", "DESTDIR=" + dest, *extra)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r.stdout

    def test_install_and_uninstall_into_a_scratch_root(self):
        dest = self.path("root")
        out = self.install(dest)
        self.assertIn("installed into " + dest, out)
        for p in ("lightspeed-proxy", "lightspeed-client", "lightspeed-controller",
                  "lightspeed-agent", "lsctl"):
            f = os.path.join(dest, "usr/local/bin", p)
            self.assertTrue(os.access(f, os.X_OK), f)
            r = subprocess.run([f, "--help"], capture_output=True, text=True, timeout=10)
            self.assertEqual(r.returncode, 0, r.stderr)
        units = os.path.join(dest, "lib/systemd/system")
        for u in UNITS:
            text = open(os.path.join(units, "lightspeed-%s.service" % u)).read()
            self.assertNotIn("@", text.replace("@system-service", "").replace("@privileged", ""),
                             "an unreplaced @VAR@ in lightspeed-%s.service" % u)
            self.assertIn("ExecStart=%s/bin/lightspeed-" % PREFIX, text)
        etc = os.path.join(dest, "etc/lightspeed")
        self.assertEqual(stat.S_IMODE(os.stat(etc).st_mode), 0o750)
        for c in ("proxy", "agent", "client", "controller"):
            f = os.path.join(etc, c + ".toml")
            # They hold session keys and tokens: the owner alone reads them.
            self.assertEqual(stat.S_IMODE(os.stat(f).st_mode), 0o600, f)
            self.assertEqual(open(f).read(), open(os.path.join(ROOT, "deploy/config", c + ".toml")).read())
        web = os.path.join(dest, "usr/local/share/lightspeed/web")
        for f in ("index.html", "app.js", "style.css", "node_modules/uplot/dist/uPlot.iife.min.js"):
            self.assertTrue(os.path.isfile(os.path.join(web, f)), f)
        self.assertTrue(os.listdir(os.path.join(dest, "usr/local/share/lightspeed/profiles")))
        self.assertTrue(os.path.isfile(os.path.join(dest, "usr/lib/sysusers.d/lightspeed.conf")))
        # The installed controller runs from there.
        r = subprocess.run([os.path.join(dest, "usr/local/bin/lightspeed-controller"), "--check",
                            "--state-dir", self.path("st"), "--client-socket", self.path("c.sock")],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

        # A second install keeps what the operator edited.
        mine = os.path.join(etc, "proxy.toml")
        with open(mine, "a") as f:
            f.write("# edited\n")
        out = self.install(dest)
        self.assertIn("kept %s" % mine, out)
        self.assertTrue(open(mine).read().endswith("# edited\n"))

        r = make("uninstall", "DESTDIR=" + dest)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("kept " + etc, r.stdout)
        left = files_under(dest)
        self.assertEqual(left, {"etc/lightspeed/%s.toml" % c for c in
                                ("proxy", "agent", "client", "controller")})
        r = make("uninstall", "DESTDIR=" + dest, "PURGE=1")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(files_under(dest), set())

    def test_units_pass_systemd_analyze_verify_and_security(self):
        if not shutil.which("systemd-analyze"):
            self.skipTest("systemd-analyze is missing (Debian package systemd)")
        dest = self.path("root")
        self.install(dest)
        # verify checks that ExecStart's program exists: point the units at the staged
        # binaries (nothing else changes).
        check = self.path("units")
        os.mkdir(check)
        scores = {}
        for u in UNITS:
            name = "lightspeed-%s.service" % u
            text = open(os.path.join(dest, "lib/systemd/system", name)).read()
            with open(os.path.join(check, name), "w") as f:
                f.write(text.replace(PREFIX + "/bin/", dest + PREFIX + "/bin/"))
            if u in DAEMONS:
                for line in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "User=lightspeed",
                             "NoNewPrivileges=yes", "ProtectSystem=strict"):
                    self.assertIn("\n" + line, text, "%s lacks %s" % (name, line))
            if u in ("proxy", "client"):
                self.assertIn("\nRuntimeDirectory=lightspeed\n", text)
                self.assertIn("\nCapabilityBoundingSet=\n", text)
            if u in ("agent", "controller"):
                self.assertIn("\nStateDirectory=lightspeed\n", text)
                self.assertIn("\nCapabilityBoundingSet=CAP_NET_RAW\n", text)
        for u in UNITS:
            name = "lightspeed-%s.service" % u
            r = subprocess.run(["systemd-analyze", "verify", name], cwd=check,
                               capture_output=True, text=True, timeout=60)
            self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""), name)
            r = subprocess.run(["systemd-analyze", "security", "--offline=true", name], cwd=check,
                               capture_output=True, text=True, timeout=60)
            m = re.search(r"Overall exposure level for %s: ([0-9.]+) (\w+)" % re.escape(name),
                          r.stdout)
            self.assertIsNotNone(m, r.stdout + r.stderr)
            scores[u] = (float(m.group(1)), m.group(2))
        with open(os.path.join(BUILD, "systemd-security.txt"), "w") as f:
            f.write("systemd-analyze security --offline=true (exposure, 0 = safest, 10 = worst)\n")
            for u in UNITS:
                f.write("  %-30s %4.1f %s\n" % ("lightspeed-%s.service" % u, *scores[u]))
        for u in UNITS:
            self.assertLessEqual(scores[u][0], EXPOSURE_MAX[u], "lightspeed-%s.service" % u)


class NodeSetup(LSTestCase):
    """deploy/node-setup.sh into a staging root, on a machine without systemctl, and
    as a dry run."""
    FP = re.compile(r"certificate fingerprint: (sha256:[0-9a-f]{64})\n")

    def path_without_systemctl(self):
        d = self.path("bin")
        os.mkdir(d)
        for p in os.environ["PATH"].split(":"):
            if not os.path.isdir(p):
                continue
            for n in os.listdir(p):
                t = os.path.join(d, n)
                if n != "systemctl" and not os.path.lexists(t):
                    os.symlink(os.path.join(p, n), t)
        return d

    def setup_sh(self, *args, path=None):
        env = dict(os.environ)
        if path:
            env["PATH"] = path
        return subprocess.run([os.path.join(ROOT, "deploy/node-setup.sh"), "--build",
                               os.path.abspath(BUILD)] + list(args), capture_output=True,
                              text=True, timeout=300, env=env)

    def test_into_a_scratch_root_without_systemctl(self):
        root = self.path("root")
        r = self.setup_sh("--root", root, "--name", "lax1", "--region", "us-west",
                          "--public-ip", "203.0.113.10", "--tunnel-port", "4500",
                          path=self.path_without_systemctl())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        out = r.stdout
        # Nothing of the running system is touched: it says what it would run.
        self.assertIn("would run (not on a staging root): %s/deploy/install-deps" % ROOT, out)
        self.assertIn("systemctl not found", out)
        self.assertIn("  systemctl enable --now lightspeed-proxy.service lightspeed-agent.service\n", out)
        self.assertNotIn("ufw allow 4500/udp\n+", out)
        self.assertIn("nothing was opened. PCs must reach UDP 4500 (tunnel) and UDP 4433 (QUIC control)", out)
        for p in ("lightspeed-proxy", "lightspeed-agent"):
            self.assertTrue(os.access(os.path.join(root, "usr/local/bin", p), os.X_OK))
        for u in ("proxy", "agent"):
            self.assertTrue(os.path.isfile(os.path.join(root, "lib/systemd/system/lightspeed-%s.service" % u)))
        self.assertFalse(os.path.exists(os.path.join(root, "usr/local/share/lightspeed/web")),
                         "a node needs no dashboard")
        # The fingerprint printed is the certificate's in the root's state directory.
        m = self.FP.search(out)
        self.assertIsNotNone(m, out)
        fp = m.group(1)
        agent_toml = os.path.join(root, "etc/lightspeed/agent.toml")
        state = os.path.join(root, "var/lib/lightspeed")
        self.assertEqual(stat.S_IMODE(os.stat(state).st_mode), 0o700)
        r2 = subprocess.run([os.path.join(BIN, "lightspeed-agent"), "-c", agent_toml, "--state-dir",
                             state, "--fingerprint"], capture_output=True, text=True, timeout=10)
        self.assertEqual(r2.stdout.strip(), fp)
        # The node's values are in its configurations, which both programs accept.
        chk = subprocess.run([os.path.join(BIN, "lightspeed-agent"), "-c", agent_toml, "--check"],
                             capture_output=True, text=True, timeout=10)
        self.assertEqual(chk.returncode, 0, chk.stderr)
        for line in ('node_id = "lax1"', 'region = "us-west"', "data_port = 4500"):
            self.assertIn(line, chk.stdout)
        chk = subprocess.run([os.path.join(BIN, "lightspeed-proxy"), "-c",
                              os.path.join(root, "etc/lightspeed/proxy.toml"), "--check"],
                             capture_output=True, text=True, timeout=10)
        self.assertEqual(chk.returncode, 0, chk.stderr)
        self.assertIn('bind = "0.0.0.0:4500"', chk.stdout)
        # What to paste on the PC, exactly.
        self.assertIn("\n  --node lax1=203.0.113.10:4500,control=4433,fingerprint=%s\n" % fp, out)
        block = out[out.index("[[node]]"):]
        self.assertEqual(block, '[[node]]\nname = "lax1"\naddress = "203.0.113.10:4500"\n'
                         'control_port = 4433\nfingerprint = "%s"\nregion = "us-west"\n' % fp)
        # The controller takes the block as it is printed (once it speaks to agents:
        # before that it knows no control_port).
        cfg = self.write("controller.toml", block)
        chk = subprocess.run([os.path.join(BIN, "lightspeed-controller"), "-c", cfg, "--check",
                              "--state-dir", self.path("cst"), "--client-socket",
                              self.path("c.sock")], capture_output=True, text=True, timeout=10)
        if "unknown key 'control_port'" not in chk.stderr:
            self.assertEqual(chk.returncode, 0, chk.stdout + chk.stderr)
            self.assertIn(fp, chk.stdout)

        # Run again: the operator's edits stay, the certificate stays the same.
        with open(agent_toml, "a") as f:
            f.write("# mine\n")
        r = self.setup_sh("--root", root, "--name", "other", "--public-ip", "203.0.113.10",
                          path=os.path.join(self.tmp, "bin"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("%s is yours: left as it is" % agent_toml, r.stdout)
        self.assertTrue(open(agent_toml).read().endswith("# mine\n"))
        self.assertEqual(self.FP.search(r.stdout).group(1), fp)

    def test_dry_run_changes_nothing(self):
        root = self.path("root")
        r = self.setup_sh("--dry-run", "--root", root, "--name", "fra", "--public-ip", "198.51.100.7",
                          "--open-firewall", path=self.path_without_systemctl())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertFalse(os.path.exists(root), "a dry run made %s" % root)
        out = r.stdout
        for line in ("would run: make -C %s --no-print-directory B=%s all" % (ROOT, os.path.abspath(BUILD)),
                     "would run: env DESTDIR=%s PREFIX=/usr/local BUILD=%s WITH_WEB=0 %s/deploy/install"
                     % (root, os.path.abspath(BUILD), ROOT),
                     "would run: %s/usr/local/bin/lightspeed-agent -c %s/etc/lightspeed/agent.toml "
                     "--state-dir %s/var/lib/lightspeed --fingerprint" % (root, root, root),
                     "  systemctl enable --now lightspeed-proxy.service lightspeed-agent.service",
                     "Node fra: dry run, nothing was changed.",
                     "  --node fra=198.51.100.7:4434,control=4433,fingerprint=sha256:FINGERPRINT"):
            self.assertIn(line + "\n", out)
        self.assertNotIn("\n+ ", out, "a dry run ran something")

    def test_bad_arguments_are_refused(self):
        for args, msg in ((["--name", "no spaces"], "--name 'no spaces': 1 to 31 characters"),
                          (["--tunnel-port", "70000"], "port '70000': a number from 1 to 65535"),
                          (["--control-port", "4434"], "the tunnel and control ports must differ"),
                          (["--bogus"], "unknown option --bogus"),
                          (["--region"], "--region needs a value")):
            r = self.setup_sh("--dry-run", *args)
            self.assertEqual(r.returncode, 1, args)
            self.assertIn(msg, r.stderr)
            self.assertEqual(r.stdout, "")


class Notify:
    """A NOTIFY_SOCKET as systemd holds it: a Unix datagram socket, by path or abstract,
    read by a thread of its own so that each message is timed when it arrives."""

    def __init__(self, path=None, abstract=None):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            self.s.bind("\0" + abstract)
            self.name = "@" + abstract
        else:
            self.s.bind(path)
            self.name = path
        self.s.settimeout(0.1)
        self.msgs = []  # (monotonic time, {VAR: VALUE})
        self.done = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.done.is_set():
            try:
                data = self.s.recv(4096)
            except socket.timeout:
                continue
            kv = dict(line.split("=", 1) for line in data.decode().split("\n") if line)
            self.msgs.append((time.monotonic(), kv))

    def times(self, var):
        return [t for t, kv in list(self.msgs) if var in kv]

    def close(self):
        self.done.set()
        self.t.join()
        self.s.close()


class SdNotify(LSTestCase):
    WATCHDOG_US = 6000000

    def start(self, name, args, notify, watchdog_pid=None, ready_path=None):
        env = dict(os.environ, NOTIFY_SOCKET=notify.name, WATCHDOG_USEC=str(self.WATCHDOG_US))
        if watchdog_pid is not None:
            env["WATCHDOG_PID"] = str(watchdog_pid)
        log = open(self.path(name + "-%d.log" % len(self.started)), "wb")
        p = subprocess.Popen([os.path.join(BIN, name)] + args, stdout=log, stderr=subprocess.STDOUT,
                             env=env)
        self.closers.append(lambda: (p.poll() is None and (p.kill(), p.wait()), log.close()))
        self.started.append((name, p, notify, log.name, ready_path))
        return p

    def test_ready_watchdog_and_stopping_reach_the_notify_socket(self):
        self.started = []
        sock = {d: self.path(d + ".sock") for d in ("proxy", "client")}
        n = {d: Notify(self.path("notify-" + d)) for d in DAEMONS}
        # The abstract namespace, and a WATCHDOG_PID naming another process: ready, but
        # the heartbeats are not this process's to send.
        other = Notify(abstract="ls-notify-%d" % os.getpid())
        for x in list(n.values()) + [other]:
            self.closers.append(x.close)
        self.start("lightspeed-proxy", ["--bind", "127.0.0.1:%d" % free_port(), "--socket",
                                        sock["proxy"], "--insecure-no-auth"], n["proxy"],
                   ready_path=sock["proxy"])
        self.start("lightspeed-proxy", ["--bind", "127.0.0.1:%d" % free_port(), "--socket",
                                        self.path("proxy2.sock"), "--insecure-no-auth"], other,
                   watchdog_pid=1, ready_path=self.path("proxy2.sock"))
        self.start("lightspeed-client", ["--game-server", "127.0.0.1:%d" % free_port(),
                                         "--local-port", str(free_port()), "--socket",
                                         sock["client"]], n["client"], ready_path=sock["client"])
        wait_for(lambda: os.path.exists(sock["proxy"]), 10, what="the proxy's socket")
        with open(self.path("agent.toml"), "w") as f:
            f.write('[agent]\ndestinations = ["127.0.0.1"]\nallow = ["127.0.0.0/8"]\n'
                    'icmp_interval_ms = 0\n')
        self.start("lightspeed-agent", ["-c", self.path("agent.toml"), "--listen",
                                        "127.0.0.1:%d" % free_port(), "--http",
                                        "127.0.0.1:%d" % free_port(socket.SOCK_STREAM),
                                        "--proxy-socket", sock["proxy"], "--state-dir",
                                        self.path("agent-state"), "--node-id", "n1"], n["agent"])
        api = free_port(socket.SOCK_STREAM)
        self.start("lightspeed-controller", ["--api", "127.0.0.1:%d" % api, "--dashboard", "off",
                                             "--client-socket", sock["client"], "--state-dir",
                                             self.path("ctl-state")], n["controller"],
                   ready_path=("127.0.0.1", api))

        # READY=1 once each serves: its socket is there to connect to at that moment.
        for name, p, notify, log, ready_path in self.started:
            def ready():
                if p.poll() is not None:
                    raise AssertionError("%s exited %s:\n%s" % (name, p.returncode, open(log).read()))
                return notify.times("READY")
            wait_for(ready, 15, what="READY=1 from %s" % name)
            if isinstance(ready_path, str):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(ready_path)
                s.close()
            elif ready_path:
                socket.create_connection(ready_path, timeout=2).close()
            self.assertEqual(len(notify.times("READY")), 1, name)

        for d in DAEMONS:
            wait_for(lambda: len(n[d].times("WATCHDOG")) >= 2, 20, what="2 WATCHDOG=1 from " + d)
        for d in DAEMONS:
            t = n[d].times("WATCHDOG")
            gaps = [b - a for a, b in zip(t, t[1:])]
            # A third of the interval apart at least (no flood of heartbeats), and never
            # as late as the interval itself (systemd would kill the daemon).
            self.assertGreaterEqual(min(gaps), self.WATCHDOG_US / 3e6 - 0.1, (d, gaps))
            self.assertLess(max(gaps), self.WATCHDOG_US / 1e6, (d, gaps))
        self.assertEqual(other.times("WATCHDOG"), [], "heartbeats for another process's watchdog")

        # SIGTERM: STOPPING=1, then a clean exit.
        for name, p, notify, log, _ in self.started:
            p.send_signal(signal.SIGTERM)
        for name, p, notify, log, _ in self.started:
            self.assertEqual(p.wait(10), 0, "%s:\n%s" % (name, open(log).read()))
            # Sent before the exit; the reader thread may take it a moment later.
            wait_for(lambda: notify.times("STOPPING"), 5, what="STOPPING=1 from " + name)
            self.assertEqual(len(notify.times("STOPPING")), 1, name)

    def test_a_bad_notify_socket_changes_nothing(self):
        """A NOTIFY_SOCKET nobody listens on (or not a socket name at all): the daemon
        runs and forwards as without one."""
        for bad in (self.path("nobody-listens"), "not-a-path"):
            port = free_port()
            env = dict(os.environ, NOTIFY_SOCKET=bad, WATCHDOG_USEC="1000000")
            p = subprocess.Popen([os.path.join(BIN, "lightspeed-proxy"), "--bind",
                                  "127.0.0.1:%d" % port, "--socket", self.path("p.sock"),
                                  "--insecure-no-auth"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, env=env)
            try:
                wait_for(lambda: os.path.exists(self.path("p.sock")), 10, what="proxy socket")
                time.sleep(1.5)
                self.assertIsNone(p.poll())
            finally:
                p.send_signal(signal.SIGTERM)
                err = p.communicate(timeout=10)[1].decode()
            self.assertEqual(p.returncode, 0, err)


if __name__ == "__main__":
    unittest.main()
