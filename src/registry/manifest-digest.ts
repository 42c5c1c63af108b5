import { createHash } from 'node:crypto';
import type { ManifestEntry } from '../core/domain.js';
import { compareUtf8 } from './part-plan.js';

/**
 * The identity of a version's content: SHA-256 over the JSON array of `{path, sha256, size}` (keys in that
 * order, files in UTF-8 byte order of path, no white space). Anyone holding the manifest can recompute it.
 */
export function manifestDigest(files: readonly ManifestEntry[]): string {
  const sorted = [...files].sort((a, b) => compareUtf8(a.path, b.path));
  const canonical = JSON.stringify(sorted.map((f) => ({ path: f.path, sha256: f.sha256, size: f.size })));
  return createHash('sha256').update(canonical, 'utf8').digest('hex');
}
