import { constants } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { randomToken, sha256Hex } from '../crypto/digest.js';
import type { MetadataStore } from '../storage/metadata-store.js';

import { BOOTSTRAP_TOKEN_SETTING } from '../identity/identity-authenticator.js';

export { BOOTSTRAP_TOKEN_SETTING };
export const TOKEN_PREFIX = 'srt_';

/**
 * On the first start of a data directory: a random admin token, stored only as its SHA-256 (A6), written once
 * to a 0600 file for the operator and returned so the caller can print it once. Later starts return undefined.
 */
export async function ensureBootstrapToken(
  store: MetadataStore,
  tokenFile: string,
): Promise<string | undefined> {
  const token = randomToken(TOKEN_PREFIX);
  const created = await store.transaction((tx) =>
    tx.insertSettingIfAbsent(BOOTSTRAP_TOKEN_SETTING, sha256Hex(token)),
  );
  if (!created) return undefined;
  await rm(tokenFile, { force: true });
  const handle = await open(tokenFile, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    await handle.writeFile(`${token}\n`);
    await handle.datasync();
  } finally {
    await handle.close();
  }
  return token;
}
