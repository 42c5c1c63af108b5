import type { Command } from 'commander';
import type { VersionDetail } from '../api/schemas.js';
import { parseVersionRef } from '../core/names.js';
import type { CliIo } from './cli-io.js';
import { withCommonOptions } from './common-options.js';
import { connect, type CommonOptions } from './credentials.js';
import { Output, formatBytes, formatDigest } from './output.js';

/** The few lines that identify a version: shared by `show`, `push` and `pull`. */
export function printVersionSummary(out: Output, detail: VersionDetail, verb?: string): void {
  const v = detail.version;
  const name = `${v.project}/${v.artifact}:${v.version}`;
  out.line(verb === undefined ? `${name}  ${v.state}` : `${verb} ${name}`);
  out.line(`  files     ${v.fileCount} (${formatBytes(v.totalSize)})`);
  out.line(`  digest    ${formatDigest(v.manifestDigest)}`);
}

/** `strongroom show project/artifact:version`. */
export function registerShowCommand(program: Command, io: CliIo): void {
  withCommonOptions(program.command('show'))
    .description('show a version: summary, files with their SHA-256, metadata')
    .argument('<ref>', 'project/artifact:version')
    .action(async (refText: string, options: CommonOptions) => {
      const ref = parseVersionRef(refText);
      const client = await connect(io, options);
      const detail = await client.getVersion(ref);
      const out = new Output(io, options.json === true);
      out.result(detail, () => {
        const { version: v, artifact: a } = detail;
        printVersionSummary(out, detail);
        out.line(
          `  artifact  ${a.kind}, ${a.sensitivity}${a.tags.length > 0 ? `, tags ${a.tags.join(',')}` : ''}`,
        );
        out.line(`  created   ${v.createdAt} by ${v.createdBy}`);
        if (v.committedAt !== null) out.line(`  committed ${v.committedAt}`);
        out.line();
        out.table(
          ['PATH', 'SIZE', 'SHA-256'],
          detail.files.map((f) => [f.path, formatBytes(f.size), f.sha256]),
        );
        if (detail.metadata !== null) {
          out.line();
          out.line('metadata:');
          for (const line of JSON.stringify(detail.metadata, null, 2).split('\n')) out.line(`  ${line}`);
        }
      });
    });
}
