import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ComplianceClient } from '../../src/xapi/client.js';

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
});

async function listen(handler: Parameters<typeof createServer>[1]): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('the bearer token and redirects', () => {
  it('is never sent to another origin that an API response redirects to', async () => {
    const seen: (string | undefined)[] = [];
    const foreign = await listen((req, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
    const api = await listen((req, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(301, { location: `${foreign}/2/compliance/jobs/1` }).end();
    });
    const client = new ComplianceClient({ baseUrl: api, token: 'fake-token-7', retries: 0 });
    await client.getJob('1').catch(() => undefined);
    expect(seen[0]).toBe('Bearer fake-token-7');
    expect(seen.slice(1).every((auth) => auth === undefined)).toBe(true);
    expect(seen.length).toBeGreaterThan(1);
  });
});
