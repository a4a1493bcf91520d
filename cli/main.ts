/**
 * `keyrot`: the operator CLI over the same services as the Lambdas. `main` takes the argument list
 * and where to write, and returns the exit code: 0 nothing due / all done, 2 findings or actions
 * due, 1 failure or bad usage.
 */
import { ConfigError, NoSuchUserError } from '../lambda/domain/errors';
import type { AccountAccess, Logger, OrganizationDirectory } from '../lambda/ports';
import { describeError } from '../lambda/services/audit';
import { rotateUser } from '../lambda/services/rotate-user';
import {
  accountReport,
  applyAccount,
  CliIo,
  DoneUser,
  EXIT,
  FailedUser,
  readAccount,
  repairedCount,
  reportUnread,
  rotationDeps,
  usersDue,
} from './account';
import { CliOptions, COMMANDS, HELP, parseCli, RefusedError, UsageError } from './args';
import {
  connect,
  Connection,
  forWriting,
  memberAccess,
  organizationDirectory,
  readOnly,
  WriteConnection,
} from './connect';
import {
  memberConnection,
  memberWriting,
  openOneAccount,
  planOrganization,
  recordCliAccountRun,
  reportOrganization,
  requireAccountRuns,
  runOrganization,
} from './organization';
import {
  csv,
  OUTCOME_HEADERS,
  outcomeRows,
  PLAN_HEADERS,
  planRows,
  REPORT_HEADERS,
  reportCsvRows,
  table,
} from './output';
import {
  failureJson,
  leftBehindLines,
  outcomeJson,
  repairedSuffix,
  repairLines,
  rotateWithRepair,
} from './repair';

export { EXIT };
export type { CliIo };

/** How the CLI reaches AWS; tests swap in in-memory fakes. */
export interface Wiring {
  readonly connect: (options: CliOptions) => Promise<Connection>;
  readonly forWriting: (connection: Connection, options: CliOptions, command: string) => WriteConnection;
  /**
   * Organization mode: the organization's accounts (Organizations read calls), with the operator's
   * own credentials. Without it, organization mode is refused.
   */
  readonly organization?: (connection: Connection, options: CliOptions) => OrganizationDirectory;
  /**
   * Organization mode: opens a member account (its IAM and vault) through the member role
   * `memberRoleName`, assumed with the operator's own credentials.
   */
  readonly accountAccess?: (
    connection: Connection,
    options: CliOptions,
    memberRoleName: string,
  ) => AccountAccess;
}

export const AWS_WIRING: Wiring = {
  connect,
  forWriting,
  organization: organizationDirectory,
  accountAccess: memberAccess,
};

/** Attributes of a log line that say why, printed after its message (as --json shows them). */
const DETAIL_ATTRIBUTES = ['finding', 'reason', 'owner'] as const;

/**
 * The services' log lines on stderr, so that stdout stays the result: warnings and errors as one
 * readable line each, with the reason the service gave (the audit lines, for the Lambdas' log
 * groups, are not printed here).
 */
function terminalLogger(io: CliIo, withAccount = false): Logger {
  const write =
    (level: string) =>
    (text: string, fields: Record<string, unknown> = {}) => {
      // An audit line that reports a failure: its action, user and reason, not the whole entry. A
      // failed rotation is not: the command reports it with its result.
      const entry = fields.audit as Record<string, unknown> | undefined;
      if (entry?.action === 'rotation.failed') return;
      const message = typeof entry?.action === 'string' ? entry.action : text;
      const attributes = entry ?? fields;
      // In organization mode a user name alone does not say where: the account is named too.
      const account =
        withAccount && typeof attributes.accountId === 'string' ? `account ${attributes.accountId}` : '';
      const userName = typeof attributes.userName === 'string' ? `user ${attributes.userName}` : '';
      const where = [userName, account].filter((part) => part !== '').join(' in ');
      const user = where ? ` (${where})` : '';
      const details = DETAIL_ATTRIBUTES.flatMap((name) => {
        const value = attributes[name];
        if (typeof value !== 'string') return [];
        return [name === 'owner' ? `owner ${value}` : value];
      });
      const error = attributes.error as { name?: string; message?: string } | undefined;
      if (error && !details.includes(error.message ?? '')) details.push(`${error.name}: ${error.message}`);
      io.stderr.write(`keyrot: ${level}: ${message}${user}${details.map((text) => `: ${text}`).join('')}\n`);
    };
  const quiet = () => undefined;
  return { debug: quiet, info: quiet, warn: write('warning'), error: write('error') };
}

async function plan(options: CliOptions, io: CliIo, connection: Connection, logger: Logger): Promise<number> {
  const result = await readAccount(options, io, connection, logger);
  const due = usersDue(result);
  if (options.json) {
    const failures = result.failures.map(({ userName, error }) => ({
      userName,
      error: describeError(error),
    }));
    io.stdout.write(`${JSON.stringify({ ...result, failures }, null, 2)}\n`);
  } else {
    io.stdout.write(table(PLAN_HEADERS, planRows(result.users)));
    io.stdout.write(
      `\naccount ${result.accountId}: ${result.usersScanned} users, ${result.keysScanned} keys, ` +
        `${result.overdueKeys} over ${connection.settings.maxKeyAgeDays} days; ${due} user(s) with actions due ` +
        `(from the ${result.source})\n`,
    );
    for (const skipped of result.skipped) io.stdout.write(`skipped ${skipped.userName}: ${skipped.reason}\n`);
  }
  if (reportUnread(result)) return EXIT.failure;
  return due > 0 ? EXIT.due : EXIT.ok;
}

async function report(
  options: CliOptions,
  io: CliIo,
  connection: Connection,
  logger: Logger,
): Promise<number> {
  const result = await readAccount(options, io, connection, logger);
  const { rows, counts, findings } = accountReport(result, connection);
  if (options.format === 'json') {
    const summary = {
      accountId: result.accountId,
      generatedAt: result.plannedAt,
      maxKeyAgeDays: connection.settings.maxKeyAgeDays,
      usersScanned: result.usersScanned,
      keysScanned: result.keysScanned,
      counts,
      rows,
    };
    io.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  } else {
    io.stdout.write(csv(REPORT_HEADERS, reportCsvRows(rows)));
  }
  if (reportUnread(result)) return EXIT.failure;
  return findings > 0 ? EXIT.due : EXIT.ok;
}

function printOutcomes(
  options: CliOptions,
  io: CliIo,
  done: readonly DoneUser[],
  failures: readonly FailedUser[],
) {
  // Repaired users and what failed users leave behind: on stderr, in both modes (stdout is the result).
  for (const user of done) io.stderr.write(repairLines(user, user.userName));
  for (const user of failures) io.stderr.write(leftBehindLines(user.leftBehind ?? [], user.userName));
  if (options.json) {
    const outcomes = done.map(outcomeJson);
    io.stdout.write(`${JSON.stringify({ outcomes, failures: failures.map(failureJson) }, null, 2)}\n`);
    return;
  }
  io.stdout.write(table(OUTCOME_HEADERS, outcomeRows(done.map((user) => user.outcome))));
  for (const { userName, error } of failures) {
    const { name, message } = describeError(error);
    io.stdout.write(`FAILED ${userName}: ${name}: ${message}\n`);
  }
}

async function run(
  options: CliOptions,
  io: CliIo,
  connection: Connection,
  logger: Logger,
  wiring: Wiring,
): Promise<number> {
  if (!options.apply) return plan(options, io, connection, logger);
  const write = wiring.forWriting(connection, options, 'run');
  const applied = await applyAccount(options, io, write, logger);
  const { done, failures } = applied;
  printOutcomes(options, io, done, failures);
  if (!options.json) {
    io.stdout.write(
      `\n${done.length} user(s) done, ${failures.length} failed${repairedSuffix(repairedCount(applied))}\n`,
    );
  }
  return failures.length > 0 ? EXIT.failure : EXIT.ok;
}

/** The command's own mistakes, which main reports with their own messages, not as a user's failure. */
function isCommandError(error: unknown): boolean {
  return error instanceof UsageError || error instanceof RefusedError || error instanceof ConfigError;
}

async function rotate(
  options: CliOptions,
  io: CliIo,
  connection: Connection,
  logger: Logger,
  writeFor: () => WriteConnection,
  /** Called once the user is known to exist, before anything is written (organization mode records the account's run). */
  beforeWriting?: () => Promise<void>,
  /** Organization mode: the member role, named in what a failed rotation leaves behind. */
  memberRoleName?: string,
): Promise<number> {
  const userName = options.user!;
  const request = {
    accountId: connection.accountId,
    userName,
    dryRun: !options.apply,
    forceRotation: 'rotation requested by an operator (keyrot rotate)',
  };
  let done: DoneUser;
  if (options.apply) {
    const write = writeFor();
    // Taking the user's lock writes a ledger record: a name that is not a user gets none.
    try {
      await connection.iam.getUser(userName);
    } catch (error) {
      if (!(error instanceof NoSuchUserError)) throw error;
      io.stderr.write(
        `keyrot: user ${userName} does not exist in account ${connection.accountId}; nothing was changed\n`,
      );
      return EXIT.failure;
    }
    await beforeWriting?.();
    // An unknown outcome is repaired before the command exits, with the same lock holder (cli/repair.ts).
    const result = await rotateWithRepair(request, rotationDeps(write, options, logger), {
      accountId: connection.accountId,
      ...(memberRoleName ? { memberRoleName } : {}),
    });
    if (!('outcome' in result)) {
      if (isCommandError(result.error)) throw result.error;
      // The failure as main reports any other (stderr), after what it leaves behind; --json has it too.
      if (options.json) printOutcomes(options, io, [], [result]);
      else io.stderr.write(leftBehindLines(result.leftBehind, userName));
      io.stderr.write(`keyrot: failed: ${describeError(result.error).message}\n`);
      return EXIT.failure;
    }
    done = result;
  } else {
    const outcome = await rotateUser(request, rotationDeps(readOnly(connection), options, logger));
    done = { userName, outcome, attempts: 1 };
  }
  const outcome = done.outcome;
  printOutcomes(options, io, [done], []);
  const rotates = (outcome.plan?.actions ?? []).some((action) => action.kind === 'rotate');
  if (outcome.status === 'user-gone') {
    io.stderr.write(`keyrot: user ${userName} does not exist\n`);
    return EXIT.failure;
  }
  if (!rotates && !outcome.performed.some((action) => action.kind === 'rotate')) {
    const plan = outcome.plan;
    const why = !plan?.inScope
      ? 'the user is outside includePaths/excludePaths'
      : plan.exemption?.applies
        ? `the user is exempt (${plan.exemption.reason})`
        : plan.keys.filter((key) => key.status === 'Active').length === 0
          ? 'the user has no active key (a user without one is never given one)'
          : 'the user has two active keys; the older one must be deactivated first';
    io.stderr.write(`keyrot: ${userName} was not rotated: ${why}\n`);
    return EXIT.failure;
  }
  if (!options.apply) {
    if (!options.json) io.stdout.write('\ndry run: nothing was changed; add --apply to rotate\n');
    return EXIT.due;
  }
  // Due, but refused on the way (a secret under our name that is not ours, or one Secrets Manager
  // rotates itself, or one scheduled for deletion): the key the operator wants replaced is unchanged.
  if (!outcome.performed.some((action) => action.kind === 'rotate')) {
    const refused = outcome.performed.find((action) => action.kind === 'refused');
    io.stderr.write(
      `keyrot: ${userName} was not rotated: ${refused?.detail ?? 'no rotation took place'}; its key is unchanged\n`,
    );
    return EXIT.failure;
  }
  return EXIT.ok;
}

/**
 * rotate --accounts ID: the user of that member account, through its member role. The write side is
 * checked (resources, the identity that may write secrets) before the account is opened.
 */
async function rotateInAccount(
  options: CliOptions,
  io: CliIo,
  connection: Connection,
  logger: Logger,
  wiring: Wiring,
): Promise<number> {
  const write = options.apply ? wiring.forWriting(connection, options, 'rotate') : undefined;
  const accountRuns = write ? requireAccountRuns(write.ledger, 'rotate') : undefined;
  const opened = await openOneAccount(options, io, connection, wiring);
  if (!opened) return EXIT.failure;
  const { ports, runId, memberRoleName } = opened;
  return rotate(
    options,
    io,
    memberConnection(connection, ports),
    logger,
    () => memberWriting(write!, ports),
    // The account's run is recorded before the rotation writes anything (see recordCliAccountRun).
    async () => {
      await recordCliAccountRun(accountRuns!, ports.accountId, runId, [options.user!], write!.clock.now());
    },
    memberRoleName,
  );
}

/**
 * Without the ledger the plan cannot tell the service's own work from anyone else's. Said once, on
 * stderr, so that a reader does not take the service's rotated pairs for conflicts.
 */
function warnWithoutLedger(io: CliIo, connection: Connection): void {
  if (connection.resources.table) return;
  io.stderr.write(
    'keyrot: warning: no ledger (pass --stack NAME, or --table NAME): what the service remembers is not read, so ' +
      'keys it rotated and whose old key is still in grace show as "conflict" (two active keys it did not create), ' +
      'and grace, deactivation and deletion dates are unknown (an inactive key is counted from today)\n',
  );
}

export async function main(argv: readonly string[], io: CliIo, wiring: Wiring = AWS_WIRING): Promise<number> {
  let options: CliOptions;
  try {
    options = parseCli(argv);
  } catch (error) {
    const command = COMMANDS.find((name) => argv.includes(name));
    io.stderr.write(
      `keyrot: ${(error as Error).message}\nRun "keyrot${command ? ` ${command}` : ''} --help" for usage.\n`,
    );
    return EXIT.failure;
  }
  if (options.help || options.command === undefined) {
    io.stdout.write(`${HELP[options.command ?? 'main']}\n`);
    return options.help ? EXIT.ok : EXIT.failure;
  }
  const logger = terminalLogger(io, options.organization !== undefined);
  try {
    const connection = await wiring.connect(options);
    if (!options.apply) warnWithoutLedger(io, connection);
    if (options.organization) {
      switch (options.command) {
        case 'plan':
          return await planOrganization(options, io, connection, logger, wiring);
        case 'report':
          return await reportOrganization(options, io, connection, logger, wiring);
        case 'run':
          return await runOrganization(options, io, connection, logger, wiring);
        case 'rotate':
          return await rotateInAccount(options, io, connection, logger, wiring);
      }
    }
    switch (options.command) {
      case 'plan':
        return await plan(options, io, connection, logger);
      case 'report':
        return await report(options, io, connection, logger);
      case 'run':
        return await run(options, io, connection, logger, wiring);
      case 'rotate':
        return await rotate(options, io, connection, logger, () =>
          wiring.forWriting(connection, options, 'rotate'),
        );
    }
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`keyrot: ${error.message}\nRun "keyrot ${options.command} --help" for usage.\n`);
    } else if (error instanceof RefusedError || error instanceof ConfigError) {
      io.stderr.write(`keyrot: ${error.message}\n`);
    } else {
      const { message } = describeError(error);
      io.stderr.write(`keyrot: failed: ${message}\n`);
      if (/ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|TimeoutError|getaddrinfo/.test(message)) {
        io.stderr.write(
          'keyrot: AWS could not be reached: check --region and the network, and AWS_ENDPOINT_URL if it is set\n',
        );
      } else if (
        /CredentialsProviderError|Could not load credentials|ProfileNotFound|could not resolve credentials/i.test(
          message,
        )
      ) {
        io.stderr.write(
          'keyrot: no AWS credentials: pass --profile NAME (or set AWS_PROFILE), run `aws sso login` for an SSO profile, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY\n',
        );
      } else if (/DescribeStacks.*does not exist/.test(message)) {
        io.stderr.write(
          'keyrot: no such stack here: check --stack (the deployed stack name), --region and --profile, or deploy it first\n',
        );
      }
    }
    return EXIT.failure;
  }
}
