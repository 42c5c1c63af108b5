import type { Command } from 'commander';
import { FileExistsError } from '../client/file-exists-error.js';
import { parseVersionRef } from '../core/names.js';
import type { CliIo } from './cli-io.js';
import { withCommonOptions, wholeNumber } from './common-options.js';
import { connect, type CommonOptions } from './credentials.js';
import { Output } from './output.js';
import { progressBarFor } from './progress-bar.js';
import { printVersionSummary } from './show-command.js';

interface PullCommandOptions extends CommonOptions {
  readonly output: string;
  readonly overwrite?: boolean;
  readonly concurrency?: number;
}

/** `strongroom pull project/artifact:version -o DIR`. */
export function registerPullCommand(program: Command, io: CliIo): void {
  withCommonOptions(program.command('pull'))
    .description('download a version into a directory, verifying every file against its SHA-256')
    .argument('<ref>', 'project/artifact:version')
    .requiredOption('-o, --output <dir>', 'directory to write the files into (created when missing)')
    .option('--overwrite', 'replace files that already exist')
    .option('--concurrency <n>', 'files downloaded at once (default 4)', wholeNumber(1, 64))
    .action(async (refText: string, options: PullCommandOptions) => {
      const ref = parseVersionRef(refText);
      const client = await connect(io, options);
      const out = new Output(io, options.json === true);
      const bar = progressBarFor(io.stderr, out.json, 'pull');
      try {
        const result = await client.pullVersion({
          ...ref,
          outDir: options.output,
          overwrite: options.overwrite === true,
          ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
          ...(bar === undefined
            ? {}
            : { onProgress: (done: number, total: number) => bar.update(done, total) }),
        });
        bar?.finish();
        out.result({ version: result.detail.version, outDir: options.output, files: result.files }, () => {
          printVersionSummary(out, result.detail, 'pulled');
          out.line(`  into      ${options.output} (every file's size and SHA-256 verified)`);
        });
      } catch (err) {
        bar?.clear();
        if (err instanceof FileExistsError) out.note('pass --overwrite to replace existing files');
        throw err;
      }
    });
}
