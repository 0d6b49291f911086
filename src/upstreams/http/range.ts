/**
 * Range requests answered from a stored complete response (RFC 9110 §14,
 * https://www.rfc-editor.org/rfc/rfc9110#section-14): one byte range gets a 206, an
 * unsatisfiable one a 416; several ranges, another unit or a field that does not parse get the
 * full response (a server MAY ignore Range, §14.2), as does an If-Range that does not match.
 */
import type { IncomingHttpHeaders } from 'node:http';

/** What to answer a Range request with, given the stored response. */
export type RangeAnswer =
  | { kind: 'partial'; start: number; end: number }
  | { kind: 'unsatisfiable' }
  /** The full response; `why` is the Cache-Status detail. */
  | { kind: 'full'; why: 'MULTIPLE-RANGES' | 'RANGE-IGNORED' | 'IF-RANGE-MISMATCH' };

/** The part of a stored response a Range decision needs. */
export interface Representation {
  status: number;
  length: number;
  etag: string | undefined;
  lastModified: string | undefined;
}

/** RFC 9110 §14.2: Range applies to GET (and HEAD) answers of 200, when If-Range, if any, holds. */
export function decideRange(headers: IncomingHttpHeaders, rep: Representation): RangeAnswer {
  const range = headers.range;
  if (range === undefined || rep.status !== 200) return { kind: 'full', why: 'RANGE-IGNORED' };
  const ifRange = headers['if-range'];
  if (!ifRangeHolds(typeof ifRange === 'string' ? ifRange : undefined, rep)) return { kind: 'full', why: 'IF-RANGE-MISMATCH' };
  const match = /^bytes[ \t]*=[ \t]*(.*)$/i.exec(range);
  if (match === null) return { kind: 'full', why: 'RANGE-IGNORED' };
  const specs = match[1]!.split(',').filter((s) => s.trim() !== '');
  if (specs.length === 0) return { kind: 'full', why: 'RANGE-IGNORED' };
  if (specs.length > 1) return { kind: 'full', why: 'MULTIPLE-RANGES' };
  return oneRange(specs[0]!.trim(), rep.length);
}

/** One `first-last`, `first-` or `-suffix` (§14.1.2) against a representation of `length` bytes. */
function oneRange(spec: string, length: number): RangeAnswer {
  const m = /^(\d*)-(\d*)$/.exec(spec);
  if (m === null || (m[1] === '' && m[2] === '')) return { kind: 'full', why: 'RANGE-IGNORED' };
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0 || length === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, length - suffix), end: length - 1 };
  }
  const first = Number(m[1]);
  const last = m[2] === '' ? Infinity : Number(m[2]);
  // §14.1.1: a last position below the first makes the range invalid: the field is ignored.
  if (last < first) return { kind: 'full', why: 'RANGE-IGNORED' };
  if (first >= length) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start: first, end: Math.min(last, length - 1) };
}

/**
 * RFC 9110 §13.1.5: an entity tag matches only by strong comparison with the stored ETag; a date
 * only when it is exactly the stored Last-Modified. Anything else: the full response.
 */
function ifRangeHolds(value: string | undefined, rep: Representation): boolean {
  if (value === undefined) return true;
  const v = value.trim();
  if (v.startsWith('"') || v.startsWith('W/')) return !v.startsWith('W/') && rep.etag !== undefined && !rep.etag.startsWith('W/') && v === rep.etag;
  return rep.lastModified !== undefined && v === rep.lastModified;
}

/** The fields of a 206 from the full response's prepared list: its Content-Length becomes the part's, Content-Range added. */
export function partialFields(fields: readonly string[], start: number, end: number, length: number): string[] {
  const out: string[] = [];
  // The list ends in the Age and Cache-Status slots: Content-Range goes before them.
  for (let i = 0; i < fields.length - 4; i += 2) out.push(fields[i]!, fields[i] === 'content-length' ? String(end - start + 1) : fields[i + 1]!);
  out.push('content-range', `bytes ${start}-${end}/${length}`, 'age', '', 'cache-status', '');
  return out;
}
