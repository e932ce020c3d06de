import type { Gatehouse } from '../../../index.js';
import type { Dicery } from '../index.js';

/** What Dicery's routes work with: the core's public API and Dicery's own services. */
export interface DiceryContext {
  gatehouse: Gatehouse;
  dicery: Dicery;
}
