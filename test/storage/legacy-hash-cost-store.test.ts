import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLegacyHashCostStore } from '../../src/storage/legacy-hash-cost-store.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/databases.js';

describe.each(engines)('legacy hash cost store on $name', ({ name: engine }) => {
  let test: TestDatabase;
  beforeAll(async () => {
    test = await createTestDatabase(engine);
  });
  afterAll(async () => {
    await test?.dispose();
  });

  it('keeps the costliest class of each family, whatever order they are recorded in', async () => {
    const store = createLegacyHashCostStore(test.database.db);
    expect(await store.list()).toEqual([]);
    await store.record([
      { family: 'bcrypt', hashClass: 'bcrypt:10', work: 1024 },
      { family: 'argon2-lanes', hashClass: 'argon2id:m=65536,t=3,p=4', work: 262_144 },
    ]);
    await store.record([{ family: 'bcrypt', hashClass: 'bcrypt:12', work: 4096 }]);
    await store.record([
      { family: 'bcrypt', hashClass: 'bcrypt:4', work: 16 },
      { family: 'argon2-lanes', hashClass: 'argon2i:m=102400,t=2,p=8', work: 307_200 },
    ]);
    await store.record([]);
    expect(await store.list()).toEqual(['argon2i:m=102400,t=2,p=8', 'bcrypt:12']);
  });
});
