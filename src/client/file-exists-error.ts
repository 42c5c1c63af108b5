/**
 * A pull would replace a file that already exists in the output directory. Local, so not a StrongroomError:
 * the server decided nothing. Pass `overwrite: true` to replace files.
 */
export class FileExistsError extends Error {
  readonly code = 'file_exists' as const;
  readonly path: string;

  constructor(path: string, message: string) {
    super(message);
    this.name = 'FileExistsError';
    this.path = path;
  }
}
