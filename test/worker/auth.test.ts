/**
 * The Authorization rule itself (tenants.ts `authenticate`), for header values that raw HTTP in local
 * workerd cannot deliver as such: workerd turns a non-ASCII header byte into U+FFFD, while a proxy in front
 * (wrangler dev's, a CDN's) may hand the worker U+00A0 itself. Every route calls this one function.
 */
import { describe, expect, it } from 'vitest';
import { authenticate } from '../../src/worker/tenants';
import { TENANTS } from './harness';

const raw = JSON.stringify(TENANTS);
const local = 'http://127.0.0.1:8787/v1/models';
const who = (h: string | undefined) =>
  authenticate(h, local, raw, true).then(
    (t) => t.name,
    (e: { status: number; code: string }) => `${e.status} ${e.code}`,
  );

describe('Authorization: Bearer <key>', () => {
  it.each([
    ['Bearer sk-bob', 'bob'],
    ['bearer sk-bob', 'bob'],
    ['Bearer   sk-bob', 'bob'],
    ['Bearer\tsk-bob \t', 'bob'],
    ['Bearer sk-bob\u00a0', '401 invalid_api_key'], // non-breaking space: not HTTP whitespace, so part of the key
    ['Bearer\u00a0sk-bob', '401 invalid_api_key'],
    ['Bearer sk-bob\u3000', '401 invalid_api_key'],
    ['Bearer sk-bob\ufffd', '401 invalid_api_key'],
    ['Bearer sk-bob\n', '401 invalid_api_key'],
    ['Bearer sk-bob sk-alice', '401 invalid_api_key'],
    ['Bearer ', '401 invalid_api_key'],
    ['Basic c2stYm9i', '401 invalid_api_key'],
    ['sk-bob', '401 invalid_api_key'],
    [undefined, '401 invalid_api_key'],
  ])('%j → %s', async (header, expected) => {
    expect(await who(header)).toBe(expected);
  });

  it('the local-only dev key works on a loopback server, addressed to localhost, only', async () => {
    expect(await who('Bearer sk-local-dev')).toBe('dev');
    await expect(authenticate('Bearer sk-local-dev', 'https://ctc-edge.example.workers.dev/v1/models', raw, true)).rejects.toMatchObject({ status: 401 });
    // A deployment (no LOCAL_KEYS=loopback): refused whatever Host the client writes.
    for (const url of ['http://localhost/v1/models', 'http://127.0.0.1:8787/v1/models', 'http://LOCALHOST/v1/models', 'http://127.1/v1/models', 'http://localhost:1/v1/models']) {
      await expect(authenticate('Bearer sk-local-dev', url, raw, false), url).rejects.toMatchObject({ status: 401 });
    }
  });

  it('a key printed in this repository is refused for a deployed tenant, whatever its config says', async () => {
    const withPlaceholder = JSON.stringify({ acme: { key_sha256: ['de0b928e09ad5bb13d1550ce53d37689ee700808c7b020d8a0a8755c3b498573'] } });
    await expect(authenticate('Bearer sk-acme-replace-me', 'https://acme.example/v1/models', withPlaceholder, false)).rejects.toMatchObject({ status: 401 });
    await expect(authenticate('Bearer sk-acme-replace-me', local, withPlaceholder, true)).rejects.toMatchObject({ status: 401 });
    const devKeyDeployed = JSON.stringify({ acme: { key_sha256: [TENANTS.dev.key_sha256[0]] } }); // the dev key, not local_only
    await expect(authenticate('Bearer sk-local-dev', local, devKeyDeployed, true)).rejects.toMatchObject({ status: 401 });
  });
});
