import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { secretPrefixProblem } from '../../lambda/domain/naming';
import { DEFAULT_SETTINGS, resolveSettings, RotationSettings } from '../../lambda/domain/settings';

/**
 * Props of the {@link KeyRotation} construct. Every prop can also be set in `cdk.json` under the
 * context key `keyRotation`, so each one is plain JSON (numbers, strings, booleans, lists).
 * The rotation settings (`rotateAfterDays`, `graceDays`, ...) are documented in
 * lambda/domain/settings.ts and the README's configuration table.
 */
export interface KeyRotationProps extends Partial<RotationSettings> {
  /**
   * Secrets are named `<secretPrefix>/<accountId>/<userName>`. The KMS key and the rotator's policy
   * are scoped to this prefix.
   * @default 'iam-key-rotation'
   */
  readonly secretPrefix?: string;

  /**
   * When the planner runs: an EventBridge Scheduler `cron(...)` or `rate(...)` expression.
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
   * @default [] (no default recipients)
   */
  readonly defaultRecipients?: readonly string[];

  /**
   * E-mail addresses of the operators: they receive every notice (no filter) and every alarm.
   * @default [] (no operator subscriptions)
   */
  readonly opsRecipients?: readonly string[];

  /**
   * Subscribe each owner (e-mail, filter policy on their address) to the notification topic the
   * first time they are warned, so that they have confirmed before their key is rotated.
   * @default true
   */
  readonly subscribeOwners?: boolean;

  /**
   * ARN of an IAM role of this account that may also read every secret (written into each secret's
   * resource policy), for example a break-glass or audit role.
   * @default - only the IAM user a secret belongs to may read it
   */
  readonly secretAdminRoleArn?: string;

  /**
   * How long the planner's and the rotator's logs (the audit trail) are kept, in days. One of the
   * CloudWatch Logs retention values (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
   * 1096, 1827, 2192, 2557, 2922, 3288, 3653, or 9999 for never expire).
   * @default RetentionDays.ONE_YEAR (365)
   */
  readonly logRetention?: RetentionDays;

  /**
   * How many rotator invocations may run at once (reserved concurrency and the queue's maximum
   * concurrency). Each handles one batch of users; one user is never handled twice at once (the
   * queue is FIFO per user and the ledger holds a lock).
   * @default 5
   */
  readonly rotatorConcurrency?: number;

  /**
   * The "planner not running" alarm fires when the planner has not been invoked for this many hours.
   * Raise it if `scheduleExpression` runs less often than daily.
   * @default 26 (a daily schedule plus two hours of slack)
   */
  readonly notRunningAlarmHours?: number;
}

/** The construct's configuration with every default applied, validated. */
export interface ResolvedKeyRotationConfig {
  readonly settings: RotationSettings;
  readonly secretPrefix: string;
  readonly scheduleExpression: string;
  readonly scheduleTimeZone: string;
  readonly dryRun: boolean;
  readonly defaultRecipients: readonly string[];
  readonly opsRecipients: readonly string[];
  readonly subscribeOwners: boolean;
  readonly secretAdminRoleArn?: string;
  readonly logRetention: RetentionDays;
  readonly rotatorConcurrency: number;
  readonly notRunningAlarmHours: number;
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
  'logRetention',
  'rotatorConcurrency',
  'notRunningAlarmHours',
] as const;

export const KEY_ROTATION_DEFAULTS = {
  secretPrefix: 'iam-key-rotation',
  scheduleExpression: 'cron(0 2 * * ? *)',
  scheduleTimeZone: 'UTC',
  dryRun: false,
  subscribeOwners: true,
  logRetention: RetentionDays.ONE_YEAR,
  rotatorConcurrency: 5,
  notRunningAlarmHours: 26,
} as const;

const EMAIL = /^[^\s@,;<>()"]+@[^\s@,;<>()"]+\.[^\s@,;<>()".]{2,}$/;
/** `cron(` six fields `)`, or `rate(1 unit)` / `rate(N units)` as EventBridge Scheduler spells them. */
const SCHEDULE =
  /^(cron\((\S+ ){5}\S+\)|rate\((1 (minute|hour|day)|([2-9]|[1-9]\d+) (minutes|hours|days))\))$/;
const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;
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

/**
 * Applies the defaults and validates every prop. Throws one error that lists every problem, each
 * naming the prop and what to change (the rotation settings' messages come from resolveSettings).
 */
export function resolveKeyRotationProps(props: KeyRotationProps = {}): ResolvedKeyRotationConfig {
  const {
    secretPrefix = KEY_ROTATION_DEFAULTS.secretPrefix,
    scheduleExpression = KEY_ROTATION_DEFAULTS.scheduleExpression,
    scheduleTimeZone = KEY_ROTATION_DEFAULTS.scheduleTimeZone,
    dryRun,
    defaultRecipients,
    opsRecipients,
    subscribeOwners,
    secretAdminRoleArn,
    logRetention = KEY_ROTATION_DEFAULTS.logRetention,
    rotatorConcurrency,
    notRunningAlarmHours,
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
    const likely = known.find((candidate) => candidate.toLowerCase() === name.toLowerCase());
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

  if (typeof scheduleExpression !== 'string' || !SCHEDULE.test(scheduleExpression)) {
    problems.push(
      `scheduleExpression must be an EventBridge Scheduler expression such as "cron(0 2 * * ? *)" or "rate(1 day)" (got ${describe(scheduleExpression)})`,
    );
  }
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
  if (
    secretAdminRoleArn !== undefined &&
    (typeof secretAdminRoleArn !== 'string' || !ROLE_ARN.test(secretAdminRoleArn))
  ) {
    problems.push(
      `secretAdminRoleArn must be an IAM role ARN such as "arn:aws:iam::123456789012:role/secrets-admin" (got ${describe(secretAdminRoleArn)})`,
    );
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
    logRetention,
    // At least 2: the queue's maximum concurrency (kept equal, so that no batch is throttled back
    // into the queue and counted towards the dead-letter queue) cannot be lower.
    rotatorConcurrency: checkWholeNumber(
      'rotatorConcurrency',
      rotatorConcurrency,
      KEY_ROTATION_DEFAULTS.rotatorConcurrency,
      [2, 100],
      problems,
    ),
    notRunningAlarmHours: checkWholeNumber(
      'notRunningAlarmHours',
      notRunningAlarmHours,
      KEY_ROTATION_DEFAULTS.notRunningAlarmHours,
      [2, MAX_ALARM_HOURS],
      problems,
    ),
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
