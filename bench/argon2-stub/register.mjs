// Diagnostic only: `NODE_OPTIONS="--import ./bench/argon2-stub/register.mjs" node bench/cpu-profile.mjs login`
// runs the login flood with argon2's verification replaced by an instant stub (argon2.mjs), so
// the CPU left per login is the login's own work (HTTP, form, throttle, SQL, JWT, reply) with
// nothing else on the core. Registration still hashes for real. Never for figures of logins/s.
import { register } from 'node:module';

register('./hooks.mjs', import.meta.url);
