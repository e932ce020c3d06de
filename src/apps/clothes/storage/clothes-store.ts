import type { Kysely, Selectable } from 'kysely';
import type { Color, Size } from '../core/clothing-attributes.js';
import type { ClothesTable, ClothesTables } from './tables.js';

/** A stored clothing item. */
export interface ClothingRecord {
  id: string;
  name: string;
  photoUrl: string;
  size: Size;
  color: Color;
  createdAt: number;
  lastModifiedAt: number;
}

/** Fields an update may change. */
export type ClothingPatch = Partial<Pick<ClothingRecord, 'name' | 'photoUrl' | 'size' | 'color'>>;

/** Filters and paging for {@link ClothesStore.listClothes}. */
export interface ClothesQuery {
  limit: number;
  offset: number;
  size?: Size | undefined;
  color?: Color | undefined;
}

/** Persistence of the clothes catalogue. */
export interface ClothesStore {
  /** Inserts an item. */
  insertClothing(item: ClothingRecord): Promise<void>;
  /** The item with this id. */
  findClothing(id: string): Promise<ClothingRecord | undefined>;
  /** Applies `patch` and sets `lastModifiedAt` to `now`; undefined when the item does not exist. */
  updateClothing(id: string, patch: ClothingPatch, now: number): Promise<ClothingRecord | undefined>;
  /** Deletes an item; false when it did not exist. */
  deleteClothing(id: string): Promise<boolean>;
  /** A page of items, oldest first, and the total matching the filters. */
  listClothes(query: ClothesQuery): Promise<{ items: ClothingRecord[]; total: number }>;
}

function toRecord(row: Selectable<ClothesTable>): ClothingRecord {
  return {
    id: row.id,
    name: row.name,
    photoUrl: row.photo_url,
    size: row.size as Size,
    color: row.color as Color,
    createdAt: Number(row.created_at),
    lastModifiedAt: Number(row.last_modified_at),
  };
}

/** A {@link ClothesStore} over Kysely; the same code serves SQLite and PostgreSQL. */
export function createClothesStore(db: Kysely<ClothesTables>): ClothesStore {
  return {
    async insertClothing(item) {
      await db
        .insertInto('clothes')
        .values({
          id: item.id,
          name: item.name,
          photo_url: item.photoUrl,
          size: item.size,
          color: item.color,
          created_at: item.createdAt,
          last_modified_at: item.lastModifiedAt,
        })
        .execute();
    },
    async findClothing(id) {
      const row = await db.selectFrom('clothes').selectAll().where('id', '=', id).executeTakeFirst();
      return row && toRecord(row);
    },
    async updateClothing(id, patch, now) {
      const values: Partial<ClothesTable> = { last_modified_at: now };
      if (patch.name !== undefined) values.name = patch.name;
      if (patch.photoUrl !== undefined) values.photo_url = patch.photoUrl;
      if (patch.size !== undefined) values.size = patch.size;
      if (patch.color !== undefined) values.color = patch.color;
      const row = await db
        .updateTable('clothes')
        .set(values)
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirst();
      return row && toRecord(row);
    },
    async deleteClothing(id) {
      const result = await db.deleteFrom('clothes').where('id', '=', id).executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    },
    async listClothes(query) {
      let base = db.selectFrom('clothes');
      if (query.size !== undefined) base = base.where('size', '=', query.size);
      if (query.color !== undefined) base = base.where('color', '=', query.color);
      const [rows, count] = await Promise.all([
        base
          .selectAll()
          .orderBy('created_at')
          .orderBy('id')
          .limit(query.limit)
          .offset(query.offset)
          .execute(),
        base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
      ]);
      return { items: rows.map(toRecord), total: Number(count.n) };
    },
  };
}
