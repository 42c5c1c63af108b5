/** Starts a real server process for crash tests: `node --import tsx test/support/run-server.ts`. */
import { startServer } from '../../src/server/main.js';

const server = await startServer({
  dataDir: process.env.STRONGROOM_DATA,
  host: '127.0.0.1',
  port: 0,
  configFile: process.env.STRONGROOM_CONFIG_FILE,
});
process.stdout.write(`READY ${server.url}\n`);
