// A PostgreSQL adapter for panva's oidc-provider, written for bench/oidc_peer.py so that the
// peer's tokens are stored like the bridge's: one durable row per artefact (synchronous
// commit, the server's default), looked up by a SHA-256 digest of the token value (the value
// itself is never stored), consumed and revoked by UPDATE. Interface: oidc-provider's
// example adapter (upsert, find, findByUserCode, findByUid, consume, destroy, revokeByGrantId).
import { createHash } from 'node:crypto';

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS oidc_payloads (
  id_hash     text NOT NULL,
  kind        text NOT NULL,
  payload     jsonb NOT NULL,
  grant_id    text,
  user_code   text,
  uid         text,
  expires_at  timestamptz,
  consumed_at timestamptz,
  PRIMARY KEY (id_hash, kind)
);
CREATE INDEX IF NOT EXISTS oidc_payloads_grant ON oidc_payloads (grant_id);
CREATE INDEX IF NOT EXISTS oidc_payloads_uid ON oidc_payloads (uid);`;

const digest = (value) => createHash('sha256').update(value).digest('hex');

export function adapterFor(pool) {
  return class PostgresAdapter {
    constructor(kind) {
      this.kind = kind;
    }

    async upsert(id, payload, expiresIn) {
      const expires = expiresIn ? new Date(Date.now() + expiresIn * 1000) : null;
      await pool.query(
        `INSERT INTO oidc_payloads (id_hash, kind, payload, grant_id, user_code, uid, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (id_hash, kind) DO UPDATE
            SET payload = EXCLUDED.payload, expires_at = EXCLUDED.expires_at`,
        [digest(id), this.kind, payload, payload.grantId ?? null, payload.userCode ?? null,
          payload.uid ?? null, expires],
      );
    }

    async #one(where, value) {
      const { rows } = await pool.query(
        `SELECT payload, consumed_at FROM oidc_payloads
          WHERE ${where} = $1 AND kind = $2 AND (expires_at IS NULL OR expires_at > now())`,
        [value, this.kind],
      );
      if (rows.length === 0) return undefined;
      const { payload, consumed_at: consumed } = rows[0];
      return consumed ? { ...payload, consumed: Math.floor(consumed.getTime() / 1000) } : payload;
    }

    find(id) { return this.#one('id_hash', digest(id)); }

    findByUserCode(userCode) { return this.#one('user_code', userCode); }

    findByUid(uid) { return this.#one('uid', uid); }

    async consume(id) {
      await pool.query(
        'UPDATE oidc_payloads SET consumed_at = now() WHERE id_hash = $1 AND kind = $2',
        [digest(id), this.kind],
      );
    }

    async destroy(id) {
      await pool.query('DELETE FROM oidc_payloads WHERE id_hash = $1 AND kind = $2',
        [digest(id), this.kind]);
    }

    async revokeByGrantId(grantId) {
      await pool.query('DELETE FROM oidc_payloads WHERE grant_id = $1', [grantId]);
    }
  };
}
