import { hostname as osHostname } from 'node:os';
import { StrongroomError, quote } from '../../core/errors.js';
import { SYSLOG_SEVERITY, type AuditEvent } from '../audit-event.js';
import { siemPayload, type SiemFormat } from './siem-payload.js';
import { formatOption, integerOption } from './sink-options.js';

/**
 * RFC 5424 messages for audit events:
 *
 *   <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD-ID seq="N" requestId="R" actor="A" outcome="O" code="C"] BOM JSON
 *
 * Header fields are PRINTUSASCII only and within the lengths of section 6; SD-PARAM values are escaped per
 * section 6.3.3; MSG is a UTF-8 BOM and one line of JSON (section 6.4). Framing is octet counting (RFC 6587
 * section 3.4.1, RFC 5425 section 4.3), so no byte of an event can end a message or start another one.
 */

/**
 * Facility 10 (security/authorization, `authpriv`): stock syslog configurations route it to a root-only
 * file and keep it out of the general log, which suits events naming principals and client addresses.
 * Facility 13 (log audit) has no name in glibc and lands in the general log by default.
 */
export const DEFAULT_SYSLOG_FACILITY = 10;

/** 32473 is the example Private Enterprise Number of RFC 5612; deployments with their own PEN set theirs. */
export const DEFAULT_SD_ID = 'strongroom@32473';

export interface SyslogFormatOptions {
  /** RFC 5424 facility, 0 to 23. */
  readonly facility?: number;
  /** HOSTNAME; defaults to the machine's host name. */
  readonly hostname?: string;
  /** APP-NAME; defaults to `strongroom`. */
  readonly appName?: string;
  /** PROCID; defaults to the process id. */
  readonly procId?: string;
  /** SD-ID of the element carrying the event's keys: `name@PEN`. */
  readonly sdId?: string;
  /** MSG is the event's canonical JSON (`json`) or its OCSF form (`ocsf`). */
  readonly format?: SiemFormat;
}

/** Formats one event as an RFC 5424 message (without framing). */
export type SyslogFormatter = (event: AuditEvent) => string;

const NILVALUE = '-';
const BOM = '\ufeff';
// RFC 5424 section 6: header field lengths.
const MAX = { hostname: 255, appName: 48, procId: 128, msgId: 32, sdName: 32 } as const;
const PRINTUSASCII = /^[\x21-\x7e]+$/;
const NOT_PRINTUSASCII = /[^\x21-\x7e]/gu;
// RFC 5424 section 6.3.2: an SD-NAME excludes `=`, SP, `]` and `"`; a private SD-ID is `name@PEN`.
const PRIVATE_SD_ID = /^[^=\]"@\s]+@[0-9]+(\.[0-9]+)*$/;
// RFC 5424 TIMESTAMP (section 6.2.3): RFC 3339 with an upper-case T and Z and at most 6 fraction digits.
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

/** Builds an RFC 5424 (sections 6 and 6.3) formatter; invalid options are refused, never silently fixed. */
export function syslogFormatter(options: SyslogFormatOptions = {}): SyslogFormatter {
  const facility = integerOption('syslog', 'facility', options.facility, DEFAULT_SYSLOG_FACILITY, 0, 23);
  const format = formatOption('syslog', options.format);
  const host =
    options.hostname === undefined
      ? printable(osHostname(), MAX.hostname)
      : headerField('hostname', options.hostname, MAX.hostname);
  const app = headerField('appName', options.appName ?? 'strongroom', MAX.appName);
  const proc = headerField('procId', options.procId ?? String(process.pid), MAX.procId);
  const sdId = sdIdOption(options.sdId ?? DEFAULT_SD_ID);
  return (event) => {
    const pri = facility * 8 + SYSLOG_SEVERITY[event.severity];
    const time = TIMESTAMP.test(event.time) ? event.time : NILVALUE;
    const msgId = printable(event.action, MAX.msgId);
    const header = `<${pri}>1 ${time} ${host} ${app} ${proc} ${msgId}`;
    return `${header} ${structuredData(sdId, event)} ${BOM}${siemPayload(event, format)}`;
  };
}

/** RFC 6587 section 3.4.1 octet counting: `MSG-LEN SP SYSLOG-MSG`, the length in octets of UTF-8 MSG. */
export function octetCounted(message: string): Buffer {
  const body = Buffer.from(message, 'utf8');
  return Buffer.concat([Buffer.from(`${body.length} `, 'ascii'), body]);
}

/** RFC 5424 section 6.3.3: `"`, `\` and `]` are escaped with a backslash inside PARAM-VALUE. */
export function escapeParamValue(value: string): string {
  // Control characters are legal in PARAM-VALUE but break line-oriented receivers; MSG keeps the exact value.
  return value.replace(CONTROL, '\ufffd').replace(/["\\\]]/g, (c) => `\\${c}`);
}

function structuredData(sdId: string, event: AuditEvent): string {
  const params: [string, string | null][] = [
    ['seq', String(event.seq)],
    ['requestId', event.request?.id ?? null],
    ['actor', event.actor.id],
    ['outcome', event.outcome],
    ['code', event.errorCode],
  ];
  const present = params.filter((p): p is [string, string] => p[1] !== null);
  return `[${sdId}${present.map(([k, v]) => ` ${k}="${escapeParamValue(v)}"`).join('')}]`;
}

/** A derived header value: characters outside PRINTUSASCII become `_`, cut to length, NILVALUE if empty. */
function printable(value: string, max: number): string {
  return value.replace(NOT_PRINTUSASCII, '_').slice(0, max) || NILVALUE;
}

function headerField(name: string, value: string, max: number): string {
  if (value.length > max || !PRINTUSASCII.test(value))
    throw new StrongroomError(
      'config_invalid',
      `syslog \`${name}\` ${quote(value)} must be 1 to ${max} printable ascii characters`,
    );
  return value;
}

function sdIdOption(value: string): string {
  if (value.length > MAX.sdName || !PRINTUSASCII.test(value) || !PRIVATE_SD_ID.test(value))
    throw new StrongroomError(
      'config_invalid',
      `syslog \`sdId\` ${quote(value)} must be \`name@pen\`, at most ${MAX.sdName} printable ascii characters`,
    );
  return value;
}
