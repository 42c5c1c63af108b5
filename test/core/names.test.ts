import { posix, win32 } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isStrongroomError } from '../../src/core/errors.js';
import {
  checkManifestPaths,
  parseArtifactName,
  parseFilePath,
  parseProjectName,
  parseVersionRef,
  parseVersionTag,
} from '../../src/core/names.js';

const rejects = (fn: () => unknown, code: string) => {
  try {
    fn();
  } catch (err) {
    expect(isStrongroomError(err)).toBe(true);
    expect((err as { code: string }).code).toBe(code);
    return;
  }
  throw new Error('expected a rejection');
};

describe('file paths (C1)', () => {
  const hostile = [
    '../etc/passwd',
    'a/../../b',
    '..\\windows\\system32',
    'a\\b',
    '%2e%2e%2fetc',
    '%252e%252e%252f',
    'a/%2F/b',
    '\u0000',
    'a\u0000b',
    '/etc/passwd',
    '//proc/self/root',
    'C:\\boot.ini',
    'C:/x',
    'file://x',
    'CON',
    'nul.txt',
    'dir/COM1.json',
    'lpt9',
    'a/./b',
    '.',
    '..',
    'a//b',
    'a/',
    'trailing.',
    'trailing ',
    'caf\u0065\u0301', // not NFC
    'a\ufffdb', // what an overlong UTF-8 sequence decodes to
    'evil\u202etxt.exe',
    'line\nbreak',
    'carriage\rreturn',
    '\ud800',
    'x'.repeat(256),
    `${'a/'.repeat(600)}b`,
    '',
  ];
  for (const input of hostile) {
    it(`refuses ${JSON.stringify(input).slice(0, 40)}`, () =>
      rejects(() => parseFilePath(input), 'invalid_path'));
  }

  it('accepts ordinary model files', () => {
    for (const p of [
      'config.json',
      'weights/model-00001-of-00002.safetensors',
      'tokenizer/vocab.txt',
      'données/été.csv',
      '.gitattributes',
      'a b/c;d\'e"f.txt'.replace('"', ''),
    ]) {
      expect(parseFilePath(p)).toBe(p);
    }
  });

  it('no accepted path resolves outside the root, on POSIX or Windows (property test)', () => {
    const alphabet = ['a', '.', '/', '\\', '%', '2', 'e', 'f', ':', 'C', '\u0000', ' ', '..', '~', 'é'];
    let seed = 42;
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed;
    };
    let accepted = 0;
    for (let i = 0; i < 20_000; i++) {
      const length = 1 + (next() % 12);
      let candidate = '';
      for (let j = 0; j < length; j++) candidate += alphabet[next() % alphabet.length];
      let ok = false;
      try {
        parseFilePath(candidate);
        ok = true;
      } catch {
        ok = false;
      }
      if (!ok) continue;
      accepted++;
      const posixResolved = posix.resolve('/root/data', candidate);
      expect(posixResolved.startsWith('/root/data/')).toBe(true);
      const winResolved = win32.resolve('D:\\root\\data', candidate);
      expect(winResolved.startsWith('D:\\root\\data\\')).toBe(true);
    }
    expect(accepted).toBeGreaterThan(100);
  });

  it('refuses two paths that collide on a case-insensitive client', () => {
    rejects(() => checkManifestPaths(['Model.bin', 'model.bin']), 'invalid_path');
  });

  it('refuses a file that is also a directory of another file', () => {
    rejects(() => checkManifestPaths(['a', 'a/b']), 'invalid_path');
  });
});

describe('names', () => {
  it('accepts and refuses project names', () => {
    expect(parseProjectName('vision')).toBe('vision');
    for (const bad of ['Vision', '-a', 'a-', 'a_b', '', 'a'.repeat(64), '..', 'a/b'])
      rejects(() => parseProjectName(bad), 'invalid_name');
  });

  it('accepts and refuses artifact names', () => {
    expect(parseArtifactName('resnet-50.v2')).toBe('resnet-50.v2');
    for (const bad of ['..', 'a..b', '.a', 'A', 'a/b', ''])
      rejects(() => parseArtifactName(bad), 'invalid_name');
  });

  it('accepts and refuses version tags', () => {
    expect(parseVersionTag('1.0.0+cuda12')).toBe('1.0.0+cuda12');
    for (const bad of ['1..0', '/1', '-1', '', 'v 1']) rejects(() => parseVersionTag(bad), 'invalid_name');
  });

  it('parses project/artifact:version references', () => {
    expect(parseVersionRef('vision/resnet:1.0.0')).toEqual({
      project: 'vision',
      artifact: 'resnet',
      version: '1.0.0',
    });
    rejects(() => parseVersionRef('vision/resnet'), 'invalid_name');
    rejects(() => parseVersionRef('../x/y:1'), 'invalid_name');
  });

  it('error messages quote input safely', () => {
    try {
      parseFilePath('bad\nline`');
    } catch (err) {
      expect((err as Error).message).not.toContain('\n');
      expect((err as Error).message).toContain('\\u000a');
    }
  });
});
