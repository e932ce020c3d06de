import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Color, Size } from '../../../../src/apps/clothes/core/clothing-attributes.js';
import { clothesMigrations } from '../../../../src/apps/clothes/index.js';
import {
  type ClothesStore,
  type ClothingRecord,
  createClothesStore,
} from '../../../../src/apps/clothes/storage/clothes-store.js';
import type { ClothesTables } from '../../../../src/apps/clothes/storage/tables.js';
import { appTables } from '../../../../src/storage/app-tables.js';
import type { Schema } from '../../../../src/storage/schema.js';
import { createTestDatabase, engines, type TestDatabase } from '../../../support/databases.js';

const T0 = 1_700_000_000_000;

describe.each(engines)('ClothesStore on $name', ({ name: engine }) => {
  let testDb: TestDatabase;
  let store: ClothesStore;
  let db: Kysely<ClothesTables>;

  beforeAll(async () => {
    testDb = await createTestDatabase(engine, { clothes: clothesMigrations });
    db = appTables<ClothesTables, Schema>(testDb.database.db);
    store = createClothesStore(db);
  });

  afterAll(async () => {
    await testDb?.dispose();
  });

  // The suite shares one database; each test starts from an empty catalogue.
  beforeEach(async () => {
    await db.deleteFrom('clothes').execute();
  });

  function item(overrides: Partial<ClothingRecord> = {}): ClothingRecord {
    return {
      id: randomUUID(),
      name: 'Linen shirt',
      photoUrl: 'https://img.example.test/shirt.jpg',
      size: 'm',
      color: 'white',
      createdAt: T0,
      lastModifiedAt: T0,
      ...overrides,
    };
  }

  it('finds an inserted item with every field as written', async () => {
    const shirt = item();
    await store.insertClothing(shirt);
    expect(await store.findClothing(shirt.id)).toEqual(shirt);
    expect(await store.findClothing(randomUUID())).toBeUndefined();
  });

  it('updates only the given fields and always last_modified_at', async () => {
    const shirt = item();
    await store.insertClothing(shirt);
    const updated = await store.updateClothing(shirt.id, { color: 'navy' }, T0 + 500);
    expect(updated).toEqual({ ...shirt, color: 'navy', lastModifiedAt: T0 + 500 });
    expect(await store.findClothing(shirt.id)).toEqual(updated);
    expect(await store.updateClothing(randomUUID(), { name: 'x' }, T0)).toBeUndefined();
  });

  it('deletes an item once', async () => {
    const shirt = item();
    await store.insertClothing(shirt);
    expect(await store.deleteClothing(shirt.id)).toBe(true);
    expect(await store.deleteClothing(shirt.id)).toBe(false);
    expect(await store.findClothing(shirt.id)).toBeUndefined();
  });

  it('lists oldest first with filters, paging and the total', async () => {
    const specs: [Size, Color][] = [
      ['s', 'red'],
      ['m', 'red'],
      ['m', 'blue'],
      ['m', 'red'],
      ['xl', 'black'],
    ];
    const items = specs.map(([size, color], index) => item({ size, color, createdAt: T0 + index }));
    // Inserted out of order: the list order must come from created_at, not insertion.
    for (const entry of [...items].reverse()) await store.insertClothing(entry);

    const all = await store.listClothes({ limit: 10, offset: 0 });
    expect(all.total).toBe(5);
    expect(all.items.map((entry) => entry.id)).toEqual(items.map((entry) => entry.id));

    const mediumRed = await store.listClothes({ limit: 10, offset: 0, size: 'm', color: 'red' });
    expect(mediumRed.total).toBe(2);
    expect(mediumRed.items.map((entry) => entry.id)).toEqual([items[1]?.id, items[3]?.id]);

    const page = await store.listClothes({ limit: 2, offset: 1, size: 'm' });
    expect(page.total).toBe(3);
    expect(page.items.map((entry) => entry.id)).toEqual([items[2]?.id, items[3]?.id]);

    expect(await store.listClothes({ limit: 10, offset: 0, color: 'pink' })).toEqual({ items: [], total: 0 });
  });

  it('breaks created_at ties by id, so pages never overlap', async () => {
    const twins = [item({ createdAt: T0 }), item({ createdAt: T0 }), item({ createdAt: T0 })];
    for (const twin of twins) await store.insertClothing(twin);
    const first = await store.listClothes({ limit: 2, offset: 0 });
    const second = await store.listClothes({ limit: 2, offset: 2 });
    const seen = [...first.items, ...second.items].map((entry) => entry.id);
    expect(seen).toEqual(twins.map((twin) => twin.id).sort());
  });

  it('refuses sizes and colours outside the palette at the database too', async () => {
    await expect(store.insertClothing(item({ size: 'xxxl' as Size }))).rejects.toThrow();
    await expect(store.insertClothing(item({ color: 'chartreuse' as Color }))).rejects.toThrow();
    expect((await store.listClothes({ limit: 10, offset: 0 })).total).toBe(0);
  });
});
