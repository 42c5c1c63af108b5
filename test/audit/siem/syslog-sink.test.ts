import { describe, expect, it } from 'vitest';
import { SyslogSink, type SyslogSinkOptions } from '../../../src/audit/siem/syslog-sink.js';
import { expectCode } from '../../storage/expect-code.js';
import { freePort } from '../../support/free-port.js';
import { chainedEvents } from '../../support/siem-events.js';

// Delivery to a real receiver is specified in test/integration/rsyslog.test.ts; these cases need no server.

const tcp: SyslogSinkOptions = { host: '127.0.0.1', port: 6514, transport: { kind: 'tcp' } };

describe('syslog sink', () => {
  it('refuses options it cannot use', async () => {
    const bad: SyslogSinkOptions[] = [
      { ...tcp, host: '' },
      { ...tcp, port: 0 },
      { ...tcp, port: 65_536 },
      { ...tcp, connectTimeoutMs: 0 },
      { ...tcp, writeTimeoutMs: 1.5 },
      { ...tcp, facility: 24 },
      { ...tcp, transport: { kind: 'udp' } as unknown as SyslogSinkOptions['transport'] },
      { ...tcp, transport: { kind: 'tls', caFile: '' } },
      { ...tcp, transport: { kind: 'tls', caFile: '/ca.pem', certFile: '/c.pem' } },
      { ...tcp, transport: { kind: 'tls', caFile: '/ca.pem', keyFile: '/k.pem' } },
    ];
    for (const options of bad)
      await expectCode(
        Promise.resolve().then(() => new SyslogSink(options)),
        'config_invalid',
      );
  });

  it('throws when nothing listens, naming the peer and not the events', async () => {
    const port = await freePort();
    const sink = new SyslogSink({ ...tcp, port });
    const events = chainedEvents(2, () => ({ resource: 'secret-project/model' }));
    const err = await expectCode(sink.deliver(events), 'storage_error');
    expect(err.message).toBe(`syslog delivery to \`127.0.0.1:${port}\` failed: ECONNREFUSED`);
    expect(err.message).not.toContain('secret-project');
    await sink.close();
  });

  it('throws when the tls ca file cannot be read', async () => {
    const port = await freePort();
    const sink = new SyslogSink({ ...tcp, port, transport: { kind: 'tls', caFile: '/nonexistent/ca.pem' } });
    const err = await expectCode(sink.deliver(chainedEvents(1)), 'config_invalid');
    expect(err.message).toBe('cannot read syslog tls file `/nonexistent/ca.pem`: ENOENT');
    await sink.close();
  });

  it('refuses deliveries after close', async () => {
    const sink = new SyslogSink(tcp);
    await sink.close();
    await expectCode(sink.deliver(chainedEvents(1)), 'internal_error');
  });
});
