/**
 * Make an API key for a tenant and the entry that goes into the TENANTS var/secret (only the hash).
 *
 *   npm run tenant-key -- acme [--max-tokens 256] [--max-rounds 64] [--rpm 60] [--tpm 100000]
 *     [--max-request-tokens 2048] [--session-ttl-s 86400] [--max-sessions 100]
 *
 * Give the key to the tenant (it is shown once, nowhere stored); put the JSON into wrangler.toml
 * `[env.<name>.vars] TENANTS` or `npx wrangler secret put TENANTS --env <name>`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    'max-tokens': { type: 'string', default: '256' },
    'max-rounds': { type: 'string', default: '64' },
    rpm: { type: 'string', default: '60' },
    tpm: { type: 'string', default: '100000' },
    'max-request-tokens': { type: 'string', default: '2048' },
    'session-ttl-s': { type: 'string', default: '86400' },
    'max-sessions': { type: 'string', default: '100' },
  },
});
const name = positionals[0];
if (!name || !/^[A-Za-z0-9_-]{1,64}$/.test(name)) {
  process.stderr.write('usage: npm run tenant-key -- <tenant-name [A-Za-z0-9_-]> [--max-tokens N] [--max-rounds N] [--rpm N] [--tpm N] [--max-request-tokens N] [--session-ttl-s N] [--max-sessions N]\n');
  process.exit(2);
}
const key = `sk-${name}-${randomBytes(24).toString('base64url')}`;
const hash = createHash('sha256').update(key).digest('hex');
const entry = {
  [name]: {
    key_sha256: [hash],
    max_tokens: Number(values['max-tokens']),
    max_rounds: Number(values['max-rounds']),
    max_request_tokens: Number(values['max-request-tokens']),
    rpm: Number(values.rpm),
    tpm: Number(values.tpm),
    session_ttl_s: Number(values['session-ttl-s']),
    max_sessions: Number(values['max-sessions']),
  },
};
process.stdout.write(`API key (give to the tenant, not stored anywhere): ${key}\nTENANTS entry: ${JSON.stringify(entry)}\n`);
