import { type Kysely, sql } from 'kysely';

// Frozen copies of the lists in src/apps/clothes/core/clothing-attributes.ts as they were when this ran:
// a migration must keep meaning the same thing after the code moves on.
const SIZES = ['xs', 's', 'm', 'l', 'xl', 'xxl'];
const COLORS = [
  'black',
  'white',
  'grey',
  'beige',
  'brown',
  'red',
  'orange',
  'yellow',
  'green',
  'blue',
  'navy',
  'purple',
  'pink',
];

/** Seed 003's clothes catalogue. Sizes and colours are also constrained in the database. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('clothes')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('photo_url', 'text', (c) => c.notNull())
    .addColumn('size', 'text', (c) => c.notNull())
    .addColumn('color', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('last_modified_at', 'bigint', (c) => c.notNull())
    .addCheckConstraint('clothes_size_check', sql`size in (${sql.join(SIZES.map((size) => sql.lit(size)))})`)
    .addCheckConstraint(
      'clothes_color_check',
      sql`color in (${sql.join(COLORS.map((color) => sql.lit(color)))})`,
    )
    .execute();
  // The list is ordered by creation and filtered by size and/or colour.
  await db.schema.createIndex('clothes_created_idx').on('clothes').columns(['created_at', 'id']).execute();
  await db.schema.createIndex('clothes_size_color_idx').on('clothes').columns(['size', 'color']).execute();
  await db.schema.createIndex('clothes_color_idx').on('clothes').column('color').execute();
}

/** Drops the catalogue. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('clothes').execute();
}
