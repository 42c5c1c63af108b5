import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/audit/canonical-json.js';

describe('RFC 8785 canonical JSON', () => {
  it('reproduces the example of RFC 8785 section 3.2.3 (numbers, strings, literals)', () => {
    const input = JSON.parse(
      '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001], "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", "literals": [null, true, false]}',
    ) as unknown;
    expect(canonicalJson(input)).toBe(
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  it('sorts members by UTF-16 code units as RFC 8785 section 3.2.3 shows', () => {
    const input = {
      '\u20ac': 'Euro Sign',
      '\r': 'Carriage Return',
      '\ufb33': 'Hebrew Letter Dalet With Dagesh',
      '1': 'One',
      '\ud83d\ude00': 'Emoji: Grinning Face',
      '\u0080': 'Control',
      '\u00f6': 'Latin Small Letter O With Diaeresis',
    };
    const keys = Object.keys(JSON.parse(canonicalJson(input)) as Record<string, string>);
    // JSON.parse re-orders integer-like keys, so compare the serialised order instead.
    expect(canonicalJson(input)).toBe(
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","ö":"Latin Small Letter O With Diaeresis","€":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
    expect(keys).toHaveLength(7);
  });

  it('is insensitive to member order and nesting, and refuses what JSON cannot hold', () => {
    expect(canonicalJson({ b: [1, { d: 2, c: 3 }], a: 'x' })).toBe(
      canonicalJson({ a: 'x', b: [1, { c: 3, d: 2 }] }),
    );
    expect(() => canonicalJson({ n: Number.NaN })).toThrow();
    expect(() => canonicalJson({ n: Number.POSITIVE_INFINITY })).toThrow();
    expect(() => canonicalJson({ f: () => 1 })).toThrow();
  });

  it('keeps user strings with newlines and quotes inside their string (no forged members)', () => {
    const hostile = 'x","actor":"admin"}\n{"seq":2';
    const out = canonicalJson({ actor: 'alice', note: hostile });
    expect(JSON.parse(out)).toEqual({ actor: 'alice', note: hostile });
    expect(out.split('\n')).toHaveLength(1);
  });
});
