import { expect, test } from "@playwright/test";
import { open, signIn, signInAs, signOut } from "./helpers";

test("admin creates a viewer, who signs in but is refused user management", async ({ page }) => {
  await signInAs(page, "admin", "admin");
  await page.getByRole("link", { name: "Users", exact: true }).click();
  await expect(page.getByRole("heading", { name: "Users" })).toBeVisible();

  await page.getByLabel("Username", { exact: true }).fill("vic");
  await page.getByLabel("Password", { exact: true }).fill("viewer-pass-1");
  await page.getByLabel("Role", { exact: true }).selectOption("viewer");
  await page.getByLabel("Email", { exact: true }).fill("vic@example.com");
  await page.getByRole("button", { name: "Create user" }).click();
  await expect(page.getByRole("status")).toHaveText("Created user vic.");
  await expect(page.getByRole("cell", { name: "vic@example.com" })).toBeVisible();

  // A too-short password is refused next to its field, and nothing is created.
  await page.getByLabel("Username", { exact: true }).fill("shorty");
  await page.getByLabel("Password", { exact: true }).fill("short");
  await page.getByRole("button", { name: "Create user" }).click();
  await expect(page.getByText("must be at least 8 characters")).toBeVisible();
  await expect(page.getByRole("cell", { name: "shorty", exact: true })).toHaveCount(0);

  await signOut(page);
  await signInAs(page, "vic", "viewer-pass-1");
  await expect(page.getByText("vic (viewer)")).toBeVisible();

  await open(page, "/users");
  await expect(page.getByRole("alert")).toContainText("needs the admin role");
  await expect(page.getByRole("button", { name: "Create user" })).toHaveCount(0);

  const list = await page.request.get("/api/v1/users");
  expect(list.status()).toBe(403);
  expect((await list.json()).error).toContain("admin role");
  const create = await page.request.post("/api/v1/users", {
    data: { username: "mallory", password: "mallory-pass", role: "admin" },
  });
  expect(create.status()).toBe(403);
});

test("admin changes a role, resets a password and deletes a user", async ({ page }) => {
  await signInAs(page, "admin", "admin");
  await open(page, "/users");
  await page.getByLabel("Username", { exact: true }).fill("eddie");
  await page.getByLabel("Password", { exact: true }).fill("editor-pass-1");
  await page.getByLabel("Role", { exact: true }).selectOption("editor");
  await page.getByRole("button", { name: "Create user" }).click();
  await expect(page.getByRole("status")).toHaveText("Created user eddie.");

  await page.getByLabel("Role of eddie", { exact: true }).selectOption("viewer");
  await page.getByRole("button", { name: "Change role of eddie" }).click();
  await expect(page.getByLabel("Role of eddie", { exact: true })).toHaveValue("viewer");

  await page.getByLabel("New password for eddie", { exact: true }).fill("a-new-password");
  await page.getByRole("button", { name: "Reset password of eddie" }).click();

  // Deleting yourself is refused with a reason.
  await page.getByRole("button", { name: "Delete admin" }).click();
  await expect(page.getByRole("alert")).toContainText("cannot delete your own account");

  await signOut(page);
  await signIn(page, "eddie", "a-new-password");
  await expect(page.getByRole("heading", { name: "Dashboard" })).toBeVisible();
  await signOut(page);

  await signInAs(page, "admin", "admin");
  await open(page, "/users");
  await page.getByRole("button", { name: "Delete eddie" }).click();
  await expect(page.getByRole("cell", { name: "eddie", exact: true })).toHaveCount(0);
});
