import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, type ErrorCode } from '../../src/core/errors.js';
import { HTTP_STATUS } from '../../src/server/error-mapper.js';

describe('docs/errors.md', () => {
  const rows = new Map<string, { status: number; meaning: string }>();
  for (const line of readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8').split('\n')) {
    const match = /^\|\s*`([a-z_]+)`\s*\|\s*(\d{3})\s*\|\s*(.+?)\s*\|$/.exec(line);
    if (match) rows.set(match[1]!, { status: Number(match[2]), meaning: match[3]! });
  }

  it('lists every error code with its HTTP status and meaning, and nothing else', () => {
    expect([...rows.keys()].sort()).toEqual(Object.keys(ERROR_CODES).sort());
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
      expect(rows.get(code)).toEqual({ status: HTTP_STATUS[code], meaning: ERROR_CODES[code] });
    }
  });
});
