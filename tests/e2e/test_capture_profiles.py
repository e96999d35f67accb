"""Game profiles as installed: `make install` (into a DESTDIR) puts every shipped profile
where the installed programs look, and a user's own directory overrides and extends
them. The installed client and controller run in a mount namespace in which the staged
install is /usr/local (and its /etc/lightspeed is /etc/lightspeed), as on a machine
after `make install`, so no profile of the source tree can be what they find."""
import glob
import os
import socket
import subprocess
import unittest

from lstest import LSTestCase, wait_for
from test_controller import Controller

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# Runs "$@" with $0 bind-mounted on /usr/local and, when the machine has one, $1 on
# /etc/lightspeed (in this mount namespace only).
INSTALLED = ('mount --make-rprivate / && mount --bind "$0" /usr/local && '
             '{ [ ! -d /etc/lightspeed ] || mount --bind "$1" /etc/lightspeed; } && '
             'shift && exec "$@"')


class InstalledController(Controller):
    """The installed lightspeed-controller, started through a prefix."""

    def __init__(self, case, prefix, args, env):
        self.prefix = prefix
        super().__init__(case, args, env=env)

    def start(self):
        self.log = open(self.log_path, "ab")
        self.p = subprocess.Popen(self.prefix + ["/usr/local/bin/lightspeed-controller"] + self.args,
                                  stdout=self.log, stderr=subprocess.STDOUT, env=self.env)

        def up():
            if self.p.poll() is not None:
                raise AssertionError("controller exited %s:\n%s" % (self.p.returncode, self.output()))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return True
            except OSError:
                return False
        wait_for(up, 5, what="the installed controller's API")


@unittest.skipUnless(os.geteuid() == 0, "needs root for a mount namespace")
class InstalledProfilesTest(LSTestCase):

    def test_make_install_ships_the_profiles_and_a_users_directory_extends_them(self):
        dest = self.path("dest")
        # A make of its own: not the jobserver of a `make test` that may be running this.
        env = {k: v for k, v in os.environ.items()
               if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
        r = subprocess.run(["make", "-s", "-C", ROOT, "install", "DESTDIR=" + dest], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=600)
        self.assertEqual(r.returncode, 0, r.stdout)
        installed = os.path.join(dest, "usr", "local", "share", "lightspeed", "profiles")
        shipped = sorted(glob.glob(os.path.join(ROOT, "profiles", "*.toml")))
        self.assertGreaterEqual(len(shipped), 10)
        self.assertEqual(sorted(os.listdir(installed)), [os.path.basename(f) for f in shipped])
        for f in shipped:
            with open(f, "rb") as a, open(os.path.join(installed, os.path.basename(f)), "rb") as b:
                self.assertEqual(a.read(), b.read(), f)
            self.assertEqual(os.stat(os.path.join(installed, os.path.basename(f))).st_mode & 0o777,
                             0o644)

        # The user's directory: cs2 with other ports, and a game of their own.
        home = self.path("home")
        user = os.path.join(home, ".config", "lightspeed", "profiles")
        os.makedirs(user)
        tag = "lsmine%d" % os.getpid()
        with open(os.path.join(user, "cs2.toml"), "w") as f:
            f.write('[game]\nname = "CS2 (mine)"\nprocesses = ["cs2"]\nports = ["27020"]\n')
        with open(os.path.join(user, "%s.toml" % tag), "w") as f:
            f.write('[game]\nname = "My Game"\nprocesses = ["%s"]\nports = ["6000-6001"]\n'
                    '[tunnel]\nfec = "auto"\n' % tag)
        os.makedirs(os.path.join(dest, "etc", "lightspeed"), exist_ok=True)
        prefix = ["unshare", "-m", "sh", "-c", INSTALLED, os.path.join(dest, "usr", "local"),
                  os.path.join(dest, "etc", "lightspeed")]
        run_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home}

        def check(game):
            r = subprocess.run(prefix + ["/usr/local/bin/lightspeed-client", "--capture", "--game",
                                         game, "--check"], env=run_env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, timeout=10)
            self.assertEqual(r.returncode, 0, r.stderr)
            return r.stdout

        out = check("valorant")
        self.assertIn('game = "valorant"  # VALORANT, '
                      '/usr/local/share/lightspeed/profiles/valorant.toml', out)
        self.assertIn("# ports: the game profile's, 7000-8000 8180-8181", out)
        out = check("cs2")
        self.assertIn('game = "cs2"  # CS2 (mine), %s/cs2.toml' % user, out)
        self.assertIn("# ports: the game profile's, 27020", out)
        self.assertIn("# My Game, %s/%s.toml" % (user, tag), check(tag))

        # The installed controller's detection knows the user's game too.
        conf = self.path("controller.toml")
        with open(conf, "w") as f:
            f.write('[games]\nscan_ms = 200\n[warp]\ncli = "/nonexistent/warp-cli"\n')
        c = InstalledController(self, prefix, ["-c", conf, "--client-socket", self.path("none.sock"),
                                               "--state-dir", self.path("state"), "--dashboard",
                                               "off"], env=run_env)
        self.closers.append(c.stop)
        game = subprocess.Popen(["bash", "-c", 'exec -a "%s" sleep 30' % tag])
        self.closers.append(game.kill)
        g = wait_for(lambda: c.api.get("/status")["game"], 5, what="the user's game in /status")
        self.assertEqual((g["id"], g["name"], g["pid"]), (tag, "My Game", game.pid))
        self.assertEqual(g["profile"]["file"], os.path.join(user, "%s.toml" % tag))
        self.assertIn("games: %d profiles" % (len(shipped) + 1), c.output())


if __name__ == "__main__":
    unittest.main()
