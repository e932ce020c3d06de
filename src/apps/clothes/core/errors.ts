import { type ErrorCode, GatehouseError } from '../../../index.js';

/** The catalogue's own stable error codes (statuses: `CLOTHES_ERROR_STATUSES`). */
export type ClothesErrorCode = 'CLOTHING_NOT_FOUND';

/** An error the catalogue raises: its own code or a core one (`VALIDATION_FAILED`). */
export type ClothesError = GatehouseError<ClothesErrorCode | ErrorCode>;

/** No clothing item with that id. */
export function clothingNotFound(): ClothesError {
  return new GatehouseError<ClothesErrorCode>('CLOTHING_NOT_FOUND', 'No such clothing item.');
}
