import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import {
  declareLocation,
  errorResponses,
  IdParam,
  NoBody,
  PageQuery,
  pageOf,
  problemRef,
} from '../../../http/index.js';
import type { ClothesService } from '../core/clothes-service.js';
import { COLORS, SIZES } from '../core/clothing-attributes.js';
import { NAME_MAX_LENGTH, PHOTO_URL_MAX_LENGTH } from '../core/validate-clothing.js';
import type { ClothingRecord } from '../storage/clothes-store.js';

const SizeSchema = Type.Enum([...SIZES]);
const ColorSchema = Type.Enum([...COLORS]);
const NameSchema = Type.String({
  minLength: 1,
  maxLength: NAME_MAX_LENGTH,
  description: 'Display text: NFC, spaces collapsed and trimmed, no control, bidi or zero-width characters',
});
const PhotoUrlSchema = Type.String({
  minLength: 1,
  // No `format: 'uri'` here: the clothes service parses the URL itself and says what is wrong.
  maxLength: PHOTO_URL_MAX_LENGTH,
  description: 'Absolute http(s) URL without credentials; stored in its normalized form',
});

/** A clothing item as the API shows it. */
export const ClothingSchema = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    photo_url: Type.String({ format: 'uri' }),
    size: SizeSchema,
    color: ColorSchema,
    created_at: Type.String({ format: 'date-time' }),
    last_modified_at: Type.String({ format: 'date-time', description: 'Set by the server on every change' }),
  },
  { $id: 'Clothing' },
);

const clothingRef = Type.Unsafe<Record<string, unknown>>({ $ref: 'Clothing#' });
const IdParams = Type.Object({ id: IdParam('Clothing id') });

function toClothingView(item: ClothingRecord) {
  return {
    id: item.id,
    name: item.name,
    photo_url: item.photoUrl,
    size: item.size,
    color: item.color,
    created_at: new Date(item.createdAt).toISOString(),
    last_modified_at: new Date(item.lastModifiedAt).toISOString(),
  };
}

/**
 * Seed 003's clothes catalogue, a demo domain of the reference server: any signed-in user with
 * `clothes:read` browses it; admins with `clothes:write` change it.
 */
export function registerClothesRoutes(parent: FastifyInstance, clothes: ClothesService): void {
  // Handler types come from the route schemas (no casts that could drift from them).
  const app = parent.withTypeProvider<TypeBoxTypeProvider>();
  const canRead = app.auth.require({ scopes: ['clothes:read'] });
  const canWrite = app.auth.require({ role: 'admin', scopes: ['clothes:write'] });
  app.addSchema(ClothingSchema);

  app.get(
    '/clothes',
    {
      preValidation: canRead,
      schema: {
        tags: ['clothes'],
        summary: 'List clothes',
        description: 'Oldest first; filter by `size` and/or `color`.',
        querystring: Type.Object(
          { ...PageQuery, size: Type.Optional(SizeSchema), color: Type.Optional(ColorSchema) },
          { additionalProperties: false },
        ),
        response: {
          200: pageOf(clothingRef),
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const query = request.query;
      const page = await clothes.listClothes(query);
      return {
        items: page.items.map(toClothingView),
        total: page.total,
        limit: query.limit,
        offset: query.offset,
      };
    },
  );

  app.get(
    '/clothes/:id',
    {
      preValidation: canRead,
      schema: {
        tags: ['clothes'],
        summary: 'One clothing item',
        params: IdParams,
        response: { 200: clothingRef, 404: problemRef, ...errorResponses },
      },
    },
    async (request) => {
      const { id } = request.params;
      return toClothingView(await clothes.getClothing(id));
    },
  );

  app.post(
    '/clothes',
    {
      preValidation: canWrite,
      schema: {
        tags: ['clothes'],
        summary: 'Add a clothing item',
        body: Type.Object(
          { name: NameSchema, photo_url: PhotoUrlSchema, size: SizeSchema, color: ColorSchema },
          { additionalProperties: false },
        ),
        response: { 201: declareLocation(clothingRef, 'The new item: `/clothes/{id}`'), ...errorResponses },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const item = await clothes.createClothing({
        name: body.name,
        photoUrl: body.photo_url,
        size: body.size,
        color: body.color,
      });
      return reply.code(201).header('location', `/clothes/${item.id}`).send(toClothingView(item));
    },
  );

  app.patch(
    '/clothes/:id',
    {
      preValidation: canWrite,
      schema: {
        tags: ['clothes'],
        summary: 'Change a clothing item',
        description: 'Send only the fields to change; `last_modified_at` is updated by the server.',
        params: IdParams,
        body: Type.Object(
          {
            name: Type.Optional(NameSchema),
            photo_url: Type.Optional(PhotoUrlSchema),
            size: Type.Optional(SizeSchema),
            color: Type.Optional(ColorSchema),
          },
          { additionalProperties: false, minProperties: 1 },
        ),
        response: { 200: clothingRef, 404: problemRef, ...errorResponses },
      },
    },
    async (request) => {
      const { id } = request.params;
      const body = request.body;
      const item = await clothes.updateClothing(id, {
        name: body.name,
        photoUrl: body.photo_url,
        size: body.size,
        color: body.color,
      });
      return toClothingView(item);
    },
  );

  app.delete(
    '/clothes/:id',
    {
      preValidation: canWrite,
      schema: {
        tags: ['clothes'],
        summary: 'Delete a clothing item',
        params: IdParams,
        response: { 204: NoBody(), 404: problemRef, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      await clothes.deleteClothing(id);
      return reply.code(204).send();
    },
  );
}
