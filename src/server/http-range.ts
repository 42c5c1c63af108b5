import { StrongroomError } from '../core/errors.js';
import type { ByteRange } from '../registry/blob-reader.js';

/**
 * A single `bytes=` range (RFC 9110 section 14.1.2). Several ranges are answered with the whole file, which the
 * RFC allows; anything malformed is refused rather than guessed at.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | null {
  if (header === undefined) return null;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) {
    if (/^bytes=[\d\s,-]+$/.test(header.trim()) && header.includes(',')) return null;
    throw new StrongroomError('invalid_range', 'the Range header must be `bytes=start-end`');
  }
  const [, first = '', last = ''] = match;
  if (first === '' && last === '')
    throw new StrongroomError('invalid_range', 'the Range header must name a start or a length');
  const unsatisfiable = () =>
    new StrongroomError('range_not_satisfiable', `the range lies outside the file of ${size} bytes`, {
      details: { size },
    });
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) throw unsatisfiable();
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (!Number.isSafeInteger(start) || start >= size) throw unsatisfiable();
  if (last !== '' && Number(last) < start)
    throw new StrongroomError('invalid_range', 'the range ends before it starts');
  return { start, end };
}

/** RFC 6266 / RFC 8187: an ASCII fallback with every unsafe character replaced, plus the exact UTF-8 name (C4). */
export function contentDisposition(path: string): string {
  const name = path.split('/').pop() ?? 'file';
  const fallback = name.replace(/[^\x20-\x7e]|["\\;%]/g, '_');
  const encoded = encodeURIComponent(name).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}
