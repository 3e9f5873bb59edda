import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { loadConfig, parseConfig, resolveConfigPath } from '../../src/config/load.js';
import { configJsonSchema } from '../../src/config/schema.js';
import { maskSecret, resolveBearerToken } from '../../src/config/token.js';
import { REPO_ROOT, useTempDir, writeJson } from '../helpers/tmp.js';

const tempDir = useTempDir();

function configError(raw: unknown): ConfigError {
  try {
    parseConfig(raw, '/tmp/c.json', {});
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('config validation', () => {
  it('fills every default except store.path and resolves paths against the config file', () => {
    const config = parseConfig({ store: { path: 'data/archive.db' } }, '/etc/cs/config.json', {});
    expect(config.store.path).toBe('/etc/cs/data/archive.db');
    expect(config.paths.work).toBe('/etc/cs/data/archive.db.work');
    expect(config.api).toEqual({ baseUrl: 'https://api.x.com', timeoutSeconds: 30 });
    expect(config.schedule).toEqual({ cron: '0 3 * * *', timezone: 'UTC', types: ['tweets', 'users'] });
    expect(config.jobs).toEqual({ shardSize: 500000, pollIntervalSeconds: 60, maxAttempts: 3, resumableUpload: false });
    expect(config.reconcile.policy.deleted).toBe('delete');
    expect(config.store.tables.tweets.geoLat).toBe('geo_lat');
    expect(Object.isFrozen(config.jobs)).toBe(true);
  });

  it('uses $CACHE_DIRECTORY for the work folder when paths.work is not set', () => {
    const config = parseConfig({ store: { path: '/s.db' } }, '/c.json', { CACHE_DIRECTORY: '/var/cache/cs' });
    expect(config.paths.work).toBe('/var/cache/cs');
  });

  it('puts a relative store path in $STATE_DIRECTORY under systemd', () => {
    const config = parseConfig({ store: { path: 'archive.db' } }, '/etc/compliance-sync/config.json', { STATE_DIRECTORY: '/var/lib/compliance-sync' });
    expect(config.store.path).toBe('/var/lib/compliance-sync/archive.db');
    expect(parseConfig({ store: { path: '/data/a.db' } }, '/c.json', { STATE_DIRECTORY: '/var/lib/x' }).store.path).toBe('/data/a.db');
  });

  it('takes "off", "cycle" or a cron expression for reconcile.vacuum', () => {
    for (const vacuum of ['off', 'cycle', '0 4 * * 0']) {
      expect(parseConfig({ store: { path: '/s.db' }, reconcile: { vacuum } }, '/c.json', {}).reconcile.vacuum).toBe(vacuum);
    }
  });

  it('lets the policy override and extend the default reasons', () => {
    const config = parseConfig({ store: { path: '/s.db' }, reconcile: { policy: { protected: 'delete', odd_reason: 'ignore' } } }, '/c.json', {});
    expect(config.reconcile.policy).toMatchObject({ protected: 'delete', odd_reason: 'ignore', suspended: 'mark' });
  });

  it.each([
    [{ store: { path: '/s.db' }, jobs: { shardSize: 0 } }, 'jobs.shardSize', '0'],
    [{ store: { path: '/s.db' }, jobz: {} }, 'jobz: unknown key', ''],
    [{ store: { path: '/s.db' }, jobs: { shardSize: 10, pace: 1 } }, 'jobs.pace: unknown key', ''],
    [{ store: { path: '/s.db' }, schedule: { cron: '61 * * * *' } }, 'schedule.cron', '"61 * * * *"'],
    [{ store: { path: '/s.db' }, schedule: { timezone: 'Mars/Olympus' } }, 'schedule.timezone', '"Mars/Olympus"'],
    [{ store: { path: '/s.db', tables: { tweets: { table: 'tweets; DROP TABLE users' } } } }, 'store.tables.tweets.table', 'DROP TABLE'],
    [{ store: { path: '/s.db', tables: { users: { id: '1d' } } } }, 'store.tables.users.id', '"1d"'],
    [{ store: { path: '/s.db' }, reconcile: { policy: { deleted: 'shred' } } }, 'reconcile.policy.deleted', '"shred"'],
    [{ store: { path: '/s.db' }, reconcile: { vacuum: 'weekly' } }, 'reconcile.vacuum: is "off", "cycle" or a cron expression', '"weekly"'],
    [{ store: { path: '/s.db' }, jobs: { shardSize: '5' } }, 'jobs.shardSize', '"5"'],
    [{}, 'store', 'missing'],
  ])('rejects %j naming the field', (raw, field, value) => {
    const err = configError(raw);
    expect(err.exitCode).toBe(78);
    expect(err.message).toContain(field);
    expect(err.message).toContain(value);
  });

  it('reports a missing file and invalid JSON with the path', () => {
    const dir = tempDir();
    expect(() => loadConfig(path.join(dir, 'nope.json'))).toThrow(/config file not found: .*nope\.json/);
    writeFileSync(path.join(dir, 'bad.json'), '{"store": ');
    expect(() => loadConfig(path.join(dir, 'bad.json'))).toThrow(/not valid JSON/);
  });
});

describe('config file precedence', () => {
  it('takes --config, then $COMPLIANCE_SYNC_CONFIG, then $CONFIGURATION_DIRECTORY/config.json, then ./config.json', () => {
    const env = { COMPLIANCE_SYNC_CONFIG: '/env/c.json', CONFIGURATION_DIRECTORY: '/etc/cs' };
    expect(resolveConfigPath('flag.json', env, '/work')).toBe('/work/flag.json');
    expect(resolveConfigPath(undefined, env, '/work')).toBe('/env/c.json');
    expect(resolveConfigPath(undefined, { CONFIGURATION_DIRECTORY: '/etc/cs' }, '/work')).toBe('/etc/cs/config.json');
    expect(resolveConfigPath(undefined, {}, '/work')).toBe('/work/config.json');
  });
});

describe('bearer token', () => {
  it('reads api.bearerTokenFile, else $CREDENTIALS_DIRECTORY/x-bearer-token, else $X_BEARER_TOKEN', () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'token'), 'from-file-token\n');
    writeFileSync(path.join(dir, 'x-bearer-token'), 'from-credentials\n');
    const withFile = parseConfig({ store: { path: 's.db' }, api: { bearerTokenFile: 'token' } }, path.join(dir, 'c.json'), {});
    const plain = parseConfig({ store: { path: 's.db' } }, path.join(dir, 'c.json'), {});
    const env = { CREDENTIALS_DIRECTORY: dir, X_BEARER_TOKEN: 'from-env' };
    expect(resolveBearerToken(withFile, env).token).toBe('from-file-token');
    expect(resolveBearerToken(plain, env).token).toBe('from-credentials');
    expect(resolveBearerToken(plain, { X_BEARER_TOKEN: 'from-env' })).toEqual({ token: 'from-env', source: '$X_BEARER_TOKEN' });
    expect(() => resolveBearerToken(plain, {})).toThrow(ConfigError);
  });

  it('masks secrets so two can be told apart but not read', () => {
    expect(maskSecret('AAAAAAAAAAAAAAAAAAAAAsecretZZ')).not.toContain('secret');
  });
});

describe('shipped config files', () => {
  it('config.example.json validates and spells out every default', () => {
    const example = JSON.parse(readFileSync(path.join(REPO_ROOT, 'config.example.json'), 'utf8'));
    const config = parseConfig(example, path.join(REPO_ROOT, 'config.example.json'), {});
    const defaults = parseConfig({ store: { path: example.store.path } }, path.join(REPO_ROOT, 'config.example.json'), {});
    const { $schema: _schema, ...rest } = config as unknown as Record<string, unknown>;
    expect({ ...rest, paths: defaults.paths }).toEqual(defaults);
  });

  it('config.schema.json is what the validator generates (npm run config-schema rewrites it)', () => {
    const committed = JSON.parse(readFileSync(path.join(REPO_ROOT, 'config.schema.json'), 'utf8'));
    expect(committed).toEqual({ ...configJsonSchema(), title: 'compliance-sync configuration' });
  });

  it('a config written by a test round-trips through loadConfig', () => {
    const dir = tempDir();
    const file = writeJson(path.join(dir, 'config.json'), { store: { path: 'x.db' }, log: { level: 'debug' } });
    expect(loadConfig(file, {}).log.level).toBe('debug');
  });
});
