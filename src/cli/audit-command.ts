import { createReadStream } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import type { AuditEventView, AuditSearchQuery } from '../api/schemas.js';
import {
  parseConsistencyProof,
  parseInclusionProof,
  verifyConsistencyProof,
  verifyInclusionProof,
} from '../audit/audit-proof.js';
import type { AuditExportBase } from '../audit/audit-export.js';
import { verifyExport, type ExportVerdict } from '../audit/export-verifier.js';
import { FileExistsError } from '../client/file-exists-error.js';
import { StrongroomError } from '../core/errors.js';
import type { CliIo } from './cli-io.js';
import { wholeNumber, withCommonOptions } from './common-options.js';
import { connect, type CommonOptions } from './credentials.js';
import { Output } from './output.js';
import { UsageError } from './usage-error.js';

interface SearchOptions extends CommonOptions {
  actor?: string;
  action?: string;
  resource?: string;
  outcome?: 'succeeded' | 'failed';
  since?: string;
  until?: string;
  after?: number;
  limit?: number;
}

interface KeyOptions {
  key?: string;
  keyFile?: string;
}

const FOLLOW_WAIT_SECONDS = 30;

/** `strongroom audit search|tail|export|verify|proof|checkpoint|prune` (docs/cli.md, docs/audit.md). */
export function registerAuditCommands(program: Command, io: CliIo): void {
  const audit = program.command('audit').description('the tamper-evident audit log (auditor role)');

  withCommonOptions(audit.command('search'))
    .description('search events by actor, action, resource, outcome and time')
    .option('--actor <id>', 'principal id')
    .option('--action <action>', 'action, such as version:download')
    .option('--resource <ref>', 'resource reference; a trailing * matches a prefix (vision/*)')
    .option('--outcome <outcome>', 'succeeded or failed')
    .option('--since <time>', 'RFC 3339 time, inclusive')
    .option('--until <time>', 'RFC 3339 time, exclusive')
    .option(
      '--after <seq>',
      'continue after this sequence number (the previous `next`)',
      wholeNumber(0, 2 ** 53 - 1),
    )
    .option('--limit <n>', 'at most this many events', wholeNumber(1, 1000))
    .action(async (options: SearchOptions) => {
      if (options.outcome !== undefined && options.outcome !== 'succeeded' && options.outcome !== 'failed')
        throw new UsageError('--outcome is succeeded or failed');
      const client = await connect(io, options);
      const page = await client.searchAudit(searchQuery(options));
      const out = new Output(io, options.json === true);
      out.result(page, () => {
        out.table(['SEQ', 'TIME', 'ACTOR', 'ACTION', 'RESOURCE', 'OUTCOME'], page.items.map(row));
        if (page.items.length > 0) out.line(`next: --after ${page.next}`);
      });
    });

  withCommonOptions(audit.command('tail'))
    .description('print the latest events; with -f keep printing new ones as they are committed')
    .option('-n, --lines <n>', 'how many of the latest events to print first', wholeNumber(0, 1000), 10)
    .option('-f, --follow', 'wait for new events')
    .action(async (options: CommonOptions & { lines: number; follow?: boolean }) => {
      const client = await connect(io, options);
      const latest = await client.auditCheckpoint().catch(() => ({ size: 0 }));
      let after = Math.max(0, latest.size - options.lines);
      const print = (events: readonly AuditEventView[]) => {
        for (const event of events) {
          if (options.json === true) io.stdout.write(`${JSON.stringify(event)}\n`);
          else new Output(io, false).line(row(event).join('  '));
        }
      };
      for (;;) {
        const page = await client.searchAudit({
          after,
          limit: 1000,
          ...(options.follow === true ? { wait: FOLLOW_WAIT_SECONDS } : {}),
        });
        print(page.items);
        after = page.next;
        if (options.follow !== true && page.items.length < 1000) return;
      }
    });

  withCommonOptions(audit.command('export'))
    .description('write the retained log with its signed checkpoints as JSON lines, for `audit verify`')
    .requiredOption('-o, --output <file>', 'file to create (never overwritten)')
    .action(async (options: CommonOptions & { output: string }) => {
      const client = await connect(io, options);
      const file = await open(options.output, 'wx', 0o600).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'EEXIST')
          throw new FileExistsError(options.output, `${options.output} exists; choose another name`);
        throw err;
      });
      try {
        await pipeline(await client.exportAudit(), file.createWriteStream());
      } finally {
        await file.close().catch(() => undefined);
      }
      const verdict = await verifyExport(linesOf(options.output));
      const out = new Output(io, options.json === true);
      out.result({ file: options.output, verdict }, () => {
        if (verdict.ok) {
          out.line(
            `exported events ${verdict.first}..${verdict.last} with ${verdict.checkpoints} checkpoints`,
          );
          out.line(
            `to ${options.output}; check it with \`strongroom audit verify ${options.output} --key ...\``,
          );
        }
      });
      if (!verdict.ok) throw failure(verdict, options.output);
    });

  audit
    .command('verify')
    .description('check exports offline: chain, Merkle tree, checkpoint signatures, outside checkpoints')
    .argument('<files...>', 'exports in order (an archive, then what followed it)')
    .option('--key <vkey>', 'the log verifier key you trust (C2SP signed-note format)')
    .option('--key-file <file>', 'read the trusted verifier key from a file')
    .option('--checkpoints <file>', 'checkpoints kept outside the server (a checkpoint sink file, or a note)')
    .option('--json', 'print the verdicts as one JSON document')
    .action(async (files: string[], options: KeyOptions & { checkpoints?: string; json?: boolean }) => {
      const out = new Output(io, options.json === true);
      const verifierKey = await trustedKey(options);
      const trustedCheckpoints = options.checkpoints ? await readCheckpoints(options.checkpoints) : [];
      const verdicts: { file: string; verdict: ExportVerdict }[] = [];
      let previous: AuditExportBase | undefined;
      for (const file of files) {
        const verdict = await verifyExport(linesOf(file), { verifierKey, trustedCheckpoints, previous });
        verdicts.push({ file, verdict });
        if (!verdict.ok) break;
        previous = verdict.end;
      }
      out.result(verdicts, () => {
        for (const { file, verdict } of verdicts) {
          if (!verdict.ok) continue;
          out.line(
            `${file}: ok, events ${verdict.first}..${verdict.last}, ${verdict.checkpoints} checkpoints` +
              (verdict.trusted > 0 ? `, ${verdict.trusted} outside checkpoints matched` : ''),
          );
          if (verdict.uncheckpointedTail > 0)
            out.line(`  ${verdict.uncheckpointedTail} events after the last checkpoint are not yet signed`);
          for (const u of verdict.unchecked)
            out.line(`  outside checkpoint at size ${u.size} precedes this file and was not checked`);
        }
      });
      const failed = verdicts.find((v) => !v.verdict.ok);
      if (failed && !failed.verdict.ok) throw failure(failed.verdict, failed.file);
      if (verifierKey === undefined)
        io.stderr.write(
          'warning: no --key given: signatures were checked against the key inside the export, which proves ' +
            'nothing about who wrote it; pass the verifier key you trust\n',
        );
    });

  withCommonOptions(audit.command('proof'))
    .description('fetch and check a proof: --inclusion SEQ, or --consistency OLD [NEW]')
    .option('--inclusion <seq>', 'prove event SEQ is in the log', wholeNumber(1, 2 ** 53 - 1))
    .option(
      '--size <n>',
      'against the checkpoint of this size (default: the latest)',
      wholeNumber(1, 2 ** 53 - 1),
    )
    .option('--consistency <sizes...>', 'prove the log of OLD events is a prefix of NEW (default: latest)')
    .option('--key <vkey>', 'the log verifier key you trust')
    .option('--key-file <file>', 'read the trusted verifier key from a file')
    .action(
      async (
        options: CommonOptions & KeyOptions & { inclusion?: number; size?: number; consistency?: string[] },
      ) => {
        if ((options.inclusion === undefined) === (options.consistency === undefined))
          throw new UsageError('give exactly one of --inclusion SEQ or --consistency OLD [NEW]');
        const client = await connect(io, options);
        let key = await trustedKey(options);
        if (key === undefined) {
          key = (await client.auditCheckpoint()).verifierKey;
          io.stderr.write(
            'warning: no --key given: the proof was checked against the key the server states\n',
          );
        }
        const out = new Output(io, options.json === true);
        if (options.inclusion !== undefined) {
          const proof = parseInclusionProof(
            await client.auditInclusionProof(options.inclusion, options.size),
          );
          const verdict = verifyInclusionProof(proof, key, proof.event);
          out.result({ proof, verdict }, () => {
            if (verdict.ok)
              out.line(
                `event ${verdict.seq} is in the signed tree of ${verdict.treeSize} (root ${verdict.root})`,
              );
          });
          if (!verdict.ok)
            throw new StrongroomError('integrity_error', `inclusion proof rejected: ${verdict.reason}`);
          return;
        }
        const [oldText, newText, ...rest] = options.consistency ?? [];
        if (rest.length > 0) throw new UsageError('--consistency takes OLD and optionally NEW');
        const oldSize = wholeNumber(0, 2 ** 53 - 1)(oldText ?? '');
        const newSize = newText === undefined ? undefined : wholeNumber(1, 2 ** 53 - 1)(newText);
        const proof = parseConsistencyProof(await client.auditConsistencyProof(oldSize, newSize));
        const verdict = verifyConsistencyProof(proof, key);
        out.result({ proof, verdict }, () => {
          if (verdict.ok)
            out.line(
              `the log of ${verdict.oldSize} events is a prefix of the signed log of ${verdict.newSize}`,
            );
        });
        if (!verdict.ok)
          throw new StrongroomError('integrity_error', `consistency proof rejected: ${verdict.reason}`);
      },
    );

  withCommonOptions(audit.command('checkpoint'))
    .description('print the latest signed checkpoint and the verifier key (keep copies outside the server)')
    .action(async (options: CommonOptions) => {
      const client = await connect(io, options);
      const view = await client.auditCheckpoint();
      const out = new Output(io, options.json === true);
      out.result(view, () => {
        out.line(`verifier key: ${view.verifierKey}`);
        io.stdout.write(view.note);
      });
    });

  withCommonOptions(audit.command('prune'))
    .description('archive events older than N days (through the last checkpoint before then) and prune them')
    .requiredOption('--older-than <days>', 'age in days', wholeNumber(0, 36500))
    .action(async (options: CommonOptions & { olderThan: number }) => {
      const client = await connect(io, options);
      const result = await client.pruneAudit(options.olderThan);
      const out = new Output(io, options.json === true);
      out.result(result, () =>
        out.line(
          result.pruned
            ? `archived events ${result.from}..${result.through} to ${result.archive} (sha256 ${result.sha256}) and pruned them`
            : 'nothing to prune: no checkpointed events are that old',
        ),
      );
    });
}

function searchQuery(o: SearchOptions): AuditSearchQuery {
  const query: Record<string, string | number> = {};
  for (const key of ['actor', 'action', 'resource', 'outcome', 'since', 'until', 'after', 'limit'] as const) {
    const value = o[key];
    if (value !== undefined) query[key] = value;
  }
  return query as AuditSearchQuery;
}

function row(e: AuditEventView): string[] {
  return [
    String(e.seq),
    e.time,
    e.actor.id ?? `(${e.actor.type})`,
    e.action,
    e.resource ?? '-',
    e.outcome === 'failed' ? `failed ${e.errorCode ?? ''}`.trim() : e.outcome,
  ];
}

async function* linesOf(file: string): AsyncGenerator<string> {
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  for await (const line of lines) yield line;
}

async function trustedKey(options: KeyOptions): Promise<string | undefined> {
  if (options.key !== undefined && options.keyFile !== undefined)
    throw new UsageError('give --key or --key-file, not both');
  if (options.keyFile !== undefined) return (await readFile(options.keyFile, 'utf8')).trim();
  return options.key;
}

/** A checkpoint sink file (JSON lines with `note`), or one signed note as plain text. */
async function readCheckpoints(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8');
  if (!text.trimStart().startsWith('{')) return [text];
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const parsed = JSON.parse(l) as { note?: unknown };
      if (typeof parsed.note !== 'string') throw new UsageError(`${file}: a line has no checkpoint note`);
      return parsed.note;
    });
}

function failure(verdict: ExportVerdict & { ok: false }, file: string): StrongroomError {
  const range = verdict.range
    ? ` (somewhere in events ${verdict.range.after + 1}..${verdict.range.upTo})`
    : '';
  return new StrongroomError(
    'integrity_error',
    `${file}: verification failed at position ${verdict.position}${range}, line ${verdict.line}: ${verdict.reason}`,
    { details: { code: verdict.code, position: verdict.position, line: verdict.line } },
  );
}
