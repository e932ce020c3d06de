/**
 * Dicery's settings (the `ROOM_*` and `MAX_*` variables), registered with the core through the
 * public API: `createGatehouse(config, { settings: [dicerySettings] })` checks them in code, and
 * `resolveConfig(env, { settings: [dicerySettings] })` reads them from the environment, both through
 * this one schema, which also writes Dicery's section of the README's settings table. Dicery reads
 * them with `gatehouse.appSettings(dicerySettings)`.
 *
 * @module
 */
import { Type } from 'typebox';
import { type AppSettingsOf, defineAppSettings, integerSetting, secondsSetting } from '../../index.js';

const DAY = 86400;

/** Dicery's settings, declared once (see the module's description). */
export const dicerySettings = defineAppSettings({
  app: 'dicery',
  title: 'Dicery (reference app)',
  schema: Type.Object({
    roomTokenTtl: secondsSetting({
      env: 'ROOM_TOKEN_TTL',
      maximum: 12 * 3600,
      default: 12 * 3600,
      description: 'Dicery player token lifetime',
    }),
    roomSeatTtl: secondsSetting({
      env: 'ROOM_SEAT_TTL',
      maximum: 366 * DAY,
      default: 30 * DAY,
      description:
        'how long a Dicery seat (the HttpOnly cookie that lets a browser resume its player and renew its room token) lasts unused; each resume renews it, and a player whose seat expired is removed with reason `expired`',
    }),
    roomIdleTtl: secondsSetting({
      env: 'ROOM_IDLE_TTL',
      minimum: 60,
      maximum: 366 * DAY,
      default: 14 * DAY,
      description:
        'a Dicery room with no event (join, roll, leave…) for this long is closed by a background sweep (at most 100 rooms per pass, every few minutes); its code then answers 404',
    }),
    roomClosedRetention: secondsSetting({
      env: 'ROOM_CLOSED_RETENTION',
      minimum: 3600,
      maximum: 10 * 366 * DAY,
      // Closed rooms kept their events, log and players for ever: anonymous players grew the
      // database without bound (red-team 2026-12g D6). Nobody can read a closed room (404), so
      // nothing a user sees goes but its rows; a log saved before closing still verifies.
      default: 90 * DAY,
      description:
        'how long a closed Dicery room keeps its rolls, signed log, players and bans; then a background sweep deletes ' +
        'them (the room row stays, listed as closed, so its code is never reused). A closed room cannot be read, so ' +
        'save its log before closing it; a saved log still verifies, the log keys stay published',
    }),
    roomJoinsPerMinute: integerSetting({
      env: 'ROOM_JOINS_PER_MINUTE',
      minimum: 1,
      // As high as ROOM_ROLLS_PER_MINUTE's: load tests lift both out of the way.
      maximum: 100_000,
      default: 20,
      description: 'room join attempts per client IP (IPv6: per /64, and 4× this per /48) per minute',
    }),
    maxStreamsPerPlayer: integerSetting({
      env: 'MAX_STREAMS_PER_PLAYER',
      minimum: 1,
      maximum: 100,
      default: 3,
      description: 'concurrent event streams per player',
    }),
    roomRollsPerMinute: integerSetting({
      env: 'ROOM_ROLLS_PER_MINUTE',
      minimum: 1,
      maximum: 100_000,
      default: 60,
      description: 'rolls per player per minute (429 `TOO_MANY_REQUESTS` with `Retry-After` beyond)',
    }),
    roomRollsPerMinutePerIp: integerSetting({
      env: 'ROOM_ROLLS_PER_MINUTE_PER_IP',
      minimum: 1,
      maximum: 1_000_000,
      default: 300,
      description:
        'rolls per client IP per minute, across players and rooms (each join makes a player with its own allowance)',
    }),
    maxPlayersPerRoom: integerSetting({
      env: 'MAX_PLAYERS_PER_ROOM',
      minimum: 1,
      maximum: 10_000,
      default: 100,
      description:
        'players present in one room at once (joining needs no account); beyond it 409 `ROOM_FULL` until one ' +
        'leaves or is removed. A join into a full room first removes (`expired`) the players no credential can ' +
        'act for any more: a seat unused for `ROOM_SEAT_TTL`; 12 h after joining, a bearer player or one who never came back',
    }),
    maxPlayersPerRoomPerNetwork: integerSetting({
      env: 'MAX_PLAYERS_PER_ROOM_PER_NETWORK',
      minimum: 1,
      maximum: 10_000,
      default: 25,
      description:
        'players one client network (an IPv4 address or an IPv6 /48) has present in one room at once; beyond it ' +
        '409 `TOO_MANY_PLAYERS_FROM_NETWORK`, so whoever has the code cannot fill a room from one address. Raise it ' +
        'for an event whose players share one NAT (a venue, a campus)',
    }),
    roomsPerHourPerAccount: integerSetting({
      env: 'ROOMS_PER_HOUR_PER_ACCOUNT',
      minimum: 1,
      maximum: 100_000,
      default: 20,
      description:
        'room creations per account per hour, shared across instances (429 `TOO_MANY_REQUESTS` with `Retry-After`)',
    }),
    roomsPerHourPerIp: integerSetting({
      env: 'ROOMS_PER_HOUR_PER_IP',
      minimum: 1,
      maximum: 1_000_000,
      default: 60,
      description:
        'room creations per client IP per hour, whatever the account (429 `TOO_MANY_REQUESTS` with `Retry-After`)',
    }),
    maxOpenRoomsPerHost: integerSetting({
      env: 'MAX_OPEN_ROOMS_PER_HOST',
      minimum: 1,
      maximum: 100_000,
      default: 20,
      description:
        'rooms one host may have open at once; beyond it 409 `TOO_MANY_OPEN_ROOMS` until one is closed',
    }),
    maxStreamsPerAccount: integerSetting({
      env: 'MAX_STREAMS_PER_ACCOUNT',
      minimum: 1,
      maximum: 10_000,
      default: 10,
      description:
        'concurrent host event streams per account across all its rooms, per instance (429 `TOO_MANY_STREAMS`)',
    }),
    maxStreamsPerIp: integerSetting({
      env: 'MAX_STREAMS_PER_IP',
      minimum: 1,
      maximum: 100_000,
      default: 50,
      description:
        'concurrent event streams per client IP (IPv6 /64) across all rooms, per instance, and 4× that per IPv6 /48 (429 `TOO_MANY_STREAMS`)',
    }),
    maxStreamsTotal: integerSetting({
      env: 'MAX_STREAMS_TOTAL',
      minimum: 1,
      maximum: 1_000_000,
      // ≈ 45 KB of memory each (red-team G4): about 225 MB for the default, and every roll is written
      // to each stream of its room on the one event loop. Raise it with the machine.
      default: 5000,
      description:
        'concurrent event streams on one instance, whoever opens them; beyond it 503 `SERVICE_UNAVAILABLE` with `Retry-After`',
    }),
    roomStreamOpensPerMinute: integerSetting({
      env: 'ROOM_STREAM_OPENS_PER_MINUTE',
      minimum: 1,
      maximum: 100_000,
      // EventSource reconnects every 3 s at most (the stream's `retry:`): 20 a minute for one stream.
      default: 30,
      description:
        'event streams a player or host account may open per minute (each open and close is announced to the room); beyond it 429 `TOO_MANY_REQUESTS`',
    }),
    roomStreamOpensPerMinutePerIp: integerSetting({
      env: 'ROOM_STREAM_OPENS_PER_MINUTE_PER_IP',
      minimum: 1,
      maximum: 1_000_000,
      default: 120,
      description:
        'event streams opened per client IP (IPv6: per /64, and 4× this per /48) per minute, across players, spectators ' +
        'and rooms; beyond it 429 `TOO_MANY_REQUESTS`',
    }),
    roomMaxEvents: integerSetting({
      env: 'ROOM_MAX_EVENTS',
      minimum: 100,
      maximum: 100_000_000,
      // Rolls are rate limited per player and per address, but a room in use had no bound on what
      // it held (red-team 2026-12g D6): at 300 rolls a minute from one address, ≈ 860 000 rows a
      // day (event and log entry), all of it replayed, exported and deleted with the room. A long
      // campaign (five players, a roll every ten seconds, four hours a week) writes ≈ 370 000 a year.
      default: 100_000,
      description:
        'events one room holds at most (rolls, joins, host changes); past it rolls, joins and host changes answer 409 ' +
        '`ROOM_EVENT_LIMIT` (the host closes the room and opens a new one), while leaving, kicks, reveals and closing ' +
        'still work',
    }),
    roomMaxReplayEvents: integerSetting({
      env: 'ROOM_MAX_REPLAY_EVENTS',
      minimum: 1,
      maximum: 100_000,
      // Each open may replay this many events (≈ 12 KB each at worst), at ROOM_STREAM_OPENS_PER_MINUTE
      // opens a minute per player: without it, one player reconnecting with id 0 made the server read
      // and send the room's whole log, which grows for as long as the room lives.
      default: 1000,
      description:
        'events an event stream replays on resume (`Last-Event-ID`); a client further behind gets one `resync` event ' +
        'instead, then live events, and re-reads the room',
    }),
    roomMaxReplayBytes: integerSetting({
      env: 'ROOM_MAX_REPLAY_BYTES',
      minimum: 1024,
      maximum: 1024 * 1024 * 1024,
      // A thousand of the largest rolls are ≈ 11 MB to read, parse and send, and an address may open
      // ROOM_STREAM_OPENS_PER_MINUTE_PER_IP streams a minute: counted by events alone, a few
      // addresses took a core (red-team 2026-12g, left open then). A thousand ordinary events (a few
      // hundred bytes each) stay well below it.
      default: 1024 * 1024,
      description:
        'bytes of stored events an event stream replays on resume, summed in the database before it starts; a client ' +
        'whose missed events are larger gets one `resync` event instead, as beyond `ROOM_MAX_REPLAY_EVENTS`',
    }),
    roomReadsPerMinute: integerSetting({
      env: 'ROOM_READS_PER_MINUTE',
      minimum: 1,
      maximum: 1_000_000,
      default: 120,
      description:
        'room page reads (snapshots, history and signed log together; a history or log page holds up to 200 rolls and ' +
        '128 KiB) per caller per minute: a player, ' +
        "the host's account across its rooms, or one spectator (each watch cookie on its own) (429 `TOO_MANY_REQUESTS` beyond)",
    }),
    roomReadsPerMinutePerIp: integerSetting({
      env: 'ROOM_READS_PER_MINUTE_PER_IP',
      minimum: 1,
      maximum: 10_000_000,
      default: 600,
      description:
        'room page reads per client IP (IPv6: per /64, and 4× this per /48) per minute, across callers and rooms (a ' +
        'table behind one NAT shares it)',
    }),
    roomReadsPerMinutePerWatchLink: integerSetting({
      env: 'ROOM_READS_PER_MINUTE_PER_WATCH_LINK',
      minimum: 1,
      maximum: 10_000_000,
      default: 1200,
      description:
        "room page reads per minute by all the spectators of one watch link together, so a link's audience stays " +
        "bounded (a room's spectators read at most `MAX_WATCH_LINKS_PER_ROOM` times this)",
    }),
    roomExportsPerMinute: integerSetting({
      env: 'ROOM_EXPORTS_PER_MINUTE',
      minimum: 1,
      maximum: 100_000,
      default: 6,
      description:
        'history exports (each reads the whole log) per caller per minute, callers as for `ROOM_READS_PER_MINUTE`',
    }),
    roomExportsPerMinutePerIp: integerSetting({
      env: 'ROOM_EXPORTS_PER_MINUTE_PER_IP',
      minimum: 1,
      maximum: 1_000_000,
      default: 30,
      description: 'history exports per client IP (IPv6: per /64, and 4× this per /48) per minute',
    }),
    roomExportsPerMinutePerWatchLink: integerSetting({
      env: 'ROOM_EXPORTS_PER_MINUTE_PER_WATCH_LINK',
      minimum: 1,
      maximum: 1_000_000,
      default: 60,
      description: 'history exports per minute by all the spectators of one watch link together',
    }),
    maxExportsPerCaller: integerSetting({
      env: 'MAX_EXPORTS_PER_CALLER',
      minimum: 1,
      maximum: 100,
      default: 2,
      description:
        'history exports one caller (a player, a spectator, or a host account across all its rooms) may have streaming at once, per instance; beyond it 429 `TOO_MANY_EXPORTS` with `Retry-After`',
    }),
    maxExportsPerNetwork: integerSetting({
      env: 'MAX_EXPORTS_PER_NETWORK',
      minimum: 1,
      maximum: 10_000,
      default: 8,
      description:
        "history exports streaming at once, per instance, by the players and spectators (credentials anyone can get by joining or watching) of one client network (an IPv4 address, an IPv6 /48); host accounts are not counted here, so neighbours on a shared network cannot use up a host's exports; beyond it 429 `TOO_MANY_EXPORTS`",
    }),
    maxExportsTotal: integerSetting({
      env: 'MAX_EXPORTS_TOTAL',
      minimum: 1,
      maximum: 100_000,
      // Each holds one page of rolls (≤ 1000) and a socket's buffers, and re-reads the log page by
      // page: ≈ 1 MB and one database read at a time each at most.
      default: 64,
      description:
        'history exports streaming at once on one instance; players and spectators together get at most three quarters of it, so host accounts keep a quarter; beyond either, 503 `SERVICE_UNAVAILABLE` with `Retry-After`',
    }),
    roomExportStallTimeout: secondsSetting({
      env: 'ROOM_EXPORT_STALL_TIMEOUT',
      maximum: 600,
      default: 60,
      description:
        'a history export whose client takes none of its next rolls for this long (it stopped reading, or reads too slowly to drain the buffers) is cut short, freeing its slot of `MAX_EXPORTS_*`; enforced by the Dicery plugin itself, so it holds on any server, not only under the send timeout of `gatehouse serve`',
    }),
    roomExportMaxDuration: secondsSetting({
      env: 'ROOM_EXPORT_MAX_DURATION',
      minimum: 10,
      maximum: DAY,
      default: 900,
      description:
        'longest a history export may stream, however steadily its client reads; then it is cut short (the client sees an incomplete body) and its slot freed, so a client that trickles its reads cannot hold a slot for good',
    }),
    maxWatchLinksPerRoom: integerSetting({
      env: 'MAX_WATCH_LINKS_PER_ROOM',
      minimum: 1,
      maximum: 1000,
      default: 20,
      description:
        'live watch (spectator) links one room holds; beyond it 409 `TOO_MANY_SPECTATOR_LINKS` until the host revokes one',
    }),
    watchLinksPerHourPerAccount: integerSetting({
      env: 'WATCH_LINKS_PER_HOUR_PER_ACCOUNT',
      minimum: 1,
      maximum: 100_000,
      default: 60,
      description:
        'watch links one host account may create per hour, across its rooms (429 `TOO_MANY_REQUESTS` beyond)',
    }),
    maxSpectatorsPerWatchLink: integerSetting({
      env: 'MAX_SPECTATORS_PER_WATCH_LINK',
      minimum: 1,
      maximum: 100_000,
      default: 100,
      description:
        'spectators (watch cookies or spectator tokens) one watch link has at once; opening the link beyond it ends ' +
        'the oldest of the client network (IPv4 address or IPv6 /48) holding the most (the opening one on a tie, ' +
        'when it has an older one)',
    }),
    maxSpectatorStreamsPerLink: integerSetting({
      env: 'MAX_SPECTATOR_STREAMS_PER_LINK',
      minimum: 1,
      maximum: 100_000,
      // Above MAX_STREAMS_PER_IP (50), like every per-link backstop above its per-address limit:
      // at 50 (the constant it replaces) one address could hold all of a link's streams (red team G1).
      default: 200,
      description:
        'concurrent event streams of all the spectators of one watch link, per instance (each spectator also has ' +
        '`MAX_STREAMS_PER_PLAYER`). When full, a spectator from a client network (IPv4 address, IPv6 /48) holding at ' +
        'least two fewer of its streams than the network holding the most ends that network’s oldest stream (at most ' +
        'one per network and link every 5 s); otherwise 429 `TOO_MANY_STREAMS`',
    }),
    roomHeartbeatInterval: secondsSetting({
      env: 'ROOM_HEARTBEAT_INTERVAL',
      // Fractions below a second are for tests that need fast heartbeats; the variable says whole seconds.
      minimum: 0.05,
      maximum: 3600,
      default: 15,
      description:
        'SSE heartbeat, which keeps proxies from closing idle streams; also how often open streams are re-checked ' +
        '(closed room, departed player, revoked or expired credential)',
    }),
  }),
  // Room tokens are app tokens: the core keeps retired signing keys until the longest can expire.
  tokenLifetime: (settings) => settings.roomTokenTtl,
  // Open host streams end at a heartbeat that finds their session in the revocation list.
  revocationCheckInterval: (settings) => settings.roomHeartbeatInterval,
});

/** Dicery's settings as it reads them (`gatehouse.appSettings(dicerySettings)`). */
export type DicerySettings = AppSettingsOf<typeof dicerySettings>;
