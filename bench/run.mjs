// Runs every benchmark in bench/ (files named *.bench.mjs) against the built code in dist/.
import { readdirSync } from 'node:fs';

const dir = new URL('./', import.meta.url);
const only = process.argv[2];
for (const file of readdirSync(dir)
  .filter((f) => f.endsWith('.bench.mjs'))
  .sort()) {
  if (only && !file.includes(only)) continue;
  console.log(`\n# ${file}`);
  await import(new URL(file, dir).href);
}
