import type { Command } from 'commander';
import { StrongroomClient } from '../client/strongroom-client.js';
import { envValue, type CliIo } from './cli-io.js';
import { withCommonOptions } from './common-options.js';
import { configFilePath, readConfigFile, writeConfigFile } from './config-file.js';
import { DEFAULT_URL, connect, type CommonOptions } from './credentials.js';
import { Output } from './output.js';
import { readToken } from './read-token.js';

interface LoginOptions extends CommonOptions {
  readonly tokenStdin?: boolean;
}

/** `strongroom login` and `strongroom whoami`. */
export function registerLoginCommands(program: Command, io: CliIo): void {
  withCommonOptions(program.command('login'))
    .description('verify a token against the server and save it to the config file (mode 0600)')
    .option('--token-stdin', 'read the token from stdin instead of prompting')
    .action(async (options: LoginOptions) => {
      const file = configFilePath(io);
      const url =
        options.url ??
        envValue(io, 'STRONGROOM_URL') ??
        (await readConfigFile(file).catch(() => undefined))?.url ??
        DEFAULT_URL;
      const token = options.token ?? (await readToken(io, options.tokenStdin === true));
      const client = new StrongroomClient({ url, token });
      // Verify before saving: a mistyped token never replaces a working one.
      const me = await client.whoami();
      await writeConfigFile(file, { url: client.url, token });
      const out = new Output(io, options.json === true);
      out.result(
        { url: client.url, principal: me.principal, authMethod: me.authMethod, configFile: file },
        () => out.line(`logged in to ${client.url} as ${me.principal}; credentials saved to ${file}`),
      );
    });

  withCommonOptions(program.command('whoami'))
    .description('show who the server thinks you are')
    .action(async (options: CommonOptions) => {
      const client = await connect(io, options);
      const me = await client.whoami();
      const out = new Output(io, options.json === true);
      out.result({ url: client.url, ...me }, () =>
        out.line(`${me.principal} (${me.authMethod}) at ${client.url}`),
      );
    });
}
