/** What the UI shows by role. The server guards every call; this only hides what would be refused. */
import { ROLES, type Role, roleAtLeast } from './shared.js';
import type { User } from './types.js';

/** True when `user` may open the admin console (admin or above). */
export function isAdmin(user: User | null): boolean {
  if (user === null || !(ROLES as readonly string[]).includes(user.role)) return false;
  return roleAtLeast(user.role as Role, 'admin');
}
