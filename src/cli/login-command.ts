import { readFile } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import QRCode from 'qrcode';
import type { EnrollFinishView, EnrollStartView, SessionTokensView, WhoAmI } from '../api/schemas.js';
import { StrongroomClient } from '../client/strongroom-client.js';
import { envValue, type CliIo } from './cli-io.js';
import { withCommonOptions } from './common-options.js';
import { configFilePath, readConfigFile, removeConfigFile, writeConfigFile } from './config-file.js';
import {
  DEFAULT_URL,
  connect,
  resolveCredentials,
  sessionConfig,
  type CommonOptions,
  type Credentials,
} from './credentials.js';
import { errorCodeOf } from './exit-codes.js';
import { Output, terminalSafe } from './output.js';
import { printFields } from './print-fields.js';
import { PromptCancelled, prompterFor } from './prompter.js';
import { readToken } from './read-token.js';
import { formatScope } from './token-command.js';
import { parseTotpCode, readTotpCode } from './step-up.js';
import { UsageError } from './usage-error.js';

interface LoginOptions extends CommonOptions {
  readonly tokenStdin?: boolean;
  readonly username?: string;
  readonly recoveryCode?: boolean;
  /** `--invite` alone asks for the token; `--invite TOKEN` takes it. */
  readonly invite?: string | true;
  /** Sign in through this single sign-on provider. */
  readonly sso?: string;
  /** A file holding a workload identity token (JWT) to exchange. */
  readonly workloadTokenFile?: string;
}

const SSO_POLL_MS = 2000;

/** Single sign-on from a terminal: the browser does the provider's part, this process collects the session. */
async function ssoLogin(io: CliIo, out: Output, url: string, file: string, provider: string) {
  const client = new StrongroomClient({ url });
  const start = await client.startSso(provider);
  io.stderr.write(
    `open this URL in a browser to sign in with ${terminalSafe(provider)}:\n\n  ${terminalSafe(start.authorizationUrl)}\n\nwaiting for the sign-in to finish...\n`,
  );
  const deadline = Date.parse(start.expiresAt);
  for (;;) {
    const result = await client.pollSso(start.loginId, start.pollSecret);
    if (result.status === 'done') {
      const me = await new StrongroomClient({ url: client.url, token: result.tokens.accessToken }).whoami();
      const username = me.name ?? me.principal;
      await writeConfigFile(file, sessionConfig(client.url, username, result.tokens));
      out.result(sessionDocument(client.url, username, result.tokens, file, me), () =>
        out.line(`logged in to ${client.url} as ${username} (${me.authMethod}); session saved to ${file}`),
      );
      return;
    }
    if (Date.now() > deadline)
      throw new UsageError('the sign-in was not finished in time; run `strongroom login --sso` again');
    await new Promise((r) => setTimeout(r, SSO_POLL_MS));
  }
}

/** Workload identity federation: a CI or Kubernetes token exchanged for a short-lived Strongroom token. */
async function workloadLogin(out: Output, url: string, file: string, tokenFile: string) {
  const jwt = (await readFile(tokenFile, 'utf8')).trim();
  const client = new StrongroomClient({ url });
  const exchanged = await client.federate(jwt);
  await writeConfigFile(file, { url: client.url, token: exchanged.token });
  out.result(
    {
      url: client.url,
      serviceAccount: exchanged.serviceAccount,
      tokenId: exchanged.record.id,
      expiresAt: exchanged.record.expiresAt,
      configFile: file,
    },
    () =>
      out.line(
        `logged in to ${client.url} as service account ${exchanged.serviceAccount} until ${exchanged.record.expiresAt}; token saved to ${file}`,
      ),
  );
}

/** Where `login` goes: --url, $STRONGROOM_URL, the URL saved last time, the default. */
async function loginUrl(io: CliIo, options: LoginOptions, file: string): Promise<string> {
  return (
    options.url ??
    envValue(io, 'STRONGROOM_URL') ??
    (await readConfigFile(file).catch(() => undefined))?.url ??
    DEFAULT_URL
  );
}

/** Token login when a token is given, or piped without naming a user (`echo $TOKEN | strongroom login`). */
function wantsToken(io: CliIo, options: LoginOptions): boolean {
  if (options.token !== undefined || options.tokenStdin === true) return true;
  const person = options.username !== undefined || options.recoveryCode === true;
  return !person && !prompterFor(io).interactive;
}

/** On a terminal a mistyped answer is asked for again, up to three times; a script fails at once. */
async function withRetries<T>(
  io: CliIo,
  attempt: () => Promise<T>,
  retryable: (err: unknown) => boolean,
): Promise<T> {
  for (let tries = 1; ; tries++) {
    try {
      return await attempt();
    } catch (err) {
      const again = !(err instanceof PromptCancelled) && retryable(err) && prompterFor(io).interactive;
      if (!again || tries >= 3) throw err;
      io.stderr.write(`${terminalSafe(err instanceof Error ? err.message : String(err))}; try again\n`);
    }
  }
}

// ---- token login (service accounts, the bootstrap token) --------------------------------------------------

async function saveToken(io: CliIo, out: Output, url: string, file: string, options: LoginOptions) {
  const token = options.token ?? (await readToken(io));
  const client = new StrongroomClient({ url, token });
  // Verify before saving: a mistyped token never replaces a working one.
  const me = await client.whoami();
  await writeConfigFile(file, { url: client.url, token });
  out.result({ url: client.url, principal: me.principal, authMethod: me.authMethod, configFile: file }, () =>
    out.line(`logged in to ${client.url} as ${me.name ?? me.principal}; credentials saved to ${file}`),
  );
}

// ---- password login -------------------------------------------------------------------------------------

async function passwordLogin(io: CliIo, out: Output, url: string, file: string, options: LoginOptions) {
  const prompter = prompterFor(io);
  const username = options.username ?? (await prompter.ask('username: '));
  if (username === '') throw new UsageError('no username given');
  const password = await prompter.ask('password: ', { hidden: true, exact: true });
  const secondFactor =
    options.recoveryCode === true
      ? { recoveryCode: await prompter.ask('recovery code: ', { hidden: true }) }
      : { code: await readTotpCode(io) };
  const client = new StrongroomClient({ url });
  const tokens = await client.login({ username, password, ...secondFactor });
  await writeConfigFile(file, sessionConfig(client.url, username, tokens));
  const me = await new StrongroomClient({ url: client.url, token: tokens.accessToken }).whoami();
  out.result(sessionDocument(client.url, username, tokens, file, me), () =>
    out.line(`logged in to ${client.url} as ${username}; session saved to ${file}`),
  );
}

function sessionDocument(
  url: string,
  username: string,
  tokens: SessionTokensView,
  file: string,
  me?: WhoAmI,
): Record<string, unknown> {
  return {
    url,
    username,
    ...(me === undefined ? {} : { principal: me.principal, authMethod: me.authMethod }),
    sessionId: tokens.sessionId,
    accessExpiresAt: tokens.accessExpiresAt,
    refreshExpiresAt: tokens.refreshExpiresAt,
    configFile: file,
  };
}

// ---- enrolment with an invitation -----------------------------------------------------------------------

const MISMATCH = 'the passwords do not match';

/** Step 1: a new password, typed twice; a weak or mistyped one is asked for again on a terminal. */
function setPassword(io: CliIo, client: StrongroomClient, invite: string): Promise<EnrollStartView> {
  const prompter = prompterFor(io);
  return withRetries(
    io,
    async () => {
      const password = await prompter.ask('new password: ', { hidden: true, exact: true });
      if (password !== (await prompter.ask('new password again: ', { hidden: true, exact: true })))
        throw new UsageError(MISMATCH);
      return client.startEnrolment(invite, password);
    },
    (err) =>
      errorCodeOf(err) === 'invalid_password' || (err instanceof UsageError && err.message === MISMATCH),
  );
}

/** The TOTP secret as a QR code to scan (on a terminal), the otpauth URI, and the secret for manual entry. */
async function showAuthenticatorSetup(io: CliIo, start: EnrollStartView): Promise<void> {
  io.stderr.write(`\nadd ${terminalSafe(start.username)} to your authenticator app: scan the QR code, `);
  io.stderr.write('or enter the secret by hand (TOTP, SHA-1, 6 digits, 30 seconds)\n\n');
  // The QR code is drawn locally with its own colour escapes; it is never server text.
  if (io.stderr.isTTY === true) {
    const qr = await QRCode.toString(start.otpauthUri, { type: 'terminal', small: true });
    io.stderr.write(qr.endsWith('\n') ? qr : `${qr}\n`);
  }
  io.stderr.write(`  uri     ${terminalSafe(start.otpauthUri)}\n`);
  io.stderr.write(`  secret  ${terminalSafe(start.secret)}\n\n`);
}

/** Step 2: a code from the new authenticator proves it works; a wrong one is asked for again on a terminal. */
function proveAuthenticator(io: CliIo, client: StrongroomClient, invite: string): Promise<EnrollFinishView> {
  return withRetries(
    io,
    async () => client.finishEnrolment(invite, await readTotpCode(io, 'code from the app: ')),
    (err) => errorCodeOf(err) === 'unauthenticated' || err instanceof UsageError,
  );
}

function printRecoveryCodes(out: Output, codes: readonly string[]): void {
  out.line('recovery codes (each signs in once in place of a TOTP code):');
  for (const code of codes) out.line(`  ${code}`);
}

async function enrol(io: CliIo, out: Output, url: string, file: string, inviteArg: string | undefined) {
  const invite = inviteArg ?? (await prompterFor(io).ask('invitation token: ', { hidden: true }));
  if (invite === '') throw new UsageError('no invitation token given');
  const client = new StrongroomClient({ url });
  const start = await setPassword(io, client, invite);
  await showAuthenticatorSetup(io, start);
  const finish = await proveAuthenticator(io, client, invite);
  // The recovery codes exist only in this answer: show them before anything else can fail.
  out.result(
    {
      ...sessionDocument(client.url, start.username, finish.session, file),
      recoveryCodes: finish.recoveryCodes,
    },
    () => printRecoveryCodes(out, finish.recoveryCodes),
  );
  out.note(
    'store the recovery codes somewhere safe now (a password manager, or on paper): they are not shown again',
  );
  await writeConfigFile(file, sessionConfig(client.url, start.username, finish.session));
  if (!out.json)
    out.line(`enrolled and logged in to ${client.url} as ${start.username}; session saved to ${file}`);
}

// ---- logout and whoami ----------------------------------------------------------------------------------

/** Revoke the session behind the credentials; false when there is none (or it is already gone). */
async function revokeSession(io: CliIo, options: CommonOptions, credentials: Credentials): Promise<boolean> {
  // A token saved with `login --token-stdin` is not a session: it lives until it expires or is revoked.
  if (credentials.source === 'config' && credentials.saved?.session === undefined) return false;
  try {
    await (await connect(io, options)).logout();
    return true;
  } catch (err) {
    const code = errorCodeOf(err);
    // Expired or revoked already, or an API token, which has no session: nothing left to revoke.
    if (code === 'unauthenticated' || code === 'invalid_request') return false;
    throw err;
  }
}

function formatAge(iso: string): string {
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  return `${Math.floor(seconds / 3600)} h ago`;
}

function printWhoAmI(out: Output, url: string, me: WhoAmI): void {
  out.line(`${me.name ?? me.principal} (${me.authMethod}) at ${url}`);
  const rows: [string, string][] = [['principal', me.principal]];
  if (me.kind !== undefined) rows.push(['kind', me.kind]);
  if (me.groups !== undefined) rows.push(['groups', me.groups.length > 0 ? me.groups.join(', ') : '-']);
  if (me.scope !== undefined) rows.push(['scope', formatScope(me.scope)]);
  if (me.environment !== undefined) rows.push(['environment', me.environment ?? '-']);
  if (me.mfaAt !== undefined)
    rows.push([
      'mfa',
      me.mfaAt === null ? 'not verified in this session' : `verified ${formatAge(me.mfaAt)} (${me.mfaAt})`,
    ]);
  printFields(out, rows);
}

/** `strongroom login|logout|whoami` and `strongroom auth step-up`. */
export function registerLoginCommands(program: Command, io: CliIo): void {
  withCommonOptions(program.command('login'))
    .description(
      'sign in with username, password and TOTP code, accept an invitation, or save an API token; ' +
        'the credentials are saved to the config file (mode 0600)',
    )
    .option('--username <name>', 'sign in as this user (else asked for)')
    .addOption(
      new Option(
        '--recovery-code',
        'sign in with a single-use recovery code instead of a TOTP code',
      ).conflicts(['token', 'tokenStdin']),
    )
    .addOption(
      new Option(
        '--invite [token]',
        'accept an invitation: set a password and enrol an authenticator (the token is asked for when left out)',
      ).conflicts(['token', 'tokenStdin', 'recoveryCode']),
    )
    .addOption(
      new Option(
        '--sso <provider>',
        'sign in through a single sign-on provider (opens a browser flow)',
      ).conflicts(['token', 'tokenStdin', 'recoveryCode', 'invite']),
    )
    .addOption(
      new Option(
        '--workload-token-file <file>',
        'exchange a workload identity token (CI or Kubernetes OIDC token) for a short-lived token',
      ).conflicts(['token', 'tokenStdin', 'recoveryCode', 'invite', 'sso']),
    )
    .option(
      '--token-stdin',
      'save an API token (service account, bootstrap) read from stdin or a hidden prompt',
    )
    .action(async (options: LoginOptions) => {
      const file = configFilePath(io);
      const url = await loginUrl(io, options, file);
      const out = new Output(io, options.json === true);
      if (options.invite !== undefined)
        return enrol(io, out, url, file, options.invite === true ? undefined : options.invite);
      if (options.sso !== undefined) return ssoLogin(io, out, url, file, options.sso);
      if (options.workloadTokenFile !== undefined)
        return workloadLogin(out, url, file, options.workloadTokenFile);
      if (wantsToken(io, options)) return saveToken(io, out, url, file, options);
      return passwordLogin(io, out, url, file, options);
    });

  withCommonOptions(program.command('logout'))
    .description('revoke the session on the server and forget the saved credentials')
    .action(async (options: CommonOptions) => {
      const credentials = await resolveCredentials(io, options);
      const out = new Output(io, options.json === true);
      const { url } = credentials;
      if (credentials.token === undefined) {
        out.result({ url, sessionRevoked: false, configFile: null }, () =>
          out.line(`not logged in to ${url}`),
        );
        return;
      }
      const revoked = await revokeSession(io, options, credentials);
      const file = credentials.source === 'config' ? configFilePath(io) : undefined;
      if (file !== undefined) await removeConfigFile(file);
      out.result({ url, sessionRevoked: revoked, configFile: file ?? null }, () => {
        out.line(revoked ? `logged out of ${url}; the session is revoked` : `logged out of ${url}`);
        if (file !== undefined) out.line(`credentials removed from ${file}`);
      });
      if (!revoked && credentials.saved?.session === undefined && file !== undefined)
        out.note('the saved token was not a session and still works until it expires or is revoked');
    });

  withCommonOptions(program.command('whoami'))
    .description('show who the server thinks you are: principal, groups, scope, environment, MFA age')
    .action(async (options: CommonOptions) => {
      const client = await connect(io, options);
      const me = await client.whoami();
      const out = new Output(io, options.json === true);
      out.result({ url: client.url, ...me }, () => printWhoAmI(out, client.url, me));
    });

  const auth = program.command('auth').description('the current session');
  withCommonOptions(auth.command('step-up'))
    .description('verify a fresh TOTP code, so sensitive actions (keys rotate, audit prune, ...) are allowed')
    .option('--code <code>', 'the 6-digit code from your authenticator (else asked for)')
    .action(async (options: CommonOptions & { readonly code?: string }) => {
      const code = options.code === undefined ? undefined : parseTotpCode(options.code);
      const client = await connect(io, options);
      const result = await client.stepUp(code ?? (await readTotpCode(io)));
      const out = new Output(io, options.json === true);
      out.result(result, () => out.line(`second factor verified at ${result.mfaAt}`));
    });
}
