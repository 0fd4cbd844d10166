// Drives the admin dashboard (/admin/ui) in a headless Chromium against a
// running gateway: logs in, watches a canary rollout advance, pauses it,
// shows a diff between two config versions, and takes a screenshot of
// each stage (and one at a phone's size).
//
//   UPSHIFT_ADMIN_URL        the admin API, e.g. http://127.0.0.1:3001
//   UPSHIFT_ADMIN_TOKEN      its admin token
//   UPSHIFT_ROLLOUT_SERVICE  the service whose rollout is under way
//   UPSHIFT_SCREENSHOTS      the directory the PNG files go to
//   UPSHIFT_CHROMIUM         the browser (default /usr/bin/chromium)
//
// Exits 0 when every stage passed, 1 with the failed stage otherwise.

import { chromium } from "playwright-core";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const LIMIT_MS = 240_000; // the whole run
const WAIT_MS = 20_000; // one expectation
const ADVANCE_MS = 60_000; // for the rollout to move a step

function env(name, fallback) {
  const value = process.env[name] ?? fallback;
  if (!value) fail(`${name} is not set`);
  return value;
}

function fail(message) {
  console.error(`dashboard test failed: ${message}`);
  process.exit(1);
}

const admin = env("UPSHIFT_ADMIN_URL").replace(/\/$/, "");
const token = env("UPSHIFT_ADMIN_TOKEN");
const service = env("UPSHIFT_ROLLOUT_SERVICE");
const shots = env("UPSHIFT_SCREENSHOTS");
const executablePath = env("UPSHIFT_CHROMIUM", "/usr/bin/chromium");
mkdirSync(shots, { recursive: true });

const watchdog = setTimeout(() => fail(`not done within ${LIMIT_MS / 1000} s`), LIMIT_MS);
const profile = mkdtempSync(join(tmpdir(), "upshift-dashboard-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  viewport: { width: 1440, height: 900 },
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
}).catch((e) => fail(`cannot start ${executablePath}: ${e.message}`));

const page = context.pages()[0] ?? (await context.newPage());
page.setDefaultTimeout(WAIT_MS);
const problems = [];
page.on("pageerror", (e) => problems.push(`script error: ${e.message}`));
page.on("request", (request) => {
  const url = request.url();
  if (!url.startsWith(admin) && !url.startsWith("data:")) problems.push(`request outside the admin API: ${url}`);
});

const byTestId = (id, root = page) => root.locator(`[data-testid="${id}"]`);
const rollout = byTestId(`rollout-${service}`);
let shot = 0;

async function screenshot(name) {
  shot += 1;
  const path = join(shots, `${String(shot).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path, fullPage: true });
  console.log(`  screenshot ${path}`);
}

/** Runs one stage; a failure names it and leaves a screenshot. */
async function stage(name, run) {
  console.log(`stage: ${name}`);
  try {
    await run();
    if (problems.length) throw new Error(problems.join("; "));
  } catch (e) {
    await screenshot(`failed-${name.replace(/\W+/g, "-")}`).catch(() => {});
    await context.close().catch(() => {});
    fail(`${name}: ${e.message.split("\n")[0]}`);
  }
}

/** Waits until `read()` gives a value `ok` accepts: that value. */
async function until(what, read, ok, limit = WAIT_MS) {
  const deadline = Date.now() + limit;
  let last;
  while (Date.now() < deadline) {
    last = await read().catch((e) => `(${e.message.split("\n")[0]})`);
    if (ok(last)) return last;
    await page.waitForTimeout(250);
  }
  throw new Error(`${what}: still ${JSON.stringify(last)} after ${limit / 1000} s`);
}

const stepOf = async () => Number(await byTestId("rollout-step", rollout).getAttribute("data-step"));
const weightOf = async () => Number(await byTestId("rollout-weight", rollout).getAttribute("data-weight"));

await stage("login page", async () => {
  const response = await page.goto(`${admin}/admin/ui`);
  if (response?.status() !== 200) throw new Error(`GET /admin/ui answered ${response?.status()}`);
  await byTestId("login-token").waitFor();
  await screenshot("login");
});

await stage("wrong token", async () => {
  await byTestId("login-token").fill("not-the-admin-token");
  await byTestId("login-submit").click();
  const error = byTestId("login-error");
  await error.waitFor();
  const text = await error.textContent();
  if (!/refused/i.test(text)) throw new Error(`the login error says ${JSON.stringify(text)}`);
});

await stage("traffic", async () => {
  await byTestId("login-token").fill(token);
  await byTestId("login-submit").click();
  await byTestId("view-traffic").waitFor();
  const stored = await page.evaluate(() => sessionStorage.getItem("upshift.admin.token"));
  if (stored !== token) throw new Error("the token is not kept in sessionStorage");
  await until("the updated indicator", () => byTestId("updated").textContent(), (t) => /Updated \d\d:\d\d:\d\d/.test(t));
  const share = page.locator(`[data-testid^="version-share-${service}-"]`).first();
  await until("a live traffic share", () => share.textContent(), (t) => /\d+%/.test(t));
  await page.waitForTimeout(4000); // a few more points on the charts
  await screenshot("traffic");
});

await stage("rollout advances", async () => {
  await byTestId("nav-rollouts").click();
  await rollout.waitFor();
  await until("the rollout's phase", () => byTestId("rollout-phase", rollout).textContent(), (t) => t === "progressing");
  const [step, weight] = [await stepOf(), await weightOf()];
  console.log(`  at step ${step}, canary weight ${weight}%`);
  const later = await until("the next step", stepOf, (s) => s > step, ADVANCE_MS);
  const heavier = await weightOf();
  if (!(heavier > weight)) throw new Error(`the canary weight went from ${weight}% to ${heavier}%`);
  console.log(`  moved to step ${later}, canary weight ${heavier}%`);
  await byTestId("check", rollout).first().waitFor();
  await screenshot("rollout-progressing");
});

await stage("pause", async () => {
  const pause = byTestId("btn-pause", rollout);
  if (await pause.isDisabled()) throw new Error("Pause is disabled while the rollout progresses");
  await pause.click();
  await until("the phase after Pause", () => byTestId("rollout-phase", rollout).textContent(), (t) => t === "paused");
  await until("Resume", () => byTestId("btn-resume", rollout).isEnabled(), (enabled) => enabled === true);
  if (await byTestId("btn-pause", rollout).isEnabled()) throw new Error("Pause is still enabled once paused");
  const message = await byTestId("rollout-message", rollout).textContent();
  if (!/paused/.test(message)) throw new Error(`the action's result says ${JSON.stringify(message)}`);
  await screenshot("rollout-paused");
});

await stage("config diff", async () => {
  await byTestId("nav-config").click();
  const rows = byTestId("config-versions").locator("tbody tr");
  await until("the config versions", () => rows.count(), (n) => n >= 2);
  const versions = (await byTestId("diff-from").locator("option").evaluateAll((os) => os.map((o) => Number(o.value)))).sort((a, b) => a - b);
  await byTestId("diff-from").selectOption(String(versions[0]));
  await byTestId("diff-to").selectOption(String(versions.at(-1)));
  await byTestId("diff-show").click();
  const changes = byTestId("diff-change");
  const n = await until("the diff's changes", () => changes.count(), (count) => count >= 1);
  console.log(`  version ${versions[0]} → ${versions.at(-1)}: ${n} changes`);
  await screenshot("config-diff");
});

await stage("ai usage", async () => {
  await byTestId("nav-ai").click();
  await byTestId("view-ai").locator(".card").first().waitFor();
  await screenshot("ai");
});

await stage("phone", async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await byTestId("nav-rollouts").click();
  await rollout.waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 1) throw new Error(`the page is ${overflow} px wider than a phone's screen`);
  await screenshot("phone-rollouts");
  await byTestId("nav-traffic").click();
  await byTestId(`service-${service}`).waitFor();
  await screenshot("phone-traffic");
});

await stage("log out", async () => {
  await byTestId("logout").click();
  await byTestId("login-token").waitFor();
  const stored = await page.evaluate(() => sessionStorage.getItem("upshift.admin.token"));
  if (stored) throw new Error("the token is still in sessionStorage");
});

await context.close();
rmSync(profile, { recursive: true, force: true });
clearTimeout(watchdog);
console.log("dashboard test passed");
