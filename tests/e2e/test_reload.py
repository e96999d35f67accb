"""A user's machine: SIGHUP reloads the configuration (a broken file changes nothing
and never stops the process), keys come from a file of their own and files holding
keys that others can read are warned about, and without -c each program reads
/etc/lightspeed/<name>.toml (in a private mount namespace here) and says so."""
import os
import re
import shutil
import signal
import subprocess
import time

from lstest import LSTestCase, Proc, BIN, free_port, wait_for, numbered_payloads

KEY = "00112233445566778899aabbccddeeff"
KEY2 = "ffeeddccbbaa99887766554433221100"
FAST = "[limits]\npps = 200000\nbps = 400000000\n"
POSITION = r"%s:\d+:\d+: "


def session(sid, key, *dests, extra=""):
    return '[[session]]\nid = %d\nkey = "%s"\ndestinations = [%s]\n%s' % (
        sid, key, ", ".join('"%s"' % d for d in dests), extra)


class ReloadTest(LSTestCase):

    def _proxy(self, cfg_text):
        """A proxy on a config file alone (no flag overriding what a reload changes)."""
        port = free_port()
        sock = self.path("proxy-%d.sock" % port)
        cfg = self.write("proxy.toml", cfg_text)
        os.chmod(cfg, 0o600)
        p = Proc("lightspeed-proxy", ["-c", cfg, "--bind", "127.0.0.1:%d" % port,
                                      "--socket", sock], sock, self.tmp)
        p.port, p.addr, p.cfg = port, ("127.0.0.1", port), cfg
        self.procs.append(p)
        return p

    def _client(self, cfg_text):
        sock = self.path("client-%d.sock" % free_port())
        cfg = self.write("client.toml", cfg_text + 'socket = "%s"\n' % sock)
        os.chmod(cfg, 0o600)
        c = Proc("lightspeed-client", ["-c", cfg], sock, self.tmp)
        c.cfg = cfg
        self.procs.append(c)
        return c

    def _rewrite(self, path, text):
        with open(path, "w") as f:
            f.write(text)

    def _hup(self, p, seen):
        """SIGHUP, then wait for the answer in the log (`seen` more lines of it)."""
        before = p.output().count(seen)
        p.p.send_signal(signal.SIGHUP)
        wait_for(lambda: p.output().count(seen) > before, 5, what=seen)

    def test_proxy_sighup_applies_sessions_limits_allow_and_level(self):
        echo, other = self.echo(), self.echo()
        dest = "127.0.0.1:%d" % echo.addr[1]
        head = '[proxy]\nallow = ["127.0.0.0/8"]\nlog_level = "info"\n'
        proxy = self._proxy(head + FAST + session(9, KEY, dest))
        client = self.client(proxy.port, echo.addr, session=(9, KEY))
        game = self.game(client.local_port)
        wait_for(lambda: client.steer("status")["path"] == "up", 3, what="the path")
        self.assert_exchange(game, numbered_payloads(50, seed=1))

        # Session 9 now allowed elsewhere, with its own limit; session 4 added; warn.
        self._rewrite(proxy.cfg, head.replace("info", "warn") + FAST +
                      session(9, KEY, "127.0.0.1:%d" % other.addr[1], extra="pps = 777\n") +
                      session(4, KEY2, dest))
        self._hup(proxy, "reloaded")
        self.assertRegex(proxy.output(), r"static sessions 1 added, 1 changed, 0 removed")
        by_id = {s["session_id"]: s for s in proxy.steer("sessions")["sessions"]}
        self.assertEqual(sorted(by_id), [4, 9])
        self.assertEqual(by_id[9]["pps"], 777)
        self.assertEqual(by_id[9]["destinations"], ["127.0.0.1:%d" % other.addr[1]])
        # The session kept its client and lifetime: no new handshake, and its packets
        # to the old destination are refused now.
        self.assertEqual(client.steer("status")["path"], "up")
        before = echo.count()
        game.send(b"to the old server")
        wait_for(lambda: proxy.stats()["drops"].get("not_allowed", 0) >= 1, 3,
                 what="a not_allowed drop")
        self.assertEqual(echo.count(), before)
        # At warn, a session coming up (info) is not logged.
        proxy.steer("session_add", session_id=5, key=KEY2, destinations=[dest])
        time.sleep(0.2)
        self.assertNotRegex(proxy.output(), r"session 5 up")

        # The allow list goes: the session's loopback destination is denied now.
        self._rewrite(proxy.cfg, FAST + session(9, KEY, dest))
        self._hup(proxy, "reloaded")
        self.assertRegex(proxy.output(), r"0 added, 1 changed, 1 removed")
        self.assertRegex(proxy.output(), r"destination %s is in the denied range" % dest)
        game.send(b"denied now")
        wait_for(lambda: proxy.stats()["drops"].get("denied_destination", 0) >= 1, 3,
                 what="a denied_destination drop")
        # Sessions added by steering are not the file's: they stay.
        self.assertEqual(sorted(s["session_id"] for s in proxy.steer("sessions")["sessions"]),
                         [5, 9])

        # A broken file: logged with its position, nothing changes, the proxy runs on.
        self._rewrite(proxy.cfg, head + FAST + session(9, KEY, dest) + "[proxy]\n")
        self._hup(proxy, "still running on the configuration loaded before")
        self.assertRegex(proxy.output(), r"error: SIGHUP: " + POSITION % re.escape(proxy.cfg) +
                         r"duplicate section \[proxy\]")
        self._rewrite(proxy.cfg, head + FAST + session(9, KEY, dest) + session(9, KEY2, dest))
        self._hup(proxy, "still running on the configuration loaded before")
        self.assertRegex(proxy.output(), POSITION % re.escape(proxy.cfg) +
                         r"\[\[session\]\] #2: id 9 is already used")
        self.assertTrue(proxy.alive())
        self.assertEqual(sorted(s["session_id"] for s in proxy.steer("sessions")["sessions"]),
                         [5, 9])

        # Back to the first file: traffic flows again, through the same lifetime, and
        # info lines are logged again.
        self._rewrite(proxy.cfg, head + FAST + session(9, KEY, dest))
        self._hup(proxy, "reloaded")
        self.assert_exchange(game, numbered_payloads(50, seed=2))
        proxy.steer("session_add", session_id=6, key=KEY2, destinations=[dest])
        wait_for(lambda: re.search(r"info: session 6 up", proxy.output()), 3, what="info lines")

    def test_proxy_sighup_new_key_is_a_new_session(self):
        echo = self.echo()
        dest = "127.0.0.1:%d" % echo.addr[1]
        head = '[proxy]\nallow = ["127.0.0.0/8"]\n' + FAST
        proxy = self._proxy(head + session(9, KEY, dest))
        client = self.client(proxy.port, echo.addr, session=(9, KEY))
        game = self.game(client.local_port)
        wait_for(lambda: client.steer("status")["path"] == "up", 3, what="the path")
        self.assert_exchange(game, numbered_payloads(20, seed=3))
        self._rewrite(proxy.cfg, head + session(9, KEY2, dest))
        self._hup(proxy, "reloaded")
        self.assertRegex(proxy.output(), r"1 added, 0 changed, 1 removed")
        # The old key authenticates nothing now.
        game.send(b"old key")
        wait_for(lambda: sum(proxy.stats()["drops"].get(r, 0) for r in ("bad_tag", "handshake",
                                                                        "unknown_session")) >= 1
                 or "bad_tag" in proxy.output(), 3, what="the old key refused")
        self.assertEqual(echo.count(), 20)

    def test_client_sighup_reloads_and_never_kills_it(self):
        echo = self.echo()
        proxy = self.proxy(config=FAST + session(9, KEY, "127.0.0.1:%d" % echo.addr[1]),
                           auth=True)
        key = self.write("client.key", KEY + "\n")
        os.chmod(key, 0o600)
        local = free_port()
        text = ('[client]\nproxy = "127.0.0.1:%d"\ngame_server = "127.0.0.1:%d"\n'
                'local_port = %d\nsession_id = 9\nkey_file = "%s"\n' % (
                    proxy.port, echo.addr[1], local, key))
        client = self._client(text)
        game = self.game(local)
        wait_for(lambda: client.steer("status")["path"] == "up", 3, what="the path")
        self.assert_exchange(game, numbered_payloads(30, seed=4))

        # Nothing changed: nothing moves.
        self._hup(client, "reloaded")
        self.assertIn("0 settings changed", client.output())
        st = client.steer("status")
        self.assertEqual(st["keepalive_ms"], 30)
        self.assertEqual(st["fec"], "off")

        sock_line = [ln for ln in open(client.cfg) if ln.startswith("socket")][0]
        self._rewrite(client.cfg, text + sock_line + 'keepalive_ms = 70\nfec = "2:1"\n')
        self._hup(client, "reloaded")
        st = client.steer("status")
        self.assertEqual(st["keepalive_ms"], 70)
        self.assertEqual(st["fec"], "2:1")
        self.assertEqual(st["path"], "up")
        self.assert_exchange(game, numbered_payloads(30, seed=5))

        # A broken file: the position in the log, the client runs on as it was.
        self._rewrite(client.cfg, text + sock_line + "keepalive_ms = 5\n")
        self._hup(client, "still running on the configuration read before")
        self.assertRegex(client.output(), r"error: SIGHUP: " + POSITION % re.escape(client.cfg) +
                         r"'keepalive_ms' must be between")
        self.assertTrue(client.alive())
        self.assertEqual(client.steer("status")["keepalive_ms"], 70)
        self.assert_exchange(game, numbered_payloads(30, seed=6))

    def test_sighup_never_kills_a_client_without_a_config_file(self):
        echo = self.echo()
        proxy = self.proxy(config=FAST + session(9, KEY, "127.0.0.1:%d" % echo.addr[1]),
                           auth=True)
        client = self.client(proxy.port, echo.addr, session=(9, KEY))
        game = self.game(client.local_port)
        wait_for(lambda: client.steer("status")["path"] == "up", 3, what="the path")
        self._hup(client, "nothing to reload")
        self.assertTrue(client.alive())
        self.assert_exchange(game, numbered_payloads(20, seed=7))
        # And when it stops, the proxy hears its FIN.
        client.expect_exit = True
        self.assertEqual(client.stop(), 0)
        wait_for(lambda: proxy.steer("sessions")["sessions"][0]["client"] is None, 3,
                 what="the FIN")


class KeyFileTest(LSTestCase):

    def test_key_file_carries_the_session(self):
        echo = self.echo()
        proxy = self.proxy(config=FAST + session(9, KEY, "127.0.0.1:%d" % echo.addr[1]),
                           auth=True)
        key = self.write("k", "  %s  \n# the session key\n" % KEY)
        os.chmod(key, 0o600)
        client = self.client(proxy.port, echo.addr, "--session-id", "9", "--key-file", key)
        game = self.game(client.local_port)
        wait_for(lambda: client.steer("status")["path"] == "up", 3, what="the path")
        self.assert_exchange(game, numbered_payloads(30, seed=8))
        self.assertTrue(client.steer("status")["auth"])
        self.assertNotIn("readable by other users", client.output())
        # The key is nowhere on the command line.
        with open("/proc/%d/cmdline" % client.p.pid, "rb") as f:
            self.assertNotIn(KEY.encode(), f.read())

    def test_key_file_errors_and_warnings(self):
        base = ["--proxy", "127.0.0.1:4434", "--game-server", "127.0.0.1:9", "--local-port",
                "7777", "--session-id", "9", "--check"]
        r = self.run_bin("lightspeed-client", *(base + ["--key-file", self.path("none")]))
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--key-file: key file %s: No such file or directory" % self.path("none"),
                      r.stderr)
        short = self.write("short", "abc\n")
        r = self.run_bin("lightspeed-client", *(base + ["--key-file", short]))
        self.assertEqual(r.returncode, 2)
        self.assertIn("expected 32 hex digits", r.stderr)
        r = self.run_bin("lightspeed-client", *base)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--key-file", r.stderr)
        # Readable by others: it works, with a warning that says how to fix it.
        key = self.write("open.key", KEY + "\n")
        os.chmod(key, 0o644)
        r = self.run_bin("lightspeed-client", *(base + ["--key-file", key]))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("%s holds a session key and is readable by other users (mode 0644): "
                      "chmod 600 %s" % (key, key), r.stderr)
        os.chmod(key, 0o640)
        r = self.run_bin("lightspeed-client", *(base + ["--key-file", key]))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("readable", r.stderr)
        self.assertNotIn(KEY, r.stdout + r.stderr)

    def test_config_files_holding_keys_readable_by_others_are_warned_about(self):
        px = self.write("p.toml", session(9, KEY, "192.0.2.1:27015"))
        cl = self.write("c.toml", '[client]\nproxy = "127.0.0.1:4434"\ngame_server = '
                        '"127.0.0.1:9"\nlocal_port = 7777\nsession_id = 9\nkey = "%s"\n' % KEY)
        for name, cfg, what in (("lightspeed-proxy", px, "session keys"),
                                ("lightspeed-client", cl, "a session key")):
            os.chmod(cfg, 0o644)
            r = self.run_bin(name, "-c", cfg, "--check")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("%s holds %s and is readable by other users (mode 0644)" % (cfg, what),
                          r.stderr)
            os.chmod(cfg, 0o600)
            r = self.run_bin(name, "-c", cfg, "--check")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertNotIn("readable by other users", r.stderr)
        # No key in the file: nothing to warn about.
        nokey = self.write("n.toml", "[proxy]\nidle_timeout = 30\n")
        os.chmod(nokey, 0o644)
        r = self.run_bin("lightspeed-proxy", "-c", nokey, "--check")
        self.assertNotIn("readable by other users", r.stderr)


class DefaultConfigTest(LSTestCase):
    """/etc/lightspeed/<name>.toml without -c, in a mount namespace of the test's own
    (an overlay on /etc), so the machine's /etc is never touched."""

    def _in_etc(self, files, *argv):
        upper, work = self.path("upper"), self.path("work")
        os.makedirs(os.path.join(upper, "lightspeed"), exist_ok=True)
        os.makedirs(work, exist_ok=True)
        for name, text in files.items():
            with open(os.path.join(upper, "lightspeed", name), "w") as f:
                f.write(text)
        script = ("mount --make-rprivate / && mount -t overlay overlay -o "
                  "lowerdir=/etc,upperdir=%s,workdir=%s /etc && exec \"$@\"" % (upper, work))
        return subprocess.run(["unshare", "-m", "sh", "-c", script, "sh"] + list(argv),
                              capture_output=True, text=True, timeout=10)

    def test_each_program_reads_its_file_in_etc_and_says_so(self):
        if os.geteuid() != 0:
            self.skipTest("a mount namespace needs root")
        files = {"proxy.toml": "[proxy]\nidle_timeout = 42\n",
                 "client.toml": '[client]\nproxy = "127.0.0.1:4434"\ngame_server = '
                                '"127.0.0.1:9"\nlocal_port = 7171\n'}
        r = self._in_etc(files, os.path.join(BIN, "lightspeed-proxy"), "--check")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("idle_timeout = 42", r.stdout)
        self.assertIn("reading /etc/lightspeed/proxy.toml (no -c given)", r.stderr)
        r = self._in_etc({}, os.path.join(BIN, "lightspeed-client"), "--check")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("local_port = 7171", r.stdout)
        self.assertIn("reading /etc/lightspeed/client.toml (no -c given)", r.stderr)
        r = self._in_etc({"controller.toml": "[controller]\n"},
                         os.path.join(BIN, "lightspeed-controller"), "--check")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("reading /etc/lightspeed/controller.toml (no -c given)", r.stderr)
        # -c wins, and nothing is said about /etc.
        other = self.write("o.toml", "[proxy]\nidle_timeout = 7\n")
        r = self._in_etc({}, os.path.join(BIN, "lightspeed-proxy"), "-c", other, "--check")
        self.assertIn("idle_timeout = 7", r.stdout)
        self.assertNotIn("/etc/lightspeed", r.stderr)

    def test_a_file_this_user_cannot_read_is_passed_over_and_said(self):
        if os.geteuid() != 0 or not shutil.which("setpriv"):
            self.skipTest("needs root and setpriv to run as another user")
        upper = self.path("upper")
        os.makedirs(os.path.join(upper, "lightspeed"), exist_ok=True)
        cfg = os.path.join(upper, "lightspeed", "client.toml")
        with open(cfg, "w") as f:
            f.write('[client]\nsession_id = 1\nkey = "%s"\n' % KEY)
        os.chmod(cfg, 0o600)  # the service's, not the gamer's
        os.chmod(self.tmp, 0o755)
        r = self._in_etc({}, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                         os.path.join(BIN, "lightspeed-client"), "--game-server", "127.0.0.1:9",
                         "--local-port", "7171", "--check")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("not reading /etc/lightspeed/client.toml: Permission denied; give -c "
                      "FILE", r.stderr)
        self.assertIn("session_id, key: not set", r.stdout)

    def test_without_the_file_nothing_is_read(self):
        if os.path.exists("/etc/lightspeed/proxy.toml"):
            self.skipTest("this machine has /etc/lightspeed/proxy.toml")
        r = self.run_bin("lightspeed-proxy", "--check")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("idle_timeout = 60", r.stdout)
        self.assertNotIn("reading", r.stderr)
