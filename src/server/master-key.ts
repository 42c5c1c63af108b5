import { randomBytes } from 'node:crypto';
import { constants, existsSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { StrongroomError } from '../core/errors.js';
import { parseMasterKey } from '../crypto/keyring.js';

export interface MasterKeySource {
  readonly key: Buffer;
  /** Where it came from, for the start-up log line (never the key itself). */
  readonly origin: string;
  readonly created: boolean;
}

/**
 * The master key comes from `STRONGROOM_MASTER_KEY` or a file readable by the owner only. A new key file is
 * created only for a brand-new data directory: generating one for existing data would lock that data away.
 */
export async function loadMasterKey(opts: {
  readonly env: NodeJS.ProcessEnv;
  readonly file: string;
  readonly newDataDirectory: boolean;
}): Promise<MasterKeySource> {
  const fromEnv = opts.env.STRONGROOM_MASTER_KEY;
  if (fromEnv !== undefined && fromEnv !== '') {
    return { key: parseMasterKey(fromEnv), origin: 'STRONGROOM_MASTER_KEY', created: false };
  }
  if (existsSync(opts.file)) {
    const info = await stat(opts.file);
    if ((info.mode & 0o077) !== 0) {
      throw new StrongroomError(
        'master_key_invalid',
        `master key file ${opts.file} is readable by others (mode ${(info.mode & 0o777).toString(8)}); run chmod 600 on it`,
      );
    }
    const handle = await open(opts.file, constants.O_RDONLY);
    try {
      return { key: parseMasterKey(await handle.readFile('utf8')), origin: opts.file, created: false };
    } finally {
      await handle.close();
    }
  }
  if (!opts.newDataDirectory) {
    throw new StrongroomError(
      'master_key_invalid',
      `master key file ${opts.file} is missing and the data directory already holds data; restore the key or set STRONGROOM_MASTER_KEY`,
    );
  }
  const key = randomBytes(32);
  const handle = await open(opts.file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    await handle.writeFile(`${key.toString('hex')}\n`);
    await handle.datasync();
  } finally {
    await handle.close();
  }
  return { key, origin: opts.file, created: true };
}
