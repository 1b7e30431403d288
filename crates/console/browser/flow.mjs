// The console in a real browser: headless Debian Chromium through
// playwright-core (no browser download), with axe-core run on every page.
//
// Usage: node flow.mjs LINK_URL ORG USER_NAME [SCREENSHOT_DIR]
//
// Opens the one-time LINK_URL, sees the operators' overview, goes to ORG's
// users, searches USER_NAME, opens the user whose delivery failed, reads the
// app's error, retries, and waits until the user is linked; then opens the
// audit log. Every page must have zero serious or critical axe violations,
// in light and dark, and the browser must report no Content-Security-Policy
// violation. Prints one JSON line per step; exits non-zero on any failure.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const [link, org, userName, shots] = process.argv.slice(2);
if (!link || !org || !userName) {
  console.error('usage: node flow.mjs LINK_URL ORG USER_NAME [SCREENSHOT_DIR]');
  process.exit(2);
}

const problems = [];
const fail = (msg) => {
  throw new Error(msg);
};

/// Runs axe on the page in light and dark; records serious and critical
/// violations. Screenshots each scheme when a directory is given.
async function scan(page, name) {
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    // Evaluated through the DevTools protocol: the page's CSP stays in force
    // for the page's own content.
    await page.evaluate(AXE);
    const result = await page.evaluate(() =>
      // eslint-disable-next-line no-undef
      axe.run(document, { resultTypes: ['violations'] }),
    );
    const bad = result.violations.filter((v) => ['serious', 'critical'].includes(v.impact));
    for (const v of bad) {
      problems.push(`${name} (${scheme}): ${v.id} ${v.impact}: ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
    }
    if (shots) {
      await page.screenshot({ path: join(shots, `${name}-${scheme}.png`), fullPage: true });
    }
    console.log(JSON.stringify({ step: name, scheme, violations: result.violations.length, serious_or_critical: bad.length }));
  }
  await page.emulateMedia({ colorScheme: 'light' });
}

const browser = await chromium.launch({
  executablePath: process.env.LIAISON_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable'],
});
let code = 0;
try {
  const context = await browser.newContext({ locale: 'en-GB' });
  const page = await context.newPage();
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) problems.push(`CSP: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));

  // 1. The one-time link signs in and lands on the overview.
  await page.goto(link);
  if (!new URL(page.url()).pathname.endsWith('/console/')) fail(`after the link: ${page.url()}`);
  await page.getByRole('heading', { level: 1, name: 'Organisations' }).waitFor();
  await scan(page, 'overview');

  // The skip link is the first thing the keyboard reaches.
  await page.keyboard.press('Tab');
  const focused = await page.evaluate(() => document.activeElement?.textContent?.trim());
  if (focused !== 'Skip to the content') fail(`first Tab stop: ${focused}`);

  // 2. The organisation's users, searched by name.
  await page.getByRole('link', { name: org, exact: true }).click();
  await page.getByRole('heading', { level: 1 }).filter({ hasText: 'Users' }).waitFor();
  await scan(page, 'users');
  await page.getByLabel('User names starting with').fill(userName.slice(0, 3));
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByRole('link', { name: userName, exact: true }).click();

  // 3. The user whose delivery failed: the state and the app's error.
  const failed = page.locator('[data-status="failed"]');
  await failed.waitFor();
  const error = (await page.locator('td .error').first().textContent())?.trim() ?? '';
  if (!error) fail('the app error is not shown');
  console.log(JSON.stringify({ step: 'user', status: await failed.textContent(), error }));
  await scan(page, 'user-failed');

  // 4. Retry, then the worker delivers: the user is linked.
  await page.getByRole('button', { name: 'Retry the failed deliveries' }).click();
  await page.getByRole('status').waitFor();
  const deadline = Date.now() + 30_000;
  while ((await page.locator('[data-status="ok"]').count()) === 0) {
    if (Date.now() > deadline) fail('the user was not linked within 30 s of the retry');
    await page.waitForTimeout(300);
    await page.reload();
  }
  console.log(JSON.stringify({ step: 'retried', status: await page.locator('[data-status="ok"]').first().textContent() }));
  await scan(page, 'user-linked');

  // 5. The audit log records the retry.
  await page.getByRole('link', { name: 'Audit log' }).click();
  await page.getByRole('rowheader', { name: 'retry' }).first().waitFor();
  await scan(page, 'audit');
} catch (e) {
  problems.push(`flow: ${e.message}`);
} finally {
  await browser.close();
}
if (problems.length) {
  for (const p of problems) console.error(p);
  code = 1;
} else {
  console.log(JSON.stringify({ result: 'ok' }));
}
process.exit(code);
