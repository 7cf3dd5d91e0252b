import { expect, test } from "@playwright/test";
import { open, signIn, signInAs, signOut } from "./helpers";

test("admin/admin signs in and lands on the dashboard", async ({ page }) => {
  await signIn(page, "admin", "admin");
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByRole("heading", { name: "Dashboard" })).toBeVisible();
  for (const link of ["Dashboard", "Syncs", "Data sources", "Offsets", "Agents", "Users"]) {
    await expect(page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: link, exact: true })).toBeVisible();
  }
  await expect(page.getByRole("button", { name: "Sign out" })).toBeVisible();
  await expect(page.getByRole("link", { name: "Change the default password" })).toBeVisible();
  // Real store data: the embedded store and the in-process agent.
  await expect(page.getByText("Backend: embedded")).toBeVisible();
  await page.getByRole("link", { name: "Agents", exact: true }).click();
  await expect(page.getByRole("heading", { name: "Agents" })).toBeVisible();
  // The in-process agent registered, won the election, and is shown as leader.
  await expect(page.getByTestId("leader")).not.toHaveText("none elected");
  const leader = await page.getByTestId("leader").textContent();
  await expect(page.getByRole("table", { name: "Agents" }).getByRole("cell", { name: `${leader} (leader)` })).toBeVisible();
});

test("the Agents page refreshes by itself", async ({ page }) => {
  await signInAs(page, "admin", "admin");
  await page.getByRole("link", { name: "Agents", exact: true }).click();
  await expect(page.getByRole("heading", { name: "Agents" })).toBeVisible();
  await page.evaluate(() => ((window as any).__noReload = true));
  // Two more calls to the server within a few seconds, and still the same page.
  for (let i = 0; i < 2; i++) {
    await page.waitForRequest((r) => r.url().includes("/api/cluster"), { timeout: 10_000 });
  }
  expect(await page.evaluate(() => (window as any).__noReload)).toBe(true);
});

test("an expired session sends the page to the login page with a message", async ({ page }) => {
  await signInAs(page, "admin", "admin");
  await page.getByRole("link", { name: "Agents", exact: true }).click();
  await expect(page.getByRole("heading", { name: "Agents" })).toBeVisible();
  // The session ends under the page (as when it expires): its next refresh gets a 401.
  await page.context().clearCookies();
  await expect(page).toHaveURL(/\/login\?expired=1$/, { timeout: 15_000 });
  await expect(page.getByRole("status").filter({ hasText: "Your session ended: sign in again." })).toBeVisible();
  await expect(page.getByRole("alert")).toHaveCount(0);
});

test("a wrong password shows an error and stays on the login page", async ({ page }) => {
  await signIn(page, "admin", "not-the-password");
  await expect(page.getByRole("alert")).toHaveText("invalid username or password");
  await expect(page).toHaveURL(/\/login$/);
  await expect(page.getByLabel("Username", { exact: true })).toBeVisible();
});

test("sign out ends the session", async ({ page }) => {
  await signInAs(page, "admin", "admin");
  await signOut(page);
  await page.goto("/users");
  await expect(page).toHaveURL(/\/login$/);
  const api = await page.request.get("/api/v1/users");
  expect(api.status()).toBe(401);
});

test("the page hydrates: 'Show password' reveals the password client-side", async ({ page }) => {
  await open(page, "/login");
  const password = page.getByLabel("Password", { exact: true });
  await password.fill("secret-typed");
  await expect(password).toHaveAttribute("type", "password");
  await page.getByLabel("Show password").check();
  await expect(password).toHaveAttribute("type", "text");
  await expect(password).toHaveValue("secret-typed");
});

test("client-side navigation keeps the page (no reload)", async ({ page }) => {
  await signInAs(page, "admin", "admin");
  await page.evaluate(() => ((window as any).__idraMarker = 42));
  await page.getByRole("link", { name: "Offsets", exact: true }).click();
  await expect(page.getByRole("heading", { name: "Offsets" })).toBeVisible();
  await expect(page.getByText("No offsets yet")).toBeVisible();
  expect(await page.evaluate(() => (window as any).__idraMarker)).toBe(42);
});

test("the dashboard's rows/s chart updates live", async ({ page }) => {
  await signInAs(page, "admin", "admin");
  await expect(page.getByRole("img", { name: "Rows per second" })).toBeVisible();
  await page.evaluate(() => ((window as any).__stillHere = true));
  await expect(page.getByText(/\d+ rows\/s now/)).toBeVisible({ timeout: 10_000 });
  expect(await page.evaluate(() => (window as any).__stillHere)).toBe(true);
});
