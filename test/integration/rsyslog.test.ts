import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/audit/audit-event.js';
import { SYSLOG_SEVERITY } from '../../src/audit/audit-event.js';
import { verifyChain, type ChainedRecord } from '../../src/audit/hash-chain.js';
import { toOcsf } from '../../src/audit/siem/ocsf.js';
import { escapeParamValue } from '../../src/audit/siem/syslog-format.js';
import { SyslogSink, type SyslogSinkOptions } from '../../src/audit/siem/syslog-sink.js';
import { expectCode } from '../storage/expect-code.js';
import { chainedEvents, type EventOverrides } from '../support/siem-events.js';
import { startRsyslog, type ReceivedMessage, type Rsyslog } from '../support/rsyslog.js';

/**
 * The syslog exporter against a real rsyslogd (RFC 5425 TLS and RFC 6587 TCP, octet-counted framing): what
 * rsyslog parses out of each message must be exactly what the sink meant, every seq must arrive once and in
 * order, and a receiver that dies makes `deliver` throw so the runner's retry of that batch loses nothing.
 */

let server: Rsyslog | undefined;
let startError: unknown;
const sinks: SyslogSink[] = [];

beforeAll(async () => {
  // A missing rsyslogd must fail every test with the install command, not skip them.
  try {
    server = await startRsyslog();
  } catch (err) {
    startError = err;
  }
});

afterAll(async () => {
  await Promise.all(sinks.splice(0).map((s) => s.close()));
  await server?.dispose();
});

/** The running rsyslog, or the reason it could not start. */
function rsyslog(): Rsyslog {
  if (server === undefined) throw startError;
  return server;
}

function sink(
  options: Partial<SyslogSinkOptions> & Pick<SyslogSinkOptions, 'port' | 'transport'>,
): SyslogSink {
  const s = new SyslogSink({ host: '127.0.0.1', hostname: 'strongroom-test', procId: '4242', ...options });
  sinks.push(s);
  return s;
}

function tls(overrides: Partial<Extract<SyslogSinkOptions['transport'], { kind: 'tls' }>> = {}) {
  return {
    kind: 'tls' as const,
    caFile: rsyslog().caFile,
    certFile: rsyslog().clientCertFile,
    keyFile: rsyslog().clientKeyFile,
    ...overrides,
  };
}

/** Delivers in batches of uneven sizes, as the runner would, and returns what rsyslog wrote for them. */
async function deliverAll(s: SyslogSink, events: readonly AuditEvent[]): Promise<ReceivedMessage[]> {
  const before = rsyslog().received().length;
  const sizes = [1, 7, 50, 3, 64];
  for (let at = 0, i = 0; at < events.length; i++) {
    const size = sizes[i % sizes.length]!;
    await s.deliver(events.slice(at, at + size));
    at += size;
  }
  return (await rsyslog().waitForMessages(before + events.length)).slice(before);
}

const seqOf = (m: ReceivedMessage, sdId = 'strongroom@32473'): number => Number(m.sd[sdId]?.seq);
const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Strings built to break line framing, SD syntax and JSON if anything were left unescaped. */
const HOSTILE = 'x"] \n<13>1 2025-01-01T00:00:00Z evil app - - - {"seq":1}\r\n12 <14>1 - - - - - -\\]';

function hostileAt(seqs: readonly number[]): (seq: number) => EventOverrides {
  return (seq) =>
    seqs.includes(seq)
      ? {
          action: `version:download\n${HOSTILE}`,
          resource: HOSTILE,
          actor: { id: `user\n${HOSTILE}`, type: 'user', authMethod: 'oidc' },
          request: {
            id: `req\n${HOSTILE}`,
            method: 'GET',
            path: `/v1/${HOSTILE}`,
            status: 403,
            clientAddress: '198.51.100.7',
            userAgent: HOSTILE,
          },
          outcome: 'failed',
          errorCode: 'forbidden',
          severity: 'warning',
          details: { note: HOSTILE },
        }
      : {};
}

describe('syslog export to rsyslog', () => {
  it('delivers 200 events over TCP exactly once, in order, with header and structured data parsed', async () => {
    const events = chainedEvents(200, hostileAt([50, 51, 199]));
    const received = await deliverAll(sink({ port: rsyslog().tcpPort, transport: { kind: 'tcp' } }), events);

    expect(received.map((m) => seqOf(m))).toEqual(range(1, 200));
    received.forEach((m, i) => {
      const event = events[i]!;
      expect(m).toMatchObject({
        facility: 10,
        severity: SYSLOG_SEVERITY[event.severity],
        timestamp: event.time,
        hostname: 'strongroom-test',
        appName: 'strongroom',
        procId: '4242',
        hadBom: true,
      });
      expect(m.msgId).toBe(event.action.replace(/[^\x21-\x7e]/gu, '_').slice(0, 32));
      expect(m.sd['strongroom@32473']).toEqual({
        seq: String(event.seq),
        requestId: escapeParamValue(event.request!.id).replace(/\\(["\\\]])/g, '$1'),
        actor: escapeParamValue(event.actor.id!).replace(/\\(["\\\]])/g, '$1'),
        outcome: event.outcome,
        ...(event.errorCode === null ? {} : { code: event.errorCode }),
      });
      expect(JSON.parse(m.msg)).toEqual(event);
    });
    // The SIEM's copy is the canonical JSON the log chains, so it verifies on its own.
    const copies = received.map((m) => JSON.parse(m.msg) as ChainedRecord);
    expect(verifyChain(copies)).toMatchObject({ ok: true, count: 200 });
  });

  it('keeps an event whose strings hold newlines, `]`, `"` and JSON as one message', async () => {
    const events = chainedEvents(3, hostileAt([2]));
    const received = await deliverAll(sink({ port: rsyslog().tcpPort, transport: { kind: 'tcp' } }), events);
    expect(received).toHaveLength(3);
    expect(received.map((m) => seqOf(m))).toEqual([1, 2, 3]);
    const hostile = JSON.parse(received[1]!.msg) as AuditEvent;
    expect(hostile.request?.userAgent).toBe(HOSTILE);
    expect(hostile.details).toEqual({ note: HOSTILE });
    // No other message anywhere in the file claims to come from the forged header inside the strings.
    expect(
      rsyslog()
        .received()
        .filter((m) => m.appName !== 'strongroom'),
    ).toEqual([]);
  });

  it('delivers 200 events over TLS with a client certificate, in OCSF form, under a custom SD-ID', async () => {
    const events = chainedEvents(200, hostileAt([100]));
    const s = sink({
      port: rsyslog().tlsPort,
      transport: tls({ servername: 'localhost' }),
      format: 'ocsf',
      facility: 13,
      sdId: 'audit@32473.1',
    });
    const received = await deliverAll(s, events);
    expect(received.map((m) => seqOf(m, 'audit@32473.1'))).toEqual(range(1, 200));
    received.forEach((m, i) => {
      expect(m.facility).toBe(13);
      expect(JSON.parse(m.msg)).toEqual(toOcsf(events[i]!));
    });
  });

  it('refuses a receiver whose certificate the configured CA did not issue, or that names another host', async () => {
    const before = rsyslog().received().length;
    const wrongCa = sink({ port: rsyslog().tlsPort, transport: tls({ caFile: rsyslog().otherCaFile }) });
    const err = await expectCode(wrongCa.deliver(chainedEvents(1)), 'storage_error');
    expect(err.message).toMatch(/^syslog delivery to `127\.0\.0\.1:\d+` failed: [A-Z_]+$/);
    const wrongName = sink({ port: rsyslog().tlsPort, transport: tls({ servername: 'siem.example' }) });
    await expectCode(wrongName.deliver(chainedEvents(1)), 'storage_error');
    // A CA file holding something else than certificates fails as well.
    const notPem = sink({ port: rsyslog().tlsPort, transport: tls({ caFile: rsyslog().clientKeyFile }) });
    await expectCode(notPem.deliver(chainedEvents(1)), 'storage_error');
    await deliverAll(sink({ port: rsyslog().tcpPort, transport: { kind: 'tcp' } }), chainedEvents(1));
    expect(rsyslog().received().length).toBe(before + 1);
  });

  it('throws when rsyslog refuses the client after the handshake, instead of losing every batch', async () => {
    // rsyslog requires a client certificate but checks it only once the TLS handshake has completed.
    const before = rsyslog().received().length;
    const noCert = sink({ port: rsyslog().tlsPort, transport: { kind: 'tls', caFile: rsyslog().caFile } });
    for (let attempt = 0; attempt < 3; attempt++) {
      const err = await expectCode(noCert.deliver(chainedEvents(5)), 'storage_error');
      expect(err.message).toMatch(/failed: (the receiver closed the connection|ECONNRESET|EPIPE)$/);
    }
    await deliverAll(sink({ port: rsyslog().tcpPort, transport: { kind: 'tcp' } }), chainedEvents(1));
    expect(rsyslog().received().length).toBe(before + 1);
  });

  it('throws once rsyslog is killed between batches, and the retried batch arrives after a restart', async () => {
    const events = chainedEvents(100);
    const batches = range(0, 9).map((i) => events.slice(i * 10, i * 10 + 10));
    const s = sink({ port: rsyslog().tcpPort, transport: { kind: 'tcp' } });
    const before = rsyslog().received().length;
    for (const batch of batches.slice(0, 4)) await s.deliver(batch);
    await rsyslog().waitForMessages(before + 40);

    await rsyslog().kill('SIGKILL');
    await expectCode(s.deliver(batches[4]!), 'storage_error');
    await expectCode(s.deliver(batches[4]!), 'storage_error');
    await rsyslog().start();
    // The runner retries the failed batch, then carries on; the sink reconnects by itself.
    for (const batch of batches.slice(4)) await s.deliver(batch);

    const received = (await rsyslog().waitForMessages(before + 100)).slice(before);
    expect(received.map((m) => seqOf(m))).toEqual(range(1, 100));
  });

  it('throws when rsyslog dies while a batch is being written, and the retried batch arrives once', async () => {
    const s = sink({ port: rsyslog().tcpPort, transport: { kind: 'tcp' } });
    const before = rsyslog().received().length;
    const warmup = chainedEvents(20);
    await s.deliver(warmup);
    await rsyslog().waitForMessages(before + 20);

    // A batch larger than every socket buffer between the two processes cannot be written to a stalled reader.
    const maxBuffer = (name: string) =>
      Number(readFileSync(`/proc/sys/net/ipv4/${name}`, 'utf8').split(/\s+/)[2]);
    const bytes = maxBuffer('tcp_rmem') + maxBuffer('tcp_wmem') + 8 * 1024 * 1024;
    const padding = 'p'.repeat(8000);
    const big = chainedEvents(Math.ceil(bytes / padding.length), () => ({ details: { padding } }), 21);

    await rsyslog().pause();
    const stalled = s.deliver(big);
    await rsyslog().kill('SIGKILL');
    await expectCode(stalled, 'storage_error');

    await rsyslog().start();
    await s.deliver(big);
    const received = (await rsyslog().waitForMessages(before + 20 + big.length)).slice(before);
    expect(received.map((m) => seqOf(m))).toEqual(range(1, 20 + big.length));
  });
});
