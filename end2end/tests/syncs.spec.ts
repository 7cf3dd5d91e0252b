import { expect, test } from "@playwright/test";
import { execFileSync } from "node:child_process";
import { open, signInAs } from "./helpers";

const PG = process.env.IDRA_TEST_PG ?? "postgres://postgres@127.0.0.1:5432/test";
const psql = (sql: string) => execFileSync("psql", [PG, "-qtAX", "-v", "ON_ERROR_STOP=1", "-c", sql]).toString().trim();

test("a sync built in the editor copies rows, pauses and is deleted", async ({ page }) => {
  const tag = Date.now().toString(36);
  const src = `e2e_src_${tag}`;
  const dst = `e2e_dst_${tag}`;
  psql(`CREATE TABLE ${src} (id bigint PRIMARY KEY, ts timestamp NOT NULL, name text)`);
  psql(`INSERT INTO ${src} SELECT g, '2024-01-01'::timestamp + g * interval '1 minute', 'row ' || g FROM generate_series(1, 25) g`);
  try {
    await signInAs(page, "admin", "admin");
    await open(page, "/datasources");
    await page.getByLabel("Name", { exact: true }).fill(`pg ${tag}`);
    await page.getByLabel("Connection string", { exact: true }).fill(PG);
    await page.getByRole("button", { name: "Save" }).click();
    await expect(page.getByRole("status").filter({ hasText: `Saved pg ${tag}.` })).toBeVisible();

    await open(page, "/syncs");
    // The editor opens on request (its code loads then).
    await page.getByRole("button", { name: "New sync" }).click();
    await page.getByLabel("Name", { exact: true }).fill(`copy ${tag}`);
    await page.getByLabel("Source data source", { exact: true }).selectOption({ label: `pg ${tag}` });
    // Tables come from the data source's discovery.
    await expect(page.locator("#sync-src-table option", { hasText: `public.${src}` })).toHaveCount(1);
    await page.getByLabel("Source table", { exact: true }).selectOption(`public.${src}`);
    await page.getByLabel("Destination data source", { exact: true }).selectOption({ label: `pg ${tag}` });
    await page.getByLabel("Destination table", { exact: true }).fill(dst);
    await page.getByLabel("Mode", { exact: true }).selectOption("by_id");
    // Nothing is saved until valid: the error sits next to its field.
    await page.getByRole("button", { name: "Save" }).click();
    await expect(page.getByText("name at least one key column")).toBeVisible();
    await page.getByLabel("Key column", { exact: true }).fill("id");
    await page.getByRole("button", { name: "Save" }).click();
    await expect(page.getByRole("status").filter({ hasText: `Saved copy ${tag}.` })).toBeVisible();

    // The in-process agent picks it up and copies every row.
    const row = page.getByRole("table", { name: "Syncs" }).getByRole("row", { name: new RegExp(`copy ${tag}`) });
    await expect(async () => {
      await page.reload();
      await page.locator("body[data-hydrated]").waitFor();
      await expect(row.getByRole("cell", { name: "25", exact: true })).toBeVisible({ timeout: 1000 });
    }).toPass({ timeout: 30_000 });
    expect(psql(`SELECT count(*) FROM ${dst}`)).toBe("25");

    // The run is in the sync's history.
    await page.getByRole("button", { name: `History of copy ${tag}` }).click();
    await expect(page.getByRole("table", { name: "Runs" }).getByRole("row", { name: /25 ok/ }).first()).toBeVisible();

    // Run now: new rows arrive without waiting for the poll.
    psql(`INSERT INTO ${src} SELECT g, '2024-02-01'::timestamp + g * interval '1 minute', 'row ' || g FROM generate_series(26, 30) g`);
    await page.getByRole("button", { name: `Run copy ${tag} now` }).click();
    await expect(page.getByRole("status").filter({ hasText: "Run requested." })).toBeVisible();
    await expect(async () => expect(psql(`SELECT count(*) FROM ${dst}`)).toBe("30")).toPass({ timeout: 15_000 });

    await page.getByRole("button", { name: `Pause copy ${tag}` }).click();
    await expect(row.getByRole("cell", { name: "paused" })).toBeVisible();

    // While paused, the offset can be set back — with a confirmation, and it is recorded.
    await open(page, "/offsets");
    // Searched and paged on the server, like the Syncs list.
    await page.getByLabel("Search").fill(`copy ${tag}`);
    await expect(page.getByText(/Page 1 of 1 \(1 sync\)/)).toBeVisible();
    await expect(page.getByRole("row", { name: new RegExp(`copy ${tag} \\(paused\\)`) })).toContainText("id > 30");
    await page.getByRole("button", { name: `Edit offset of copy ${tag}` }).click();
    await page.getByLabel("New position").fill('{"kind": "id", "last_id": 10}');
    await page.getByRole("button", { name: "Save offset" }).click();
    await expect(page.getByText("tick the box to confirm")).toBeVisible();
    await page.getByLabel("I understand that rows after this position").check();
    await page.getByRole("button", { name: "Save offset" }).click();
    await expect(page.getByRole("status").filter({ hasText: "Offset saved." })).toBeVisible();
    await expect(page.getByRole("table", { name: "Offset changes" })).toContainText("admin");
    await expect(page.getByRole("table", { name: "Offset changes" })).toContainText("id > 10");

    await open(page, "/syncs");
    await page.getByRole("button", { name: `Delete copy ${tag}` }).click();
    await expect(row).toHaveCount(0);
  } finally {
    psql(`DROP TABLE IF EXISTS ${src}, ${dst}`);
  }
});

test("syncs are imported from the original Idra's JSON", async ({ page }) => {
  const tag = Date.now().toString(36);
  await signInAs(page, "admin", "admin");
  await open(page, "/syncs");
  const file = JSON.stringify([{
    sync_name: `imported ${tag}`, mode: "Timestamp", disabled: true,
    source_connector: { id: "id", connector_name: `a${tag}`, connector_source_type: "PostgresGORM", connection_string: PG, table: "orders", timestamp_field: "updated_at" },
    destination_connector: { id: "id", connector_name: `b${tag}`, connector_source_type: "SqliteGORM", connection_string: "sqlite:///tmp/idra-e2e.db", table: "orders", save_mode: "Upsert" },
  }]);
  await page.getByLabel("Sync file").fill(file);
  await page.getByRole("button", { name: "Import", exact: true }).click();
  await expect(page.getByRole("status").filter({ hasText: "Imported 2 data sources and 1 syncs." })).toBeVisible();
  await expect(page.getByRole("table", { name: "Syncs" }).getByRole("row", { name: new RegExp(`imported ${tag}`) })).toContainText("paused");
  await page.getByLabel("Sync file").fill('[{"sync_name": "bad", "mode": "Sometimes"}]');
  await page.getByRole("button", { name: "Import", exact: true }).click();
  await expect(page.getByText("sync `bad`")).toBeVisible();
});

test("a failing sync shows on the errors page", async ({ page }) => {
  const tag = Date.now().toString(36);
  await signInAs(page, "admin", "admin");
  await open(page, "/syncs");
  const file = JSON.stringify({
    datasources: [{ name: `broken ${tag}`, kind: "postgres", connection_string: PG }],
    syncs: [{ name: `broken ${tag}`, source: { datasource: `broken ${tag}`, table: `no_such_table_${tag}` },
      destination: { datasource: `broken ${tag}`, table: `never_${tag}` }, mode: "by_id", key_columns: ["id"] }],
  });
  await page.getByLabel("Sync file").fill(file);
  await page.getByRole("button", { name: "Import", exact: true }).click();
  await expect(page.getByRole("status").filter({ hasText: "Imported 1 data sources and 1 syncs." })).toBeVisible();
  await expect(async () => {
    await open(page, "/errors");
    await expect(page.getByRole("table", { name: "Errors" })).toContainText(`no_such_table_${tag}`, { timeout: 1000 });
  }).toPass({ timeout: 30_000 });
  await expect(page.getByRole("table", { name: "Errors" })).toContainText("does not exist");
});

test("the Next button pages through more than one page of syncs", async ({ page }) => {
  const tag = Date.now().toString(36);
  await signInAs(page, "admin", "admin");
  await open(page, "/syncs");
  const ds = `paging-${tag}`;
  const syncs = Array.from({ length: 120 }, (_, i) => ({
    name: `paged ${tag} ${String(i).padStart(3, "0")}`,
    source: { datasource: ds, table: "orders" },
    destination: { datasource: ds, table: `copy_${i}` },
    mode: "by_id", key_columns: ["id"], enabled: false,
  }));
  const file = JSON.stringify({
    datasources: [{ name: ds, kind: "sqlite", connection_string: "sqlite:///tmp/idra-e2e-paging.db" }],
    syncs,
  });
  await page.getByLabel("Sync file").fill(file);
  await page.getByRole("button", { name: "Import", exact: true }).click();
  await expect(page.getByRole("status").filter({ hasText: "Imported 1 data sources and 120 syncs." })).toBeVisible();
  await page.getByLabel("Search").fill(`paged ${tag}`);
  await expect(page.getByText("Page 1 of 3 (120 syncs)")).toBeVisible();
  const table = page.getByRole("table", { name: "Syncs" });
  await expect(table.getByRole("row", { name: new RegExp(`paged ${tag} 000`) })).toBeVisible();
  await page.getByRole("button", { name: "Next" }).click();
  await expect(page.getByText("Page 2 of 3 (120 syncs)")).toBeVisible();
  await expect(table.getByRole("row", { name: new RegExp(`paged ${tag} 050`) })).toBeVisible();
  await page.getByRole("button", { name: "Next" }).click();
  await expect(page.getByText("Page 3 of 3 (120 syncs)")).toBeVisible();
  await expect(page.getByRole("button", { name: "Next" })).toBeDisabled();
  // The view macro once printed its own source into the page.
  const text = await page.locator("body").innerText();
  for (const leak of ["|_|", "move |", ".update("]) expect(text).not.toContain(leak);

  // Each row's action buttons sit inside that row (a flex cell once drifted off it), and
  // its time stays on one line.
  const row = table.getByRole("row", { name: new RegExp(`paged ${tag} 100`) });
  const rowBox = (await row.boundingBox())!;
  const actions = (await row.locator("td.actions").boundingBox())!;
  expect(actions.y).toBeGreaterThanOrEqual(rowBox.y - 1);
  expect(actions.y + actions.height).toBeLessThanOrEqual(rowBox.y + rowBox.height + 1);
  const edit = (await row.getByRole("button", { name: /^Edit / }).boundingBox())!;
  const del = (await row.getByRole("button", { name: /^Delete / }).boundingBox())!;
  // On one line, centred alike (a link and a bordered button differ in height).
  expect(Math.abs(edit.y + edit.height / 2 - (del.y + del.height / 2))).toBeLessThan(3);
  // The cell is as tall as its row; its text's line boxes say whether it wrapped.
  const timeLines = await row.locator("td.time").evaluate((td) => {
    const range = document.createRange();
    range.selectNodeContents(td);
    return new Set(Array.from(range.getClientRects(), (r) => Math.round(r.top))).size;
  });
  expect(timeLines).toBe(1);
});
