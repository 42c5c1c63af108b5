import type { Command } from 'commander';
import type { CliIo } from './cli-io.js';
import { withCommonOptions } from './common-options.js';
import { connect, type CommonOptions } from './credentials.js';
import { Output } from './output.js';

/** `strongroom keys ls|rotate`. */
export function registerKeysCommands(program: Command, io: CliIo): void {
  const keys = program.command('keys').description('key-encryption key versions');

  withCommonOptions(keys.command('ls'))
    .description('list key-encryption key versions')
    .action(async (options: CommonOptions) => {
      const client = await connect(io, options);
      const view = await client.listKeys();
      const out = new Output(io, options.json === true);
      out.result(view, () =>
        out.table(
          ['VERSION', 'STATE', 'CREATED', 'DATA KEYS'],
          view.versions.map((k) => [
            `${k.version}${k.version === view.current ? ' *' : ''}`,
            k.state,
            k.createdAt,
            String(k.dataKeys),
          ]),
        ),
      );
    });

  withCommonOptions(keys.command('rotate'))
    .description('create a new key-encryption key version and rewrap every data key with it')
    .action(async (options: CommonOptions) => {
      const client = await connect(io, options);
      const result = await client.rotateKeys();
      const out = new Output(io, options.json === true);
      out.result(result, () => {
        out.line(
          `key-encryption key version ${result.kekVersion} is current; ${result.rewrapped} data keys rewrapped`,
        );
        if (result.destroyedVersions.length > 0)
          out.line(`destroyed versions: ${result.destroyedVersions.join(', ')}`);
      });
    });
}
