import type { UserRecord } from '../storage/user-store.js';
import type { Role } from './roles.js';

/** The user as the API shows it: never a hash. */
export interface PublicUser {
  id: string;
  email: string;
  full_name: string | null;
  role: Role;
  is_active: boolean;
  created_at: string;
}

/** Projects a stored user onto its public shape. */
export function toPublicUser(user: UserRecord): PublicUser {
  return {
    id: user.id,
    email: user.email,
    full_name: user.fullName,
    role: user.role,
    is_active: user.isActive,
    created_at: new Date(user.createdAt).toISOString(),
  };
}
