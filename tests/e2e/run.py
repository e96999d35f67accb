#!/usr/bin/env python3
"""Run the end-to-end tests (tests/e2e/test_*.py) against the real binaries.

    python3 tests/e2e/run.py [--build DIR] [NAME-FILTER...]

Prints one line per test and closes with "e2e: N passed, M failed".
"""
import argparse
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


class LineResult(unittest.TextTestResult):
    def startTest(self, test):
        self._t0 = time.monotonic()
        super().startTest(test)

    def _line(self, test, word):
        dt = time.monotonic() - self._t0
        self.stream.write("  %-6s %s (%.1fs)\n" % (word, test.id().split(".", 1)[1], dt))
        self.stream.flush()

    def addSuccess(self, test):
        unittest.TestResult.addSuccess(self, test)
        self._line(test, "ok")

    def addFailure(self, test, err):
        unittest.TestResult.addFailure(self, test, err)
        self._line(test, "FAIL")

    def addError(self, test, err):
        unittest.TestResult.addError(self, test, err)
        self._line(test, "ERROR")

    def addSkip(self, test, reason):
        unittest.TestResult.addSkip(self, test, reason)
        self._line(test, "skip")


def iter_tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from iter_tests(t)
        else:
            yield t


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build", help="build directory (default: build)")
    ap.add_argument("filters", nargs="*", help="run only tests whose id contains one of these")
    args = ap.parse_args()
    os.environ["LS_BUILD"] = os.path.abspath(args.build)

    loader = unittest.TestLoader()
    suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    tests = [t for t in iter_tests(suite)
             if not args.filters or any(f in t.id() for f in args.filters)]
    if not tests:
        # A misspelt name must not pass as "nothing failed".
        print("e2e: no test matches %s" % " ".join(repr(f) for f in args.filters))
        print("e2e: 0 passed, 1 failed")
        return 1
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=0, resultclass=LineResult)
    result = runner.run(unittest.TestSuite(tests))
    failed = len(result.failures) + len(result.errors)
    passed = result.testsRun - failed - len(result.skipped)
    print("e2e: %d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
