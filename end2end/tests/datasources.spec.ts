import { expect, test } from "@playwright/test";
import { open, signInAs } from "./helpers";

test("data sources: test connection, save, edit keeps the secret, clone, search, delete", async ({ page }) => {
  await signInAs(page, "admin", "admin");
  await open(page, "/datasources");
  await expect(page.getByRole("heading", { name: "Data sources" })).toBeVisible();
  // Every kind has a connector, and the form's hints follow the chosen kind.
  await expect(page.locator("#ds-kind option", { hasText: "unavailable" })).toHaveCount(0);
  await expect(page.locator("#ds-kind option")).toHaveCount(9);
  await page.getByLabel("Kind", { exact: true }).selectOption("kafka");
  await expect(page.getByLabel("Options", { exact: true })).toHaveAttribute("placeholder", /librdkafka/);
  await expect(page.getByLabel("Connection string", { exact: true })).toHaveAttribute("placeholder", "broker1:9092,broker2:9092");

  await page.getByLabel("Name", { exact: true }).fill("local pg");
  await page.getByLabel("Kind", { exact: true }).selectOption("postgres");
  await page.getByLabel("Connection string", { exact: true }).fill("postgres://postgres@127.0.0.1:1/test");
  await page.getByRole("button", { name: "Test connection" }).click();
  await expect(page.getByRole("alert")).toContainText("Connection failed: cannot reach");

  await page.getByLabel("Connection string", { exact: true }).fill("postgres://postgres:pw-never-shown@127.0.0.1:5432/test");
  await page.getByLabel("Options", { exact: true }).fill("nonsense");
  await page.getByRole("button", { name: "Save" }).click();
  await expect(page.getByText("line 1: expected `key = value`")).toBeVisible();
  await page.getByLabel("Options", { exact: true }).fill("statement_timeout = 30s");
  await page.getByRole("button", { name: "Test connection" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Connection OK" })).toBeVisible();
  await page.getByRole("button", { name: "Save" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Saved local pg." })).toBeVisible();
  const row = page.getByRole("table", { name: "Data sources" }).getByRole("row", { name: /local pg/ });
  await expect(row).toContainText("postgres://postgres@127.0.0.1:5432/test");
  await expect(row).toContainText("password: ••••");

  // The password never reaches the browser, not even in the page source.
  await page.reload();
  await page.locator("body[data-hydrated]").waitFor();
  expect(await page.content()).not.toContain("pw-never-shown");

  // Editing keeps the stored password when the field is left empty.
  await page.getByRole("button", { name: "Edit local pg" }).click();
  await expect(page.getByLabel("Password", { exact: true })).toHaveAttribute("placeholder", "••••");
  await expect(page.getByLabel("Password", { exact: true })).toHaveValue("");
  await expect(page.getByLabel("Options", { exact: true })).toHaveValue("statement_timeout = 30s");
  // The Options label sits beside its text area, at its first line (a hint once pushed
  // it into the wrong grid cell).
  const label = (await page.locator("label[for=ds-options]").boundingBox())!;
  const area = (await page.getByLabel("Options", { exact: true }).boundingBox())!;
  expect(label.x + label.width).toBeLessThanOrEqual(area.x);
  expect(label.y).toBeGreaterThanOrEqual(area.y - 1);
  expect(label.y).toBeLessThan(area.y + area.height / 2);
  await page.getByRole("button", { name: "Test connection" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Connection OK" })).toBeVisible();

  await page.getByRole("button", { name: "Clone local pg" }).click();
  await expect(page.getByLabel("Name", { exact: true })).toHaveValue("local pg (copy)");
  await page.getByRole("button", { name: "Save" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Saved local pg (copy)." })).toBeVisible();

  await page.getByLabel("Search").fill("copy");
  await expect(page.getByRole("button", { name: "Edit local pg (copy)" })).toBeVisible();
  await expect(page.getByRole("button", { name: "Edit local pg", exact: true })).toHaveCount(0);
  await page.getByRole("button", { name: "Delete local pg (copy)" }).click();
  await expect(page.getByRole("button", { name: "Edit local pg (copy)" })).toHaveCount(0);
});
