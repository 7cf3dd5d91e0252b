import { expect, Page } from "@playwright/test";

/** Opens a page and waits until it has hydrated (the app marks <body> then). */
export async function open(page: Page, path: string) {
  await page.goto(path);
  await page.locator("body[data-hydrated]").waitFor();
}

export async function signIn(page: Page, username: string, password: string) {
  await open(page, "/login");
  await page.getByLabel("Username", { exact: true }).fill(username);
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
}

export async function signInAs(page: Page, username: string, password: string) {
  await signIn(page, username, password);
  await expect(page.getByRole("heading", { name: "Dashboard" })).toBeVisible();
  await page.locator("body[data-hydrated]").waitFor();
}

export async function signOut(page: Page) {
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/login$/);
}
