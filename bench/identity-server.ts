/**
 * The server half of `bench/identity.ts`: one server context, two listeners. The first authenticates every
 * request as usual; the second answers the same routes with authentication replaced by a fixed principal,
 * so the difference between the two is what authentication costs. Prints `READY <authenticated> <open>`.
 */
import { buildApp, createServerContext } from '../src/server/app.js';
import { loadConfig } from '../src/server/config.js';
import type { Authenticator } from '../src/server/authenticator.js';

const dataDir = process.argv[2];
if (!dataDir) throw new Error('usage: identity-server.ts DATA_DIR');
const config = loadConfig({ env: {}, overrides: { dataDir, port: 0, logLevel: 'warn' } });
const ctx = await createServerContext(config);
const authenticated = await buildApp(ctx, { logger: false });
const fixed: Authenticator = {
  authenticate: () =>
    Promise.resolve({ id: 'bootstrap-admin', kind: 'user', authMethod: 'bootstrap-token', name: 'bench' }),
};
const open = await buildApp({ ...ctx, authenticator: fixed }, { logger: false });
const a = await authenticated.app.listen({ host: '127.0.0.1', port: 0 });
const b = await open.app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`READY ${a} ${b}\n`);
