/**
 * Prop validation: a bad prop fails synth with a message naming it and saying what to change. The
 * construct validates before it creates anything, so these tests need no synth.
 */
import { App, Stack } from 'aws-cdk-lib';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { KeyRotation } from '../../lib/constructs/key-rotation';
import { KEY_ROTATION_DEFAULTS, resolveKeyRotationProps } from '../../lib/constructs/key-rotation-props';

/** Props as they may come from cdk.json: any JSON. */
const build = (props: Record<string, unknown>) => () =>
  new KeyRotation(new Stack(new App(), 'Test'), 'KeyRotation', props);

describe('KeyRotation props', () => {
  test.each<[string, Record<string, unknown>, RegExp]>([
    [
      'defaultRecipients entry',
      { defaultRecipients: ['security@example.com', 'x'] },
      /defaultRecipients\[1\] "x" is not an e-mail address/,
    ],
    ['defaultRecipients type', { defaultRecipients: 'a@example.com' }, /defaultRecipients must be a list/],
    [
      'opsRecipients entry',
      { opsRecipients: ['ops@example'] },
      /opsRecipients\[0\] "ops@example" is not an e-mail/,
    ],
    [
      'opsRecipients duplicate',
      { opsRecipients: ['a@example.com', 'a@example.com'] },
      /opsRecipients lists an address twice/,
    ],
    [
      'recipient in both lists',
      { defaultRecipients: ['a@example.com'], opsRecipients: ['a@example.com'] },
      /defaultRecipients\[0\] "a@example.com" is also in opsRecipients/,
    ],
    [
      'scheduleExpression',
      { scheduleExpression: 'daily' },
      /scheduleExpression must be an EventBridge Scheduler expression .* \(got "daily"\)/,
    ],
    [
      'scheduleExpression cron fields',
      { scheduleExpression: 'cron(0 2 * * ?)' },
      /scheduleExpression "cron\(0 2 \* \* \?\)" has 5 fields; EventBridge Scheduler needs 6 \(minutes hours day-of-month month day-of-week year\), such as "cron\(0 2 \* \* \? \*\)"/,
    ],
    [
      'scheduleExpression rate unit',
      { scheduleExpression: 'rate(1 days)' },
      /scheduleExpression "rate\(1 days\)": write the unit in the singular for 1 and in the plural otherwise, as in "rate\(1 day\)" or "rate\(2 days\)"/,
    ],
    [
      'scheduleExpression rate unit, plural',
      { scheduleExpression: 'rate(5 minute)' },
      /scheduleExpression "rate\(5 minute\)": write the unit .* "rate\(5 minutes\)"/,
    ],
    [
      'scheduleTimeZone',
      { scheduleTimeZone: 'Mars/Olympus' },
      /scheduleTimeZone must be an IANA time zone .* \(got "Mars\/Olympus"\)/,
    ],
    ['dryRun', { dryRun: 'yes' }, /dryRun must be true or false \(got "yes"\)/],
    [
      'reserveConcurrency',
      { reserveConcurrency: 'yes' },
      /reserveConcurrency must be true or false \(got "yes"\)/,
    ],
    [
      'encryptionKeyArn not an ARN',
      { encryptionKeyArn: 'my-key' },
      /encryptionKeyArn must be the ARN of a KMS key \(not an alias\) such as "arn:aws:kms:eu-west-1:123456789012:key\/1234abcd-12ab-34cd-56ef-1234567890ab" \(got "my-key"\)/,
    ],
    [
      'encryptionKeyArn an alias',
      { encryptionKeyArn: 'arn:aws:kms:eu-west-1:123456789012:alias/iam-key-rotation' },
      /encryptionKeyArn must be the ARN of a KMS key \(not an alias\)/,
    ],
    [
      'encryptionKeyArn a key id',
      { encryptionKeyArn: '1234abcd-12ab-34cd-56ef-1234567890ab' },
      /encryptionKeyArn must be the ARN of a KMS key/,
    ],
    ['subscribeOwners', { subscribeOwners: 1 }, /subscribeOwners must be true or false \(got 1\)/],
    [
      'secretAdminRoleArn',
      { secretAdminRoleArn: 'admin' },
      /secretAdminRoleArn must be an IAM role ARN .* \(got "admin"\)/,
    ],
    [
      'secretReaderArns type',
      { secretReaderArns: 'arn:aws:iam::123456789012:role/app' },
      /secretReaderArns must be a list of IAM role or user ARNs such as \["arn:aws:iam::123456789012:role\/billing-app"\] \(got "arn:aws:iam::123456789012:role\/app"\)/,
    ],
    [
      'secretReaderArns entry',
      { secretReaderArns: ['arn:aws:iam::123456789012:role/app', 'arn:aws:iam::123456789012:role/app-*'] },
      /secretReaderArns\[1\] "arn:aws:iam::123456789012:role\/app-\*" is not an IAM role or user ARN .*no wildcards/,
    ],
    [
      'secretReaderArns group',
      { secretReaderArns: ['arn:aws:iam::123456789012:group/readers'] },
      /secretReaderArns\[0\] "arn:aws:iam::123456789012:group\/readers" is not an IAM role or user ARN/,
    ],
    [
      'secretReaderArns duplicate',
      { secretReaderArns: ['arn:aws:iam::123456789012:user/ci', 'arn:aws:iam::123456789012:user/ci'] },
      /secretReaderArns lists an ARN twice/,
    ],
    [
      'secretReaderArns too many',
      { secretReaderArns: Array.from({ length: 21 }, (_, i) => `arn:aws:iam::123456789012:role/app-${i}`) },
      /secretReaderArns lists 21 principals; at most 20/,
    ],
    [
      'logRetention',
      { logRetention: 42 },
      /logRetention must be one of the CloudWatch Logs retention periods .* \(got 42\)/,
    ],
    [
      'rotatorConcurrency too low',
      { rotatorConcurrency: 1 },
      /rotatorConcurrency must be a whole number from 2 to 100 \(got 1\)/,
    ],
    ['rotatorConcurrency fraction', { rotatorConcurrency: 2.5 }, /rotatorConcurrency must be a whole number/],
    [
      'notRunningAlarmHours',
      { notRunningAlarmHours: 200 },
      /notRunningAlarmHours must be a whole number from 2 to 168 \(got 200\)/,
    ],
    [
      'secretPrefix',
      { secretPrefix: '/keys/' },
      /secretPrefix must be 1-200 characters .* \(got "\/keys\/"\)/,
    ],
    [
      'rotateAfterDays',
      { rotateAfterDays: -1 },
      /rotateAfterDays must be a whole number of days from 0 to 3650 \(got -1\)/,
    ],
    [
      'rotateAfterDays + graceDays',
      { rotateAfterDays: 85 },
      /rotateAfterDays \+ graceDays \(92\) exceeds maxKeyAgeDays \(90\): lower rotateAfterDays or graceDays, or raise maxKeyAgeDays/,
    ],
    ['includePaths', { includePaths: ['service'] }, /includePaths entry "service" is not an IAM path/],
    ['excludePaths', { excludePaths: '/break-glass/' }, /excludePaths must be a list of IAM paths/],
    [
      'a misspelt setting',
      { rotateAfterDay: 60 },
      /rotateAfterDay is not a KeyRotation prop: did you mean rotateAfterDays\?/,
    ],
    [
      'a prop that is no prop at all',
      { schedule: 'daily' },
      /schedule is not a KeyRotation prop; the props are secretPrefix, .*rotateAfterDays/,
    ],
    ['a prop in the wrong case', { dryrun: true }, /dryrun is not a KeyRotation prop: did you mean dryRun\?/],
    [
      'reserveConcurrency in the wrong case',
      { reserveconcurrency: true },
      /reserveconcurrency is not a KeyRotation prop: did you mean reserveConcurrency\?/,
    ],
    [
      'encryptionKeyArn in the wrong case',
      { encryptionKeyARN: 'x' },
      /encryptionKeyARN is not a KeyRotation prop: did you mean encryptionKeyArn\?/,
    ],
  ])('%s', (_name, props, message) => {
    expect(build(props)).toThrow(message);
  });

  test('every problem is reported at once, one per line', () => {
    expect(build({ dryRun: 'no', opsRecipients: ['x'], graceDays: 1.5 })).toThrow(
      /KeyRotation props are invalid:\n {2}- graceDays .*\n {2}- dryRun .*\n {2}- opsRecipients\[0\] "x"/,
    );
  });

  test('nothing is created when the props are invalid', () => {
    const stack = new Stack(new App(), 'Test');
    expect(() => new KeyRotation(stack, 'KeyRotation', { rotatorConcurrency: 0 })).toThrow();
    expect(stack.node.tryFindChild('KeyRotation')?.node.children ?? []).toHaveLength(0);
  });

  test('the defaults', () => {
    const config = resolveKeyRotationProps();
    expect(config).toEqual({
      ...KEY_ROTATION_DEFAULTS,
      defaultRecipients: [],
      opsRecipients: [],
      secretReaderArns: [],
      settings: expect.objectContaining({ rotateAfterDays: 80, graceDays: 7, maxKeyAgeDays: 90 }) as unknown,
    });
    expect(config.logRetention).toBe(RetentionDays.ONE_YEAR);
    expect(config.scheduleExpression).toBe('cron(0 2 * * ? *)');
    expect(config.scheduleTimeZone).toBe('UTC');
    expect(config).not.toHaveProperty('secretAdminRoleArn');
    expect(config).not.toHaveProperty('encryptionKeyArn');
    // Reserving concurrency fails to deploy in new accounts: off unless asked for.
    expect(config.reserveConcurrency).toBe(false);
  });

  test.each([
    'rate(1 day)',
    'rate(12 hours)',
    'cron(0 2 * * ? *)',
    'cron(30 6 ? * MON-FRI *)',
    'cron(0 2 ? * 2-6 *)',
    'cron(0 */6 * * ? *)',
    'cron(15 10 ? * 6L 2026-2030)',
    'cron(0 8 ? * 2#1 *)',
    'cron(0 0 L * ? *)',
    'cron(0 9 15W * ? *)',
    'cron(0,30 1-3 1,15 JAN,JUL ? *)',
    'cron(0 2 ? * SUN *)',
  ])('accepts the schedule %s', (scheduleExpression) => {
    expect(resolveKeyRotationProps({ scheduleExpression }).scheduleExpression).toBe(scheduleExpression);
  });

  // What EventBridge Scheduler refuses at deploy time is refused at synth, naming the prop and the fix.
  test.each<[string, RegExp]>([
    [
      'cron(0 2 * * * *)',
      /scheduleExpression "cron\(0 2 \* \* \* \*\)": day-of-month \("\*"\) and day-of-week \("\*"\) cannot both be set: put "\?" in one of them, such as "cron\(0 2 \* \* \? \*\)" \(every day at 02:00\)/,
    ],
    ['cron(0 2 1 * MON *)', /day-of-month \("1"\) and day-of-week \("MON"\) cannot both be set/],
    ['cron(0 2 ? * ? *)', /day-of-month and day-of-week cannot both be "\?": set one of them/],
    ['cron(0 2 * *)', /has 4 fields; EventBridge Scheduler needs 6/],
    ['cron(0 2 * * ? * *)', /has 7 fields; EventBridge Scheduler needs 6/],
    ['cron(60 2 * * ? *)', /: minutes "60" is out of range \(allowed: 0-59\)/],
    ['cron(0 24 * * ? *)', /: hours "24" is out of range \(allowed: 0-23\)/],
    ['cron(0 2 32 * ? *)', /: day-of-month "32" is out of range/],
    ['cron(0 2 0 * ? *)', /: day-of-month "0" is out of range/],
    ['cron(0 2 * 13 ? *)', /: month "13" is out of range \(allowed: 1-12 or JAN-DEC\)/],
    ['cron(0 2 ? * 0 *)', /: day-of-week "0" is out of range \(allowed: 1-7 or SUN-SAT/],
    ['cron(0 2 ? * MON-FUN *)', /: day-of-week "FUN" is not a value/],
    ['cron(0 2 * * ? 1969)', /: year "1969" is out of range \(allowed: 1970-2199\)/],
    ['cron(0 2-25 * * ? *)', /: hours "25" is out of range/],
    ['cron(x 2 * * ? *)', /: minutes "x" is not a value/],
    ['cron(0/0 2 * * ? *)', /: minutes "0\/0": the step must be at least 1/],
    ['cron(? 2 * * ? *)', /"\?" is allowed only in day-of-month and day-of-week, not in minutes/],
    ['cron(0 2 ? * 2#6 *)', /day-of-week "2#6": the week after # must be 1 to 5/],
    ['cron(0 2 ? * 2#1,3#2 *)', /day-of-week "2#1,3#2": an expression with # must stand alone/],
  ])('refuses the schedule %s', (scheduleExpression, message) => {
    expect(() => resolveKeyRotationProps({ scheduleExpression })).toThrow(message);
  });

  test('a cron expression with several problems reports each', () => {
    expect(() => resolveKeyRotationProps({ scheduleExpression: 'cron(61 2 * 13 * *)' })).toThrow(
      /cannot both be set.*\n.*minutes "61" is out of range.*\n.*month "13" is out of range/,
    );
  });

  test('accepts an existing key (by ARN, multi-Region too) and reserving concurrency', () => {
    for (const encryptionKeyArn of [
      'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
      'arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab',
    ]) {
      const config = resolveKeyRotationProps({ encryptionKeyArn, reserveConcurrency: true });
      expect(config).toMatchObject({ encryptionKeyArn, reserveConcurrency: true });
    }
  });

  test('secretReaderArns: roles and users of the account, with their paths', () => {
    const secretReaderArns = [
      'arn:aws:iam::123456789012:role/apps/billing',
      'arn:aws:iam::123456789012:user/ci/deployer',
      'arn:aws-us-gov:iam::123456789012:role/reader',
    ];
    const config = resolveKeyRotationProps({ secretReaderArns }, { account: '123456789012' });
    expect(config.secretReaderArns).toEqual(secretReaderArns);
  });

  test('an environment-agnostic stack cannot compare accounts: ARNs of any account pass', () => {
    const config = resolveKeyRotationProps({
      secretAdminRoleArn: 'arn:aws:iam::999999999999:role/secrets-admin',
      encryptionKeyArn: 'arn:aws:kms:us-east-1:999999999999:key/1234abcd-12ab-34cd-56ef-1234567890ab',
    });
    expect(config.secretAdminRoleArn).toBe('arn:aws:iam::999999999999:role/secrets-admin');
  });

  test.each<[string, Record<string, unknown>, RegExp]>([
    [
      'secretAdminRoleArn',
      { secretAdminRoleArn: 'arn:aws:iam::999999999999:role/secrets-admin' },
      /secretAdminRoleArn must be a role of the stack's account 123456789012, but arn:aws:iam::999999999999:role\/secrets-admin is in account 999999999999: name a role of account 123456789012/,
    ],
    [
      'secretReaderArns entry',
      { secretReaderArns: ['arn:aws:iam::123456789012:role/app', 'arn:aws:iam::999999999999:user/ci'] },
      /secretReaderArns\[1\] "arn:aws:iam::999999999999:user\/ci" is in account 999999999999, not the stack's account 123456789012: name a role or user of account 123456789012/,
    ],
    [
      'encryptionKeyArn',
      { encryptionKeyArn: 'arn:aws:kms:eu-west-1:999999999999:key/1234abcd-12ab-34cd-56ef-1234567890ab' },
      /encryptionKeyArn must be a key of the stack's account 123456789012, but .* is in account 999999999999: name a key of account 123456789012/,
    ],
  ])("with the stack's account known, refuses a %s of another account", (_name, props, message) => {
    expect(() => resolveKeyRotationProps(props, { account: '123456789012', region: 'eu-west-1' })).toThrow(
      message,
    );
  });
});
