import type { Command } from 'commander';
import type { ArtifactView, VersionView } from '../api/schemas.js';
import { parseArtifactRef, parseProjectName } from '../core/names.js';
import type { CliIo } from './cli-io.js';
import { withCommonOptions } from './common-options.js';
import { connect, type CommonOptions } from './credentials.js';
import { Output, formatBytes, shortDigest } from './output.js';

/** `strongroom ls PROJECT` (artifacts) and `strongroom ls PROJECT/ARTIFACT` (versions), following every cursor. */
export function registerLsCommand(program: Command, io: CliIo): void {
  withCommonOptions(program.command('ls'))
    .description('list the artifacts of a project, or the versions of an artifact')
    .argument('<target>', 'PROJECT or PROJECT/ARTIFACT')
    .action(async (target: string, options: CommonOptions) => {
      const out = new Output(io, options.json === true);
      if (target.includes('/')) {
        const ref = parseArtifactRef(target);
        const client = await connect(io, options);
        const versions: VersionView[] = [];
        for await (const item of client.iterateVersions(ref)) versions.push(item);
        out.result(versions, () =>
          out.table(
            ['VERSION', 'FILES', 'SIZE', 'CREATED', 'BY', 'DIGEST'],
            versions.map((v) => [
              v.version,
              String(v.fileCount),
              formatBytes(v.totalSize),
              v.createdAt,
              v.createdBy,
              shortDigest(v.manifestDigest),
            ]),
            'no versions',
          ),
        );
        return;
      }
      const project = parseProjectName(target);
      const client = await connect(io, options);
      const artifacts: ArtifactView[] = [];
      for await (const item of client.iterateArtifacts(project)) artifacts.push(item);
      out.result(artifacts, () =>
        out.table(
          ['ARTIFACT', 'KIND', 'SENSITIVITY', 'UPDATED', 'TAGS'],
          artifacts.map((a) => [a.name, a.kind, a.sensitivity, a.updatedAt, a.tags.join(',')]),
          'no artifacts',
        ),
      );
    });
}
