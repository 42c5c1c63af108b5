import { lstat } from 'node:fs/promises';
import * as path from 'node:path';
import { StrongroomError, quote } from '../core/errors.js';
import { parseFilePath } from '../core/names.js';

function outside(filePath: string): StrongroomError {
  return new StrongroomError(
    'invalid_path',
    `file path ${quote(filePath)} resolves outside the output directory`,
  );
}

/** True when `candidate` is `root` itself or lies below it. Both must be absolute and normalized. */
export function isInside(root: string, candidate: string): boolean {
  const relative = path.relative(root, candidate);
  return (
    relative === '' ||
    (relative !== '..' && !relative.startsWith(`..${path.sep}`) && !path.isAbsolute(relative))
  );
}

/**
 * Where a manifest path lands under `root` (an absolute, real directory). The path is joined only after the
 * one validator accepted it (C1), the result must stay strictly inside `root`, and every directory on the way
 * that already exists must be a real directory, not a link planted to redirect the write elsewhere.
 */
export async function resolveOutputPath(root: string, filePath: string): Promise<string> {
  const segments = parseFilePath(filePath).split('/');
  const target = path.resolve(root, ...segments);
  if (target === root || !isInside(root, target)) throw outside(filePath);
  let current = root;
  for (const segment of segments.slice(0, -1)) {
    current = path.join(current, segment);
    const stats = await lstat(current).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    });
    if (stats === undefined) break;
    if (!stats.isDirectory()) {
      const shown = path.relative(root, current).split(path.sep).join('/');
      throw new StrongroomError(
        'invalid_path',
        `${quote(shown)} in the output directory is ${stats.isSymbolicLink() ? 'a symbolic link' : 'not a directory'}; refusing to write through it`,
      );
    }
  }
  return target;
}
