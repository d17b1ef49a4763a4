// npm run api-token -- <principal>
// Prints a new REST API token for a principal of the policy file, and the JIT_API_TOKENS entry
// to configure (only the token's SHA-256 is stored on the server; the token is shown once).
import { createHash, randomBytes } from 'node:crypto';
import { parsePrincipal } from '../src/core/ids.js';

// As the server parses it; `=` and `,` would break the JIT_API_TOKENS entry.
const principal = parsePrincipal(process.argv[2] ?? '');
if (!principal || /[=,]/.test(principal)) {
  process.stderr.write('usage: npm run api-token -- <principal, e.g. alice@contoso.com>\n');
  process.exit(2);
}
const token = `jit_${randomBytes(32).toString('base64url')}`;
const digest = createHash('sha256').update(token, 'utf8').digest('hex');
process.stdout.write(
  `token (give it to ${principal}; it is not stored anywhere):\n  ${token}\n\n` +
    `add to JIT_API_TOKENS (comma-separated with any others):\n  ${principal}=sha256:${digest}\n`,
);
