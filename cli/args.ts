/** Command-line parsing for `keyrot`: flags, their validation, and the help texts. */
import { parseArgs } from 'node:util';
import { ConfigError } from '../lambda/domain/errors';
import { ACCOUNT_ID, OU_ID, resolveOrganizationSettings, ROOT_ID } from '../lambda/domain/organization';
import { MAX_DAYS } from '../lambda/domain/settings';

/** A mistake in how the command was called: printed with a pointer to --help, exit code 1. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/**
 * The command was well formed but must not go ahead (wrong account, wrong identity, no region):
 * printed as is, exit code 1, before anything was written.
 */
export class RefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RefusedError';
  }
}

export const COMMANDS = ['plan', 'run', 'rotate', 'report'] as const;
export type CommandName = (typeof COMMANDS)[number];

/**
 * Organization mode (--org, --accounts, --ou, --role-name): the command covers member accounts of the
 * organization, each opened through its member role, instead of the credentials' own account.
 */
export interface OrganizationFlags {
  /** --accounts: these accounts, without discovery (no Organizations call). */
  readonly accounts?: readonly string[];
  /** --ou: discover the accounts under these OUs or roots (instead of the stack's includeOus). */
  readonly includeOus?: readonly string[];
  /** --role-name: the member role (default: the stack's memberRoleName, else iam-key-rotation-member). */
  readonly memberRoleName?: string;
}

export interface CliOptions {
  readonly command: CommandName | undefined;
  readonly help: boolean;
  readonly json: boolean;
  readonly apply: boolean;
  readonly user?: string;
  readonly format: 'csv' | 'json';
  readonly profile?: string;
  readonly region?: string;
  readonly accountId?: string;
  readonly stack?: string;
  readonly table?: string;
  readonly topicArn?: string;
  readonly secretPrefix?: string;
  readonly kmsKeyArn?: string;
  readonly adminRoleArn?: string;
  readonly rotatorRoleArn?: string;
  /** The stack's secretReaderArns (`none` gives an empty list). */
  readonly secretReaderArns?: readonly string[];
  readonly configFile?: string;
  readonly subscribeOwners: boolean;
  /** How many users plan, run and report work on at once (--concurrency). */
  readonly concurrency: number;
  /** Rotation settings given as flags, by setting name (validated later with the construct's rules). */
  readonly settings: Readonly<Record<string, unknown>>;
  /** Set by any of --org, --accounts, --ou, --role-name; undefined: the credentials' own account. */
  readonly organization?: OrganizationFlags;
}

/**
 * Setting flags: --flag-name -> setting name, whether it takes a number or repeats, and for numbers
 * the smallest value and an example (the largest is the construct's MAX_DAYS for every day setting).
 */
const SETTING_FLAGS = {
  'rotate-after-days': { setting: 'rotateAfterDays', kind: 'days', min: 0, example: 80 },
  'warn-days': { setting: 'warnDays', kind: 'days', min: 0, example: 4 },
  'grace-days': { setting: 'graceDays', kind: 'days', min: 0, example: 7 },
  'max-key-age-days': { setting: 'maxKeyAgeDays', kind: 'days', min: 0, example: 90 },
  'delete-after-days': { setting: 'deleteAfterDays', kind: 'days', min: 0, example: 14 },
  // 0 would reap every key at once; leaving the flag out turns reaping off.
  'reap-unused-days': { setting: 'reapUnusedDays', kind: 'days', min: 1, example: 45 },
  'exemption-tag': { setting: 'exemptionTag', kind: 'text' },
  'owner-tag': { setting: 'ownerTag', kind: 'text' },
  'include-path': { setting: 'includePaths', kind: 'list' },
  'exclude-path': { setting: 'excludePaths', kind: 'list' },
} as const;

const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  json: { type: 'boolean' },
  apply: { type: 'boolean' },
  user: { type: 'string' },
  format: { type: 'string' },
  profile: { type: 'string' },
  region: { type: 'string' },
  'account-id': { type: 'string' },
  stack: { type: 'string' },
  table: { type: 'string' },
  'topic-arn': { type: 'string' },
  'secret-prefix': { type: 'string' },
  'kms-key-arn': { type: 'string' },
  'admin-role-arn': { type: 'string' },
  'rotator-role-arn': { type: 'string' },
  'secret-reader-arns': { type: 'string' },
  config: { type: 'string' },
  'no-subscribe': { type: 'boolean' },
  concurrency: { type: 'string' },
  org: { type: 'boolean' },
  accounts: { type: 'string', multiple: true },
  ou: { type: 'string', multiple: true },
  'role-name': { type: 'string' },
  ...Object.fromEntries(
    Object.entries(SETTING_FLAGS).map(([flag, { kind }]) => [
      flag,
      kind === 'list' ? { type: 'string', multiple: true } : { type: 'string' },
    ]),
  ),
} as const;

const VALUE_OPTIONS = new Set(
  Object.entries(OPTIONS as Record<string, { type: string }>)
    .filter(([, option]) => option.type === 'string')
    .map(([name]) => `--${name}`),
);

/**
 * Node's parser takes `--grace-days -1` for a flag followed by another option and answers in its own
 * words. A value that looks like a negative number is joined to its flag (`--grace-days=-1`) so that
 * our validation names the allowed range; a flag left without its value is named here.
 */
function joinValues(argv: readonly string[]): string[] {
  const args: string[] = [];
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index]!;
    if (arg === '--') {
      args.push(...argv.slice(index));
      break;
    }
    if (!VALUE_OPTIONS.has(arg)) {
      args.push(arg);
      continue;
    }
    const value = argv[index + 1];
    if (value === undefined || (value.startsWith('-') && !/^-\d/.test(value))) {
      throw new UsageError(
        `${arg} needs a value${value === undefined ? '' : ` (it is followed by ${value})`}; e.g. ${arg} ${exampleFor(arg)}`,
      );
    }
    args.push(`${arg}=${value}`);
    index++;
  }
  return args;
}

function exampleFor(flag: string): string {
  const name = flag.slice(2);
  const setting = SETTING_FLAGS[name as keyof typeof SETTING_FLAGS];
  if (setting && 'example' in setting) return String(setting.example);
  const examples: Record<string, string> = {
    user: 'NAME',
    format: 'json',
    region: 'eu-west-1',
    'account-id': '111122223333',
    stack: 'IamKeyRotation',
    config: 'settings.json',
    concurrency: String(CONCURRENCY.default),
    accounts: '111122223333,444455556666',
    ou: 'ou-ab12-cdef3456',
    'role-name': 'iam-key-rotation-member',
  };
  return examples[name] ?? (name.endsWith('-arn') ? 'ARN' : 'VALUE');
}

/** A day flag's value: a whole number in the setting's range, else an error naming flag and range. */
function daysValue(flag: string, text: string, min: number, example: number): number {
  const value = /^-?\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value) || value < min || value > MAX_DAYS) {
    throw new UsageError(
      `--${flag} must be a whole number of days from ${min} to ${MAX_DAYS} (got "${text}"); e.g. --${flag} ${example}`,
    );
  }
  return value;
}

/**
 * Users worked on at once. IAM's request quotas are per account (the SDK's adaptive retries slow
 * down when throttled), and the SDK's HTTP handler keeps at most 50 sockets per client: 64 users,
 * one or two calls in flight each, is already more than either rewards.
 */
export const CONCURRENCY = { default: 8, min: 1, max: 64 } as const;

/** --concurrency: a whole number in range, else an error naming the flag and the range. */
function concurrencyValue(text: string | undefined): number {
  if (text === undefined) return CONCURRENCY.default;
  const value = /^-?\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value) || value < CONCURRENCY.min || value > CONCURRENCY.max) {
    throw new UsageError(
      `--concurrency must be a whole number of users from ${CONCURRENCY.min} to ${CONCURRENCY.max} (got "${text}"); e.g. --concurrency ${CONCURRENCY.default}`,
    );
  }
  return value;
}

export function parseCli(argv: readonly string[]): CliOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: joinValues(argv),
      options: OPTIONS as never,
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const text = error instanceof Error ? error.message : String(error);
    const unknown = /Unknown option '([^']+)'/.exec(text);
    const noValue = /Option '([^' ]+)' does not take an argument/.exec(text);
    throw new UsageError(
      unknown
        ? `unknown option ${unknown[1]}`
        : noValue
          ? `${noValue[1]} takes no value; write it alone`
          : text.replace(/^.*TypeError \[[A-Z_]+\]: /, ''),
    );
  }
  const values = parsed.values as Record<string, string | boolean | string[] | undefined>;
  const [commandWord, ...extra] = parsed.positionals;
  if (commandWord !== undefined && !COMMANDS.includes(commandWord as CommandName)) {
    throw new UsageError(`unknown command "${commandWord}"; commands are ${COMMANDS.join(', ')}`);
  }
  if (extra.length > 0) throw new UsageError(`unexpected argument(s) ${extra.join(' ')}`);
  const command = commandWord as CommandName | undefined;

  const settings: Record<string, unknown> = {};
  for (const [flag, definition] of Object.entries(SETTING_FLAGS)) {
    const value = values[flag];
    if (value === undefined) continue;
    settings[definition.setting] =
      definition.kind === 'days' ? daysValue(flag, String(value), definition.min, definition.example) : value;
  }

  const format = (values.format as string | undefined) ?? (values.json ? 'json' : 'csv');
  if (format !== 'csv' && format !== 'json')
    throw new UsageError(`--format must be csv or json (got "${format}")`);
  if (values.format !== undefined && command !== 'report')
    throw new UsageError('--format is for the report command; use --json');
  // report --json is report --format json; only a contradiction is refused.
  if (values.json && format !== 'json')
    throw new UsageError(`--json contradicts --format ${format}; pass one of them`);
  const user = values.user as string | undefined;
  if (command === 'rotate' && !values.help && (user === undefined || user.trim() === '')) {
    throw new UsageError('rotate needs --user NAME');
  }
  if (user !== undefined && command !== 'rotate') throw new UsageError('--user is for the rotate command');
  if (values.apply && (command === 'plan' || command === 'report')) {
    throw new UsageError(`${command} is read-only; --apply is for run and rotate`);
  }
  const concurrency = concurrencyValue(values.concurrency as string | undefined);
  if (values.concurrency !== undefined && command === 'rotate') {
    throw new UsageError('--concurrency is for plan, run and report; rotate works on one user');
  }
  const adminRoleArn = roleArnFlag(values, 'admin-role-arn');
  const rotatorRoleArn = roleArnFlag(values, 'rotator-role-arn');
  const secretReaderArns = readerArnsFlag(values['secret-reader-arns'] as string | undefined);
  const accountId = values['account-id'] as string | undefined;
  if (accountId !== undefined && !/^\d{12}$/.test(accountId)) {
    throw new UsageError(`--account-id must be 12 digits (got "${accountId}")`);
  }
  const organization = organizationFlags(values, command, values.help === true);
  if (organization && accountId !== undefined) {
    throw new UsageError(
      '--account-id checks the account of your credentials and is for one account; in organization mode name the member accounts with --accounts ID,ID',
    );
  }

  return {
    command,
    help: values.help === true,
    json: values.json === true,
    apply: values.apply === true,
    user,
    format,
    profile: values.profile as string | undefined,
    region: values.region as string | undefined,
    accountId,
    stack: values.stack as string | undefined,
    table: values.table as string | undefined,
    topicArn: values['topic-arn'] as string | undefined,
    secretPrefix: values['secret-prefix'] as string | undefined,
    kmsKeyArn: values['kms-key-arn'] as string | undefined,
    adminRoleArn,
    rotatorRoleArn,
    ...(secretReaderArns ? { secretReaderArns } : {}),
    configFile: values.config as string | undefined,
    subscribeOwners: values['no-subscribe'] !== true,
    concurrency,
    settings,
    ...(organization ? { organization } : {}),
  };
}

/** Ids given as repeated flags and/or separated by commas, in order, without repeats. */
function idsOf(values: readonly string[]): string[] {
  const ids = values.flatMap((value) => value.split(',')).map((id) => id.trim());
  return [...new Set(ids)];
}

/** --org, --accounts, --ou, --role-name: validated here, with the Organizations API's id patterns. */
function organizationFlags(
  values: Record<string, unknown>,
  command: CommandName | undefined,
  help: boolean,
): OrganizationFlags | undefined {
  const org = values.org === true;
  const accountsFlag = values.accounts as string[] | undefined;
  const ouFlag = values.ou as string[] | undefined;
  const roleName = values['role-name'] as string | undefined;
  if (!org && accountsFlag === undefined && ouFlag === undefined && roleName === undefined) return undefined;

  let accounts: string[] | undefined;
  if (accountsFlag !== undefined) {
    accounts = idsOf(accountsFlag);
    const bad = accounts.filter((id) => !ACCOUNT_ID.test(id));
    if (bad.length > 0 || accounts.length === 0) {
      throw new UsageError(
        `--accounts must be 12-digit account ids separated by commas, such as --accounts 111122223333,444455556666 (got "${accountsFlag.join(',')}"${bad.length > 0 ? `; not an account id: ${bad.map((id) => `"${id}"`).join(', ')}` : ''})`,
      );
    }
  }
  let includeOus: string[] | undefined;
  if (ouFlag !== undefined) {
    includeOus = idsOf(ouFlag);
    const bad = includeOus.filter((id) => !OU_ID.test(id) && !ROOT_ID.test(id));
    if (bad.length > 0 || includeOus.length === 0) {
      throw new UsageError(
        `--ou must be an OU id such as ou-ab12-cdef3456 or a root id such as r-ab12 (repeatable, or separated by commas) (got "${ouFlag.join(',')}"${bad.length > 0 ? `; not an OU or root id: ${bad.map((id) => `"${id}"`).join(', ')}` : ''})`,
      );
    }
  }
  if (accounts && includeOus) {
    throw new UsageError(
      '--accounts names the accounts without discovery, so --ou does not apply: give one of --accounts or --ou',
    );
  }
  if (roleName !== undefined) {
    try {
      resolveOrganizationSettings({ memberRoleName: roleName });
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      throw new UsageError(
        `--role-name must be an IAM role name (1-64 letters, digits or +=,.@_-, no path) (got "${roleName}"); e.g. --role-name iam-key-rotation-member`,
      );
    }
  }
  // rotate acts on one user of one account: the account is named, never discovered.
  if (command === 'rotate' && !help && (accounts === undefined || accounts.length !== 1)) {
    throw new UsageError(
      accounts === undefined
        ? `rotate works on one user of one account: name the member account with --accounts ID${org || includeOus ? ' (not --org or --ou)' : ''}`
        : `rotate works on one user of one account: give --accounts exactly one account id (got ${accounts.length})`,
    );
  }
  if (command === 'rotate' && (org || includeOus)) {
    throw new UsageError('rotate works on one account: name it with --accounts ID, without --org or --ou');
  }
  return {
    ...(accounts ? { accounts } : {}),
    ...(includeOus ? { includeOus } : {}),
    ...(roleName !== undefined ? { memberRoleName: roleName } : {}),
  };
}

/** --secret-reader-arns: IAM role or user ARNs separated by commas, or `none`. */
function readerArnsFlag(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  if (value === 'none') return [];
  const arns = value.split(',').map((arn) => arn.trim());
  const bad = arns.filter((arn) => !/^arn:aws[a-z-]*:iam::\d{12}:(role|user)\/\S+$/.test(arn));
  if (bad.length > 0) {
    throw new UsageError(
      `--secret-reader-arns must be IAM role or user ARNs separated by commas, such as arn:aws:iam::111122223333:role/app, or "none" (got "${bad.join(',')}")`,
    );
  }
  return arns;
}

function roleArnFlag(values: Record<string, unknown>, flag: string): string | undefined {
  const value = values[flag] as string | undefined;
  if (value !== undefined && value !== 'none' && !/^arn:aws[a-z-]*:iam::\d{12}:role\/\S+$/.test(value)) {
    throw new UsageError(
      `--${flag} must be an IAM role ARN such as arn:aws:iam::111122223333:role/NAME, or "none" (got "${value}")`,
    );
  }
  return value;
}

const COMMON = `
AWS:
  --profile NAME          AWS profile (default: the standard SDK chain: env, ~/.aws, SSO, role)
  --region REGION         AWS region (default: AWS_REGION, then the profile's region);
                          AWS_ENDPOINT_URL is honoured
  --account-id ID         a check: refuse unless the credentials are of this account (keyrot
                          always works on the account of its credentials, from STS; in
                          organization mode name member accounts with --accounts instead)

Resources (from the deployed stack, or given one by one):
  --stack NAME            read the ledger table, topic, secret prefix, KMS key, roles and
                          settings from the outputs of the deployed CloudFormation stack
  --table NAME            ledger table      --topic-arn ARN       notification topic
  --secret-prefix PREFIX  secret prefix     --kms-key-arn ARN     key that encrypts secrets
  --admin-role-arn ARN    the stack's secretAdminRoleArn, or "none" (read from --stack)
  --rotator-role-arn ARN  the stack's rotator role, or "none" (read from --stack)
  --secret-reader-arns ARN,ARN
                          the stack's secretReaderArns, or "none" (read from --stack)
                          --apply writes each secret's policy naming these roles and readers,
                          and must run as the admin role (e.g. --profile of that role)

Organization (any of these turns organization mode on: plan, run and report cover each selected
member account, through its member role, with the central stack's ledger and topics; rotate needs
exactly one account, --accounts ID):
  --org                   every account the deployed stack covers (its organization settings:
                          includeOus, excludeOus, excludeAccounts, accountTags; else the whole
                          organization), discovered with your own credentials (Organizations read
                          calls from the management account or a delegated administrator)
  --accounts ID,ID        these member accounts (12 digits), without discovery
  --ou ID                 the accounts under this OU (ou-...) or root (r-...), at any depth,
                          instead of the stack's includeOus (repeatable, or separated by commas)
  --role-name NAME        the member role to assume (default: the stack's memberRoleName, else
                          iam-key-rotation-member); it trusts the stack's roles, so run keyrot as
                          the stack's admin role (secretAdminRoleArn)
  Tables gain an ACCOUNT column, a totals line per account and an organization summary; --json
  gains accounts (each with status planned or unreachable) and summary. An account that cannot
  be reached (member role missing or not trusted, account suspended, throttled) is named on stderr
  with what to check, the others go on, and the exit code is 2 (1 still wins on a failure).

Policy (same names, rules and messages as the construct props; flags override --config):
  --config FILE           JSON file of settings, e.g. {"rotateAfterDays": 80, "graceDays": 7}
  --rotate-after-days N   --warn-days N   --grace-days N   --max-key-age-days N
  --delete-after-days N   --reap-unused-days N   --exemption-tag KEY   --owner-tag KEY
  --include-path PATH     --exclude-path PATH   (repeatable)

Exit codes: 0 nothing due / all done, 2 findings or actions due, 1 failure or bad usage.`;

export const HELP: Record<CommandName | 'main', string> = {
  main: `keyrot - rotate IAM access keys safely, from a terminal, with the service's own rules

Usage: keyrot <command> [options]
       keyrot <command> --org | --accounts ID,ID | --ou ID [options]   (every selected account)

Commands:
  plan      every key in the account, its age, last use, owner and the action due (read-only)
  run       the whole pipeline in-process: plan, then rotate each user that needs it
            (a dry run unless --apply)
  rotate    rotate one user now, e.g. a leaked key: keyrot rotate --user NAME --apply
  report    compliance summary as CSV or JSON (read-only)

Run "keyrot <command> --help" for a command's options.
${COMMON}`,
  plan: `keyrot plan [--json] [--concurrency N] [--org | --accounts ID,ID | --ou ID] [options]

Reads every user in scope and prints each key with its age, last use, owner, exemption and the
action due with its reason. Only read calls are made. --json prints the same as JSON.
--concurrency N: users read at once, 1 to 64 (default 8).
Exit code 2 when any action is due. With --org, --accounts or --ou: every selected account,
one after another (--concurrency users at once in each); exit code 2 also when an account could
not be reached.
${COMMON}`,
  run: `keyrot run [--apply] [--json] [--no-subscribe] [--concurrency N]
           [--org | --accounts ID,ID | --ou ID] [options]

Plans the account, then rotates each user that needs it, in this process, with the same safety
rules as the Lambdas (ledger lock, intent before CreateAccessKey, verification, notices).
Without --apply it is a dry run (the same as keyrot plan). --apply needs --stack NAME (the
deployed stack), or without a stack all of --table, --topic-arn, --secret-prefix, --kms-key-arn,
--config (the deployed settings), --admin-role-arn, --rotator-role-arn and --secret-reader-arns;
it runs as the admin
role, the one identity besides the rotator that each secret's policy lets write the secret.
--no-subscribe: do not subscribe owners to the topic when notifying them.
--concurrency N: users read and rotated at once, 1 to 64 (default 8). Each user's lock in the
ledger keeps two runs (this one, another keyrot, the schedule) off the same user: a user locked
by another run is reported as failed and left to that run; the others go on. Results are listed
by user name whatever order they finish in.
With --org, --accounts or --ou: each selected account in turn, its users rotated through its member
role with each secret stored in that account (under the member key alias/iam-key-rotation-member);
an account that cannot be reached is reported and the others go on (exit 2, or 1 if a user failed).
${COMMON}`,
  rotate: `keyrot rotate --user NAME [--apply] [--json] [--accounts ID [--role-name NAME]] [options]

Rotates one user's active key now whatever its age (a leaked key). The old key stays active for
the grace period and is deactivated by the usual rules; exempt and out-of-scope users are not
touched. Without --apply it only shows what would happen. --apply needs what run --apply needs.
--accounts ID: the user of that member account (exactly one), through its member role.
${COMMON}`,
  report: `keyrot report [--format csv|json | --json] [--concurrency N]
              [--org | --accounts ID,ID | --ou ID] [options]

Compliance summary, one row per key that matters: over the policy age (maxKeyAgeDays), in grace
after a rotation, postponed because still in use, exempt (with expiry), conflicts (two active keys
the service did not create). CSV by default; --json is --format json. Exit code 2 when any key that is not exempt is over
age, or any key is postponed or in conflict. --concurrency N: users read at once, 1 to 64 (default 8).
With --org, --accounts or --ou: the CSV gains an accountId column (first) and stays CSV; the
organization summary goes to stderr; exit code 2 also when an account could not be reached.
${COMMON}`,
};
