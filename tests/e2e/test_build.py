"""The build as a packager runs it: `make CFLAGS=...` from the command line replaces
the optimisation and debug flags only, never what the project needs to compile."""
import os
import subprocess

from lstest import LSTestCase

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


class BuildTest(LSTestCase):

    def test_make_cflags_from_the_command_line_keeps_the_project_flags(self):
        out = self.path("b")
        # A dataplane file that includes shared/ headers: without -Ishared it fails.
        obj = os.path.join(out, "obj", "dataplane", "proxy_conf.o")
        r = subprocess.run(["make", "-C", ROOT, "V=1", "CFLAGS=-O0 -g0", "B=" + out, obj],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(os.path.exists(obj))
        cmd = [ln for ln in r.stdout.splitlines() if "proxy_conf.c" in ln][-1]
        self.assertIn("-Ishared", cmd)
        self.assertIn("-O0 -g0", cmd)
        self.assertNotIn("-O2", cmd)
