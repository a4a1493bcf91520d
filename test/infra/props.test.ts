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
    ['scheduleExpression cron fields', { scheduleExpression: 'cron(0 2 * * ?)' }, /scheduleExpression/],
    [
      'scheduleExpression rate unit',
      { scheduleExpression: 'rate(1 days)' },
      /scheduleExpression .* \(got "rate\(1 days\)"\)/,
    ],
    [
      'scheduleTimeZone',
      { scheduleTimeZone: 'Mars/Olympus' },
      /scheduleTimeZone must be an IANA time zone .* \(got "Mars\/Olympus"\)/,
    ],
    ['dryRun', { dryRun: 'yes' }, /dryRun must be true or false \(got "yes"\)/],
    ['subscribeOwners', { subscribeOwners: 1 }, /subscribeOwners must be true or false \(got 1\)/],
    [
      'secretAdminRoleArn',
      { secretAdminRoleArn: 'admin' },
      /secretAdminRoleArn must be an IAM role ARN .* \(got "admin"\)/,
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
      /rotateAfterDay is not a KeyRotation prop; the props are secretPrefix, .*rotateAfterDays/,
    ],
    ['a prop in the wrong case', { dryrun: true }, /dryrun is not a KeyRotation prop: did you mean dryRun\?/],
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
      settings: expect.objectContaining({ rotateAfterDays: 80, graceDays: 7, maxKeyAgeDays: 90 }) as unknown,
    });
    expect(config.logRetention).toBe(RetentionDays.ONE_YEAR);
    expect(config.scheduleExpression).toBe('cron(0 2 * * ? *)');
    expect(config.scheduleTimeZone).toBe('UTC');
    expect(config).not.toHaveProperty('secretAdminRoleArn');
  });

  test.each(['rate(1 day)', 'rate(12 hours)', 'cron(0 2 * * ? *)', 'cron(30 6 ? * MON-FRI *)'])(
    'accepts the schedule %s',
    (scheduleExpression) => {
      expect(resolveKeyRotationProps({ scheduleExpression }).scheduleExpression).toBe(scheduleExpression);
    },
  );
});
