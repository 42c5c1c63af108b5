import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRsyslog, type Rsyslog } from '../support/rsyslog.js';
import { startTestServer, type TestServer } from '../support/server-harness.js';

/**
 * End to end: a server configured with a syslog exporter (RFC 5425 TLS, OCSF payloads) sends every audit event
 * of its requests to a real rsyslogd, in order, each once, with the sequence number in the structured data.
 */
let rsyslog: Rsyslog;
let server: TestServer;

beforeAll(async () => {
  rsyslog = await startRsyslog();
  server = await startTestServer({
    config: {
      audit: {
        exporters: [
          {
            type: 'syslog',
            name: 'siem',
            format: 'ocsf',
            host: '127.0.0.1',
            port: rsyslog.tlsPort,
            transport: {
              kind: 'tls',
              caFile: rsyslog.caFile,
              certFile: rsyslog.clientCertFile,
              keyFile: rsyslog.clientKeyFile,
              servername: 'localhost',
            },
          },
        ],
      },
    },
  });
});

afterAll(async () => {
  await server?.close();
  await rsyslog?.dispose();
});

describe('audit events exported to rsyslog by a running server', () => {
  it('arrive over TLS as OCSF, every seq once and in order, denials included', async () => {
    await server.api('/api/v1/projects', { method: 'POST', json: { name: 'siem' } });
    for (let i = 0; i < 20; i++) await server.api(`/api/v1/projects/siem/artifacts/a${i}`);
    await fetch(`${server.url}/api/v1/projects`, { headers: { authorization: 'Bearer nope' } });
    const size = (await server.ctx.rawStore.getAuditState()).size;
    const messages = await rsyslog.waitForMessages(size);
    const seqs = messages.map((m) => Number(Object.values(m.sd)[0]?.['seq']));
    expect(seqs.slice(0, size)).toEqual(Array.from({ length: size }, (_, i) => i + 1));
    const ocsf = messages.map((m) => JSON.parse(m.msg) as { class_uid: number; status: string });
    expect(ocsf.some((o) => o.class_uid === 3002)).toBe(true); // the failed authentication
    expect(ocsf.some((o) => o.class_uid === 6003)).toBe(true); // API activity
  });
});
