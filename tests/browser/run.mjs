// Quire in a real browser (Debian's Chromium through playwright-core), in two parts.
//
// 1. The main paths: register, log in, create and edit a page (with the live preview), search,
//    upload an avatar; the export (a seeded wiki's /admin/export.zip unzipped and every HTML page
//    opened from file://, failing on a link to a file the export lacks or an image that does not
//    load); the flows of issue 16: the unsaved-changes prompt, Ctrl+S, the conflict of two
//    members in two browser contexts resolved without losing a word, delete with its
//    confirmation and Undo, the colour-scheme switch, the menu by keyboard and without script.
// 2. Every page state at 1366×900 and 390×844, light and dark: no sideways scroll
//    (documentElement.scrollWidth ≤ innerWidth), no critical or serious axe-core finding, a
//    screenshot of each under target/browser/.
//
// Fails on any Content-Security-Policy violation, script error or console error anywhere.
//   usage: node tests/browser/run.mjs PATH/TO/quire
import { chromium } from "playwright-core";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { deflateSync } from "node:zlib";

const binary = resolve(process.argv[2] ?? "target/debug/quire");
const shots = resolve("target/browser");
mkdirSync(shots, { recursive: true });
const data = mkdtempSync(join(tmpdir(), "quire-browser-"));
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const started = Date.now();

const server = spawn(binary, ["serve", "--bind", "127.0.0.1:0", "--data-dir", data], {
  env: { ...process.env, RUST_LOG: "warn" },
  stdio: ["ignore", "pipe", "inherit"],
});
const base = await new Promise((ok, fail) => {
  server.stdout.on("data", (chunk) => {
    const match = /http:\/\/127\.0\.0\.1:\d+/.exec(chunk.toString());
    if (match) ok(match[0]);
  });
  server.on("exit", (code) => fail(new Error(`quire exited with ${code}`)));
  setTimeout(() => fail(new Error("quire did not start")), 20000);
});

// A tiny valid PNG (4×4, opaque), written by hand so the test needs no image library.
function png() {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, body) => {
    const out = Buffer.alloc(12 + body.length);
    out.writeUInt32BE(body.length, 0);
    out.write(type, 4, "ascii");
    body.copy(out, 8);
    out.writeUInt32BE(crc(Buffer.concat([Buffer.from(type, "ascii"), body])), 8 + body.length);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(4, 0);
  header.writeUInt32BE(4, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // RGB
  const rows = Buffer.concat(Array.from({ length: 4 }, () => Buffer.from([0, 200, 80, 40, 200, 80, 40, 200, 80, 40, 200, 80, 40])));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header),
    chunk("IDAT", deflateSync(rows)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

const problems = [];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

const DESKTOP = { width: 1366, height: 900 };
const PHONE = { width: 390, height: 844 };

/// A browser context whose pages report CSP violations, script errors and console errors.
async function context(options = {}) {
  const made = await browser.newContext({ viewport: DESKTOP, ...options });
  await made.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));
  });
  made.on("page", watch);
  return made;
}

// Pages that answer an error status on purpose (a missing page is a 404, a conflict a 409):
// the browser logs that status as a console error, which is no fault of the page.
const EXPECTED_STATUS = [/\/wiki\/Nothing%20here$/, /\/wiki\/Shared%20notes\/edit$/];

function watch(page) {
  page.on("console", (msg) => {
    if (msg.type() !== "error") return;
    const expected = /^Failed to load resource: the server responded with a status of (404|409)/.test(msg.text())
      && EXPECTED_STATUS.some((pattern) => pattern.test(page.url()));
    if (!expected) problems.push(`console: ${msg.text()} on ${page.url()}`);
  });
  page.on("pageerror", (err) => problems.push(`script error: ${err.message} on ${page.url()}`));
}

async function expectText(page, text) {
  if (!(await page.content()).includes(text)) throw new Error(`"${text}" not on ${page.url()}`);
}

async function login(page, name, password) {
  await page.goto(`${base}/login`);
  await page.fill("#username", name);
  await page.fill("#password", password);
  await page.click("form.form-card button[type=submit]");
  await expectText(page, "Login successful!");
}

async function createPage(page, title, content) {
  await page.goto(`${base}/create`);
  await page.fill("#title", title);
  await page.fill("#content", content);
  await page.click("#save-button");
  await expectText(page, "Page created successfully!");
}

const LONG_PAGE = [
  "# Field guide",
  "",
  "An overview with a link to [[Browser page]], a [[Missing page]] and a very long address: https://example.com/a/very/long/path/that/does/not/wrap/by/itself/unless/the/page/lets/it/wrap/anywhere/at/all",
  "",
  "Averyveryveryveryveryveryveryveryveryverylongwordwithoutanyspacesatallthatmustwrapsomehow.",
  "",
  "## Tasks",
  "",
  "- [x] written",
  "- [ ] reviewed",
  "",
  "## Code",
  "",
  "```rust",
  "fn main() { let a_very_long_line_of_code = \"that scrolls inside its own box rather than the page, however long it is\"; }",
  "```",
  "",
  "## Table",
  "",
  "| column one | column two | column three | column four | column five | column six | column seven |",
  "|---|---|---|---|---|---|---|",
  "| a long cell value | another long cell value | a third long value | four | five | six | seven |",
  "",
  "## Math",
  "",
  "Inline $e^{i\\pi} + 1 = 0$ and a block:",
  "",
  "$$\\sum_{k=1}^{n} k = \\frac{n(n+1)}{2}$$",
  "",
  ...Array.from({ length: 6 }, (_, i) => `## Section ${i + 1}\n\nSome text of section ${i + 1}, long enough to scroll.\n`),
].join("\n");

try {
  // ---- part 1: the main paths ------------------------------------------------------------
  const admin = await context();
  const page = await admin.newPage();
  const shot = (name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });

  await page.goto(`${base}/`);
  await expectText(page, "Log in to start writing");
  await page.goto(`${base}/register`);
  await page.fill("#username", "browser");
  await page.fill("#password", "a browser password");
  await page.fill("#confirm_password", "a browser password");
  await page.click("button[type=submit]");
  await expectText(page, "Registration successful! Please log in.");
  await expectText(page, "first member, so you administer it");

  await page.fill("#username", "browser");
  await page.fill("#password", "a browser password");
  await page.click("form.form-card button[type=submit]");
  await expectText(page, "Login successful!");
  await expectText(page, "Create the first page");

  await createPage(page, "Browser page", "# Hello\n\nWritten by **a browser**, see [[Missing page]].\n\n```rust\nfn main() {}\n```\n");
  await createPage(page, "Field guide", LONG_PAGE);

  // The editor: focus on arrival, the live preview, Ctrl+S.
  await page.goto(`${base}/wiki/Browser%20page/edit`);
  if (!(await page.evaluate(() => document.activeElement && document.activeElement.id === "content"))) {
    problems.push("the editor's textarea has no focus on arrival");
  }
  await page.fill("#content", "# Hello again\n\nEdited *in place*.");
  await page.click("#preview-button");
  await page.waitForSelector("#preview-body em");
  await page.click(".toolbar button[data-md=bold]");
  if (!(await page.inputValue("#content")).includes("**bold text**")) problems.push("the toolbar's Bold inserted nothing");
  await page.fill("#summary", "from the browser");
  await page.keyboard.press("Control+s");
  await page.waitForURL(`${base}/wiki/Browser%20page`);
  await expectText(page, "Saved.");

  // Leaving an editor with unsaved changes asks first.
  await page.goto(`${base}/wiki/Browser%20page/edit`);
  await page.type("#content", " more");
  let asked = null;
  page.once("dialog", async (dialog) => { asked = dialog.type(); await dialog.dismiss(); });
  await page.click("nav.main-nav a[href='/recent']", { noWaitAfter: true }).catch(() => {});
  await page.waitForTimeout(500);
  if (asked !== "beforeunload") problems.push(`leaving the editor with changes did not ask (dialog: ${asked})`);
  if (!page.url().endsWith("/edit")) problems.push("dismissing the prompt still left the editor");
  // Leaving after saving does not ask.
  page.once("dialog", async (dialog) => { problems.push(`a prompt after saving: ${dialog.type()}`); await dialog.accept(); });
  await page.click("#save-button");
  await page.waitForURL(`${base}/wiki/Browser%20page`);
  page.removeAllListeners("dialog");

  // Files from the editor (issue 9): a pasted image and a dropped file are uploaded to the page
  // and their Markdown lands at the cursor; the saved page shows the image.
  await page.goto(`${base}/wiki/Browser%20page/edit`);
  await page.evaluate((bytes) => {
    const area = document.getElementById("content");
    area.focus();
    area.setSelectionRange(area.value.length, area.value.length);
    const data = new DataTransfer();
    data.items.add(new File([new Uint8Array(bytes)], "image.png", { type: "image/png" }));
    area.dispatchEvent(new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true }));
  }, [...png()]);
  await page.waitForFunction(() => /!\[pasted-[^\]]*\]\(attachment:pasted-[^)]*\.png\)/.test(document.getElementById("content").value), null, { timeout: 10000 });
  await page.evaluate(() => {
    const data = new DataTransfer();
    data.items.add(new File(["a,b\n1,2\n"], "figures.csv", { type: "text/csv" }));
    document.getElementById("content").dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }));
  });
  await page.waitForFunction(() => document.getElementById("content").value.includes("[figures](attachment:figures.csv)"), null, { timeout: 10000 });
  await expectText(page, "Uploaded figures.csv.");
  await page.click("#save-button");
  await page.waitForURL(`${base}/wiki/Browser%20page`);
  const pasted = await page.$eval("img[src*='/attachments/pasted-']", (img) => img.complete && img.naturalWidth > 0);
  if (!pasted) problems.push("the pasted image does not show on the saved page");
  if (!(await page.$("a[href='/wiki/Browser%20page/attachments/figures.csv']"))) problems.push("the dropped file is not linked from the page");

  await page.goto(`${base}/wiki/Browser%20page/history`);
  await expectText(page, "from the browser");

  await page.fill(".nav-search input[name=q]", "place");
  await page.press(".nav-search input[name=q]", "Enter");
  await page.waitForSelector(".search-results mark");
  if (!(await page.title()).includes("result")) problems.push(`the search's title names no result count: ${await page.title()}`);

  await page.goto(`${base}/profile`);
  await page.setInputFiles("#avatar", { name: "me.png", mimeType: "image/png", buffer: png() });
  await page.click("form.form-card button[type=submit]");
  await expectText(page, "Avatar uploaded successfully!");
  const loaded = await page.$eval("img.avatar", (img) => img.complete && img.naturalWidth > 0);
  if (!loaded) throw new Error("the avatar image did not load");

  // The export.
  const pages = [
    ["Export home", "# Export home\n\n## Links\n\nSee [[Browser page]], [[Notes: 100% sure?|the notes]] and [[Not written yet]].\n\n```js\nconst x = \"[[not a link]]\";\n```\n"],
    ["Notes: 100% sure?", "# Notes\n\nBack to [[Export home]].\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"],
  ];
  for (const [title, content] of pages) await createPage(page, title, content);
  const download = await admin.request.get(`${base}/admin/export.zip`);
  if (download.status() !== 200) throw new Error(`/admin/export.zip answered ${download.status()}`);
  const exported = mkdtempSync(join(tmpdir(), "quire-export-"));
  writeFileSync(join(exported, "export.zip"), await download.body());
  execFileSync("unzip", ["-q", join(exported, "export.zip"), "-d", join(exported, "files")]);
  const htmlDir = join(exported, "files", "html");
  const htmlFiles = readdirSync(htmlDir).filter((name) => name.endsWith(".html"));
  if (htmlFiles.length < 4) throw new Error(`the export holds ${htmlFiles.length} HTML files`);
  const offline = await browser.newContext();
  const viewer = await offline.newPage();
  viewer.on("console", (msg) => { if (msg.type() === "error") problems.push(`export console: ${msg.text()} on ${viewer.url()}`); });
  viewer.on("pageerror", (err) => problems.push(`export script error: ${err.message} on ${viewer.url()}`));
  let links = 0;
  for (const name of htmlFiles) {
    const url = pathToFileURL(join(htmlDir, name)).href;
    await viewer.goto(url);
    const found = await viewer.$$eval("a[href]", (as) => as.map((a) => a.getAttribute("href")));
    for (const href of found) {
      if (/^(https?:|mailto:|#)/.test(href)) continue;
      const target = new URL(href, url);
      if (target.protocol !== "file:") { problems.push(`export: ${name} links ${href} outside the files`); continue; }
      if (!existsSync(fileURLToPath(target))) problems.push(`export: ${name} links ${href}, which is not in the export`);
      links++;
    }
    const broken = await viewer.$$eval("img", (imgs) => imgs.filter((img) => !(img.complete && img.naturalWidth > 0)).map((img) => img.src));
    for (const src of broken) problems.push(`export: ${name} shows an image that does not load: ${src}`);
    const styled = await viewer.$eval("body", (body) => getComputedStyle(body).fontFamily);
    if (!styled) problems.push(`export: ${name} has no stylesheet`);
  }
  if (links < 8) problems.push(`export: only ${links} links were checked`);
  await viewer.goto(pathToFileURL(join(htmlDir, "Export home.html")).href);
  if (!(await viewer.$("a.missing-page"))) problems.push("export: the missing page's link is not marked");
  await viewer.screenshot({ path: join(shots, "export-page.png"), fullPage: true });
  await offline.close();

  // A second member, for the conflict.
  const other = await context();
  const otherPage = await other.newPage();
  await otherPage.goto(`${base}/register`);
  await otherPage.fill("#username", "bob");
  await otherPage.fill("#password", "bob's browser password");
  await otherPage.fill("#confirm_password", "bob's browser password");
  await otherPage.click("button[type=submit]");
  await login(otherPage, "bob", "bob's browser password");

  // The conflict: both open one page; bob saves first; the admin's save meets it.
  await createPage(page, "Shared notes", "First line\n\nSecond line\n\nThird line\n");
  await page.goto(`${base}/wiki/Shared%20notes/edit`);
  await otherPage.goto(`${base}/wiki/Shared%20notes/edit`);
  await otherPage.fill("#content", "First line\n\nSecond line, as bob wrote it\n\nThird line\n");
  await otherPage.click("#save-button");
  await otherPage.waitForURL(`${base}/wiki/Shared%20notes`);
  const mine = "First line, improved\n\nSecond line, as I wrote it\n\nThird line\n";
  await page.fill("#content", mine);
  await page.click("#save-button");
  await page.waitForSelector("#conflict-form");
  const conflictText = await page.evaluate(() => document.body.innerText);
  for (const marker of ["<<<<<<<", ">>>>>>>", "=======", "|||||||"]) {
    if (conflictText.includes(marker)) problems.push(`the conflict screen shows ${marker}`);
  }
  for (const label of ["Your version", "Saved meanwhile by bob at", "Use mine", "Use theirs", "Keep both"]) {
    if (!conflictText.includes(label)) problems.push(`the conflict screen lacks “${label}”`);
  }
  await page.screenshot({ path: join(shots, "conflict-flow.png"), fullPage: true });
  // Leaving the conflict screen would lose the member's text: it asks too.
  await page.check("input[value=both]");
  await page.click("#conflict-form button.btn-primary");
  await page.waitForURL(`${base}/wiki/Shared%20notes`);
  const saved = await page.evaluate(() => document.querySelector(".page-content").innerText);
  for (const words of ["First line, improved", "Second line, as bob wrote it", "Second line, as I wrote it", "Third line"]) {
    if (!saved.includes(words)) problems.push(`after “Keep both” the page lacks “${words}”: ${saved}`);
  }

  // Delete with its confirmation, then Undo.
  await createPage(page, "Short lived", "Soon gone.");
  await page.click("nav.page-actions a.danger");
  await page.waitForURL(`${base}/wiki/Short%20lived/delete`);
  await expectText(page, "Delete “Short lived”?");
  await page.click("button[name=confirm]");
  await page.waitForURL(`${base}/`);
  await expectText(page, "Page “Short lived” deleted.");
  await page.screenshot({ path: join(shots, "delete-undo-flash.png"), fullPage: true });
  await page.click(".flash button.link-button:text('Undo')");
  await page.waitForURL(`${base}/wiki/Short%20lived`);
  await expectText(page, "Page restored.");

  // The colour-scheme switch: a cookie, kept across pages.
  await page.goto(`${base}/recent`);
  await page.click(".theme-switch a:text('Dark')");
  await page.waitForURL(`${base}/recent`);
  const dark = await page.evaluate(() => [document.documentElement.dataset.theme, getComputedStyle(document.body).backgroundColor]);
  if (dark[0] !== "dark" || dark[1] === "rgb(255, 255, 255)") problems.push(`the Dark switch gave ${dark}`);
  await page.goto(`${base}/`);
  if ((await page.evaluate(() => document.documentElement.dataset.theme)) !== "dark") problems.push("the dark scheme was not remembered");
  await page.click(".theme-switch a:text('System')");
  await page.waitForURL(`${base}/`);
  if (await page.evaluate(() => document.documentElement.dataset.theme)) problems.push("System did not forget the choice");

  // The menu on a phone: closed, opened by keyboard; and without script.
  for (const javaScriptEnabled of [true, false]) {
    const phone = await context({ viewport: PHONE, javaScriptEnabled });
    const small = await phone.newPage();
    await small.goto(`${base}/recent`);
    const login = small.locator("nav.main-nav a.nav-link[href^='/login']");
    if (await login.isVisible()) problems.push(`the phone menu starts open (script ${javaScriptEnabled})`);
    await small.focus(".nav-menu > summary");
    await small.keyboard.press("Enter");
    if (!(await login.isVisible())) problems.push(`the phone menu does not open by keyboard (script ${javaScriptEnabled})`);
    await phone.close();
  }

  await other.close();

  // ---- part 2: every page state ------------------------------------------------------------
  await createPage(page, "Bob's page", "Written by the admin for the list.");
  const adminState = await admin.storageState();
  // Page states: [name, path, who, prepare (optional: a function of the page)].
  const conflictPrepare = async (p) => {
    // A fresh conflict for this run: another member saves between opening and saving.
    const bob = await context({ storageState: bobLater });
    const bp = await bob.newPage();
    await p.goto(`${base}/wiki/Shared%20notes/edit`);
    await bp.goto(`${base}/wiki/Shared%20notes/edit`);
    await bp.fill("#content", `Bob's line ${Date.now()}\n`);
    await bp.click("#save-button");
    await bp.waitForURL(`${base}/wiki/Shared%20notes`);
    await bob.close();
    await p.fill("#content", `My line ${Date.now()}\n`);
    await p.click("#save-button");
    await p.waitForSelector("#conflict-form");
  };
  // bob logs in again for part 2 (his first context is closed).
  const bobContext = await context();
  const bobPage = await bobContext.newPage();
  await login(bobPage, "bob", "bob's browser password");
  const bobLater = await bobContext.storageState();
  await bobContext.close();

  const revisions = await page.evaluate(async (url) => {
    const html = await (await fetch(url)).text();
    return [...html.matchAll(/revisions\/(\d+)"/g)].map((m) => m[1]);
  }, `${base}/wiki/Browser%20page/history`);
  const [newest, older] = [revisions[0], revisions[revisions.length - 1]];
  const states = [
    ["home-visitor", "/", null],
    ["home", "/", adminState],
    ["register", "/register", null],
    ["login", "/login", null],
    ["page", "/wiki/Field%20guide", adminState],
    ["page-visitor", "/wiki/Field%20guide", null],
    ["missing-page", "/wiki/Nothing%20here", null],
    ["editor", "/wiki/Field%20guide/edit", adminState],
    ["create", "/create?title=New%20page", adminState],
    ["conflict", null, adminState, conflictPrepare],
    ["history", "/wiki/Browser%20page/history", adminState],
    ["attachments", "/wiki/Browser%20page/attachments", adminState],
    ["attachments-visitor", "/wiki/Browser%20page/attachments", null],
    ["revision", `/wiki/Browser%20page/revisions/${older}`, adminState],
    ["diff", `/wiki/Browser%20page/diff?from=${older}&to=${newest}`, adminState],
    ["recent", "/recent", adminState],
    ["search", "/search?q=line", adminState],
    ["profile", "/profile", adminState],
    ["security", "/profile/security", adminState],
    ["two-factor", "/profile/security/two-factor", adminState],
    ["forgot-password", "/password/forgot", null],
    ["member", "/users/browser", null],
    ["rename", "/wiki/Browser%20page/rename", adminState],
    ["delete", "/wiki/Browser%20page/delete", adminState],
    ["deleted", "/deleted", adminState],
    ["help", "/help/markdown", null],
    ["admin", "/admin", adminState],
    ["admin-users", "/admin/users", adminState],
    ["admin-settings", "/admin/settings", adminState],
    ["admin-invites", "/admin/invites", adminState],
    ["admin-audit", "/admin/audit", adminState],
  ];
  let checked = 0;
  for (const [viewportName, viewport] of [["desktop", DESKTOP], ["phone", PHONE]]) {
    for (const colorScheme of ["light", "dark"]) {
      const contexts = new Map();
      for (const [name, path, state, prepare] of states) {
        const key = state === adminState ? "admin" : "visitor";
        if (!contexts.has(key)) contexts.set(key, await context({ viewport, colorScheme, storageState: state ?? undefined }));
        const p = await contexts.get(key).newPage();
        const label = `${name}-${viewportName}-${colorScheme}`;
        try {
          if (prepare) await prepare(p, contexts.get(key));
          else await p.goto(`${base}${path}`);
          const [scrollWidth, innerWidth] = await p.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
          if (scrollWidth > innerWidth) problems.push(`${label}: scrolls sideways (${scrollWidth} > ${innerWidth})`);
          await p.evaluate(axeSource);
          const found = await p.evaluate(async () => {
            const result = await window.axe.run(document, { resultTypes: ["violations"] });
            return result.violations
              .filter((v) => v.impact === "critical" || v.impact === "serious")
              .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`);
          });
          for (const finding of found) problems.push(`${label}: axe ${finding}`);
          await p.screenshot({ path: join(shots, `${label}.png`), fullPage: true });
          checked++;
        } catch (err) {
          problems.push(`${label}: ${err.message}`);
        } finally {
          // Leaving a page with a form filled in (the conflict) must not hang on the prompt.
          p.on("dialog", (dialog) => dialog.accept());
          await p.close({ runBeforeUnload: false });
        }
      }
      for (const made of contexts.values()) await made.close();
    }
  }
  if (checked < states.length * 4) problems.push(`only ${checked} of ${states.length * 4} page states were checked`);
  console.log(`${checked} page states checked (${states.length} pages × 2 sizes × 2 schemes)`);

  await page.click("form[action='/logout'] button");
  await expectText(page, "You have been logged out.");
  await shot("logged-out");
} catch (err) {
  problems.push(`step failed: ${err.message}`);
} finally {
  await browser.close();
  server.kill("SIGTERM");
}
writeFileSync(join(shots, "problems.txt"), problems.join("\n") + "\n");
console.log(`browser run took ${Math.round((Date.now() - started) / 1000)} s`);
if (problems.length) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log(`browser test passed; screenshots in ${shots}`);
