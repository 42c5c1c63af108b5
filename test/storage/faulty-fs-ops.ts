import type { FsFileHandle, FsOps } from '../../src/storage/fs/fs-ops.js';

export type InjectedErrno = 'EIO' | 'ENOSPC';

export interface FaultyFsOps extends FsOps {
  /** Mutating operations attempted so far, the failed one included. */
  readonly operations: number;
  /** Each mutating operation in order, such as `open(create)` or `syncDir`, for assertion messages. */
  readonly log: readonly string[];
}

const ERRNO: Readonly<Record<InjectedErrno, number>> = { EIO: -5, ENOSPC: -28 };

/**
 * Wraps `base` so that the `failAt`-th mutating operation (1-based: open for writing, write, datasync,
 * truncate, rename, unlink, mkdir, syncDir) rejects with an errno-style error, as a failing disk would.
 * Only that one operation fails; later ones reach `base`. Reads are never counted.
 */
export function faultyFsOps(base: FsOps, failAt: number, code: InjectedErrno): FaultyFsOps {
  const log: string[] = [];
  const step = async <T>(name: string, path: string, op: () => Promise<T>): Promise<T> => {
    log.push(name);
    if (log.length === failAt) {
      throw Object.assign(new Error(`${code}: injected fault, ${name} '${path}'`), {
        code,
        errno: ERRNO[code],
        syscall: name,
        path,
      });
    }
    return op();
  };
  const wrapHandle = (handle: FsFileHandle, path: string): FsFileHandle => ({
    write: (data) => step('write', path, () => handle.write(data)),
    read: (buffer, position) => handle.read(buffer, position),
    datasync: () => step('datasync', path, () => handle.datasync()),
    truncate: (length) => step('truncate', path, () => handle.truncate(length)),
    size: () => handle.size(),
    close: () => handle.close(),
  });
  return {
    get operations() {
      return log.length;
    },
    log,
    async open(path, mode, permissions) {
      if (mode === 'read') return base.open(path, mode, permissions);
      return wrapHandle(await step(`open(${mode})`, path, () => base.open(path, mode, permissions)), path);
    },
    rename: (from, to) => step('rename', to, () => base.rename(from, to)),
    unlink: (path) => step('unlink', path, () => base.unlink(path)),
    mkdir: (path, permissions) => step('mkdir', path, () => base.mkdir(path, permissions)),
    readdir: (path) => base.readdir(path),
    stat: (path) => base.stat(path),
    syncDir: (path) => step('syncDir', path, () => base.syncDir(path)),
  };
}
