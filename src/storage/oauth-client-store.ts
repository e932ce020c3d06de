import type { Kysely, Selectable } from 'kysely';
import { isUniqueViolation } from './open-database.js';
import type { OAuthClientsTable, Schema } from './schema.js';

/** One stored OAuth client. Times are epoch ms. */
export interface OAuthClientRecord {
  clientId: string;
  name: string;
  /** SHA-256 (hex) of the secret of a confidential client; null for a public client. */
  secretHash: string | null;
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  grantTypes: string[];
  scopes: string[];
  createdAt: number;
  /** When it was disabled (migration 020a); null while enabled. */
  disabledAt: number | null;
  /** The JWS algorithm its ID tokens are signed with (migration 032a); null for the default. */
  idTokenSignedResponseAlg: string | null;
}

/** Persistence of registered OAuth clients (a few verb-noun methods; rules live in `src/oauth`). */
export interface OAuthClientStore {
  /** Adds a client; `taken` when its id exists (atomic under concurrency). */
  insertClient(client: OAuthClientRecord): Promise<{ ok: true } | { ok: false; reason: 'taken' }>;
  /** The client with this id. */
  findClient(clientId: string): Promise<OAuthClientRecord | undefined>;
  /** Every client, oldest first, at most `limit`. */
  listClients(limit: number): Promise<OAuthClientRecord[]>;
  /** How many clients are registered. */
  countClients(): Promise<number>;
  /** Deletes a client; false when there was none. */
  deleteClient(clientId: string): Promise<boolean>;
  /** Disables (a time) or enables (null) a client; false when there is none. */
  setClientDisabled(clientId: string, disabledAt: number | null): Promise<boolean>;
  /**
   * Deletes the client's codes not yet exchanged (a disable: a re-enable must not bring back a
   * sign-in approved while it was being disabled); spent ones stay for replay detection.
   */
  deleteUnexchangedCodes(clientId: string): Promise<number>;
  /** Sets the algorithm of a client's ID tokens (null: the default); false when there is no client. */
  setIdTokenAlgorithm(clientId: string, algorithm: string | null): Promise<boolean>;
}

/** Reads a JSON array of strings written by this store; anything else reads as empty. */
function stringList(json: string): string[] {
  const value: unknown = JSON.parse(json);
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

function toRecord(row: Selectable<OAuthClientsTable>): OAuthClientRecord {
  return {
    clientId: row.client_id,
    name: row.name,
    secretHash: row.secret_hash,
    redirectUris: stringList(row.redirect_uris),
    postLogoutRedirectUris: stringList(row.post_logout_redirect_uris),
    grantTypes: stringList(row.grant_types),
    scopes: stringList(row.scopes),
    createdAt: Number(row.created_at),
    disabledAt: row.disabled_at === null ? null : Number(row.disabled_at),
    idTokenSignedResponseAlg: row.id_token_signed_response_alg,
  };
}

/** Creates the {@link OAuthClientStore} over the `oauth_clients` table (pool or transaction). */
export function createOAuthClientStore(db: Kysely<Schema>): OAuthClientStore {
  return {
    async insertClient(client) {
      try {
        await db
          .insertInto('oauth_clients')
          .values({
            client_id: client.clientId,
            name: client.name,
            secret_hash: client.secretHash,
            redirect_uris: JSON.stringify(client.redirectUris),
            post_logout_redirect_uris: JSON.stringify(client.postLogoutRedirectUris),
            grant_types: JSON.stringify(client.grantTypes),
            scopes: JSON.stringify(client.scopes),
            created_at: client.createdAt,
            disabled_at: client.disabledAt,
            id_token_signed_response_alg: client.idTokenSignedResponseAlg,
          })
          .execute();
        return { ok: true };
      } catch (error) {
        if (isUniqueViolation(error)) return { ok: false, reason: 'taken' };
        throw error;
      }
    },
    async findClient(clientId) {
      const row = await db
        .selectFrom('oauth_clients')
        .selectAll()
        .where('client_id', '=', clientId)
        .executeTakeFirst();
      return row === undefined ? undefined : toRecord(row);
    },
    async listClients(limit) {
      const rows = await db
        .selectFrom('oauth_clients')
        .selectAll()
        .orderBy('created_at', 'asc')
        .orderBy('client_id', 'asc')
        .limit(limit)
        .execute();
      return rows.map(toRecord);
    },
    async countClients() {
      const row = await db
        .selectFrom('oauth_clients')
        .select((eb) => eb.fn.countAll<string | number>().as('n'))
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },
    async deleteClient(clientId) {
      const result = await db
        .deleteFrom('oauth_clients')
        .where('client_id', '=', clientId)
        .executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    },
    async setClientDisabled(clientId, disabledAt) {
      const result = await db
        .updateTable('oauth_clients')
        .set({ disabled_at: disabledAt })
        .where('client_id', '=', clientId)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },
    async deleteUnexchangedCodes(clientId) {
      const result = await db
        .deleteFrom('oauth_codes')
        .where('client_id', '=', clientId)
        .where('used_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
    async setIdTokenAlgorithm(clientId, algorithm) {
      const result = await db
        .updateTable('oauth_clients')
        .set({ id_token_signed_response_alg: algorithm })
        .where('client_id', '=', clientId)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },
  };
}
