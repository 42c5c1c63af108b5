import { processIo } from './cli-io.js';
import { runCli } from './run-cli.js';

// Set the exit code instead of calling process.exit(): `serve` keeps running after its command resolves, and
// pending stdout writes to a pipe are flushed before the process ends.
process.exitCode = await runCli(process.argv.slice(2), processIo());
