"""The ML selector end to end: the real controller trains its model in the background,
reports it (GET /model, `model` events, lsctl model), switches strategy at run time
(POST /route/strategy, lsctl strategy), falls back to nearest's scores when its model
file is refused, and with two real proxies behind ls-netsim shows a prediction per node
in /routes and records the probes it can be trained on (GET /samples, lsctl export).
Every answer is validated against api/openapi.yaml."""
import os
import subprocess
import threading
import time

from lstest import BIN, LSTestCase, free_port, wait_for
from test_controller import Controller, client_has_route_table

LSCTL = os.path.join(BIN, "lsctl")


class MlTestCase(LSTestCase):

    def lsctl(self, c, *args):
        return subprocess.run([LSCTL, "--api", "http://127.0.0.1:%d" % c.port] + list(args),
                              capture_output=True, text=True, timeout=20)

    def controller(self, state, *extra, conf=None):
        args = ["--client-socket", self.path("nobody.sock"), "--state-dir", state,
                "--dashboard", "off"] + list(extra)
        if conf:
            args = ["-c", self.write("controller.toml", conf)] + args
        c = Controller(self, args)
        self.closers.append(c.stop)
        return c

    def wait_model(self, c, state="installed", timeout=60):
        def done():
            m = c.api.get("/model")
            last = m["last_training"]
            return m if m["training"] is None and last and last["state"] == state else None
        return wait_for(done, timeout, 0.2, "a training that ends %s" % state)


class MlControllerTest(MlTestCase):

    def test_train_status_strategy(self):
        state = self.path("state")
        c = self.controller(state)
        # No model in the state directory: one is trained from synthetic data at once.
        m = c.api.get("/model")
        self.assertIsNone(m["model"])
        self.assertEqual(m["strategy"], "nearest")
        self.assertEqual(m["training"]["from"], "synthetic")
        self.assertEqual(m["training"]["why"], "no model")
        # Its progress in lsctl model status while it runs (the loop answers meanwhile).
        r = self.lsctl(c, "model", "status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("training from synthetic data (no model): ", r.stdout)
        self.assertRegex(r.stdout, r"\d+ of 10 trees, \d+\.\d s")
        # A second training while one runs is refused.
        c.api.expect_error("POST", "/model/train", 409, "conflict", {"from": "both"})
        c.api.expect_error("POST", "/model/train", 400, "invalid", {"from": "tea leaves"})
        m = self.wait_model(c)
        model = m["model"]
        self.assertEqual(model["source"], "synthetic")
        self.assertEqual(model["trees"], 10)
        self.assertGreater(model["train_rows"], 50000)
        self.assertTrue(model["beats_baseline"])
        self.assertLess(model["mae_ms"], model["baseline_mae_ms"])
        self.assertTrue(os.path.exists(os.path.join(state, "ml-model.bin")))
        self.assertIn("held-out MAE", m["status"])
        # docs/ml.md documents the model's 11 features, in the file's order, each with
        # where it comes from and the value used when it is unknown.
        self.assertEqual(documented_features(), model_file_features(state))


        # The strategy at run time; nearest's table without a dataplane says so too.
        r = self.lsctl(c, "strategy", "ml")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("strategy ml (the model scores)", r.stdout)
        routes = c.api.get("/routes")
        self.assertEqual(routes["strategy"], "ml")
        self.assertEqual(routes["ml"], {"strategy": "ml", "in_use": True, "status": m["status"]})
        self.assertEqual(self.lsctl(c, "strategy", "guess").returncode, 2)
        st, body = c.api.call("POST", "/route/strategy", {"strategy": "nearest"})
        self.assertEqual((st, body["strategy"], body["in_use"]), (200, "nearest", False))
        c.api.expect_error("POST", "/route/strategy", 400, "invalid", {"strategy": "random"})
        c.api.expect_error("POST", "/route/strategy", 400, "bad_request", {"strategy": "ml", "x": 1})

        # A training on request, followed on /events: progress, then the outcome. The
        # same data and seed make the same model, so the current one is kept.
        events = []

        def read():
            for name, data in c.api.events(max_events=200, timeout=40):
                events.append((name, data))
                if name == "model" and data.get("state") in ("installed", "kept", "failed"):
                    return
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        time.sleep(0.5)
        r = self.lsctl(c, "model", "train", "--from", "synthetic")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("training from synthetic data (request)", r.stdout)
        reader.join(45)
        models = [d for n, d in events if n == "model"]
        self.assertTrue(any(d["state"] == "training" and d["phase"] == "training" for d in models),
                        models)
        self.assertEqual(models[-1]["state"], "kept", models[-1])
        self.assertAlmostEqual(models[-1]["current_mae_ms"], models[-1]["mae_ms"], places=6)
        # Nothing recorded without a dataplane: a recorded training fails and says why.
        st, _ = c.api.call("POST", "/model/train", {"from": "recorded"})
        self.assertEqual(st, 202)
        m = self.wait_model(c, "failed")
        self.assertIn("no recorded samples yet", m["last_training"]["message"])
        self.assertTrue(m["model"]["beats_baseline"])  # the model stays

        r = self.lsctl(c, "model")
        self.assertEqual(r.returncode, 0, r.stderr)
        for text in ("strategy nearest", "10 trees", "held out MAE", "last training: failed"):
            self.assertIn(text, r.stdout)
        self.assertEqual(self.lsctl(c, "model", "train", "--from", "x").returncode, 2)
        self.assertEqual(self.lsctl(c, "model", "fly").returncode, 2)

        # Restarted, the controller loads the model instead of training one.
        c.stop()
        c2 = self.controller(state)
        m = c2.api.get("/model")
        self.assertIsNone(m["training"])
        self.assertEqual(m["model"]["created"], model["created"])
        self.assertIn("model: model of synthetic data", c2.output())

        # A model trained on far fewer rows (from both sources: nothing recorded here,
        # so synthetic rows only) errs more on its own held-out rows than the current
        # one does: it is not installed, and the file stays as it was.
        c2.stop()
        with open(os.path.join(state, "ml-model.bin"), "rb") as f:
            before = f.read()
        c3 = self.controller(state, conf="[ml]\nsynthetic_rows = 3000\n")
        r = self.lsctl(c3, "model", "train", "--from", "both")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("training from both data (request)", r.stdout)
        last = self.wait_model(c3, "kept")["last_training"]
        self.assertEqual((last["from"], last["rows"], last["recorded_rows"]), ("both", 3000, 0))
        self.assertFalse(last["installed"])
        self.assertLess(last["current_mae_ms"], last["mae_ms"], last)
        self.assertIn("kept the current one", last["message"])
        with open(os.path.join(state, "ml-model.bin"), "rb") as f:
            self.assertEqual(f.read(), before)
        self.assertEqual(c3.api.get("/model")["model"]["created"], model["created"])

    def test_refused_model_falls_back(self):
        state = self.path("state")
        os.makedirs(state)
        with open(os.path.join(state, "ml-model.bin"), "wb") as f:
            f.write(b"LSFOREST" + b"\x01\x00\x00\x00" + b"\x00" * 300)
        c = self.controller(state, conf='[controller]\nstrategy = "ml"\n')
        routes = c.api.get("/routes")
        self.assertEqual(routes["strategy"], "ml")
        self.assertFalse(routes["ml"]["in_use"])
        self.assertIn("model file refused", routes["ml"]["status"])
        self.assertIn("ml-model.bin", routes["ml"]["status"])
        m = c.api.get("/model")
        self.assertIsNone(m["model"])
        self.assertIsNone(m["training"])  # a damaged file is not silently replaced
        self.assertIn("scores as nearest", c.output())
        r = self.lsctl(c, "strategy")
        self.assertIn("scoring as nearest: no usable model", r.stdout)
        # Training a model puts ml to work.
        self.assertEqual(self.lsctl(c, "model", "train").returncode, 0)
        m = self.wait_model(c)
        self.assertTrue(m["in_use"])
        self.assertEqual(c.api.get("/routes")["ml"]["in_use"], True)
        c.stop()

        # That real file cut short, or with one byte changed: refused, said so in
        # /routes, nearest's scores meanwhile, and the file is left for a look.
        path = os.path.join(state, "ml-model.bin")
        with open(path, "rb") as f:
            good = f.read()
        damaged = bytearray(good)
        damaged[len(good) // 2] ^= 0x01
        for data, why in ((good[:len(good) // 2], "truncated"),
                          (bytes(damaged), "checksum mismatch")):
            with open(path, "wb") as f:
                f.write(data)
            c = self.controller(state, conf='[controller]\nstrategy = "ml"\n')
            ml = c.api.get("/routes")["ml"]
            self.assertFalse(ml["in_use"], why)
            self.assertIn("model file refused", ml["status"])
            self.assertIn(why, ml["status"])
            self.assertIsNone(c.api.get("/model")["model"])
            self.assertIn("scoring as nearest: no usable model", self.lsctl(c, "strategy").stdout)
            c.stop()
            with open(path, "rb") as f:
                self.assertEqual(f.read(), data)


def documented_features():
    """The feature table of docs/ml.md: (index, name) of every row that says where the
    feature comes from and what stands for it when unknown."""
    here = os.path.dirname(os.path.abspath(__file__))
    rows = []
    with open(os.path.join(here, "..", "..", "docs", "ml.md")) as f:
        for line in f:
            cells = [x.strip() for x in line.strip().strip("|").split("|")]
            if len(cells) == 5 and cells[0].isdigit() and cells[1].startswith("`"):
                if cells[3] and cells[4]:
                    rows.append((int(cells[0]), cells[1].strip("`")))
    return rows


def model_file_features(state):
    """The feature names a model file holds (docs/ml.md section 4: after the 256-byte
    header, 24 bytes per feature, NUL-padded)."""
    with open(os.path.join(state, "ml-model.bin"), "rb") as f:
        b = f.read()
    n = int.from_bytes(b[12:16], "little")
    return [(i, b[256 + 24 * i:256 + 24 * (i + 1)].split(b"\0")[0].decode()) for i in range(n)]


def write_misleading(state, secs=450, stretches=8):
    """A recorded history where load says nothing of latency: a answers 20 ms while it
    reports a load of 0.95, b 27 ms at 0.1 (a little noise), every 250 ms, in
    `stretches` runs a minute apart (a controller stopped and started again)."""
    import random
    rnd = random.Random(1)
    os.makedirs(state, exist_ok=True)
    t0 = int(time.time() * 1000) - stretches * (secs + 60) * 1000
    with open(os.path.join(state, "ml-samples.csv"), "w") as f:
        f.write("time_ms,node,rtt_ms,load,hops,as_path_len,distance_km\n")
        for k in range(stretches):
            for i in range(secs * 4):
                t = t0 + k * (secs + 60) * 1000 + i * 250
                f.write("%d,a,%.3f,0.95,,,\n" % (t, 20 + rnd.random() - 0.5))
                f.write("%d,b,%.3f,0.1,,,\n" % (t, 27 + rnd.random() - 0.5))


class MlRouteCheckTest(MlTestCase):

    def test_worse_than_nearest_not_used(self):
        """The model is judged against nearest on what this controller recorded: where
        it chooses worse, it is not used and the controller says why."""
        state = self.path("state")
        write_misleading(state)
        c = self.controller(state, conf='[controller]\nstrategy = "ml"\n'
                                         '[ml]\nretrain_every_s = 30\nmin_rows = 100\n')
        m = self.wait_model(c)
        model = m["model"]
        rc = model["route_check"]
        for name in ("steady", "scenario"):
            self.assertGreater(rc[name]["decisions"], 10000, rc)
        # The recorded stretches (8 x 450 s of two nodes) are replayed: 300 decisions each.
        self.assertTrue(2200 <= rc["recorded"]["decisions"] <= 2400, rc)
        self.assertEqual(rc["recorded"]["nearest_regret_ms"], 0)
        # The synthetic model takes a's load for a coming degradation and picks b.
        self.assertGreater(rc["recorded"]["ml_regret_ms"], 5, rc)
        self.assertEqual(model["worse_on"], "recorded")
        self.assertFalse(model["used"])
        self.assertTrue(model["beats_baseline"])
        self.assertIn("worse than nearest on the recorded set", m["status"])
        self.assertIn("not used", m["last_training"]["message"])
        self.assertEqual(m["last_training"]["worse_on"], "recorded")
        routes = c.api.get("/routes")
        self.assertEqual(routes["strategy"], "ml")
        self.assertFalse(routes["ml"]["in_use"])
        self.assertIn("worse than nearest on the recorded set", routes["ml"]["status"])
        r = self.lsctl(c, "model")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("chooses worse than nearest on the recorded set, so not used", r.stdout)
        self.assertIn("route regret, recorded set: ml", r.stdout)
        self.assertIn("scoring as nearest: no usable model", self.lsctl(c, "strategy").stdout)

        # The schedule retrains from the recorded history (every 30 s here) and judges
        # the new model the same way.
        def scheduled():
            last = c.api.get("/model")["last_training"]
            return last if last and last["why"] == "schedule" else None
        last = wait_for(scheduled, 90, 0.5, "a scheduled training")
        self.assertEqual(last["from"], "recorded")
        self.assertIn(last["state"], ("installed", "kept"), last)
        # Replaced only by a better one on the new held-out rows (or one in use, where
        # the current one is not).
        usable = last["mae_ms"] < last["baseline_mae_ms"] and last["worse_on"] is None
        better = usable if usable != model["used"] else last["mae_ms"] < last["current_mae_ms"]
        self.assertEqual(last["installed"], better, last)
        self.assertEqual(last["state"], "installed" if better else "kept", last)
        self.assertGreater(last["recorded_rows"], 800)
        self.assertTrue(2200 <= last["route_check"]["recorded"]["decisions"] <= 2400, last)


class MlEndToEnd(MlTestCase):
    """Two real proxies behind ls-netsim, a real client, the controller on ml."""

    DELAY_A, DELAY_B = 15, 40      # ms each way

    def test_predictions_and_recording(self):
        echo = self.echo()
        pa, pb = self.proxy(), self.proxy()
        na = self.netsim(pa.addr, up="delay=%dms" % self.DELAY_A, down="delay=%dms" % self.DELAY_A)
        nb = self.netsim(pb.addr, up="delay=%dms" % self.DELAY_B, down="delay=%dms" % self.DELAY_B)
        local = free_port()
        sock = self.path("client-%d.sock" % local)
        from lstest import Proc
        try:
            client = Proc("lightspeed-client", ["--game-server", "%s:%d" % echo.addr,
                                                "--local-port", str(local), "--socket", sock,
                                                "--keepalive-ms", "30"], sock, self.tmp)
        except AssertionError as e:
            self.skipTest("lightspeed-client does not run without --proxy: %s" % e)
        self.closers.append(client.stop)
        if not client_has_route_table(sock):
            self.skipTest("lightspeed-client has no route table")
        state = self.path("state")
        c = Controller(self, ["--client-socket", sock, "--state-dir", state, "--dashboard", "off",
                              "--node", "a=127.0.0.1:%d" % na.port,
                              "--node", "b=127.0.0.1:%d" % nb.port,
                              "-c", self.write("ml.toml", '[controller]\nstrategy = "ml"\n')])
        self.closers.append(c.stop)
        self.wait_model(c)

        # Every node gets a prediction near what it measures, and the nearer is active.
        def predicted():
            r = c.route()
            ok = r["active"] == "a" and all(x["prediction"] and x["samples"] >= 5
                                            for x in r["candidates"])
            return r if ok else None
        r = wait_for(predicted, 20, 0.2, "a prediction for both nodes, a active")
        for x, delay in zip(sorted(r["candidates"], key=lambda x: x["name"]),
                            (self.DELAY_A, self.DELAY_B)):
            p = x["prediction"]
            self.assertLess(abs(p["p95_ms"] - 2 * delay) / (2 * delay), 0.5, (x["name"], p))
            self.assertLessEqual(p["low_ms"], p["high_ms"])
            self.assertTrue(1 <= len(p["top_features"]) <= 3, p)
            self.assertTrue(x["explain"].startswith("p95 next 30 s"), x["explain"])
            self.assertAlmostEqual(x["score"], p["p95_ms"], delta=0.5 + 0.01 * p["p95_ms"])
        self.assertEqual(r["why"]["strategy"], "ml")
        text = self.lsctl(c, "routes").stdout
        self.assertIn("predicted p95 over the next 30 s", text)

        # The probes are recorded, every 250 ms per node, and exported as CSV.
        time.sleep(2)
        out = self.path("samples.csv")
        r = self.lsctl(c, "export", "--out", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(out) as f:
            lines = f.read().splitlines()
        self.assertEqual(lines[0], "time_ms,node,rtt_ms,load,hops,as_path_len,distance_km")
        rows = [l.split(",") for l in lines[1:]]
        for name, delay in (("a", self.DELAY_A), ("b", self.DELAY_B)):
            rtts = [float(x[2]) for x in rows if x[1] == name and x[2]]
            self.assertGreater(len(rtts), 8, name)
            rtts.sort()
            self.assertLess(abs(rtts[len(rtts) // 2] - 2 * delay) / (2 * delay), 0.3, name)
        st, body = c.api.call("GET", "/samples")
        self.assertEqual(st, 200)
        self.assertGreater(c.api.get("/model")["recorded"]["records"], 16)
