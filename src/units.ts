/**
 * Units every layer shares. `config/` parses them from YAML and `cache/` counts in them, so they
 * live below both.
 */

/** Milliseconds on the clock's own scale. */
export type Millis = number;

/** A size in bytes. */
export type Bytes = number;
