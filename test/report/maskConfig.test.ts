import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { maskConfig } from '../../src/report/reportPage.js';

describe('the configuration the HTML report prints', () => {
  it('masks URL credentials, secret query values and hook arguments that carry a credential', () => {
    const config = parseConfig(
      {
        store: { path: 'x.db' },
        api: { baseUrl: 'https://user:pa55word@api.example.com' },
        hooks: {
          onCycleClosed: { url: 'https://hooks.example.com/in?token=s3cr3t&team=archive' },
          onDeletions: { command: ['/usr/bin/curl', '-H', 'X-Custom: s3cr3t-value', '--data-binary', '@-', 'https://index.example.com/?api_key=k3y'] },
        },
      },
      '/etc/compliance-sync/config.json',
      {},
    );
    const text = JSON.stringify(maskConfig(config));
    for (const secret of ['pa55word', 's3cr3t', 'k3y']) expect(text).not.toContain(secret);
    const masked = maskConfig(config) as { api: { baseUrl: string }; hooks: { onCycleClosed: { url: string }; onDeletions: { command: string[] } } };
    expect(masked.api.baseUrl).toBe('https://user:masked@api.example.com/');
    expect(masked.hooks.onCycleClosed.url).toBe('https://hooks.example.com/in?token=masked&team=archive');
    expect(masked.hooks.onDeletions.command).toEqual(['/usr/bin/curl', '-H', '[masked]', '--data-binary', '@-', '[masked]']);
    // What is not secret stays readable.
    expect(text).toContain('"shardSize":500000');
  });
});
