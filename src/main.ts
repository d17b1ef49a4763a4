// `npm start` (bin/jit-bot runs this file's bundle, dist/main.js): validate configuration, start
// everything, stop cleanly on SIGINT / SIGTERM.
import { setFlagsFromString } from 'node:v8';
import { startJit } from './bootstrap.js';
import { ConfigError, loadConfig } from './config/env.js';
import { PolicyFileError } from './config/policy-file.js';

async function main(): Promise<void> {
  let app;
  try {
    // V8 grows the heap up to 4× what was live at the last full GC on a machine with much memory
    // (its limit then is ~4 GiB): a burst of requests left the RSS at 200+ MiB for a live heap of
    // ~35 MiB. A flag read at every GC, so setting it here, in the process, holds however the server
    // is started (npm start, node dist/main.js). docs/benchmarks.md, "Footprint".
    const percent = loadConfig().JIT_HEAP_GROWING_PERCENT;
    if (percent > 0) setFlagsFromString(`--heap-growing-percent=${percent}`);
    app = await startJit();
  } catch (err) {
    if (err instanceof ConfigError || err instanceof PolicyFileError) {
      process.stderr.write(`jit-bot: ${err.message}\n`);
    } else {
      process.stderr.write(`jit-bot: cannot start: ${err instanceof Error ? err.message : String(err)}\n`);
    }
    process.exit(1);
  }
  process.stderr.write(
    `\njit-bot is running at ${app.url}\n` +
      (app.loginLink
        ? `  console: ${app.loginLink()}\n` +
          `           (a one-time link; \`bin/jit login\` prints a fresh one)\n` +
          `  try:  bin/jit as alice@contoso.com rdp vm1 2h from 203.0.113.7\n` +
          `  help: bin/jit as alice@contoso.com help\n\n`
        : `  the local channel (console, bin/jit as …) is off (JIT_LOCAL_CHANNEL)\n\n`),
  );
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`jit-bot: ${signal}, draining...\n`);
    app
      .stop()
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        process.stderr.write(`jit-bot: error while stopping: ${String(err)}\n`);
        process.exit(1);
      });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

void main();
