import { randomBytes } from 'node:crypto';
import { StrongroomError, quote } from '../core/errors.js';
import { parseId } from '../core/ids.js';
import { openValue, sealValue } from '../crypto/stream-aead.js';
import type { DataKeyId } from '../core/ids.js';
import type { MetadataStore, MetadataWriter } from '../storage/metadata-store.js';
import { generateNoteKey, parseSignerKey, type NoteSigner } from './signed-note.js';

const ORIGIN_SETTING = 'audit.origin';
const SIGNER_SETTING = 'audit.signer';
const SIGNER_IDENTITY = 'audit-checkpoint-signer';

/** C2SP tlog-checkpoint: the origin is one line without spaces; signed-note key names also exclude `+`. */
export const ORIGIN_PATTERN = /^[\x21-\x2a\x2c-\x7e]{1,200}$/;

/** The part of the keyring the signing key needs (the registry's KeyService provides it). */
export interface DataKeys {
  createDataKey(tx: MetadataWriter): Promise<{ readonly id: DataKeyId; readonly dek: Buffer }>;
  unwrap(id: DataKeyId): Promise<Buffer>;
}

export interface AuditIdentity {
  readonly origin: string;
  readonly signer: NoteSigner;
}

/**
 * The log's origin and checkpoint signing key, created on first start (C2SP signed-note, Ed25519). The private
 * key is stored sealed under a data key of the keyring, so it is encrypted at rest and rewrapped by key
 * rotation like every other secret; only the verifier key ever leaves the server. The origin never changes:
 * checkpoints signed under another origin would not verify against the old ones.
 */
export async function loadAuditIdentity(
  store: MetadataStore,
  keys: DataKeys,
  configuredOrigin: string | undefined,
): Promise<AuditIdentity> {
  const proposed = configuredOrigin ?? `strongroom/audit/${randomBytes(8).toString('hex')}`;
  if (!ORIGIN_PATTERN.test(proposed)) {
    throw new StrongroomError('config_invalid', `audit origin ${quote(proposed)} has spaces or \`+\``);
  }
  await store.transaction(async (tx) => {
    if ((await tx.getSetting(ORIGIN_SETTING)) !== undefined) return;
    await tx.setSetting(ORIGIN_SETTING, proposed);
    const { signerKey } = generateNoteKey(proposed);
    const key = await keys.createDataKey(tx);
    const sealed = sealValue(key.dek, SIGNER_IDENTITY, Buffer.from(signerKey, 'utf8'));
    await tx.setSetting(
      SIGNER_SETTING,
      JSON.stringify({ dataKeyId: key.id, sealed: sealed.toString('base64') }),
    );
  });
  const origin = (await store.getSetting(ORIGIN_SETTING)) as string;
  if (configuredOrigin !== undefined && configuredOrigin !== origin) {
    throw new StrongroomError(
      'config_invalid',
      `the audit log's origin is ${quote(origin)}; it cannot change to ${quote(configuredOrigin)}`,
    );
  }
  const stored = JSON.parse((await store.getSetting(SIGNER_SETTING)) ?? 'null') as {
    dataKeyId: string;
    sealed: string;
  } | null;
  if (stored === null) throw new StrongroomError('key_unavailable', 'the audit signing key is missing');
  const dataKeyId = parseId('datakey', stored.dataKeyId);
  if (dataKeyId === undefined)
    throw new StrongroomError('key_unavailable', 'the audit signing key is corrupt');
  const dek = await keys.unwrap(dataKeyId);
  const signerKey = openValue(dek, SIGNER_IDENTITY, Buffer.from(stored.sealed, 'base64')).toString('utf8');
  return { origin, signer: parseSignerKey(signerKey) };
}
