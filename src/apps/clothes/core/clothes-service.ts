import { randomUUID } from 'node:crypto';
import type { ClothesQuery, ClothesStore, ClothingRecord } from '../storage/clothes-store.js';
import { clothingNotFound } from './errors.js';
import { type ClothingInput, validateClothingPatch, validateNewClothing } from './validate-clothing.js';

/** The clothes catalogue (seed 003): validation, ids and timestamps; who may call what is the caller's guard. */
export interface ClothesService {
  /** A page of items and the total matching the filters. */
  listClothes(query: ClothesQuery): Promise<{ items: ClothingRecord[]; total: number }>;
  /** The item with this id; throws CLOTHING_NOT_FOUND. */
  getClothing(id: string): Promise<ClothingRecord>;
  /** Validates and stores a new item; throws VALIDATION_FAILED naming the bad fields. */
  createClothing(input: ClothingInput): Promise<ClothingRecord>;
  /** Changes the given fields and `lastModifiedAt`; throws VALIDATION_FAILED or CLOTHING_NOT_FOUND. */
  updateClothing(id: string, change: Partial<ClothingInput>): Promise<ClothingRecord>;
  /** Deletes an item; throws CLOTHING_NOT_FOUND. */
  deleteClothing(id: string): Promise<void>;
}

/** Dependencies of {@link createClothesService}. */
export interface ClothesServiceDeps {
  store: ClothesStore;
  /** Epoch ms. @default Date.now */
  clock?: () => number;
}

/** Creates the {@link ClothesService}. */
export function createClothesService(deps: ClothesServiceDeps): ClothesService {
  const { store } = deps;
  const clock = deps.clock ?? Date.now;
  return {
    listClothes: (query) => store.listClothes(query),

    async getClothing(id) {
      const item = await store.findClothing(id);
      if (item === undefined) throw clothingNotFound();
      return item;
    },

    async createClothing(input) {
      const fields = validateNewClothing(input);
      const now = clock();
      const item: ClothingRecord = { id: randomUUID(), ...fields, createdAt: now, lastModifiedAt: now };
      await store.insertClothing(item);
      return item;
    },

    async updateClothing(id, change) {
      const patch = validateClothingPatch(change);
      const updated = await store.updateClothing(id, patch, clock());
      if (updated === undefined) throw clothingNotFound();
      return updated;
    },

    async deleteClothing(id) {
      if (!(await store.deleteClothing(id))) throw clothingNotFound();
    },
  };
}
