import { readFile } from 'node:fs/promises';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { StrongroomError, quote } from '../../core/errors.js';
import type { AuditEvent } from '../audit-event.js';
import type { AuditSink } from './audit-sink.js';
import {
  octetCounted,
  syslogFormatter,
  type SyslogFormatOptions,
  type SyslogFormatter,
} from './syslog-format.js';
import { integerOption } from './sink-options.js';

/**
 * Syslog over TCP (RFC 6587) or TLS (RFC 5425) with octet-counted framing. One connection is kept and
 * replaced after any failure. Plain TCP syslog has no acknowledgements: `deliver` resolves once the bytes are
 * written to the kernel, so a receiver that dies holding unread bytes loses them; the runner's at-least-once
 * retries cover failures `deliver` sees, and `seq` in every message lets the SIEM spot gaps and duplicates.
 * A new connection is used only after a probation period (see `probation`), so a receiver that refuses the
 * client after the handshake makes `deliver` throw rather than swallow the batch.
 * Nothing here logs: event contents reach the socket and nowhere else.
 */

export type SyslogTransport =
  | { readonly kind: 'tcp' }
  | {
      readonly kind: 'tls';
      /** PEM CA bundle that must have issued the receiver's certificate (it replaces the system store). */
      readonly caFile: string;
      /** PEM client certificate and key, for receivers that authenticate senders (both or neither). */
      readonly certFile?: string;
      readonly keyFile?: string;
      /** Name checked against the receiver's certificate (and sent as SNI); defaults to `host`. */
      readonly servername?: string;
    };

export interface SyslogSinkOptions extends SyslogFormatOptions {
  /** Exporter name under which the runner persists its position; defaults to `syslog`. */
  readonly name?: string;
  readonly host: string;
  readonly port: number;
  readonly transport: SyslogTransport;
  /** Milliseconds to establish the connection (and TLS handshake); defaults to 10 000. */
  readonly connectTimeoutMs?: number;
  /** Milliseconds for a batch to be written before the connection is dropped; defaults to 30 000. */
  readonly writeTimeoutMs?: number;
}

const MAX_TIMEOUT_MS = 600_000;

export class SyslogSink implements AuditSink {
  readonly name: string;
  readonly #host: string;
  readonly #port: number;
  readonly #transport: SyslogTransport;
  readonly #connectTimeoutMs: number;
  readonly #writeTimeoutMs: number;
  readonly #format: SyslogFormatter;
  #socket: Socket | null = null;
  #queue: Promise<void> = Promise.resolve();
  #closed = false;

  /** A sink for RFC 5425 (TLS) or RFC 6587 (TCP) syslog; options are checked here, files read on connect. */
  constructor(options: SyslogSinkOptions) {
    this.name = options.name ?? 'syslog';
    if (options.host.length === 0) throw new StrongroomError('config_invalid', 'syslog `host` is empty');
    this.#host = options.host;
    this.#port = integerOption('syslog', 'port', options.port, 0, 1, 65_535);
    this.#transport = checkTransport(options.transport);
    this.#connectTimeoutMs = timeout('connectTimeoutMs', options.connectTimeoutMs, 10_000);
    this.#writeTimeoutMs = timeout('writeTimeoutMs', options.writeTimeoutMs, 30_000);
    this.#format = syslogFormatter(options);
  }

  /** Writes the batch as octet-counted RFC 5424 messages; resolves after the socket's write callback. */
  deliver(events: readonly AuditEvent[]): Promise<void> {
    // Batches go out one after another even if a caller does not wait, so order on the wire is call order.
    const run = this.#queue.then(() => this.#send(events));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Ends the connection after any delivery in progress. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#queue;
    const socket = this.#socket;
    this.#socket = null;
    if (socket === null || socket.destroyed) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => socket.destroy(), this.#writeTimeoutMs);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.end();
    });
  }

  async #send(events: readonly AuditEvent[]): Promise<void> {
    if (this.#closed) throw new StrongroomError('internal_error', 'the syslog sink is closed');
    if (events.length === 0) return;
    const frames = Buffer.concat(events.map((event) => octetCounted(this.#format(event))));
    try {
      await this.#write(await this.#connection(), frames);
    } catch (err) {
      this.#drop();
      if (err instanceof StrongroomError) throw err;
      const message = `syslog delivery to ${this.#peer()} failed: ${reason(err)}`;
      throw new StrongroomError('storage_error', message, { cause: err });
    }
  }

  /** The open connection, or a new one when it is gone or the receiver has closed its side. */
  async #connection(): Promise<Socket> {
    // Let pending socket events run first, so a receiver's close that already arrived is seen before writing.
    await new Promise((resolve) => setImmediate(resolve));
    const socket = this.#socket;
    // A syslog receiver never sends; its EOF means it closed, and writing would vanish into a dead socket.
    if (socket !== null && !socket.destroyed && socket.writable && !socket.readableEnded) return socket;
    this.#drop();
    const options = this.#transport.kind === 'tls' ? await this.#tlsOptions(this.#transport) : null;
    const fresh = await this.#connect(options);
    this.#socket = fresh;
    return fresh;
  }

  #connect(tlsOptions: ConnectionOptions | null): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const started = Date.now();
      const target = { host: this.#host, port: this.#port };
      const socket = tlsOptions === null ? netConnect(target) : tlsConnect({ ...target, ...tlsOptions });
      const ready = tlsOptions === null ? 'connect' : 'secureConnect';
      let timer = setTimeout(() => settle(new Error('connection timed out')), this.#connectTimeoutMs);
      const settle = (err: Error | null): void => {
        clearTimeout(timer);
        socket.off('error', settle).off('close', onClose).off(ready, onReady);
        if (err === null) return resolve(socket);
        socket.destroy();
        reject(err);
      };
      const onClose = (): void => settle(new Error('the receiver closed the connection'));
      const onReady = (): void => {
        watch(socket);
        clearTimeout(timer);
        timer = setTimeout(() => settle(null), probation(Date.now() - started, this.#connectTimeoutMs));
      };
      socket.once('error', settle).once('close', onClose).once(ready, onReady);
    });
  }

  #write(socket: Socket, frames: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (err: Error | null | undefined): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.off('error', settle).off('close', onClose);
        if (err) reject(err);
        else resolve();
      };
      const onClose = (): void => settle(new Error('connection closed'));
      const timer = setTimeout(() => settle(new Error('write timed out')), this.#writeTimeoutMs);
      socket.once('error', settle).once('close', onClose);
      socket.write(frames, settle);
    });
  }

  async #tlsOptions(transport: Extract<SyslogTransport, { kind: 'tls' }>): Promise<ConnectionOptions> {
    const [ca, cert, key] = await Promise.all([
      readPem(transport.caFile),
      transport.certFile === undefined ? undefined : readPem(transport.certFile),
      transport.keyFile === undefined ? undefined : readPem(transport.keyFile),
    ]);
    const servername = transport.servername ?? (isIP(this.#host) === 0 ? this.#host : undefined);
    return {
      ca,
      ...(cert === undefined ? {} : { cert }),
      ...(key === undefined ? {} : { key }),
      ...(servername === undefined ? {} : { servername }),
      minVersion: 'TLSv1.2',
      // Fixed, not an option: an audit trail sent to an unauthenticated peer is a leak.
      rejectUnauthorized: true,
    };
  }

  #drop(): void {
    this.#socket?.destroy();
    this.#socket = null;
  }

  #peer(): string {
    return quote(`${this.#host}:${this.#port}`);
  }
}

const MIN_PROBATION_MS = 100;

/**
 * How long a new connection must stay open before it carries events. Receivers refuse a client certificate
 * or a sender after the handshake has completed on the sender's side (TLS 1.3 finishes before the server
 * checks the certificate; rsyslog checks its peers after GnuTLS returns), and nothing tells a sender it was
 * accepted, so a refused connection would swallow every batch. A refusal follows the handshake by about one
 * round trip; twice the handshake time (at least 100 ms) lets it arrive, and `deliver` throws instead.
 */
function probation(handshakeMs: number, connectTimeoutMs: number): number {
  return Math.min(Math.max(2 * handshakeMs, MIN_PROBATION_MS), connectTimeoutMs);
}

/** Keeps an established socket observable: reading notices the receiver's EOF, errors close it quietly. */
function watch(socket: Socket): void {
  socket.setKeepAlive(true, 30_000);
  socket.setNoDelay(true);
  socket.on('error', () => socket.destroy());
  socket.resume();
}

function checkTransport(transport: SyslogTransport): SyslogTransport {
  if (transport.kind === 'tcp') return transport;
  if (transport.kind !== 'tls')
    throw new StrongroomError('config_invalid', 'syslog `transport.kind` must be tcp or tls');
  if (transport.caFile.length === 0) throw new StrongroomError('config_invalid', 'syslog tls needs `caFile`');
  if ((transport.certFile === undefined) !== (transport.keyFile === undefined))
    throw new StrongroomError('config_invalid', 'syslog tls needs both `certFile` and `keyFile`, or neither');
  return transport;
}

function timeout(name: string, value: number | undefined, fallback: number): number {
  return integerOption('syslog', name, value, fallback, 1, MAX_TIMEOUT_MS);
}

async function readPem(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new StrongroomError(
      'config_invalid',
      `cannot read syslog tls file ${quote(path)}: ${reason(err)}`,
      {
        cause: err,
      },
    );
  }
}

/** A short, content-free reason: the error's code (`ECONNREFUSED`, `CERT_HAS_EXPIRED`) or its message. */
function reason(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code;
  return err instanceof Error ? (err.message.split('\n')[0] ?? '').toLowerCase() : 'unknown error';
}
