import type { Command } from 'commander';
import type { CliIo } from './cli-io.js';
import { withCommonOptions, wholeNumber } from './common-options.js';
import { Output } from './output.js';

interface ServeOptions {
  readonly json?: boolean;
  readonly data?: string;
  readonly host?: string;
  readonly port?: number;
  readonly config?: string;
}

/** `strongroom serve`: the only place the CLI touches the server, loaded on demand so the client stays light. */
export function registerServeCommand(program: Command, io: CliIo): void {
  withCommonOptions(program.command('serve'))
    .description('run the Strongroom server')
    .option('--data <dir>', 'data directory (metadata, encrypted blobs, keys)')
    .option('--host <host>', 'address to bind; anything but loopback needs TLS')
    .option('--port <port>', 'port to listen on', wholeNumber(0, 65535))
    .option('--config <file>', 'configuration file')
    .action(async (options: ServeOptions) => {
      const { startServer } = await import('../server/main.js');
      const server = await startServer({
        dataDir: options.data,
        host: options.host,
        port: options.port,
        configFile: options.config,
      });
      const out = new Output(io, options.json === true);
      out.result({ url: server.url }, () => out.note(`strongroom is serving at ${server.url}`));
    });
}
