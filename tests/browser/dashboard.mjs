// The dashboard in a real browser: Debian's chromium driven by playwright-core (from
// web/node_modules; no browser is downloaded). Started by tests/e2e/test_dashboard.py
// against a running mesh; steps that need the mesh changed are asked for on stdout
// ("ASK kill a") and acknowledged on stdin. Exit 0 when every check passed.
//   node tests/browser/dashboard.mjs URL SCREENSHOT.png
import { createRequire } from "module";
import path from "path";
import fs from "fs";
import os from "os";
import readline from "readline";
import { fileURLToPath } from "url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const { chromium } = require(path.join(here, "..", "..", "web", "node_modules", "playwright-core"));

const [url, shot] = process.argv.slice(2);
const rl = readline.createInterface({ input: process.stdin });
const lines = rl[Symbol.asyncIterator]();

function say(s) { process.stdout.write(s + "\n"); }
async function ask(what) {
  say("ASK " + what);
  const r = await lines.next();
  if (r.done || r.value.trim() !== "ok") throw new Error("the test harness refused: " + what);
}
function check(cond, what) {
  if (!cond) throw new Error("check failed: " + what);
  say("ok   " + what);
}

const profile = fs.mkdtempSync(path.join(os.tmpdir(), "ls-chromium-" + process.pid + "-"));
// A fresh profile directory each run (playwright passes it as --user-data-dir).
const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1280, height: 1000 },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const problems = [];
let refusing = false;
const requests = [];
let rc = 1;
try {
  // No network but loopback: anything else is refused and counted.
  await ctx.route("**/*", (route) => {
    const u = new URL(route.request().url());
    requests.push(u.href);
    if (u.hostname === "127.0.0.1" || u.hostname === "localhost" || u.protocol === "blob:"
        || u.protocol === "data:") return route.continue();
    problems.push("a request off loopback: " + u.href);
    return route.abort();
  });
  const watch = (page) => {
    page.on("console", (m) => {
      // The browser logs the refusal the test provokes on purpose; nothing else may.
      if (m.type() === "error" && !(refusing && m.text().includes("409 (Conflict)")))
        problems.push("console: " + m.text());
    });
    page.on("pageerror", (e) => problems.push("page error: " + e.message));
    page.on("requestfailed", (r) => {
      // The event stream is cut when a page closes: not a failure of the page.
      if (!r.url().endsWith("/events")) problems.push("failed: " + r.url() + " " + r.failure().errorText);
    });
    page.on("response", (r) => {
      if (r.status() >= 400 && !r.url().endsWith("/failover")) problems.push("HTTP " + r.status() + " " + r.url());
    });
  };
  const page = await ctx.newPage();
  watch(page);
  await page.goto(url, { waitUntil: "load" });
  check(await page.title() === "LightSpeed", "the page loads");

  // Nodes and live values appear, and update.
  await page.waitForSelector('#nodes tr[data-node="a"]', { timeout: 10000 });
  await page.waitForSelector('#nodes tr[data-node="b"]', { timeout: 10000 });
  check(true, "both nodes listed");
  await page.waitForFunction(() => {
    const c = document.querySelector('#nodes tr[data-node="a"] td[data-field="rtt_p50"]');
    return c && c.textContent.endsWith(" ms");
  }, null, { timeout: 10000 });
  await page.waitForFunction(() => document.getElementById("active-node").textContent === "a",
    null, { timeout: 10000 });
  check(true, "a active, with a measured RTT");
  const count = async () => parseInt((await page.textContent("#sample-count")) || "0", 10) || 0;
  await page.waitForFunction(() => parseInt(document.getElementById("sample-count").textContent, 10) > 0,
    null, { timeout: 10000 });
  const n0 = await count();
  await page.waitForTimeout(2000);
  const n1 = await count();
  check(n1 > n0 + 10, "live samples keep coming (" + n0 + " -> " + n1 + ")");
  const paths = await page.$$eval("#chart-rtt path", (ps) => ps.length);
  check(await page.$("#chart-rtt canvas") !== null, "the RTT chart is drawn (" + paths + ")");
  const state = await page.textContent('#nodes tr[data-node="a"] td[data-field="state"]');
  check(state === "healthy", "a healthy (" + state + ")");

  // Cloudflare WARP as the user left it (connected), and not toggled until asked.
  await page.waitForFunction(() => document.getElementById("warp-status").textContent
    .startsWith("connected"), null, { timeout: 10000 });
  check(true, "WARP shown: " + await page.textContent("#warp-status"));
  check((await page.textContent("#warp-toggle")).includes("only when you ask"),
    "WARP toggling not allowed by the configuration, and the page says so");
  check(await page.textContent("#warp-interface") === "CloudflareWARP absent",
    "WARP's interface shown absent");
  check(await page.textContent("#game-name") === "none detected", "no game detected yet");
  check((await page.textContent("#direct-route")).startsWith("not a candidate"),
    "the direct route shown as no candidate: " + await page.textContent("#direct-route"));
  await ask("warp untouched");
  await page.click("#warp-compare-btn");
  await page.waitForFunction(() => {
    const c = document.querySelector('#warp-compare tr[data-node="a"] td[data-field="without"]');
    return c && c.textContent.endsWith(" ms") &&
      document.getElementById("warp-last").textContent.includes("kept connected");
  }, null, { timeout: 20000 });
  const cmpText = await page.textContent("#warp-compare tbody");
  check(await page.$('#warp-compare tr[data-node="b"]') !== null,
    "the with/without comparison per node: " + cmpText.replace(/\s+/g, " ").trim());
  await ask("warp compared");
  await page.waitForFunction(() => document.getElementById("log").textContent.includes("WARP compared"),
    null, { timeout: 5000 });
  check(true, "the decision log shows the comparison");

  // The game, once the controller detects it, with its profile; no WARP toggling then.
  await ask("game on");
  await page.waitForFunction(() => document.getElementById("game-name").textContent
    .startsWith("Dash Game"), null, { timeout: 5000 });
  check(true, "the game shown: " + await page.textContent("#game-name"));
  check(await page.textContent("#game-profile") === "FEC auto, keepalive 30 ms" &&
    await page.textContent("#game-traffic") === "about 60 packets/s each way, 40-700 bytes" &&
    await page.textContent("#game-anticheat") === "Test Anti-Cheat" &&
    (await page.textContent("#game-file")).endsWith(".toml"), "its profile shown");
  await page.waitForFunction(() => document.getElementById("warp-compare-btn").disabled,
    null, { timeout: 3000 });
  check((await page.textContent("#warp-help")).includes("not while a game"),
    "no WARP comparison offered while a game is on");

  // Keyboard: the failover button is reachable with Tab.
  let reached = false;
  for (let i = 0; i < 40 && !reached; i++) {
    await page.keyboard.press("Tab");
    reached = await page.evaluate(() => document.activeElement && document.activeElement.id === "failover-btn");
  }
  check(reached, "the failover button is reachable with the keyboard");

  // Manual failover to b: the page and GET /routes both show it.
  await page.selectOption("#failover-to", "b");
  await page.click("#failover-btn");
  await page.waitForFunction(() => document.getElementById("active-node").textContent === "b",
    null, { timeout: 10000 });
  check(true, "the page shows b active after the click");
  await ask("routes-active b");
  await page.waitForFunction(() => document.querySelector("#history tbody tr td:nth-child(4)")
    && document.querySelector("#history tbody tr td:nth-child(4)").textContent === "manual",
    null, { timeout: 5000 });
  check(true, "the failover history shows the manual switch");
  await page.waitForFunction(() => document.getElementById("log").textContent.includes("a -> b"),
    null, { timeout: 5000 });
  check(true, "the decision log shows it");

  // FEC from the page.
  await page.fill("#fec", "4:2");
  await page.press("#fec", "Enter");
  await page.waitForFunction(() => document.getElementById("fec-setting").textContent === "4:2",
    null, { timeout: 8000 });
  check(true, "FEC set to 4:2 from the page");

  // Kill node a: marked down.
  await ask("kill a");
  await page.waitForFunction(() => {
    const c = document.querySelector('#nodes tr[data-node="a"] td[data-field="state"]');
    return c && c.textContent === "down";
  }, null, { timeout: 20000 });
  check(true, "a marked down after its proxy was killed");

  // An API refusal is shown: fail over to the dead node.
  refusing = true;
  await page.selectOption("#failover-to", "a");
  await page.click("#failover-btn");
  await page.waitForFunction(() => document.getElementById("errors").textContent.includes("(conflict)"),
    null, { timeout: 5000 });
  check(true, "the API's refusal is shown: " + (await page.textContent("#errors")).slice(8, 100));
  await page.click("#errors button");
  refusing = false;

  await page.waitForTimeout(600);
  await page.screenshot({ path: shot, fullPage: true });
  check(fs.statSync(shot).size > 10000, "screenshot saved: " + shot);

  // Phone width: nothing wider than the window.
  const phone = await ctx.newPage();
  watch(phone);
  await phone.setViewportSize({ width: 390, height: 844 });
  await phone.goto(url, { waitUntil: "load" });
  await phone.waitForSelector('#nodes tr[data-node="b"]', { timeout: 10000 });
  await phone.waitForTimeout(800);
  const over = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(over <= 1, "readable at phone width (no page-wide horizontal scroll: " + over + ")");
  await phone.screenshot({ path: shot.replace(/\.png$/, "-phone.png"), fullPage: false });
  await phone.close();

  check(requests.every((r) => r.startsWith("http://127.0.0.1") || r.startsWith("http://localhost")
    || r.startsWith("blob:") || r.startsWith("data:")), "every request went to loopback (" + requests.length + ")");
  await page.close();
  check(problems.length === 0, "no console errors, failed or refused requests" +
    (problems.length ? ": " + problems.join("; ") : ""));
  rc = 0;
} catch (e) {
  say("FAIL " + e.message);
  if (problems.length) say("FAIL also: " + problems.join("; "));
} finally {
  await ctx.close();
  fs.rmSync(profile, { recursive: true, force: true });
  rl.close();
}
process.exit(rc);
