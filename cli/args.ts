/** Command-line parsing for `keyrot`: flags, their validation, and the help texts. */
import { parseArgs } from 'node:util';

/** A mistake in how the command was called: printed with a pointer to --help, exit code 1. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const COMMANDS = ['plan', 'run', 'rotate', 'report'] as const;
export type CommandName = (typeof COMMANDS)[number];

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
  readonly configFile?: string;
  readonly subscribeOwners: boolean;
  /** Rotation settings given as flags, by setting name (validated later with the construct's rules). */
  readonly settings: Readonly<Record<string, unknown>>;
}

/** Setting flags: --flag-name -> setting name, and whether it takes a number or repeats. */
const SETTING_FLAGS = {
  'rotate-after-days': { setting: 'rotateAfterDays', kind: 'days' },
  'warn-days': { setting: 'warnDays', kind: 'days' },
  'grace-days': { setting: 'graceDays', kind: 'days' },
  'max-key-age-days': { setting: 'maxKeyAgeDays', kind: 'days' },
  'delete-after-days': { setting: 'deleteAfterDays', kind: 'days' },
  'reap-unused-days': { setting: 'reapUnusedDays', kind: 'days' },
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
  config: { type: 'string' },
  'no-subscribe': { type: 'boolean' },
  ...Object.fromEntries(
    Object.entries(SETTING_FLAGS).map(([flag, { kind }]) => [
      flag,
      kind === 'list' ? { type: 'string', multiple: true } : { type: 'string' },
    ]),
  ),
} as const;

export function parseCli(argv: readonly string[]): CliOptions {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS as never, allowPositionals: true, strict: true });
  } catch (error) {
    const text = error instanceof Error ? error.message : String(error);
    const unknown = /Unknown option '([^']+)'/.exec(text);
    throw new UsageError(
      unknown ? `unknown option ${unknown[1]}` : text.replace(/^.*TypeError \[[A-Z_]+\]: /, ''),
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
  for (const [flag, { setting, kind }] of Object.entries(SETTING_FLAGS)) {
    const value = values[flag];
    if (value === undefined) continue;
    if (kind === 'days') {
      const text = String(value);
      if (!/^\d+$/.test(text))
        throw new UsageError(`--${flag} must be a whole number of days (got "${text}")`);
      settings[setting] = Number(text);
    } else {
      settings[setting] = value;
    }
  }

  const format = (values.format as string | undefined) ?? 'csv';
  if (format !== 'csv' && format !== 'json')
    throw new UsageError(`--format must be csv or json (got "${format}")`);
  if (values.format !== undefined && command !== 'report')
    throw new UsageError('--format is for the report command; use --json');
  const user = values.user as string | undefined;
  if (command === 'rotate' && !values.help && (user === undefined || user.trim() === '')) {
    throw new UsageError('rotate needs --user NAME');
  }
  if (user !== undefined && command !== 'rotate') throw new UsageError('--user is for the rotate command');
  if (values.apply && (command === 'plan' || command === 'report')) {
    throw new UsageError(`${command} is read-only; --apply is for run and rotate`);
  }
  const adminRoleArn = values['admin-role-arn'] as string | undefined;
  if (
    adminRoleArn !== undefined &&
    adminRoleArn !== 'none' &&
    !/^arn:aws[a-z-]*:iam::\d{12}:role\/\S+$/.test(adminRoleArn)
  ) {
    throw new UsageError(`--admin-role-arn must be an IAM role ARN or "none" (got "${adminRoleArn}")`);
  }
  const accountId = values['account-id'] as string | undefined;
  if (accountId !== undefined && !/^\d{12}$/.test(accountId)) {
    throw new UsageError(`--account-id must be 12 digits (got "${accountId}")`);
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
    configFile: values.config as string | undefined,
    subscribeOwners: values['no-subscribe'] !== true,
    settings,
  };
}

const COMMON = `
AWS:
  --profile NAME          AWS profile (default: the standard SDK chain: env, ~/.aws, SSO, role)
  --region REGION         AWS region (default: the SDK chain); AWS_ENDPOINT_URL is honoured
  --account-id ID         account to work on (default: the caller's, from STS)

Resources (from the deployed stack, or given one by one):
  --stack NAME            read the ledger table, topic, secret prefix, KMS key and settings
                          from the outputs of the deployed CloudFormation stack
  --table NAME            ledger table      --topic-arn ARN       notification topic
  --secret-prefix PREFIX  secret prefix     --kms-key-arn ARN     key that encrypts secrets
  --admin-role-arn ARN    the stack's secretAdminRoleArn, or "none" (read from --stack when
                          it has it); --apply rewrites secret policies and keeps this role

Policy (same names, rules and messages as the construct props; flags override --config):
  --config FILE           JSON file of settings, e.g. {"rotateAfterDays": 80, "graceDays": 7}
  --rotate-after-days N   --warn-days N   --grace-days N   --max-key-age-days N
  --delete-after-days N   --reap-unused-days N   --exemption-tag KEY   --owner-tag KEY
  --include-path PATH     --exclude-path PATH   (repeatable)

Exit codes: 0 nothing due / all done, 2 findings or actions due, 1 failure or bad usage.`;

export const HELP: Record<CommandName | 'main', string> = {
  main: `keyrot - rotate IAM access keys safely, from a terminal, with the service's own rules

Usage: keyrot <command> [options]

Commands:
  plan      every key in the account, its age, last use, owner and the action due (read-only)
  run       the whole pipeline in-process: plan, then rotate each user that needs it
            (a dry run unless --apply)
  rotate    rotate one user now, e.g. a leaked key: keyrot rotate --user NAME --apply
  report    compliance summary as CSV or JSON (read-only)

Run "keyrot <command> --help" for a command's options.
${COMMON}`,
  plan: `keyrot plan [--json] [options]

Reads every user in scope and prints each key with its age, last use, owner, exemption and the
action due with its reason. Only read calls are made. --json prints the same as JSON.
Exit code 2 when any action is due.
${COMMON}`,
  run: `keyrot run [--apply] [--json] [--no-subscribe] [options]

Plans the account, then rotates each user that needs it, in this process, with the same safety
rules as the Lambdas (ledger lock, intent before CreateAccessKey, verification, notices).
Without --apply it is a dry run (the same as keyrot plan). --apply needs the deployed stack's
resources (--stack NAME, or --table, --topic-arn, --secret-prefix and --kms-key-arn).
--no-subscribe: do not subscribe owners to the topic when notifying them.
${COMMON}`,
  rotate: `keyrot rotate --user NAME [--apply] [--json] [options]

Rotates one user's active key now whatever its age (a leaked key). The old key stays active for
the grace period and is deactivated by the usual rules; exempt and out-of-scope users are not
touched. Without --apply it only shows what would happen.
${COMMON}`,
  report: `keyrot report [--format csv|json] [options]

Compliance summary, one row per key that matters: over the policy age (maxKeyAgeDays), in grace
after a rotation, postponed because still in use, exempt (with expiry), conflicts (two active keys
the service did not create). CSV by default. Exit code 2 when any key that is not exempt is over
age, or any key is postponed or in conflict.
${COMMON}`,
};
