import { constants } from 'node:fs';
import { lstat, mkdir, open, readdir, rename, unlink, type FileHandle } from 'node:fs/promises';

/**
 * The few file system operations the blob store needs, behind one interface so a test can make the k-th
 * operation fail with EIO or ENOSPC and check that nothing is acknowledged that is not durable (N1, N6).
 */
export interface FsOps {
  open(path: string, mode: OpenMode, permissions: number): Promise<FsFileHandle>;
  rename(from: string, to: string): Promise<void>;
  /** Rejects with ENOENT when there is nothing to remove. */
  unlink(path: string): Promise<void>;
  /** Creates one directory; resolves false (changing nothing) when it already exists. */
  mkdir(path: string, permissions: number): Promise<boolean>;
  readdir(path: string): Promise<readonly FsEntry[]>;
  /** Does not follow a symbolic link. */
  stat(path: string): Promise<FsStat>;
  /** fsync of a directory: makes the entries created, renamed or removed in it durable. */
  syncDir(path: string): Promise<void>;
}

/**
 * `read`: an existing file. `append`: an existing file, every write at its end. `create`: like `append`,
 * creating the file when missing. `createExclusive`: a new file that must not exist yet.
 */
export type OpenMode = 'read' | 'append' | 'create' | 'createExclusive';

export interface FsFileHandle {
  /** Writes every byte of `data` (one buffer, or several in order with one vectored write) at the end of the file. */
  write(data: Buffer | readonly Buffer[]): Promise<void>;
  /** Reads into `buffer` from `position`; resolves to the number of bytes read, 0 at the end of the file. */
  read(buffer: Buffer, position: number): Promise<number>;
  datasync(): Promise<void>;
  truncate(length: number): Promise<void>;
  size(): Promise<number>;
  close(): Promise<void>;
}

export interface FsEntry {
  readonly name: string;
  readonly isDirectory: boolean;
}

export interface FsStat {
  readonly size: number;
  readonly modifiedAt: Date;
  readonly isFile: boolean;
}

// O_NOFOLLOW: a symbolic link planted in the data directory is refused instead of followed elsewhere.
const NOFOLLOW = constants.O_NOFOLLOW ?? 0;
const FLAGS: Readonly<Record<OpenMode, number>> = {
  read: constants.O_RDONLY | NOFOLLOW,
  append: constants.O_WRONLY | constants.O_APPEND | NOFOLLOW,
  create: constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | NOFOLLOW,
  createExclusive: constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | NOFOLLOW,
};

/** FsOps over node:fs/promises. */
export const nodeFsOps: FsOps = {
  async open(path, mode, permissions) {
    return wrapHandle(await open(path, FLAGS[mode], permissions));
  },
  rename,
  unlink,
  async mkdir(path, permissions) {
    try {
      await mkdir(path, { mode: permissions });
      return true;
    } catch (err) {
      if (err instanceof Error && 'code' in err && err.code === 'EEXIST') return false;
      throw err;
    }
  },
  async readdir(path) {
    const entries = await readdir(path, { withFileTypes: true });
    return entries.map((e) => ({ name: e.name, isDirectory: e.isDirectory() }));
  },
  async stat(path) {
    const s = await lstat(path);
    return { size: s.size, modifiedAt: s.mtime, isFile: s.isFile() };
  },
  async syncDir(path) {
    const handle = await open(path, constants.O_RDONLY | (constants.O_DIRECTORY ?? 0));
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
};

function wrapHandle(handle: FileHandle): FsFileHandle {
  return {
    async write(data) {
      // A write may be partial (a full disk, a signal); the rest must follow, or the caller is told.
      const pending: Buffer[] = Buffer.isBuffer(data) ? [data] : [...data];
      while (pending.length > 0) {
        let written =
          pending.length === 1
            ? (await handle.write(pending[0] as Buffer, 0, (pending[0] as Buffer).length, null)).bytesWritten
            : (await handle.writev(pending)).bytesWritten;
        while (pending.length > 0 && written >= (pending[0] as Buffer).length) {
          written -= (pending[0] as Buffer).length;
          pending.shift();
        }
        if (written > 0 && pending.length > 0) pending[0] = (pending[0] as Buffer).subarray(written);
      }
    },
    async read(buffer, position) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
      return bytesRead;
    },
    datasync: () => handle.datasync(),
    truncate: (length) => handle.truncate(length),
    size: async () => (await handle.stat()).size,
    close: () => handle.close(),
  };
}
