import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { generateOpenApi } from '../../scripts/generate-openapi.js';

describe('OpenAPI document', () => {
  it('docs/openapi.json is what the route schemas generate (run `npm run openapi` after changing a route)', async () => {
    const committed = readFileSync(new URL('../../docs/openapi.json', import.meta.url), 'utf8');
    expect(await generateOpenApi()).toBe(committed);
  });

  it('describes every authenticated route, and problem+json errors', async () => {
    const doc = JSON.parse(await generateOpenApi()) as {
      openapi: string;
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
    };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/api/v1/projects',
        '/api/v1/projects/{project}/artifacts/{artifact}/versions/{version}/uploads',
        '/api/v1/uploads/{upload}/parts/{part}',
        '/api/v1/keys/rotate',
      ]),
    );
    expect(Object.keys(doc.paths['/api/v1/uploads/{upload}/commit']!.post!.responses)).toEqual(
      expect.arrayContaining(['201', '4XX', '5XX']),
    );
  });
});
