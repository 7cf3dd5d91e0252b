import { defineConfig } from "@playwright/test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

// The server under test: the debug build `make test` just made, on a private port and a
// fresh data dir, so every run starts from first boot (admin/admin).
const root = path.resolve(__dirname, "..");
const port = Number(process.env.IDRA_E2E_PORT ?? 3100);
const baseURL = `http://127.0.0.1:${port}`;
const server = process.env.IDRA_E2E_SERVER ?? path.join(root, "target/debug/idra-server");
const siteRoot = process.env.IDRA_E2E_SITE_ROOT ?? path.join(root, "target/site");
process.env.IDRA_E2E_DATA_DIR ??= fs.mkdtempSync(path.join(os.tmpdir(), "idra-e2e-"));
const dataDir = process.env.IDRA_E2E_DATA_DIR;

export default defineConfig({
  testDir: "./tests",
  workers: 1,
  fullyParallel: false,
  forbidOnly: true,
  retries: 0,
  timeout: 30_000,
  expect: { timeout: 10_000 },
  reporter: [["list"]],
  use: {
    baseURL,
    trace: "retain-on-failure",
    launchOptions: {
      // Debian's Chromium: Playwright's own browser download cannot be reached here.
      executablePath: process.env.IDRA_E2E_CHROMIUM ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
      ],
    },
  },
  webServer: {
    command: `${server} --data-dir ${dataDir} --listen 127.0.0.1:${port} --site-root ${siteRoot}`,
    url: `${baseURL}/api/v1/health`,
    reuseExistingServer: false,
    timeout: 60_000,
    gracefulShutdown: { signal: "SIGTERM", timeout: 5_000 },
    env: { IDRA_ADMIN_PASSWORD: "", RUST_LOG: "warn" },
    stdout: "pipe",
    stderr: "pipe",
  },
});
