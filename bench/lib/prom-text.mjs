// Reads the Prometheus text format of sidecache's GET /metrics into samples, enough for the soak:
// `name{labels} value` lines, comments skipped.

/** Returns [{ name, labels, value }] for every sample line. */
export function parsePromText(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[key] = value;
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

/** The sum of every sample of `name` whose labels include `where`. */
export function sumOf(samples, name, where = {}) {
  let sum = 0;
  for (const s of samples) if (s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v)) sum += s.value;
  return sum;
}

/** The first sample of `name`, or undefined. */
export function valueOf(samples, name) {
  return samples.find((s) => s.name === name)?.value;
}
