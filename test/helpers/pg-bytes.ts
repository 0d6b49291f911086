/**
 * An independent, tiny builder and reader of wire-protocol messages for tests (it shares no code
 * with src/upstreams/postgres, so the two cannot be wrong together).
 */
export function message(code: string, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const head = Buffer.alloc(5);
  head.write(code, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

const cstr = (s: string) => Buffer.from(`${s}\0`, 'utf8');
export const i16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
};
export const i32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};

export function startup(params: Record<string, string>): Buffer {
  const body = Buffer.concat([i32(196608), ...Object.entries(params).flatMap(([k, v]) => [cstr(k), cstr(v)]), Buffer.from([0])]);
  return Buffer.concat([i32(body.length + 4), body]);
}

export const query = (sql: string) => message('Q', cstr(sql));
export const parse = (name: string, sql: string) => message('P', cstr(name), cstr(sql), i16(0));
export function bind(statement: string, params: (string | null)[], portal = ''): Buffer {
  const values = params.flatMap((p) => (p === null ? [i32(-1)] : [i32(Buffer.byteLength(p)), Buffer.from(p)]));
  return message('B', cstr(portal), cstr(statement), i16(0), i16(params.length), ...values, i16(0));
}
export const describePortal = (portal = '') => message('D', Buffer.from('P'), cstr(portal));
export const execute = (portal = '', maxRows = 0) => message('E', cstr(portal), i32(maxRows));
export const sync = () => message('S');
export const terminate = () => message('X');

export const parseComplete = () => message('1');
export const bindComplete = () => message('2');
export const dataRow = (...values: string[]) => message('D', i16(values.length), ...values.flatMap((v) => [i32(Buffer.byteLength(v)), Buffer.from(v)]));
export const commandComplete = (tag: string) => message('C', cstr(tag));
export const readyForQuery = (status: 'I' | 'T' | 'E') => message('Z', Buffer.from(status, 'latin1'));
export const notification = (channel: string, payload: string) => message('A', i32(1), cstr(channel), cstr(payload));
export const errorResponse = (sqlstate: string, text: string) => message('E', cstr('SERROR'), cstr(`C${sqlstate}`), cstr(`M${text}`), Buffer.from([0]));

export interface BackendMessage {
  code: string;
  body: Buffer;
}

/** Splits backend bytes into messages. */
export function readMessages(data: Buffer): BackendMessage[] {
  const out: BackendMessage[] = [];
  let at = 0;
  while (at + 5 <= data.length) {
    const length = data.readInt32BE(at + 1);
    if (at + 1 + length > data.length) break;
    out.push({ code: String.fromCharCode(data[at]!), body: data.subarray(at + 5, at + 1 + length) });
    at += 1 + length;
  }
  return out;
}

/** The text of the first column of a DataRow. */
export function firstColumn(body: Buffer): string | null {
  const length = body.readInt32BE(2);
  return length === -1 ? null : body.toString('utf8', 6, 6 + length);
}

/** Error/notice fields by code letter. */
export function fields(body: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let at = 0;
  while (at < body.length && body[at] !== 0) {
    const end = body.indexOf(0, at + 1);
    out[String.fromCharCode(body[at]!)] = body.toString('utf8', at + 1, end);
    at = end + 1;
  }
  return out;
}
