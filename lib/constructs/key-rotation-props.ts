import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { secretPrefixProblem } from '../../lambda/domain/naming';
import {
  DEFAULT_ORGANIZATION_SETTINGS,
  OrganizationSettings,
  resolveOrganizationSettings,
} from '../../lambda/domain/organization';
import { editDistance, likelyName } from '../../lambda/domain/names';
import { DEFAULT_SETTINGS, resolveSettings, RotationSettings } from '../../lambda/domain/settings';

/**
 * Props of the {@link KeyRotation} construct. Every prop can also be set in `cdk.json` under the
 * context key `keyRotation`, so each one is plain JSON (numbers, strings, booleans, lists).
 * The rotation settings (`rotateAfterDays`, `graceDays`, ...) come from {@link RotationSettings},
 * each optional here and documented there with its default (`DEFAULT_SETTINGS`), and in the README's
 * configuration table. Every prop is validated at synth; one error names every invalid prop and what
 * to change.
 */
export interface KeyRotationProps extends Partial<RotationSettings> {
  /**
   * Secrets are named `<secretPrefix>/<accountId>/<userName>`. The KMS key and the rotator's policy
   * are scoped to this prefix. 1-200 letters, digits or `/_+=.@-`, without a leading or trailing `/`.
   * @default 'iam-key-rotation'
   */
  readonly secretPrefix?: string;

  /**
   * When the planner runs: an EventBridge Scheduler `cron(...)` expression (6 fields, `?` in exactly
   * one of day-of-month and day-of-week) or `rate(...)` expression (`rate(1 day)`, `rate(12 hours)`:
   * minutes, hours or days, singular for 1). An expression Scheduler would refuse fails synth.
   * @default 'cron(0 2 * * ? *)' (every day at 02:00 in `scheduleTimeZone`)
   */
  readonly scheduleExpression?: string;

  /**
   * IANA time zone of `scheduleExpression`, such as `Europe/Paris`.
   * @default 'UTC'
   */
  readonly scheduleTimeZone?: string;

  /**
   * Scheduled runs only plan and report (`{"dryRun": true}` is sent to the planner); nothing is changed.
   * @default false
   */
  readonly dryRun?: boolean;

  /**
   * E-mail addresses that receive the notices of users without a (valid) owner tag: they are
   * subscribed to the notification topic with a filter on the message attribute `owner = default`.
   * Valid addresses, none also in `opsRecipients`.
   * @default [] (no default recipients)
   */
  readonly defaultRecipients?: readonly string[];

  /**
   * E-mail addresses of the operators: they receive every notice (no filter) and every alarm.
   * @default [] (no operator subscriptions)
   */
  readonly opsRecipients?: readonly string[];

  /**
   * Give each owner an SNS topic of their own, created by the rotator the first time the owner is
   * warned (or, for a key found already due, at its rotation), with one e-mail subscription the owner
   * confirms, so that they have confirmed before their key is rotated. False: owners subscribe
   * themselves to the notification topic with a filter on the message attribute `owner`.
   * @default true
   */
  readonly subscribeOwners?: boolean;

  /**
   * ARN of an IAM role of this account that may also read every secret (written into each secret's
   * resource policy), for example a break-glass or audit role: `arn:aws:iam::<account>:role/<path/>name`,
   * exactly as IAM shows it. When the stack's account is known at synth, a role of another account is
   * refused.
   *
   * In organization mode the secrets are in the member accounts and this role is not written into
   * their policies: it is the role that may assume the member role of every account (a trust
   * statement of its own, without the source-identity condition the functions' statement has), as
   * `keyrot --org` does, and it reads a member secret by assuming the member role. Give it an
   * identity policy that allows `sts:AssumeRole` and `sts:SetSourceIdentity` on
   * `arn:<partition>:iam::*:role/<memberRoleName>`. It is passed to the member stacks as their
   * `OperatorRoleArns` parameter (the central stack's `MemberOperatorRoleArns` output).
   * @default - only the IAM user a secret belongs to may read it
   */
  readonly secretAdminRoleArn?: string;

  /**
   * ARNs of IAM roles and users of this account that may also read every secret's value, such as the
   * role a workload reads its key with (`arn:aws:iam::<account>:role/<path/>name`, exactly as IAM
   * shows it, path included). Each secret's policy denies the value to every principal but the key's
   * user, the admin role, the rotator and these; an Allow added to the policy by hand cannot lift
   * that Deny (an explicit Deny wins), so a workload that reads through a role of its own must be
   * listed here. Readers only read: they stay under the Deny on writing. At most 20. When the stack's
   * account is known at synth, a role or user of another account is refused; one that does not exist
   * at run time is left out of new policies and raises the `SecretReadersOmitted` alarm.
   *
   * Not with `organization` (refused at synth): each secret then stays in its member account,
   * encrypted with that account's own key, which only principals of that account may use, so a
   * reader of the central account could never decrypt it. There the workload reads its own secret
   * as the key's IAM user, and operators read secrets through the member role (`secretAdminRoleArn`).
   * @default [] - only the key's user (and `secretAdminRoleArn`) read a secret
   */
  readonly secretReaderArns?: readonly string[];

  /**
   * ARN of an existing customer-managed KMS key (`arn:aws:kms:<region>:<account>:key/<key-id>`, not an
   * alias) to use instead of creating one: secrets, ledger, topics and queues are encrypted with it.
   * Use it to redeploy after the stack was deleted: the old key is retained and the secrets it
   * encrypts can only be updated with it. The stack cannot change an imported key's policy, so the
   * key must already hold the statements the README lists ("Redeploying after the stack was
   * deleted"). Must be in the stack's account and region when those are known at synth.
   * @default - a new key is created (rotated yearly, retained when the stack is deleted)
   */
  readonly encryptionKeyArn?: string;

  /**
   * How long the planner's and the rotator's logs (the audit trail) are kept, in days. One of the
   * CloudWatch Logs retention values (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
   * 1096, 1827, 2192, 2557, 2922, 3288, 3653, or 9999 for never expire).
   * @default RetentionDays.ONE_YEAR (365)
   */
  readonly logRetention?: RetentionDays;

  /**
   * How many rotator invocations may run at once: the maximum concurrency of the work queue's trigger
   * (and the rotator's reserved concurrency when `reserveConcurrency` is on). Each handles one batch of
   * users; one user is never handled twice at once (the queue is FIFO per user and the ledger holds a
   * lock). A whole number from 2 (Lambda's minimum maximum concurrency for an SQS trigger) to 100.
   * @default 5
   */
  readonly rotatorConcurrency?: number;

  /**
   * Reserve Lambda concurrency for the functions: 1 for the planner (so that a second run is throttled
   * rather than run alongside) and `rotatorConcurrency` for the rotator (so that other functions cannot
   * starve it). Off by default because Lambda refuses a reservation that leaves the account less than
   * its minimum unreserved concurrency (100): the account's concurrency quota must exceed the existing
   * reservations + 1 + `rotatorConcurrency` + 100, which new accounts (quotas of 10 to 50) do not.
   * Without it the queue trigger's maximum concurrency still caps the rotator at `rotatorConcurrency`,
   * and the planner runs once per schedule (planning is idempotent, so an overlapping manual run is
   * harmless).
   *
   * In organization mode it reserves `organization.planConcurrency` for the planner (the planning
   * queue trigger's maximum: a lower reservation would throttle deliveries back into the queue,
   * counted towards its dead-letter queue), `rotatorConcurrency` for the rotator and 1 for the
   * dispatcher, so the account's concurrency quota must exceed the existing reservations +
   * `planConcurrency` + `rotatorConcurrency` + 1 + 100 (with the defaults, 116 more than the
   * existing reservations); Lambda refuses the deployment otherwise.
   * @default false
   */
  readonly reserveConcurrency?: boolean;

  /**
   * The "planner not running" alarm fires when the planner has not been invoked for this many hours.
   * Raise it if `scheduleExpression` runs less often than daily. Whole hours, 2 to 168.
   * @default 26 (a daily schedule plus two hours of slack)
   */
  readonly notRunningAlarmHours?: number;

  /**
   * Organization-wide rotation: the stack is the central deployment (the management account or a
   * delegated administrator) and rotates the keys of the organization's accounts through a role in
   * each of them (see {@link KeyRotationOrganizationProps}). Also `keyRotation.organization` in
   * `cdk.json`.
   * @default - one account: the stack's own
   */
  readonly organization?: KeyRotationOrganizationProps;
}

/**
 * Organization mode: which accounts are covered, how the central deployment reaches them, and whether
 * it deploys their member footprint (a service-managed StackSet of KeyRotationMember).
 */
export interface KeyRotationOrganizationProps {
  /**
   * The organization's id (`o-` and 10-32 lowercase letters or digits): the member roles trust the
   * central roles only from within it (`aws:PrincipalOrgID`), and the central roles assume only roles
   * of its accounts (`aws:ResourceOrgID`). Required (`aws organizations describe-organization`).
   */
  readonly organizationId: string;
  /**
   * Name of the role every member account holds for the central functions: an IAM role name (1-64
   * letters, digits or `+=,.@_-`), the same in every account.
   * @default 'iam-key-rotation-member'
   */
  readonly memberRoleName?: string;
  /**
   * OU or root ids (`ou-…`, `r-…`) whose accounts are covered, at any depth; also the member
   * StackSet's deployment targets, so at least one is needed while `deployMembers` is on (the root
   * id `r-…` covers the whole organization), and at most 50 (what a StackSet operation deploys to:
   * target a parent OU instead of many of its children). Cannot be combined with `accounts`.
   * @default [] (the whole organization; only with deployMembers false)
   */
  readonly includeOus?: readonly string[];
  /**
   * OU ids (`ou-…`) whose accounts are never covered, at any depth (wins over an include; a root
   * would exclude every account and is refused). The StackSet still deploys the member role there:
   * an excluded account keeps it, so that a rotation in flight can be finished.
   * @default []
   */
  readonly excludeOus?: readonly string[];
  /**
   * An explicit list of account ids (12 digits, as strings: a number loses leading zeros) instead of
   * discovery. Cannot be combined with `includeOus`, so
   * it needs `deployMembers: false` (deploy the member stacks to those accounts yourself).
   * @default [] (discover)
   */
  readonly accounts?: readonly string[];
  /**
   * Account ids (12 digits, as strings) never covered (never planned; a rotation in flight there is
   * only finished). The
   * StackSet does not leave them out: they keep the member role, as accounts under `excludeOus` do.
   * @default []
   */
  readonly excludeAccounts?: readonly string[];
  /**
   * Account tags an account must carry to be covered: each key must be present with one of the
   * listed values (`[]`: any value; a single string is one value). Keys of 1-128 characters not
   * starting with `aws:`, values of up to 256.
   * @default {} (no tag filter)
   */
  readonly accountTags?: Readonly<Record<string, readonly string[]>>;
  /**
   * How the stack calls CloudFormation StackSets: `SELF` from the management account,
   * `DELEGATED_ADMIN` from an account registered as a delegated administrator for StackSets.
   * @default 'SELF'
   */
  readonly callAs?: 'SELF' | 'DELEGATED_ADMIN';
  /**
   * Accounts planned at the same time: the planning queue trigger's maximum concurrency, a whole
   * number from 2 to 1000 (Lambda's limits).
   * @default 10
   */
  readonly planConcurrency?: number;
  /**
   * Deploy the member footprint (KeyRotationMember) to the accounts under `includeOus` with a
   * service-managed StackSet, with automatic deployment to accounts that join them. The management
   * account is never covered by such a StackSet: deploy a plain member stack there if it is
   * selected. False: deploy the member stacks yourself.
   * @default true
   */
  readonly deployMembers?: boolean;
  /**
   * ARN of a managed policy set as the member role's permissions boundary, where the organization
   * requires one on every role (`arn:aws:iam::<account>:policy/<name>`; it must exist in every member
   * account, as a policy of that account's or an AWS managed one). Applied to the StackSet's member
   * template and to the plain member stack (`-c memberStack=true`). It must allow what the member role
   * does (IAM keys, Secrets Manager and KMS under the secret prefix), or rotation fails there.
   * @default - no permissions boundary
   */
  readonly memberPermissionsBoundaryArn?: string;
}

/** Organization mode, resolved and validated. */
export interface ResolvedOrganizationConfig {
  /** The organization's id (`o-…`), as given. */
  readonly organizationId: string;
  /** Whether the member StackSet is deployed (`deployMembers`, default applied). */
  readonly deployMembers: boolean;
  /**
   * The member role's permissions boundary, as given.
   * @default - no permissions boundary
   */
  readonly memberPermissionsBoundaryArn?: string;
  /** What the functions read (ENV.organization). */
  readonly settings: OrganizationSettings;
}

/** The construct's configuration with every default applied, validated. */
export interface ResolvedKeyRotationConfig {
  /** The rotation settings, resolved (what the functions read). */
  readonly settings: RotationSettings;
  /** {@link KeyRotationProps.secretPrefix}, default applied. */
  readonly secretPrefix: string;
  /** {@link KeyRotationProps.scheduleExpression}, default applied. */
  readonly scheduleExpression: string;
  /** {@link KeyRotationProps.scheduleTimeZone}, default applied. */
  readonly scheduleTimeZone: string;
  /** {@link KeyRotationProps.dryRun}, default applied. */
  readonly dryRun: boolean;
  /** {@link KeyRotationProps.defaultRecipients}, default applied. */
  readonly defaultRecipients: readonly string[];
  /** {@link KeyRotationProps.opsRecipients}, default applied. */
  readonly opsRecipients: readonly string[];
  /** {@link KeyRotationProps.subscribeOwners}, default applied. */
  readonly subscribeOwners: boolean;
  /**
   * {@link KeyRotationProps.secretAdminRoleArn}, as given.
   * @default - no admin role
   */
  readonly secretAdminRoleArn?: string;
  /** {@link KeyRotationProps.secretReaderArns}, default applied. */
  readonly secretReaderArns: readonly string[];
  /**
   * {@link KeyRotationProps.encryptionKeyArn}, as given.
   * @default - a new key is created
   */
  readonly encryptionKeyArn?: string;
  /** {@link KeyRotationProps.logRetention}, default applied. */
  readonly logRetention: RetentionDays;
  /** {@link KeyRotationProps.rotatorConcurrency}, default applied. */
  readonly rotatorConcurrency: number;
  /** {@link KeyRotationProps.reserveConcurrency}, default applied. */
  readonly reserveConcurrency: boolean;
  /** {@link KeyRotationProps.notRunningAlarmHours}, default applied. */
  readonly notRunningAlarmHours: number;
  /**
   * Organization mode, resolved.
   * @default - undefined: one account
   */
  readonly organization?: ResolvedOrganizationConfig;
}

/** Where the stack is deployed, when known at synth (an environment-agnostic stack knows neither). */
export interface KeyRotationEnvironment {
  /**
   * The stack's account id, to refuse ARNs of another account.
   * @default - unknown: ARNs are not checked against the account
   */
  readonly account?: string;
  /**
   * The stack's region, to refuse a KMS key of another region.
   * @default - unknown: the key's region is not checked
   */
  readonly region?: string;
}

/** The construct's own props (besides the rotation settings), for naming unknown ones. */
const CONSTRUCT_PROPS = [
  'secretPrefix',
  'scheduleExpression',
  'scheduleTimeZone',
  'dryRun',
  'defaultRecipients',
  'opsRecipients',
  'subscribeOwners',
  'secretAdminRoleArn',
  'secretReaderArns',
  'encryptionKeyArn',
  'logRetention',
  'rotatorConcurrency',
  'reserveConcurrency',
  'notRunningAlarmHours',
  'organization',
] as const;

export const KEY_ROTATION_DEFAULTS = {
  secretPrefix: 'iam-key-rotation',
  scheduleExpression: 'cron(0 2 * * ? *)',
  scheduleTimeZone: 'UTC',
  dryRun: false,
  subscribeOwners: true,
  logRetention: RetentionDays.ONE_YEAR,
  rotatorConcurrency: 5,
  reserveConcurrency: false,
  notRunningAlarmHours: 26,
} as const;

const EMAIL = /^[^\s@,;<>()"]+@[^\s@,;<>()"]+\.[^\s@,;<>()".]{2,}$/;
/** `rate(1 unit)` / `rate(N units)` as EventBridge Scheduler spells them. */
const RATE = /^rate\((1 (minute|hour|day)|([2-9]|[1-9]\d+) (minutes|hours|days))\)$/;
const ROLE_ARN = /^arn:aws[a-z-]*:iam::(\d{12}):role\/[\w+=,.@/-]{1,512}$/;
const ROLE_OR_USER_ARN = /^arn:aws[a-z-]*:iam::(\d{12}):(role|user)\/[\w+=,.@/-]{1,512}$/;
/** A managed policy ARN, of an account or AWS managed (as KeyRotationMember's permissionsBoundaryArn). */
const POLICY_ARN = /^arn:aws[a-z-]*:iam::(\d{12}|aws):policy\/[\w+=,.@/-]{1,512}$/;
/** Each reader is named twice in every secret's policy; a short list keeps the policies small. */
const MAX_SECRET_READERS = 20;
/** A KMS key ARN (single- or multi-Region key id), not an alias: grants and key policies name the key. */
const KMS_KEY_ARN =
  /^arn:aws[a-z-]*:kms:([a-z]{2}(-[a-z]+)+-\d):(\d{12}):key\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$/;
const RETENTION_VALUES = new Set<unknown>(Object.values(RetentionDays).filter((v) => typeof v === 'number'));
/** CloudWatch evaluates at most 7 days of 1-hour periods. */
const MAX_ALARM_HOURS = 168;

function describe(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

function checkEmails(name: string, value: unknown, problems: string[]): readonly string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    problems.push(
      `${name} must be a list of e-mail addresses such as ["ops@example.com"] (got ${describe(value)})`,
    );
    return [];
  }
  value.forEach((address: unknown, index) => {
    if (typeof address !== 'string' || !EMAIL.test(address)) {
      problems.push(`${name}[${index}] ${describe(address)} is not an e-mail address`);
    }
  });
  if (new Set(value).size !== value.length) {
    problems.push(`${name} lists an address twice: remove the duplicate`);
  }
  return value as string[];
}

function checkBoolean(name: string, value: unknown, fallback: boolean, problems: string[]): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') {
    problems.push(`${name} must be true or false (got ${describe(value)})`);
    return fallback;
  }
  return value;
}

function checkWholeNumber(
  name: string,
  value: unknown,
  fallback: number,
  [min, max]: readonly [number, number],
  problems: string[],
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    problems.push(`${name} must be a whole number from ${min} to ${max} (got ${describe(value)})`);
    return fallback;
  }
  return value;
}

function isValidTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

interface CronField {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  /** Names accepted for values (JAN-DEC, SUN-SAT), in value order from `min`. */
  readonly names?: readonly string[];
  readonly valuesHint: string;
}

const CRON_FIELDS: readonly CronField[] = [
  { name: 'minutes', min: 0, max: 59, valuesHint: '0-59' },
  { name: 'hours', min: 0, max: 23, valuesHint: '0-23' },
  { name: 'day-of-month', min: 1, max: 31, valuesHint: '1-31, ?, L, LW or nW' },
  {
    name: 'month',
    min: 1,
    max: 12,
    names: ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'],
    valuesHint: '1-12 or JAN-DEC',
  },
  {
    name: 'day-of-week',
    min: 1,
    max: 7,
    names: ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'],
    valuesHint: '1-7 or SUN-SAT, ?, L, nL or n#k',
  },
  { name: 'year', min: 1970, max: 2199, valuesHint: '1970-2199' },
];
const DAY_OF_MONTH = 2;
const DAY_OF_WEEK = 4;
const CRON_EXAMPLES = '"cron(0 2 * * ? *)" (every day at 02:00) or "cron(0 2 ? * MON-FRI *)" (weekdays)';

/** A value of a cron field (a number or, for months and days of the week, a name); undefined if neither. */
function cronValue(field: CronField, text: string): number | undefined {
  if (/^\d+$/.test(text)) return Number(text);
  const index = field.names?.indexOf(text.toUpperCase()) ?? -1;
  return index >= 0 ? field.min + index : undefined;
}

/** What is wrong with one item of a cron field's comma-separated list, if anything. */
function cronItemProblem(field: CronField, index: number, item: string): string | undefined {
  const outOfRange = (text: string): string | undefined => {
    const value = cronValue(field, text);
    if (value === undefined) return `"${text}" is not a value`;
    if (value < field.min || value > field.max) return `"${text}" is out of range`;
    return undefined;
  };
  if (index === DAY_OF_MONTH && /^(L|LW)$/.test(item)) return undefined;
  if (index === DAY_OF_MONTH && /^\d+W$/.test(item)) return outOfRange(item.slice(0, -1));
  if (index === DAY_OF_WEEK && item === 'L') return undefined;
  if (index === DAY_OF_WEEK && /^\w+L$/i.test(item) && cronValue(field, item.slice(0, -1)) !== undefined) {
    return outOfRange(item.slice(0, -1));
  }
  if (index === DAY_OF_WEEK && item.includes('#')) {
    const [day = '', nth = ''] = item.split('#');
    if (!/^[1-5]$/.test(nth)) return `"${item}": the week after # must be 1 to 5`;
    return outOfRange(day);
  }
  const match = /^(\*|[^-/*]+(?:-[^-/*]+)?)(?:\/(\d+))?$/.exec(item);
  if (!match) return `"${item}" is not a value, range (a-b), step (a/n) or "*"`;
  const [, base = '', step] = match;
  if (step !== undefined && Number(step) < 1) return `"${item}": the step must be at least 1`;
  if (base === '*') return undefined;
  for (const bound of base.split('-')) {
    const problem = outOfRange(bound);
    if (problem) return problem;
  }
  return undefined;
}

/**
 * The ways EventBridge Scheduler would refuse a cron expression at deploy time: not six fields, not
 * exactly one of day-of-month and day-of-week as "?", values out of their ranges or unknown syntax.
 */
function cronProblems(expression: string): string[] {
  const fields = expression.slice('cron('.length, -1).trim().split(/\s+/);
  const prefix = `scheduleExpression ${JSON.stringify(expression)}`;
  if (fields.length !== CRON_FIELDS.length) {
    return [
      `${prefix} has ${fields.length} fields; EventBridge Scheduler needs 6 (minutes hours day-of-month month day-of-week year), such as ${CRON_EXAMPLES}`,
    ];
  }
  const problems: string[] = [];
  const dayOfMonth = fields[DAY_OF_MONTH];
  const dayOfWeek = fields[DAY_OF_WEEK];
  if (dayOfMonth !== '?' && dayOfWeek !== '?') {
    problems.push(
      `${prefix}: day-of-month ("${dayOfMonth}") and day-of-week ("${dayOfWeek}") cannot both be set: put "?" in one of them, such as ${CRON_EXAMPLES}`,
    );
  } else if (dayOfMonth === '?' && dayOfWeek === '?') {
    problems.push(
      `${prefix}: day-of-month and day-of-week cannot both be "?": set one of them, such as ${CRON_EXAMPLES}`,
    );
  }
  CRON_FIELDS.forEach((field, index) => {
    const text = fields[index] ?? '';
    if (text === '?') {
      if (index !== DAY_OF_MONTH && index !== DAY_OF_WEEK) {
        problems.push(`${prefix}: "?" is allowed only in day-of-month and day-of-week, not in ${field.name}`);
      }
      return;
    }
    const items = text.split(',');
    if (index === DAY_OF_WEEK && items.length > 1 && text.includes('#')) {
      problems.push(`${prefix}: day-of-week "${text}": an expression with # must stand alone`);
      return;
    }
    for (const item of items) {
      const problem = cronItemProblem(field, index, item);
      if (problem) {
        problems.push(`${prefix}: ${field.name} ${problem} (allowed: ${field.valuesHint})`);
        break;
      }
    }
  });
  return problems;
}

function scheduleProblems(expression: unknown): string[] {
  if (typeof expression === 'string' && expression.startsWith('cron(') && expression.endsWith(')')) {
    return cronProblems(expression);
  }
  if (typeof expression === 'string' && RATE.test(expression)) return [];
  const rate = typeof expression === 'string' ? /^rate\((\d+) (minute|hour|day)s?\)$/.exec(expression) : null;
  if (rate) {
    const [, count, unit] = rate;
    return [
      `scheduleExpression ${describe(expression)}: write the unit in the singular for 1 and in the plural otherwise, as in "rate(1 ${unit})" or "rate(${count === '1' ? 2 : count} ${unit}s)"`,
    ];
  }
  return [
    `scheduleExpression must be an EventBridge Scheduler expression such as "cron(0 2 * * ? *)" or "rate(1 day)" (got ${describe(expression)})`,
  ];
}

/** The account of an ARN that is a concrete value of another account than the stack's, if it is. */
function otherAccount(arnAccount: string | undefined, stackAccount: string | undefined): boolean {
  return arnAccount !== undefined && stackAccount !== undefined && arnAccount !== stackAccount;
}

/** secretReaderArns: a short list of distinct IAM role or user ARNs of the stack's account. */
function checkReaderArns(value: unknown, stackAccount: string | undefined, problems: string[]): string[] {
  if (value === undefined) return [];
  const example = '["arn:aws:iam::123456789012:role/billing-app"]';
  if (!Array.isArray(value)) {
    problems.push(
      `secretReaderArns must be a list of IAM role or user ARNs such as ${example} (got ${describe(value)})`,
    );
    return [];
  }
  value.forEach((arn: unknown, index) => {
    const match = typeof arn === 'string' ? ROLE_OR_USER_ARN.exec(arn) : null;
    if (!match) {
      problems.push(
        `secretReaderArns[${index}] ${describe(arn)} is not an IAM role or user ARN such as "arn:aws:iam::123456789012:role/billing-app" (exact, with its path; no wildcards)`,
      );
    } else if (otherAccount(match[1], stackAccount)) {
      problems.push(
        `secretReaderArns[${index}] ${describe(arn)} is in account ${match[1]}, not the stack's account ${stackAccount}: name a role or user of account ${stackAccount}`,
      );
    }
  });
  if (new Set(value).size !== value.length) {
    problems.push('secretReaderArns lists an ARN twice: remove the duplicate');
  }
  if (value.length > MAX_SECRET_READERS) {
    problems.push(
      `secretReaderArns lists ${value.length} principals; at most ${MAX_SECRET_READERS}: let the workloads share a role`,
    );
  }
  return value as string[];
}

/** Organizations: "o-" followed by 10 to 32 lowercase letters or digits. */
const ORGANIZATION_ID = /^o-[a-z0-9]{10,32}$/;
const ORGANIZATION_PROPS = [
  'organizationId',
  'deployMembers',
  'memberPermissionsBoundaryArn',
  ...Object.keys(DEFAULT_ORGANIZATION_SETTINGS),
] as const;
/** CreateStackInstances and UpdateStackSet deploy to at most 50 OUs per operation. */
export const MAX_STACK_SET_OUS = 50;

/**
 * `organization`: the organization settings (validated by resolveOrganizationSettings, whose messages
 * already name `organization.<setting>`), the organization id and deployMembers.
 */
function checkOrganization(value: unknown, problems: string[]): ResolvedOrganizationConfig | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    problems.push(
      `organization must be an object such as {"organizationId": "o-a1b2c3d4e5", "includeOus": ["r-ab12"]} (got ${describe(value)})`,
    );
    return undefined;
  }
  const { organizationId, deployMembers, memberPermissionsBoundaryArn, ...rest } = value as Record<
    string,
    unknown
  >;
  const settingsInput: Record<string, unknown> = {};
  for (const [name, setting] of Object.entries(rest)) {
    if (name in DEFAULT_ORGANIZATION_SETTINGS) {
      settingsInput[name] = setting;
      continue;
    }
    const likely = likelyName(name, ORGANIZATION_PROPS);
    problems.push(
      likely
        ? `organization.${name} is not an organization prop: did you mean ${likely}?`
        : `organization.${name} is not an organization prop; the props are ${ORGANIZATION_PROPS.join(', ')}`,
    );
  }
  if (typeof organizationId !== 'string' || !ORGANIZATION_ID.test(organizationId)) {
    problems.push(
      `organization.organizationId must be the AWS Organizations id: "o-" followed by 10 to 32 lowercase letters or digits, such as "o-a1b2c3d4e5" (aws organizations describe-organization) (got ${describe(organizationId)})`,
    );
  }
  const members = checkBoolean('organization.deployMembers', deployMembers, true, problems);
  if (
    memberPermissionsBoundaryArn !== undefined &&
    (typeof memberPermissionsBoundaryArn !== 'string' || !POLICY_ARN.test(memberPermissionsBoundaryArn))
  ) {
    problems.push(
      `organization.memberPermissionsBoundaryArn must be the ARN of a managed policy, such as "arn:aws:iam::111122223333:policy/boundary" (got ${describe(memberPermissionsBoundaryArn)})`,
    );
  }
  let settings: OrganizationSettings | undefined;
  try {
    settings = resolveOrganizationSettings(settingsInput);
  } catch (error) {
    const listed = (error as { problems?: unknown }).problems;
    if (Array.isArray(listed)) problems.push(...listed.map(String));
    else problems.push(error instanceof Error ? error.message : String(error));
  }
  if (settings && members) {
    // Service-managed StackSets deploy to OUs; an explicit account list replaces includeOus.
    if (settings.accounts.length > 0) {
      problems.push(
        'organization.accounts: the member StackSet (deployMembers) deploys to OUs, and accounts replaces includeOus; set deployMembers to false and deploy the KeyRotationMember stacks to those accounts yourself, or use includeOus',
      );
    } else if (settings.includeOus.length === 0) {
      problems.push(
        'organization.includeOus must name at least one OU or root while deployMembers is true (service-managed StackSets deploy to OUs): give the root id r-… to cover the whole organization, or set deployMembers to false and deploy the KeyRotationMember stacks yourself',
      );
    } else if (settings.includeOus.length > MAX_STACK_SET_OUS) {
      problems.push(
        `organization.includeOus lists ${settings.includeOus.length} OUs, but a StackSet deploys to at most ${MAX_STACK_SET_OUS} OUs per operation while deployMembers is true: target a parent OU that contains them (or the root r-…, leaving the others out with excludeOus), or set deployMembers to false and deploy the KeyRotationMember stacks yourself`,
      );
    }
  }
  if (settings === undefined || typeof organizationId !== 'string' || !ORGANIZATION_ID.test(organizationId)) {
    return undefined;
  }
  return {
    organizationId,
    deployMembers: members,
    ...(typeof memberPermissionsBoundaryArn === 'string' ? { memberPermissionsBoundaryArn } : {}),
    settings,
  };
}

/**
 * Applies the defaults and validates every prop. Throws one error that lists every problem, each
 * naming the prop and what to change (the rotation settings' messages come from resolveSettings).
 */
export function resolveKeyRotationProps(
  props: KeyRotationProps = {},
  environment: KeyRotationEnvironment = {},
): ResolvedKeyRotationConfig {
  const {
    secretPrefix = KEY_ROTATION_DEFAULTS.secretPrefix,
    scheduleExpression = KEY_ROTATION_DEFAULTS.scheduleExpression,
    scheduleTimeZone = KEY_ROTATION_DEFAULTS.scheduleTimeZone,
    dryRun,
    defaultRecipients,
    opsRecipients,
    subscribeOwners,
    secretAdminRoleArn,
    secretReaderArns,
    encryptionKeyArn,
    logRetention = KEY_ROTATION_DEFAULTS.logRetention,
    rotatorConcurrency,
    reserveConcurrency,
    notRunningAlarmHours,
    organization,
    ...settingsInput
  } = props;
  const problems: string[] = [];

  // Unknown props are named against every prop of the construct, with the likely one suggested.
  const known = [...CONSTRUCT_PROPS, ...Object.keys(DEFAULT_SETTINGS)];
  const settingNames = new Set(Object.keys(DEFAULT_SETTINGS));
  const knownSettings: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(settingsInput)) {
    if (settingNames.has(name)) {
      knownSettings[name] = value;
      continue;
    }
    const likely =
      known.find((candidate) => candidate.toLowerCase() === name.toLowerCase()) ??
      known.find((candidate) => editDistance(candidate.toLowerCase(), name.toLowerCase()) <= 2);
    problems.push(
      likely
        ? `${name} is not a KeyRotation prop: did you mean ${likely}?`
        : `${name} is not a KeyRotation prop; the props are ${known.join(', ')}`,
    );
  }

  let settings: RotationSettings | undefined;
  try {
    settings = resolveSettings(knownSettings);
  } catch (error) {
    const listed = (error as { problems?: unknown }).problems;
    if (Array.isArray(listed)) problems.push(...listed.map(String));
    else problems.push(error instanceof Error ? error.message : String(error));
  }

  const prefixProblem = secretPrefixProblem(secretPrefix);
  if (prefixProblem) problems.push(prefixProblem);

  problems.push(...scheduleProblems(scheduleExpression));
  if (typeof scheduleTimeZone !== 'string' || !isValidTimeZone(scheduleTimeZone)) {
    problems.push(
      `scheduleTimeZone must be an IANA time zone such as "UTC" or "Europe/Paris" (got ${describe(scheduleTimeZone)})`,
    );
  }
  if (!RETENTION_VALUES.has(logRetention)) {
    problems.push(
      `logRetention must be one of the CloudWatch Logs retention periods in days (${[...RETENTION_VALUES].join(', ')}) (got ${describe(logRetention)})`,
    );
  }
  if (secretAdminRoleArn !== undefined) {
    const role = typeof secretAdminRoleArn === 'string' ? ROLE_ARN.exec(secretAdminRoleArn) : null;
    if (!role) {
      problems.push(
        `secretAdminRoleArn must be an IAM role ARN such as "arn:aws:iam::123456789012:role/secrets-admin" (got ${describe(secretAdminRoleArn)})`,
      );
    } else if (otherAccount(role[1], environment.account)) {
      problems.push(
        `secretAdminRoleArn must be a role of the stack's account ${environment.account}, but ${secretAdminRoleArn} is in account ${role[1]}: name a role of account ${environment.account}`,
      );
    }
  }
  const readers = checkReaderArns(secretReaderArns, environment.account, problems);
  const organizationConfig = checkOrganization(organization, problems);
  if (organization !== undefined && readers.length > 0) {
    // The member key lets only the member account's principals decrypt: readers would be written
    // into every secret's policy and still fail to read it.
    problems.push(
      "secretReaderArns cannot be combined with organization: each secret stays in its member account, encrypted with that account's own key, which only principals of that account may use, so these readers could never decrypt it. Remove secretReaderArns: the workload in the member account reads its own secret as the key's IAM user, and operators read secrets through the member role (secretAdminRoleArn, keyrot --org)",
    );
  }
  if (encryptionKeyArn !== undefined) {
    const key = typeof encryptionKeyArn === 'string' ? KMS_KEY_ARN.exec(encryptionKeyArn) : null;
    if (!key) {
      problems.push(
        `encryptionKeyArn must be the ARN of a KMS key (not an alias) such as "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab" (got ${describe(encryptionKeyArn)})`,
      );
    } else {
      const [, keyRegion, , keyAccount] = key;
      if (otherAccount(keyAccount, environment.account)) {
        problems.push(
          `encryptionKeyArn must be a key of the stack's account ${environment.account}, but ${encryptionKeyArn} is in account ${keyAccount}: name a key of account ${environment.account}`,
        );
      }
      if (otherAccount(keyRegion, environment.region)) {
        problems.push(
          `encryptionKeyArn must be a key of the stack's region ${environment.region}, but ${encryptionKeyArn} is in ${keyRegion}: name a key of ${environment.region}`,
        );
      }
    }
  }

  const resolved = {
    secretPrefix,
    scheduleExpression,
    scheduleTimeZone,
    dryRun: checkBoolean('dryRun', dryRun, KEY_ROTATION_DEFAULTS.dryRun, problems),
    defaultRecipients: checkEmails('defaultRecipients', defaultRecipients, problems),
    opsRecipients: checkEmails('opsRecipients', opsRecipients, problems),
    subscribeOwners: checkBoolean(
      'subscribeOwners',
      subscribeOwners,
      KEY_ROTATION_DEFAULTS.subscribeOwners,
      problems,
    ),
    ...(secretAdminRoleArn === undefined ? {} : { secretAdminRoleArn }),
    secretReaderArns: readers,
    ...(encryptionKeyArn === undefined ? {} : { encryptionKeyArn }),
    logRetention,
    // At least 2: the queue trigger's maximum concurrency cannot be lower (Lambda's minimum for SQS).
    rotatorConcurrency: checkWholeNumber(
      'rotatorConcurrency',
      rotatorConcurrency,
      KEY_ROTATION_DEFAULTS.rotatorConcurrency,
      [2, 100],
      problems,
    ),
    reserveConcurrency: checkBoolean(
      'reserveConcurrency',
      reserveConcurrency,
      KEY_ROTATION_DEFAULTS.reserveConcurrency,
      problems,
    ),
    notRunningAlarmHours: checkWholeNumber(
      'notRunningAlarmHours',
      notRunningAlarmHours,
      KEY_ROTATION_DEFAULTS.notRunningAlarmHours,
      [2, MAX_ALARM_HOURS],
      problems,
    ),
    ...(organizationConfig ? { organization: organizationConfig } : {}),
  };

  const opsSet = new Set(resolved.opsRecipients);
  resolved.defaultRecipients.forEach((address, index) => {
    if (opsSet.has(address)) {
      problems.push(
        `defaultRecipients[${index}] ${describe(address)} is also in opsRecipients, which receive every notice already: remove it from one of the lists`,
      );
    }
  });

  if (problems.length > 0 || settings === undefined) {
    throw new Error(`KeyRotation props are invalid:\n  - ${problems.join('\n  - ')}`);
  }
  return { settings, ...resolved };
}
