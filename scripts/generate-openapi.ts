/**
 * Writes docs/openapi.json from the route schemas; with `--check`, fails when the committed file differs
 * (STYLE.md practice 9: generated artifacts are checked).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp, createServerContext } from '../src/server/app.js';
import { loadConfig } from '../src/server/config.js';

export async function generateOpenApi(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'strongroom-openapi-'));
  try {
    const config = loadConfig({ env: {}, overrides: { dataDir: dir, logLevel: 'silent' } });
    const ctx = await createServerContext(config, {
      env: { STRONGROOM_MASTER_KEY: randomBytes(32).toString('hex') },
    });
    try {
      const { app } = await buildApp(ctx, { logger: false });
      const doc = `${JSON.stringify(app.swagger(), null, 2)}\n`;
      await app.close();
      return doc;
    } finally {
      await ctx.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const target = new URL('../docs/openapi.json', import.meta.url);
if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop() ?? '')) {
  const doc = await generateOpenApi();
  if (process.argv.includes('--check')) {
    const current = await readFile(target, 'utf8').catch(() => '');
    if (current !== doc) {
      console.error('docs/openapi.json is out of date: run `npm run openapi` and commit the result');
      process.exit(1);
    }
    console.log('docs/openapi.json is up to date');
  } else {
    await writeFile(target, doc);
    console.log('wrote docs/openapi.json');
  }
}
