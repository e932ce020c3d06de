import type { Migration } from 'kysely';
import * as rooms from './005-rooms.js';
import * as roomEventSequence from './006-room-event-sequence.js';
import * as roomSeats from './007-room-seats.js';
import * as roomHostTools from './008a-room-host-tools.js';
import * as roomLog from './009a-room-log.js';
import * as spectatorLinks from './010a-spectator-links.js';
import * as spectatorSessions from './011a-spectator-sessions.js';
import * as playerActivity from './012a-player-activity.js';
import * as spectatorNetworks from './013a-spectator-networks.js';
import * as playerNetworks from './014a-player-networks.js';
import * as closedRoomRetention from './015a-closed-room-retention.js';

/**
 * Dicery's migrations, run by the core after its own with Dicery's history table
 * (`createGatehouse(config, { migrations: { dicery: diceryMigrations } })`). They keep the names
 * they had as core migrations (`005`, `006`; `007` on is Dicery's own), so databases migrated before the move adopt their history rows
 * (see `RETIRED_CORE_MIGRATIONS`) instead of running them again.
 */
export const diceryMigrations: Record<string, Migration> = {
  '005-rooms': rooms,
  '006-room-event-sequence': roomEventSequence,
  '007-room-seats': roomSeats,
  '008a-room-host-tools': roomHostTools,
  '009a-room-log': roomLog,
  '010a-spectator-links': spectatorLinks,
  '011a-spectator-sessions': spectatorSessions,
  '012a-player-activity': playerActivity,
  '013a-spectator-networks': spectatorNetworks,
  '014a-player-networks': playerNetworks,
  '015a-closed-room-retention': closedRoomRetention,
};
