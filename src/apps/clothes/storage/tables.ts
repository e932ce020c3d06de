/** The catalogue's tables (migration `002-clothes`), for `Kysely<ClothesTables>`. */
export interface ClothesTables {
  clothes: ClothesTable;
}

/** Seed 003's catalogue. */
export interface ClothesTable {
  id: string;
  name: string;
  photo_url: string;
  size: string;
  color: string;
  created_at: number;
  last_modified_at: number;
}
