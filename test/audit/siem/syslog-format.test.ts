import { describe, expect, it } from 'vitest';
import type { AuditEvent, AuditEventBody } from '../../../src/audit/audit-event.js';
import { canonicalJson } from '../../../src/audit/canonical-json.js';
import { toOcsf } from '../../../src/audit/siem/ocsf.js';
import {
  DEFAULT_SD_ID,
  DEFAULT_SYSLOG_FACILITY,
  escapeParamValue,
  octetCounted,
  syslogFormatter,
  type SyslogFormatOptions,
} from '../../../src/audit/siem/syslog-format.js';
import { expectCode } from '../../storage/expect-code.js';
import { chainedEvents, type EventOverrides } from '../../support/siem-events.js';

/**
 * A strict reader of RFC 5424 section 6 (the receiver's view): every header field is PRINTUSASCII or the
 * NILVALUE, one SD-ELEMENT whose PARAM-VALUEs honour the section 6.3.3 escapes, then SP, BOM and MSG.
 */
interface Parsed {
  readonly pri: number;
  readonly timestamp: string;
  readonly hostname: string;
  readonly appName: string;
  readonly procId: string;
  readonly msgId: string;
  readonly sdId: string;
  readonly params: Record<string, string>;
  readonly msg: string;
}

function parse5424(message: string): Parsed {
  const header =
    /^<(\d{1,3})>1 (\S+) ([\x21-\x7e]{1,255}) ([\x21-\x7e]{1,48}) ([\x21-\x7e]{1,128}) ([\x21-\x7e]{1,32}) \[/.exec(
      message,
    );
  if (!header) throw new Error(`bad header: ${message.slice(0, 80)}`);
  let at = header[0].length;
  const idEnd = message.indexOf(' ', at);
  const sdId = message.slice(at, idEnd);
  at = idEnd;
  const params: Record<string, string> = {};
  while (message[at] === ' ') {
    const eq = message.indexOf('="', at);
    const name = message.slice(at + 1, eq);
    expect(name).toMatch(/^[^=\]" ]{1,32}$/);
    let value = '';
    at = eq + 2;
    for (;;) {
      const c = message[at]!;
      if (c === '\\' && ['"', '\\', ']'].includes(message[at + 1]!)) {
        value += message[at + 1];
        at += 2;
      } else if (c === '"') {
        at += 1;
        break;
      } else {
        expect(c, 'an unescaped `]` inside a PARAM-VALUE').not.toBe(']');
        value += c;
        at += 1;
      }
    }
    params[name] = value;
  }
  expect(message.slice(at, at + 3)).toBe('] \ufeff');
  return {
    pri: Number(header[1]),
    timestamp: header[2]!,
    hostname: header[3]!,
    appName: header[4]!,
    procId: header[5]!,
    msgId: header[6]!,
    sdId,
    params,
    msg: message.slice(at + 3),
  };
}

/** Splits an octet-counted stream (RFC 6587 3.4.1) back into messages, failing on any stray byte. */
function unframe(stream: Buffer): string[] {
  const out: string[] = [];
  let at = 0;
  while (at < stream.length) {
    const space = stream.indexOf(0x20, at);
    const len = stream.subarray(at, space).toString('ascii');
    expect(len).toMatch(/^[1-9][0-9]*$/);
    out.push(stream.subarray(space + 1, space + 1 + Number(len)).toString('utf8'));
    at = space + 1 + Number(len);
  }
  expect(at).toBe(stream.length);
  return out;
}

/** Runs `fn` as a promise, so a synchronous throw becomes a rejection for `expectCode`. */
function refuses(fn: () => unknown): Promise<unknown> {
  return Promise.resolve().then(fn);
}

const fixed: SyslogFormatOptions = { hostname: 'registry-1.example', procId: '4242' };

function eventWith(body: EventOverrides, seq = 1): AuditEvent {
  return chainedEvents(seq, () => body).at(-1)!;
}

describe('RFC 5424 formatting', () => {
  it('lays out PRI, VERSION, TIMESTAMP, HOSTNAME, APP-NAME, PROCID, MSGID, SD and a BOM-prefixed MSG', () => {
    const event = eventWith({}, 7);
    const message = syslogFormatter(fixed)(event);
    expect(
      message.startsWith(`<86>1 ${event.time} registry-1.example strongroom 4242 version:download `),
    ).toBe(true);
    const parsed = parse5424(message);
    expect(parsed).toMatchObject({ sdId: DEFAULT_SD_ID, msgId: 'version:download' });
    expect(parsed.params).toEqual({ seq: '7', requestId: 'req-0001', actor: 'user-7', outcome: 'succeeded' });
    expect(JSON.parse(parsed.msg)).toEqual(event);
    expect(parsed.msg).toBe(canonicalJson(event));
  });

  it('computes PRI as facility * 8 + the event severity (section 6.2.1), facility 10 by default', () => {
    expect(DEFAULT_SYSLOG_FACILITY).toBe(10);
    const severities = { error: 3, warning: 4, notice: 5, info: 6 } as const;
    for (const [severity, code] of Object.entries(severities)) {
      const event = eventWith({ severity: severity as AuditEventBody['severity'] });
      expect(parse5424(syslogFormatter(fixed)(event)).pri).toBe(80 + code);
      expect(parse5424(syslogFormatter({ ...fixed, facility: 13 })(event)).pri).toBe(104 + code);
      expect(parse5424(syslogFormatter({ ...fixed, facility: 23 })(event)).pri).toBe(184 + code);
    }
  });

  it('refuses a facility outside 0 to 23 and header options outside PRINTUSASCII or their length limits', async () => {
    const bad: SyslogFormatOptions[] = [
      { facility: 24 },
      { facility: -1 },
      { facility: 1.5 },
      { hostname: 'has space' },
      { hostname: 'h'.repeat(256) },
      { hostname: '' },
      { hostname: 'hôte' },
      { appName: 'a'.repeat(49) },
      { procId: 'p'.repeat(129) },
      { procId: 'line\nbreak' },
    ];
    for (const options of bad)
      await expectCode(
        refuses(() => syslogFormatter(options)),
        'config_invalid',
      );
    expect(() => syslogFormatter({ hostname: 'h'.repeat(255), appName: 'a'.repeat(48) })).not.toThrow();
  });

  it('derives MSGID from the action: PRINTUSASCII only, at most 32 characters, NILVALUE when empty', () => {
    const format = syslogFormatter(fixed);
    expect(parse5424(format(eventWith({ action: 'key:rewrap' }))).msgId).toBe('key:rewrap');
    expect(parse5424(format(eventWith({ action: 'bad action\n[x]é🔑' }))).msgId).toBe('bad_action_[x]__');
    expect(parse5424(format(eventWith({ action: 'a'.repeat(40) }))).msgId).toBe('a'.repeat(32));
    expect(parse5424(format(eventWith({ action: '' }))).msgId).toBe('-');
  });

  it('uses NILVALUE for a timestamp RFC 5424 cannot carry', () => {
    const event = { ...eventWith({}), time: '2025-01-02 03:04:05' };
    expect(parse5424(syslogFormatter(fixed)(event)).timestamp).toBe('-');
  });

  it('leaves out absent SD-PARAMs and carries the error code of a failure', () => {
    const event = eventWith({
      actor: { id: null, type: 'anonymous', authMethod: null },
      request: null,
      outcome: 'failed',
      errorCode: 'unauthenticated',
    });
    expect(parse5424(syslogFormatter(fixed)(event)).params).toEqual({
      seq: '1',
      outcome: 'failed',
      code: 'unauthenticated',
    });
  });

  it('escapes `"`, `\\` and `]` in PARAM-VALUE (section 6.3.3) and replaces control characters', () => {
    expect(escapeParamValue('a"b\\c]d')).toBe('a\\"b\\\\c\\]d');
    expect(escapeParamValue('x\ny\r\u0000z\u0085')).toBe('x\ufffdy\ufffd\ufffdz\ufffd');
  });

  it('takes a configurable SD-ID of the form name@PEN and refuses others', async () => {
    const sd = parse5424(syslogFormatter({ ...fixed, sdId: 'audit@1.3.6' })(eventWith({}))).sdId;
    expect(sd).toBe('audit@1.3.6');
    for (const sdId of ['strongroom', 'a b@1', 'x=y@1', 'x]@1', 'x"@1', 'x@pen', `${'n'.repeat(30)}@12`])
      await expectCode(
        refuses(() => syslogFormatter({ sdId })),
        'config_invalid',
      );
  });

  it('carries the OCSF form in MSG when configured', async () => {
    const event = eventWith({}, 3);
    const parsed = parse5424(syslogFormatter({ ...fixed, format: 'ocsf' })(event));
    expect(JSON.parse(parsed.msg)).toEqual(toOcsf(event));
    await expectCode(
      refuses(() => syslogFormatter({ format: 'xml' as 'json' })),
      'config_invalid',
    );
  });
});

describe('octet-counted framing (RFC 6587 3.4.1, RFC 5425 4.3)', () => {
  it('prefixes the UTF-8 length in octets, not characters', () => {
    // 2 + 4 + 1 octets, though JavaScript counts 4 UTF-16 units.
    expect('é🔑x'.length).toBe(4);
    expect(octetCounted('é🔑x').toString('utf8')).toBe('7 é🔑x');
  });

  it('keeps hostile strings inside one message: newlines, `]`, `"`, JSON and a forged second frame', () => {
    const hostile = '"] \n<13>1 - evil - - - - {"seq":999}\r\n99 <14>1 x\u2028\\';
    const events = chainedEvents(5, (seq) =>
      seq === 3
        ? {
            action: `version:download${hostile}`,
            resource: hostile,
            actor: { id: hostile, type: 'user', authMethod: hostile },
            request: {
              id: hostile,
              method: 'GET',
              path: `/v1/${hostile}`,
              status: 200,
              clientAddress: '198.51.100.1',
              userAgent: hostile,
            },
            details: { note: hostile },
          }
        : {},
    );
    for (const format of ['json', 'ocsf'] as const) {
      const formatter = syslogFormatter({ ...fixed, format });
      const stream = Buffer.concat(events.map((e) => octetCounted(formatter(e))));
      const messages = unframe(stream);
      expect(messages).toHaveLength(5);
      messages.forEach((message, i) => {
        // No CR, LF or NUL: nothing a line-oriented receiver could split on.
        expect([...message].filter((c) => c === '\r' || c === '\n' || c === '\u0000')).toEqual([]);
        const parsed = parse5424(message);
        expect(parsed.params.seq).toBe(String(i + 1));
        const body = JSON.parse(parsed.msg) as unknown;
        expect(body).toEqual(format === 'json' ? events[i] : toOcsf(events[i]!));
      });
      const third = parse5424(messages[2]!);
      expect(third.params.requestId).toBe(escapeParamValue(hostile).replace(/\\(["\\\]])/g, '$1'));
    }
  });
});
