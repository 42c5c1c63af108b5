import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './free-port.js';

/**
 * A real rsyslogd for integration tests, in its own temp directory: one plain TCP listener (imtcp) and one TLS
 * listener (imtcp with the GnuTLS driver, client certificates required), both on free loopback ports and bound
 * to a ruleset that parses RFC 5424 structured data (mmpstrucdata) and writes one JSON line per message with
 * the fields rsyslog parsed. No system inputs are loaded (no imuxsock, no imklog), so nothing else gets in.
 */

export const RSYSLOG_INSTALL_HINT = 'apt-get install -y rsyslog rsyslog-gnutls';

/** One message as rsyslog parsed it. */
export interface ReceivedMessage {
  readonly facility: number;
  readonly severity: number;
  readonly timestamp: string;
  readonly hostname: string;
  readonly appName: string;
  readonly procId: string;
  readonly msgId: string;
  /** The raw STRUCTURED-DATA field. */
  readonly structuredData: string;
  /** STRUCTURED-DATA as mmpstrucdata parsed it: SD-ID -> PARAM-NAME -> unescaped value. */
  readonly sd: Record<string, Record<string, string>>;
  /** MSG without its BOM. */
  readonly msg: string;
  readonly hadBom: boolean;
}

export interface Rsyslog {
  readonly dir: string;
  readonly tcpPort: number;
  readonly tlsPort: number;
  /** CA that issued the server and client certificates. */
  readonly caFile: string;
  /** A CA that issued nothing rsyslog presents. */
  readonly otherCaFile: string;
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
  /** Starts (or restarts) rsyslogd and resolves when both ports accept connections. */
  start(): Promise<void>;
  /** Signals rsyslogd and resolves when it has exited and its ports refuse connections. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Stops rsyslogd with SIGSTOP and resolves once none of its threads can run (it reads nothing more). */
  pause(): Promise<void>;
  /** Messages written so far, in arrival order. */
  received(): ReceivedMessage[];
  /** Waits until at least `count` messages are written (fails with what arrived if rsyslog stalls). */
  waitForMessages(count: number): Promise<ReceivedMessage[]>;
  /** Stops rsyslogd and removes the directory. */
  dispose(): Promise<void>;
}

/** The rsyslogd binary; the test fails (never skips) with the install command when it is missing. */
export function rsyslogdPath(): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    const candidate = join(dir, 'rsyslogd');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // keep looking
    }
  }
  throw new Error(`rsyslogd is not installed; run \`${RSYSLOG_INSTALL_HINT}\``);
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A throwaway CA, a server certificate for localhost/127.0.0.1 and a client certificate, all P-256. */
function makeCertificates(dir: string): void {
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  for (const ca of ['ca', 'other-ca'])
    openssl(dir, [
      'req',
      '-x509',
      ...key,
      '-keyout',
      `${ca}.key`,
      '-out',
      `${ca}.pem`,
      '-days',
      '2',
      '-subj',
      `/CN=strongroom test ${ca}`,
    ]);
  const leaves = {
    server: 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n',
    client: 'extendedKeyUsage=clientAuth\n',
  };
  for (const [name, ext] of Object.entries(leaves)) {
    writeFileSync(join(dir, `${name}.ext`), ext);
    openssl(dir, [
      'req',
      ...key,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      `/CN=${name === 'server' ? 'localhost' : 'strongroom-exporter'}`,
    ]);
    openssl(dir, [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
    ]);
  }
}

function config(dir: string, tcpPort: number, tlsPort: number): string {
  const f = (name: string) => join(dir, name);
  return `
global(workDirectory="${f('work')}" maxMessageSize="64k")
# One worker keeps the main queue in arrival order.
main_queue(queue.workerThreads="1")
module(load="imtcp")
module(load="mmpstrucdata")

template(name="parsed" type="list" option.jsonf="on") {
  property(outname="facility" name="syslogfacility" format="jsonf")
  property(outname="severity" name="syslogseverity" format="jsonf")
  property(outname="timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="hostname" name="hostname" format="jsonf")
  property(outname="appName" name="app-name" format="jsonf")
  property(outname="procId" name="procid" format="jsonf")
  property(outname="msgId" name="msgid" format="jsonf")
  property(outname="structuredData" name="structured-data" format="jsonf")
  property(outname="sd" name="$!rfc5424-sd" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
}

ruleset(name="received") {
  # SD-NAMEs are case-sensitive (RFC 5424 6.3.3); mmpstrucdata lowercases them unless told not to.
  action(type="mmpstrucdata" sd_name.lowercase="off")
  action(type="omfile" file="${f('received.jsonl')}" template="parsed")
}

input(type="imtcp" address="127.0.0.1" port="${tcpPort}" ruleset="received")
input(type="imtcp" address="127.0.0.1" port="${tlsPort}" ruleset="received"
      streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="x509/certvalid"
      streamDriver.caFile="${f('ca.pem')}" streamDriver.certFile="${f('server.pem')}"
      streamDriver.keyFile="${f('server.key')}")

# rsyslog's own messages (errors included) stay out of received.jsonl.
*.* action(type="omfile" file="${f('rsyslogd.log')}")
`;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function parseLine(line: string): ReceivedMessage {
  const raw = JSON.parse(line) as Record<string, string>;
  const msg = raw.msg ?? '';
  const hadBom = msg.startsWith('\ufeff');
  return {
    facility: Number(raw.facility),
    severity: Number(raw.severity),
    timestamp: raw.timestamp ?? '',
    hostname: raw.hostname ?? '',
    appName: raw.appName ?? '',
    procId: raw.procId ?? '',
    msgId: raw.msgId ?? '',
    structuredData: raw.structuredData ?? '',
    sd: raw.sd ? (JSON.parse(raw.sd) as ReceivedMessage['sd']) : {},
    msg: hadBom ? msg.slice(1) : msg,
    hadBom,
  };
}

/** Creates the directory, certificates and configuration, and starts rsyslogd. */
export async function startRsyslog(): Promise<Rsyslog> {
  const binary = rsyslogdPath();
  const dir = await mkdtemp(join(tmpdir(), 'strongroom-rsyslog-'));
  mkdirSync(join(dir, 'work'));
  makeCertificates(dir);
  const [tcpPort, tlsPort] = [await freePort(), await freePort()];
  const conf = join(dir, 'rsyslog.conf');
  const pidFile = join(dir, 'rsyslogd.pid');
  const output = join(dir, 'received.jsonl');
  writeFileSync(conf, config(dir, tcpPort, tlsPort));
  let child: ChildProcess | null = null;
  let stderr = '';

  const diagnostics = (): string => {
    const log = existsSync(join(dir, 'rsyslogd.log')) ? readFileSync(join(dir, 'rsyslogd.log'), 'utf8') : '';
    return `stderr: ${stderr.trim()}\nrsyslogd.log: ${log.trim()}\n(needs \`${RSYSLOG_INSTALL_HINT}\`)`;
  };

  // Parsed incrementally: the file can grow to tens of megabytes and is polled.
  const parsed: ReceivedMessage[] = [];
  let offset = 0;
  const received = (): ReceivedMessage[] => {
    if (!existsSync(output)) return [...parsed];
    const data = readFileSync(output);
    // A line is complete only with its newline; omfile may be mid-write.
    const end = data.lastIndexOf(0x0a) + 1;
    if (end > offset) {
      const text = data.subarray(offset, end).toString('utf8');
      parsed.push(...text.slice(0, -1).split('\n').map(parseLine));
      offset = end;
    }
    return [...parsed];
  };

  const instance: Rsyslog = {
    dir,
    tcpPort,
    tlsPort,
    caFile: join(dir, 'ca.pem'),
    otherCaFile: join(dir, 'other-ca.pem'),
    clientCertFile: join(dir, 'client.pem'),
    clientKeyFile: join(dir, 'client.key'),

    async start() {
      rmSync(pidFile, { force: true });
      stderr = '';
      const proc = spawn(binary, ['-n', '-f', conf, '-i', pidFile], { stdio: ['ignore', 'pipe', 'pipe'] });
      child = proc;
      proc.stdout.on('data', (d: Buffer) => (stderr += d.toString()));
      proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      // Hang guard only: rsyslogd is listening within a second; a broken setup must not wait forever.
      for (let attempt = 0; attempt < 600; attempt++) {
        if (proc.exitCode !== null || proc.signalCode !== null)
          throw new Error(`rsyslogd exited with ${proc.exitCode ?? proc.signalCode}\n${diagnostics()}`);
        if ((await accepts(tcpPort)) && (await accepts(tlsPort))) return;
        await sleep(50);
      }
      throw new Error(`rsyslogd did not listen on ${tcpPort} and ${tlsPort}\n${diagnostics()}`);
    },

    async kill(signal = 'SIGTERM') {
      const proc = child;
      if (proc === null) return;
      child = null;
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((resolve) => proc.once('exit', resolve));
        proc.kill(signal);
        await exited;
      }
      while ((await accepts(tcpPort)) || (await accepts(tlsPort))) await sleep(50);
    },

    async pause() {
      const pid = child?.pid;
      if (pid === undefined) throw new Error('rsyslogd is not running');
      process.kill(pid, 'SIGSTOP');
      // Stopped means every thread is in state T: none can read another byte from a socket.
      const stopped = (): boolean =>
        readdirSync(`/proc/${pid}/task`).every((tid) => {
          const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
          return stat.slice(stat.lastIndexOf(')') + 2).startsWith('T');
        });
      while (!stopped()) await sleep(5);
    },

    received,

    async waitForMessages(count) {
      let last = -1;
      let still = 0;
      // Hang guard only: give up after 30 s without a new message.
      while (still < 600) {
        const messages = received();
        if (messages.length >= count) return messages;
        still = messages.length === last ? still + 1 : 0;
        last = messages.length;
        await sleep(50);
      }
      throw new Error(`rsyslog wrote ${last} of ${count} messages\n${diagnostics()}`);
    },

    async dispose() {
      child?.kill('SIGCONT');
      await instance.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await instance.start();
  return instance;
}
