import { checkUnchangedSize, openLocalFile, readRange, type LocalFile } from './local-source.js';

/**
 * The bytes of one upload part from `offset` on: the part's files back to back, straight from disk. `offset`
 * is the server's durable `received` and may fall inside a file. Each file is checked against what was hashed
 * before its bytes are read and again before its last chunk is released, so a file that changed size fails
 * the request instead of completing a part with the wrong bytes.
 */
export async function* partBody(
  files: readonly LocalFile[],
  offset: number,
  onBytes: (count: number) => void,
): AsyncGenerator<Buffer> {
  let skip = offset;
  for (const file of files) {
    if (skip > 0 && skip >= file.size) {
      skip -= file.size;
      continue;
    }
    const start = skip;
    skip = 0;
    const { handle } = await openLocalFile(file.path, file.absolutePath, file);
    try {
      let pending: Buffer | undefined;
      for await (const chunk of readRange(handle, file.path, file.size, start)) {
        if (pending !== undefined) {
          onBytes(pending.length);
          yield pending;
        }
        pending = chunk;
      }
      checkUnchangedSize(file.path, file.size, (await handle.stat()).size);
      if (pending !== undefined) {
        onBytes(pending.length);
        yield pending;
      }
    } finally {
      await handle.close();
    }
  }
}
