// Writes docs/configuration.md from the configuration schema. Build first (npm run build).
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';

const built = new URL('../dist/config/docs.js', import.meta.url);
if (!existsSync(built)) {
  console.error('dist/config/docs.js is missing: run `npm run build` first');
  process.exit(1);
}
// The listener kinds register their schemas into the configuration's listener union.
await import(new URL('../dist/app/listener-kinds.js', import.meta.url).href);
const { renderConfigDocs } = await import(built.href);
const out = new URL('../docs/configuration.md', import.meta.url);
mkdirSync(new URL('.', out), { recursive: true });
writeFileSync(out, renderConfigDocs());
console.log(`wrote ${out.pathname}`);
