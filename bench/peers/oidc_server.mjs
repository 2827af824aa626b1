// oidc-provider (panva) on loopback for bench/oidc_peer.py, with the PostgreSQL adapter and the
// same two grants the bridge's benchmark drives: client_credentials for a service and rotated
// refresh tokens for a relying party, the account checked in the LMS database on refresh
// (as the bridge checks the LMS). Configuration comes from the environment:
//   NODE_PATH (the temporary npm folder), PEER_PORT, PEER_DATABASE_URL, LMS_DATABASE_URL,
//   PEER_FAMILIES (refresh-token families to seed), PEER_SUBJECTS (LMS student ids).
// On start it prints one JSON line: {"refresh_tokens": [...]}; then it serves until killed.
import { generateKeyPairSync } from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';

import { SCHEMA, adapterFor } from './pg_adapter.mjs';

const require = createRequire(path.join(process.env.NODE_PATH, 'noop.js'));
const { default: Provider } = await import(require.resolve('oidc-provider'));
const pg = require('pg');

const port = Number(process.env.PEER_PORT);
const store = new pg.Pool({ connectionString: process.env.PEER_DATABASE_URL, max: 4 });
const lms = new pg.Pool({ connectionString: process.env.LMS_DATABASE_URL, max: 4 });
await store.query(SCHEMA);

const key = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
const provider = new Provider(`http://127.0.0.1:${port}`, {
  adapter: adapterFor(store),
  clients: [
    { client_id: 'bench-service', client_secret: 'bench-service-secret-0123456789abcdef0123',
      grant_types: ['client_credentials'], redirect_uris: [], response_types: [],
      scope: 'lms.context' },
    { client_id: 'bench-rp', client_secret: 'bench-rp-secret-0123456789abcdef0123456789',
      grant_types: ['authorization_code', 'refresh_token'],
      redirect_uris: ['https://rp.example/cb'] },
  ],
  scopes: ['openid', 'offline_access', 'profile', 'email', 'lms.context'],
  features: { clientCredentials: { enabled: true }, devInteractions: { enabled: false } },
  jwks: { keys: [{ ...key, use: 'sig', kid: 'bench' }] },
  cookies: { keys: ['bench-cookie-key-0123456789abcdef'] },
  routes: { token: '/oauth/token' }, // the bridge's path, so one client drives both
  rotateRefreshToken: true,
  ttl: { AccessToken: 3600, ClientCredentials: 3600, RefreshToken: 30 * 86400, Grant: 30 * 86400 },
  async findAccount(ctx, sub) {
    const { rows } = await lms.query('SELECT id FROM students WHERE id = $1 AND is_active', [Number(sub)]);
    return rows.length ? { accountId: sub, claims: () => ({ sub }) } : undefined;
  },
});

// Seed refresh-token families as an authorization-code flow would leave them (a Grant and one
// refresh token); without openid in scope, so that neither side signs an ID token on refresh.
const client = await provider.Client.find('bench-rp');
const subjects = (process.env.PEER_SUBJECTS || '1').split(',');
const tokens = [];
for (let n = 0; n < Number(process.env.PEER_FAMILIES || 4); n += 1) {
  const accountId = subjects[n % subjects.length];
  const grant = new provider.Grant({ accountId, clientId: client.clientId });
  grant.addOIDCScope('offline_access lms.context');
  const grantId = await grant.save();
  const token = new provider.RefreshToken({
    accountId, client, grantId, gty: 'authorization_code',
    authTime: Math.floor(Date.now() / 1000), scope: 'offline_access lms.context',
  });
  tokens.push(await token.save());
}
provider.listen(port, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ refresh_tokens: tokens })}\n`);
});
