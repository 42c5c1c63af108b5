import { buildApp, createServerContext } from './app.js';
import { loadConfig } from './config.js';

export interface StartOptions {
  readonly dataDir?: string | undefined;
  readonly host?: string | undefined;
  readonly port?: number | undefined;
  readonly configFile?: string | undefined;
}

/**
 * `strongroom serve`: validate the configuration, open storage, recover, listen. The first start of a data
 * directory prints the bootstrap admin token once (it is also in `<data>/admin.token`, mode 0600).
 */
export async function startServer(opts: StartOptions = {}): Promise<{ url: string; close(): Promise<void> }> {
  const config = loadConfig({
    file: opts.configFile,
    overrides: { dataDir: opts.dataDir, host: opts.host, port: opts.port },
  });
  const ctx = await createServerContext(config);
  const { app } = await buildApp(ctx);
  const gc = setInterval(() => {
    ctx.registry
      .collectGarbage()
      .catch((err: unknown) => app.log.error({ err }, 'garbage collection failed'));
  }, config.uploads.gcIntervalSeconds * 1000);
  gc.unref();

  const address = await app.listen({ host: config.host, port: config.port });
  app.log.info(
    { dataDir: config.dataDir, kekVersion: ctx.keys.currentVersion, masterKey: ctx.masterKey.origin },
    'strongroom is serving',
  );
  if (ctx.masterKey.created) {
    app.log.warn(
      { masterKeyFile: ctx.masterKey.origin },
      'created a new master key inside the data directory; for production keep it elsewhere (docs/encryption.md)',
    );
  }
  if (ctx.newAdminToken !== undefined) {
    // Printed once, on purpose, outside the log: the operator needs it and it is never shown again.
    process.stdout.write(
      `\nBootstrap admin token (shown once; also saved to ${config.dataDir}/admin.token, mode 0600):\n\n  ${ctx.newAdminToken}\n\n`,
    );
  }

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      clearInterval(gc);
      await app.close();
      await ctx.close();
    })();
    return closing;
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
  }
  return { url: address, close };
}
