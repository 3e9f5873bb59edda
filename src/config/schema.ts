import { z } from 'zod';
import cron from 'node-cron';
import { ACTIONS_TAKEN, JOB_TYPES, type ActionTaken } from '../types.js';

/** Table and column names are spliced into SQL, so only plain identifiers pass. */
const SQL_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

const identifier = z
  .string()
  .regex(SQL_IDENTIFIER, { message: 'must be a plain SQL identifier (letters, digits, underscore; not starting with a digit)' });
/** A column the store may not have: `null` tells the reconciler to skip it. */
const optionalColumn = identifier.nullable();

/**
 * Where marks go: three columns of the content table, or (all three null) the ledger's side table `cs_marks`, which
 * needs no ALTER TABLE of an archive someone else's tool writes and survives its ingester's INSERT OR REPLACE.
 */
const complianceColumns = {
  complianceState: optionalColumn.default('compliance_state'),
  complianceReason: optionalColumn.default('compliance_reason'),
  complianceAt: optionalColumn.default('compliance_at'),
};
const allOrNoComplianceColumns = (mapping: { complianceState: string | null; complianceReason: string | null; complianceAt: string | null }) =>
  [mapping.complianceState, mapping.complianceReason, mapping.complianceAt].filter((c) => c === null).length % 3 === 0;
const complianceColumnsMessage = {
  message: 'complianceState, complianceReason and complianceAt are either all column names (marks in the table) or all null (marks in the ledger table cs_marks)',
  path: ['complianceState'],
};

/** A JSON path json_remove understands: `$`, then `.key` or `[index]` steps. */
const JSON_PATH = /^\$(\.[A-Za-z_][A-Za-z0-9_]*|\[[0-9]+\])+$/;

/** What a geo scrub removes from a raw JSON column by default: X's v1.1 tweet shape and the v2 response shape. */
export const DEFAULT_RAW_JSON_GEO_PATHS = ['$.geo', '$.coordinates', '$.place', '$.data.geo', '$.includes.places'] as const;

/** What a tweet embedded in a JSON column of another tweet becomes when that tweet is deleted: see EMBED_ACTIONS. */
export const EMBED_ACTIONS = ['copy', 'remove'] as const;

/**
 * A tweet embedded in a JSON column of the tweets table: an object at `path` (or, with `array`, the elements of the
 * array there) whose key `idKey` holds the embedded tweet's ID as a string. When that tweet is deleted, `copy` deletes
 * the embedding row (a retweet), `remove` removes the embedded object (a quote, an expansion); when it is geo-scrubbed,
 * its geo is removed from the embedded object.
 */
const embed = z.strictObject({
  column: identifier.describe('The JSON text column of the tweets table.'),
  path: z.string().regex(JSON_PATH, { message: 'must be a JSON path like "$.quoted_status" or "$.includes.tweets"' }).describe('Where the embedded tweet (or the array of them) is.'),
  array: z.boolean().default(false).describe('The path holds an array of embedded tweets (v2 includes.tweets, referenced_tweets).'),
  idKey: identifier.default('id_str').describe("The embedded object's key holding the tweet ID as a string (v1.1 id_str, v2 id)."),
  type: z
    .string()
    .regex(/^[a-z_]{1,32}$/)
    .nullable()
    .default(null)
    .describe('Only array elements whose "type" is this (v2 referenced_tweets: "retweeted", "quoted").'),
  action: z.enum(EMBED_ACTIONS).describe('copy: the embedding row is a copy (retweet) and is deleted; remove: the embedded object is removed.'),
});

/**
 * Where the raw JSON keeps other tweets, by default (when store.tables.tweets.rawJson is mapped): X's v1.1 shape
 * (retweeted_status, quoted_status), the v2 tweet object stored alone (referenced_tweets) and the v2 response
 * (data.referenced_tweets, includes.tweets).
 */
export const DEFAULT_RAW_JSON_EMBEDS = [
  { path: '$.retweeted_status', array: false, idKey: 'id_str', type: null, action: 'copy' },
  { path: '$.referenced_tweets', array: true, idKey: 'id', type: 'retweeted', action: 'copy' },
  { path: '$.data.referenced_tweets', array: true, idKey: 'id', type: 'retweeted', action: 'copy' },
  { path: '$.quoted_status', array: false, idKey: 'id_str', type: null, action: 'remove' },
  { path: '$.referenced_tweets', array: true, idKey: 'id', type: 'quoted', action: 'remove' },
  { path: '$.data.referenced_tweets', array: true, idKey: 'id', type: 'quoted', action: 'remove' },
  { path: '$.includes.tweets', array: true, idKey: 'id', type: null, action: 'remove' },
] as const;

const tweetsTable = z
  .strictObject({
    table: identifier.default('tweets'),
    id: identifier.default('id'),
    authorId: optionalColumn.default('author_id'),
    geoLat: optionalColumn.default('geo_lat'),
    geoLon: optionalColumn.default('geo_lon'),
    placeId: optionalColumn.default('place_id'),
    rawJson: optionalColumn.default('raw_json'),
    geoColumns: z
      .array(identifier)
      .default([])
      .describe('Further columns a geo scrub sets to NULL (e.g. GeoJSON text columns "geo" and "coordinates").'),
    geoJson: z
      .array(
        z.strictObject({
          column: identifier,
          paths: z
            .array(z.string().regex(JSON_PATH, { message: 'must be a JSON path like "$.geo" or "$.includes.places"' }))
            .min(1),
        }),
      )
      .default([])
      .describe('Further JSON text columns and the paths a geo scrub removes from them (rows holding invalid JSON are left as they are).'),
    embeds: z
      .array(embed)
      .nullable()
      .default(null)
      .describe('Tweets embedded in JSON columns of other tweets (copies deleted, embedded objects removed or geo-scrubbed with the tweet). Default (null): X\'s v1.1 and v2 shapes in rawJson when it is mapped; [] for none.'),
    ...complianceColumns,
  })
  .refine(allOrNoComplianceColumns, complianceColumnsMessage)
  .refine(
    (t) => {
      const scrubbed = [t.geoLat, t.geoLon, t.placeId, t.rawJson, ...t.geoColumns, ...t.geoJson.map((j) => j.column)].filter((c) => c !== null);
      return new Set(scrubbed.map((c) => c.toLowerCase())).size === scrubbed.length;
    },
    { message: 'a column is named twice among geoLat, geoLon, placeId, rawJson, geoColumns and geoJson', path: ['geoColumns'] },
  )
  .describe('Where tweets live in the store: table and column names (null for a column the store lacks).');

const usersTable = z
  .strictObject({
    table: identifier.default('users'),
    id: identifier.default('id'),
    ...complianceColumns,
  })
  .refine(allOrNoComplianceColumns, complianceColumnsMessage)
  .describe('Where users live in the store: table and column names.');

/** What is done to the rows of a relation when the row they reference is deleted. */
/** reconcile.guard: what the ingest guard's triggers do with a write of a tombstoned ID. */
const GUARD_MODES = ['off', 'ignore', 'abort'] as const;

/**
 * `copy`: the referencing rows are copies of the referenced row (retweets of a tweet) and go with it, as X removes
 * retweets with their original: each deleted as a row of its own (tombstone, dependents), counted as `copy`.
 */
export const RELATION_ACTIONS = ['delete', 'set_null', 'copy'] as const;

const dependent = z.strictObject({
  table: identifier.describe('The referencing table.'),
  column: identifier.describe('Its column holding the referenced ID.'),
  references: z.enum(JOB_TYPES).describe('Whose ID the column holds: a tweet\'s or a user\'s (the mapped table\'s id column).'),
  action: z
    .enum(RELATION_ACTIONS)
    .describe('delete the referencing rows, set the column to NULL, or copy: the referencing rows are copies (retweets) deleted with the row, each with its own tombstone.'),
  check: z
    .boolean()
    .default(false)
    .describe(
      "true: X is asked about the column's IDs too, whether or not a row of the referenced table holds them (twint keeps a retweet's own ID only in retweets.retweet_id): a cycle exports them with the stored IDs, each once, and a deletion of one acts on the rows holding it as `action` says. Needs an INTEGER column with an index.",
    ),
});

/**
 * A table whose rows mean something only while a stored row references them (media through a link table, places):
 * after each batch, the rows whose references the batch removed and that nothing references any more are deleted.
 */
const orphan = z.strictObject({
  table: identifier.describe('The table whose unreferenced rows are deleted.'),
  column: identifier.nullable().default(null).describe('Its key the references hold (default: its primary key).'),
  referencedBy: z
    .array(z.strictObject({ table: identifier, column: identifier }))
    .nullable()
    .default(null)
    .describe('The columns that reference it (default: every FOREIGN KEY referencing it).'),
  keep: z.boolean().default(false).describe('true: never delete its rows (turns off a table found by discovery).'),
});

const cronExpression = z.string().refine((expr) => cron.validate(expr), {
  message: 'is not a valid cron expression (five or six fields, e.g. "0 3 * * *")',
});

const timeZone = z.string().refine(
  (tz) => {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: tz });
      return true;
    } catch {
      return false;
    }
  },
  { message: 'is not a known IANA time zone (e.g. "UTC", "Europe/Berlin")' },
);

/** A span of time like "90m", "36h", "30d" or "2w" (config/duration.ts reads it). */
const duration = z.string().regex(/^[1-9][0-9]{0,5}(m|h|d|w)$/, { message: 'must be a whole number of m, h, d or w, e.g. "30d"' });

/** Where a hook delivers: a command run without a shell (argv form), or a URL it is POSTed to. */
const hook = z.union([
  z.strictObject({
    command: z.array(z.string().min(1)).min(1).describe('Program and arguments (no shell); the payload arrives as JSON on stdin.'),
  }),
  z.strictObject({
    url: z.url({ protocol: /^https?$/ }).describe('Receives the payload by POST (Content-Type: application/json).'),
  }),
]);

/** The host part of "host:port" is a loopback address. */
function isLoopbackListen(listen: string): boolean {
  const host = listen.slice(0, listen.lastIndexOf(':')).replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$/.test(host);
}

/** What each reason does by default (docs/architecture.md#what-a-result-does-to-the-store); config entries override or add reasons. */
export const DEFAULT_POLICY: Readonly<Record<string, ActionTaken>> = Object.freeze({
  deleted: 'delete',
  deactivated: 'delete',
  bounced: 'delete',
  protected: 'mark',
  suspended: 'mark',
  scrub_geo: 'scrub_geo',
  geo_scrubbed: 'scrub_geo',
  tweet_edited: 'mark',
});

export const configSchema = z.strictObject({
  $comment: z.string().optional().describe('Free text for people reading the file (the demo explains its token and port here); ignored.'),
  $schema: z.string().optional().describe('Path or URL of config.schema.json, for editors.'),
  store: z.strictObject({
    path: z.string().min(1).describe('The SQLite store to keep compliant (relative paths are relative to the config file).'),
    tables: z
      .strictObject({
        tweets: tweetsTable.prefault({}),
        users: usersTable.prefault({}),
      })
      .prefault({})
      .describe('Table and column names, for stores that do not use the default schema.'),
    dependents: z
      .array(dependent)
      .default([])
      .describe(
        'Relations to tweets or users the schema does not declare as FOREIGN KEYs, and the action for declared ones (default: delete rows of other tables, a self-reference of tweets whose column names a retweet is a copy, other self-references and references between tweets and users set to NULL).',
      ),
    orphans: z
      .array(orphan)
      .default([])
      .describe(
        'Tables whose rows mean something only while referenced (media, places): rows a batch leaves unreferenced are deleted in its transaction. Tables reached only through link tables are found by themselves.',
      ),
  }),
  api: z
    .strictObject({
      baseUrl: z.url({ protocol: /^https?$/ }).default('https://api.x.com').describe('Base URL of the X API (or of the emulator).'),
      bearerTokenFile: z
        .string()
        .min(1)
        .optional()
        .describe('File holding the app-only bearer token. Else $CREDENTIALS_DIRECTORY/x-bearer-token, else $X_BEARER_TOKEN.'),
      timeoutSeconds: z.number().int().min(1).max(3600).default(30).describe('Timeout of one HTTP request.'),
    })
    .prefault({}),
  schedule: z
    .strictObject({
      cron: cronExpression.default('0 3 * * *').describe('When cycles start (node-cron syntax, optional seconds field).'),
      timezone: timeZone.default('UTC').describe('Time zone the cron expression is read in.'),
      types: z
        .array(z.enum(JOB_TYPES))
        .min(1)
        .refine((types) => new Set(types).size === types.length, { message: 'must not repeat a type' })
        .default(['tweets', 'users'])
        .describe('Which types each scheduled run checks.'),
    })
    .prefault({}),
  jobs: z
    .strictObject({
      shardSize: z.number().int().min(1).max(100_000_000).default(500_000).describe('Most IDs uploaded in one compliance job.'),
      pollIntervalSeconds: z.number().min(0.1).default(60).describe('Base interval between two polls of one job (backs off as it ages).'),
      maxAttempts: z.number().int().min(1).max(100).default(3).describe('Jobs tried per shard before the shard is marked failed.'),
      resumableUpload: z.boolean().default(false).describe('Create jobs with resumable: true and upload by the GCS resumable protocol.'),
    })
    .prefault({}),
  reconcile: z
    .strictObject({
      batchSize: z
        .number()
        .int()
        .min(1)
        .max(1_000_000)
        .default(50_000)
        .describe('Results applied per SQLite transaction, sorted by ID: larger batches touch each page fewer times.'),
      maxLockMs: z
        .number()
        .int()
        .min(1)
        .default(200)
        .describe("Longest a cycle's write transaction holds SQLite's write lock: work is cut by time as well as by count, so the archive's own ingester keeps writing."),
      cascadeUsers: z.boolean().default(true).describe("Apply a user's deletion, mark or geo scrub to that author's tweets."),
      maxDeleteFraction: z
        .number()
        .min(0)
        .max(1)
        .default(0.5)
        .describe('Safety gate: hold a shard (or file) whose deletions exceed this share of the IDs it concerns.'),
      policy: z
        .record(
          z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, { message: 'reason names are lower-case words' }),
          z.enum(ACTIONS_TAKEN),
        )
        .default({})
        .describe('Action taken per reason, on top of the defaults.'),
      guard: z
        .enum(GUARD_MODES)
        .default('ignore')
        .describe(
          'Ingest guard: triggers on the mapped tables keep a tombstoned (deleted for compliance) ID from being written back. ignore: the write is skipped silently; abort: it fails with an error naming compliance-sync; off: no triggers.',
        ),
      purge: z
        .boolean()
        .default(true)
        .describe('Leave no deleted text in the store files: secure_delete while applying, FTS indexes merged into one segment and a WAL checkpoint (TRUNCATE) when a cycle closes.'),
      vacuum: z
        .string()
        .refine((value) => value === 'off' || value === 'cycle' || cron.validate(value), {
          message: 'is "off", "cycle" or a cron expression for a VACUUM window (e.g. "0 4 * * 0")',
        })
        .default('off')
        .describe(
          "Rebuild the store file (VACUUM), the only way to also clear copies of deleted rows that SQLite left in the free space of pages rebalanced before the deletion. cycle: in the purge at each cycle's close. A cron expression (read in schedule.timezone): the daemon runs it in that window instead, holding the run lock; a window is skipped, with a log line, while a cycle runs, while another process holds the run lock, or when the store's disk has less free space than twice the store's size. Needs free disk for a full copy and locks the store while it runs.",
        ),
    })
    .prefault({}),
  paths: z
    .strictObject({
      work: z
        .string()
        .min(1)
        .optional()
        .describe('Directory for shard and result files. Default $CACHE_DIRECTORY, else <store>.work next to the store.'),
    })
    .prefault({}),
  metrics: z
    .strictObject({
      listen: z
        .string()
        .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$/, { message: 'must be host:port, e.g. "127.0.0.1:9464" or "[::1]:9464"' })
        .nullable()
        .default(null)
        .describe('Serve /metrics (Prometheus text format) and /healthz on this loopback address:port while the daemon runs. Off when null.'),
      allowNonLoopback: z
        .boolean()
        .default(false)
        .describe('Allow metrics.listen on an address other than loopback (the endpoint has no authentication).'),
    })
    .superRefine((metrics, ctx) => {
      if (metrics.listen === null || metrics.allowNonLoopback || isLoopbackListen(metrics.listen)) return;
      ctx.addIssue({
        code: 'custom',
        path: ['listen'],
        input: metrics.listen,
        message: 'must be a loopback address (127.0.0.1, [::1], localhost): the endpoint has no authentication; set metrics.allowNonLoopback to expose it',
      });
    })
    .prefault({}),
  audit: z
    .strictObject({
      maxAge: duration
        .default('30d')
        .describe('A stored ID counts as covered when a closed cycle checked it within this age ("90m", "36h", "30d", "2w").'),
    })
    .prefault({}),
  hooks: z
    .strictObject({
      onCycleClosed: hook.optional().describe('Told about every closed cycle: its summary as JSON.'),
      onDeletions: hook.optional().describe('Told which stored IDs a closed cycle deleted (only when it deleted some).'),
      timeoutSeconds: z.number().min(0.1).max(600).default(10).describe('Time one delivery attempt may take.'),
      maxAttempts: z.number().int().min(1).max(20).default(4).describe('Delivery attempts (with backoff between them) before a delivery counts as failed.'),
      maxInlineIds: z
        .number()
        .int()
        .min(0)
        .max(1_000_000)
        .default(10_000)
        .describe('Above this many deleted IDs, the payload names a file of them (one per line) instead of listing them.'),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('pino log level.'),
    })
    .prefault({}),
});

export type ParsedConfig = z.output<typeof configSchema>;

/** The JSON Schema for editors; config.schema.json is this, written by scripts/write-config-schema.mjs. */
export function configJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}
