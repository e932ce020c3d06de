import type { ErrorStatuses } from '../../../http/index.js';
import type { ClothesErrorCode } from '../core/errors.js';

/** HTTP statuses of the catalogue's codes, registered with the adapter by the plugin. */
export const CLOTHES_ERROR_STATUSES: ErrorStatuses<ClothesErrorCode> = {
  CLOTHING_NOT_FOUND: 404,
};
