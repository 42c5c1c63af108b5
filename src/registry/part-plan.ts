/** A file at or above this size travels in a part of its own. */
export const LARGE_FILE_BYTES = 8 * 1024 * 1024;
/** Small files are packed back to back into parts of at most this size. */
export const PACK_BYTES = 64 * 1024 * 1024;

export interface PlannedPart {
  readonly size: number;
  /** Indexes into the (sorted) files, in the order their bytes follow each other. */
  readonly files: readonly number[];
  /** Offset of each listed file within the part's plaintext. */
  readonly offsets: readonly number[];
}

/**
 * Byte order of the UTF-8 encoding: the order the server stores paths in and the order parts list files.
 * (JavaScript's `<` compares UTF-16 code units, which disagrees for characters beyond the BMP.)
 */
export function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * Splits a version's files into resumable parts. Packing small files keeps a directory of a thousand files
 * to one durable write (one fsync, one data key) instead of a thousand.
 */
export function planParts(files: readonly { readonly size: number }[]): PlannedPart[] {
  const parts: PlannedPart[] = [];
  let pack: { files: number[]; offsets: number[]; size: number } | undefined;
  const flush = () => {
    if (pack) parts.push(pack);
    pack = undefined;
  };
  files.forEach((file, index) => {
    if (file.size >= LARGE_FILE_BYTES) {
      flush();
      parts.push({ size: file.size, files: [index], offsets: [0] });
      return;
    }
    if (pack && pack.size + file.size > PACK_BYTES) flush();
    pack ??= { files: [], offsets: [], size: 0 };
    pack.files.push(index);
    pack.offsets.push(pack.size);
    pack.size += file.size;
  });
  flush();
  return parts;
}
