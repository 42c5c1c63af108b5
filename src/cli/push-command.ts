import { Option, type Command } from 'commander';
import { ConnectionError } from '../client/connection-error.js';
import { ARTIFACT_KINDS, SENSITIVITIES, type ArtifactKind, type Sensitivity } from '../core/domain.js';
import { quote } from '../core/errors.js';
import { parseVersionRef } from '../core/names.js';
import type { CliIo } from './cli-io.js';
import { withCommonOptions, wholeNumber } from './common-options.js';
import { connect, type CommonOptions } from './credentials.js';
import { Output } from './output.js';
import { progressBarFor } from './progress-bar.js';
import { readTextFile } from './read-input.js';
import { printVersionSummary } from './show-command.js';
import { UsageError } from './usage-error.js';

interface PushCommandOptions extends CommonOptions {
  readonly kind?: ArtifactKind;
  readonly sensitivity?: Sensitivity;
  readonly description?: string;
  readonly tag?: string[];
  readonly metadata?: string;
  readonly resume?: string;
  readonly retries?: number;
}

const MAX_METADATA_FILE_BYTES = 16 * 1024 * 1024;

/** Read `--metadata FILE.json`: it must parse as a JSON object, checked before any request is made. */
export async function readMetadataFile(file: string): Promise<Record<string, unknown>> {
  const text = await readTextFile(file, 'metadata file', MAX_METADATA_FILE_BYTES);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new UsageError(`metadata file ${quote(file)} is not valid JSON`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new UsageError(`metadata file ${quote(file)} must contain a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** `strongroom push project/artifact:version PATH`. */
export function registerPushCommand(program: Command, io: CliIo): void {
  withCommonOptions(program.command('push'))
    .description('upload a file or directory as a new immutable version')
    .argument('<ref>', 'project/artifact:version')
    .argument('<path>', 'a file (pushed under its base name) or a directory (symbolic links are refused)')
    .addOption(new Option('--kind <kind>', 'artifact kind, when the artifact is new').choices(ARTIFACT_KINDS))
    .addOption(
      new Option('--sensitivity <label>', 'sensitivity label, when the artifact is new').choices(
        SENSITIVITIES,
      ),
    )
    .option('--description <text>', 'artifact description')
    .option('--tag <tag>', 'artifact tag (repeat for more)', collect)
    .option('--metadata <file>', 'JSON file with an object of version metadata')
    .option('--resume <upload-id>', 'continue an upload session kept after a connection failure')
    .option('--retries <n>', 'failures in a row survived by resuming (default 5)', wholeNumber(0, 100))
    .action(async (refText: string, source: string, options: PushCommandOptions) => {
      const ref = parseVersionRef(refText);
      const metadata = options.metadata === undefined ? undefined : await readMetadataFile(options.metadata);
      const client = await connect(io, options);
      const out = new Output(io, options.json === true);
      const bar = progressBarFor(io.stderr, out.json, 'push');
      try {
        const detail = await client.pushVersion({
          ...ref,
          source,
          ...(options.kind === undefined ? {} : { kind: options.kind }),
          ...(options.sensitivity === undefined ? {} : { sensitivity: options.sensitivity }),
          ...(options.description === undefined ? {} : { description: options.description }),
          ...(options.tag === undefined ? {} : { tags: options.tag }),
          ...(metadata === undefined ? {} : { metadata }),
          ...(options.resume === undefined ? {} : { resumeUploadId: options.resume }),
          ...(options.retries === undefined ? {} : { maxRetries: options.retries }),
          ...(bar === undefined
            ? {}
            : { onProgress: (sent: number, total: number) => bar.update(sent, total) }),
        });
        bar?.finish();
        out.result(detail, () => printVersionSummary(out, detail, 'pushed'));
      } catch (err) {
        bar?.clear();
        if (err instanceof ConnectionError && err.uploadId !== undefined) {
          out.note(
            `the upload session is kept; resume with: strongroom push ${refText} ${source} --resume ${err.uploadId}`,
          );
        }
        throw err;
      }
    });
}
