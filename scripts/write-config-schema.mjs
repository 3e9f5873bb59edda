// Regenerates config.schema.json from the validator (src/config/schema.ts, via dist/), so the two cannot drift.
// A test fails when the committed file differs from what this writes. Run: npm run build && node scripts/write-config-schema.mjs
import { writeFileSync } from 'node:fs';
import { configJsonSchema } from '../dist/config/schema.js';

const schema = { ...configJsonSchema(), title: 'compliance-sync configuration' };
writeFileSync(new URL('../config.schema.json', import.meta.url), `${JSON.stringify(schema, null, 2)}\n`);
