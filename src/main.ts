// `npm start` (bin/jit-bot runs this file's bundle, dist/main.js): validate configuration, start
// everything, stop cleanly on SIGINT / SIGTERM.
import { startJit } from './bootstrap.js';
import { ConfigError } from './config/env.js';
import { PolicyFileError } from './config/policy-file.js';

async function main(): Promise<void> {
  let app;
  try {
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
