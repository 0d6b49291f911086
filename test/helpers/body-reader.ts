import type { BodyReader } from '../../src/upstreams/http/body-reader.js';

/** Reads a body reader to its end, as text. */
export async function readAll(reader: BodyReader): Promise<string> {
  let out = '';
  for await (const part of reader) out += part.toString();
  return out;
}
