/**
 * Imported first by the command line, before any other module runs. Node's platform can deadlock
 * at exit when a V8 background thread compiling Sparkplug code waits for a main-thread garbage
 * collection that never comes, because the main thread is joining that very thread
 * (nodejs/node#54918; seen here on Node 24: `sidecache check` hung in process.exit). Compiling
 * Sparkplug code on the main thread instead removes those jobs; Sparkplug is V8's non-optimising
 * baseline tier and compiles in microseconds, so the cost is negligible.
 */
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--no-concurrent-sparkplug');
