import { AssumeRoleCommand, STSClient, STSServiceException } from '@aws-sdk/client-sts';
import { IAMClient } from '@aws-sdk/client-iam';
import { mockClient } from 'aws-sdk-client-mock';
import {
  MemberCredentials,
  roleSessionName,
  type MemberCredentialsOptions,
} from '../../../lambda/adapters/member-credentials';
import { SERVICE_NAME } from '../../../lambda/contract';
import {
  AccessDeniedError,
  ConfigError,
  KeyRotationError,
  MemberAccountUnavailableError,
  MemberRoleAccessDeniedError,
  MemberSessionUnavailableError,
  TransientServiceError,
} from '../../../lambda/domain/errors';
import { everythingIn, rejectionOf, sdkError, timeoutError } from './sdk-errors';

const sts = mockClient(STSClient);

const ACCOUNT = '111122223333';
const OTHER = '444455556666';
const ROLE_ARN = `arn:aws:iam::${ACCOUNT}:role/iam-key-rotation-member`;
const RUN_ID = '2026-12-03T06:00:00.000Z';
const T0 = Date.parse('2026-12-03T06:00:00Z');
const HOUR = 3_600_000;
const MINUTE = 60_000;

/** A clock the test moves by hand; only the cache sees it. */
function manualClock(start = T0) {
  let now = start;
  return { now: () => new Date(now), advance: (ms: number) => (now += ms) };
}

let issued = 0;
/** AssumeRole answers a new session each time, expiring an hour after `clock.now()`. */
function answerSessions(clock: { now: () => Date }) {
  sts.on(AssumeRoleCommand).callsFake(() => {
    issued += 1;
    return {
      Credentials: {
        AccessKeyId: `ASIAMEMBER${String(issued).padStart(10, '0')}`,
        SecretAccessKey: `member-secret-${issued}`,
        SessionToken: `member-token-${issued}`,
        Expiration: new Date(clock.now().getTime() + HOUR),
      },
      AssumedRoleUser: { Arn: `arn:aws:sts::${ACCOUNT}:assumed-role/x/y`, AssumedRoleId: 'AROA:y' },
      SourceIdentity: SERVICE_NAME,
    };
  });
}

function provider(clock = manualClock(), options: Partial<MemberCredentialsOptions> = {}) {
  return new MemberCredentials(
    { memberRoleName: 'iam-key-rotation-member', partition: 'aws', clock, ...options },
    new STSClient({ region: 'eu-west-1' }),
  );
}

function stsError(name: string, message: string, status = 403): STSServiceException {
  return new STSServiceException({ name, message, $fault: 'client', $metadata: { httpStatusCode: status } });
}

beforeEach(() => {
  sts.reset();
  issued = 0;
});
afterAll(() => sts.restore());

describe('roleSessionName', () => {
  test.each([
    ['2026-12-03T06:00:00.000Z', '2026-12-03T06-00-00.000Z'],
    ['run 42/retry#1', 'run-42-retry-1'],
    ['a_b+c=d,e.f@g-h', 'a_b+c=d,e.f@g-h'],
    ['x', 'x-'],
    ['', '--'],
    ['r'.repeat(70), 'r'.repeat(64)],
  ])('%j becomes %j (only [\\w+=,.@-], 2 to 64 characters)', (runId, expected) => {
    expect(roleSessionName(runId)).toBe(expected);
  });
});

describe('MemberCredentials', () => {
  test('assumes the member role with the run id as session name, the service as source identity, for one hour', async () => {
    const clock = manualClock();
    answerSessions(clock);

    const credentials = await provider(clock).forAccount(ACCOUNT, RUN_ID)();

    expect(sts.commandCalls(AssumeRoleCommand).map((c) => c.args[0].input)).toEqual([
      {
        RoleArn: ROLE_ARN,
        RoleSessionName: '2026-12-03T06-00-00.000Z',
        SourceIdentity: 'iam-key-rotation',
        DurationSeconds: 3600,
      },
    ]);
    expect(credentials).toEqual({
      accessKeyId: 'ASIAMEMBER0000000001',
      secretAccessKey: 'member-secret-1',
      sessionToken: 'member-token-1',
      expiration: new Date(T0 + HOUR),
      accountId: ACCOUNT,
    });
  });

  test('the role ARN follows the partition', async () => {
    const clock = manualClock();
    answerSessions(clock);

    await provider(clock, { partition: 'aws-cn', memberRoleName: 'rotator' }).forAccount(ACCOUNT, RUN_ID)();

    expect(sts.commandCalls(AssumeRoleCommand)[0]?.args[0].input.RoleArn).toBe(
      `arn:aws-cn:iam::${ACCOUNT}:role/rotator`,
    );
  });

  test('one session per account: later callers, and other providers of the account, reuse it', async () => {
    const clock = manualClock();
    answerSessions(clock);
    const members = provider(clock);

    const first = await members.forAccount(ACCOUNT, RUN_ID)();
    clock.advance(30 * MINUTE);
    const again = await members.forAccount(ACCOUNT, RUN_ID)();
    const other = await members.forAccount(OTHER, RUN_ID)();

    expect(again).toBe(first);
    expect(other.accountId).toBe(OTHER);
    expect(sts.commandCalls(AssumeRoleCommand).map((c) => c.args[0].input.RoleArn)).toEqual([
      ROLE_ARN,
      `arn:aws:iam::${OTHER}:role/iam-key-rotation-member`,
    ]);
  });

  test('a session is replaced once it has 5 minutes or less left, not before', async () => {
    const clock = manualClock();
    answerSessions(clock);
    const credentials = provider(clock).forAccount(ACCOUNT, RUN_ID);

    const first = await credentials();
    clock.advance(HOUR - 5 * MINUTE - 1);
    const stillFirst = await credentials();
    clock.advance(1);
    const second = await credentials();

    expect(stillFirst).toBe(first);
    expect(second.accessKeyId).toBe('ASIAMEMBER0000000002');
    expect(second.expiration).toEqual(new Date(T0 + 2 * HOUR - 5 * MINUTE));
    expect(sts.commandCalls(AssumeRoleCommand)).toHaveLength(2);
  });

  test('concurrent callers for one account share one AssumeRole call, also when refreshing', async () => {
    const clock = manualClock();
    answerSessions(clock);
    const members = provider(clock);

    const firstWave = await Promise.all(
      Array.from({ length: 10 }, () => members.forAccount(ACCOUNT, RUN_ID)()),
    );
    clock.advance(HOUR);
    const secondWave = await Promise.all(
      Array.from({ length: 10 }, () => members.forAccount(ACCOUNT, RUN_ID)()),
    );

    expect(new Set(firstWave.map((c) => c.accessKeyId))).toEqual(new Set(['ASIAMEMBER0000000001']));
    expect(new Set(secondWave.map((c) => c.accessKeyId))).toEqual(new Set(['ASIAMEMBER0000000002']));
    expect(sts.commandCalls(AssumeRoleCommand)).toHaveLength(2);
  });

  test('a new run gets its own session, named after it', async () => {
    const clock = manualClock();
    answerSessions(clock);
    const members = provider(clock);

    await members.forAccount(ACCOUNT, 'run-1')();
    const next = await members.forAccount(ACCOUNT, 'run-2')();

    expect(next.accessKeyId).toBe('ASIAMEMBER0000000002');
    expect(sts.commandCalls(AssumeRoleCommand).map((c) => c.args[0].input.RoleSessionName)).toEqual([
      'run-1',
      'run-2',
    ]);
  });

  test('a failed AssumeRole is not cached: the next caller tries again', async () => {
    const clock = manualClock();
    const members = provider(clock);
    sts
      .on(AssumeRoleCommand)
      .rejectsOnce(timeoutError())
      .resolves({
        Credentials: {
          AccessKeyId: 'ASIAMEMBERRETRY00001',
          SecretAccessKey: 's',
          SessionToken: 't',
          Expiration: new Date(T0 + HOUR),
        },
      });

    await expect(members.forAccount(ACCOUNT, RUN_ID)()).rejects.toThrow(MemberSessionUnavailableError);
    await expect(members.forAccount(ACCOUNT, RUN_ID)()).resolves.toMatchObject({
      accessKeyId: 'ASIAMEMBERRETRY00001',
    });
  });

  test('every SDK client takes the provider as its credentials and signs with the member session', async () => {
    const clock = manualClock();
    answerSessions(clock);
    const iam = new IAMClient({
      region: 'eu-west-1',
      credentials: provider(clock).forAccount(ACCOUNT, RUN_ID),
    });

    const identity = await iam.config.credentials();

    expect(identity).toMatchObject({ accessKeyId: 'ASIAMEMBER0000000001', sessionToken: 'member-token-1' });
    iam.destroy();
  });

  describe('errors name the role and the account, and say what to fix', () => {
    test('AccessDenied (role missing, not trusted, or account suspended) is a MemberRoleAccessDeniedError', async () => {
      const sdk = stsError(
        'AccessDenied',
        `User: arn:aws:sts::999999999999:assumed-role/central/fn is not authorized to perform: sts:AssumeRole on resource: ${ROLE_ARN}`,
      );
      sts.on(AssumeRoleCommand).rejects(sdk);

      const error = await rejectionOf(() => provider().forAccount(ACCOUNT, RUN_ID)());

      expect(error).toBeInstanceOf(MemberRoleAccessDeniedError);
      expect(error).toBeInstanceOf(AccessDeniedError);
      expect(error).toMatchObject({ accountId: ACCOUNT, roleArn: ROLE_ARN, retryable: false, cause: sdk });
      const message = (error as Error).message;
      expect(message).toContain(`sts:AssumeRole ${ROLE_ARN} (account ${ACCOUNT}): AccessDenied`);
      expect(message).toContain('deploy the member stack to account 111122223333');
      expect(message).toContain('sts:SetSourceIdentity');
      expect(message).toContain('suspended');
    });

    test('RegionDisabledException is a MemberAccountUnavailableError that says to activate STS', async () => {
      const sdk = stsError(
        'RegionDisabledException',
        'STS is not activated in this region for account:111122223333.',
      );
      sts.on(AssumeRoleCommand).rejects(sdk);

      const error = await rejectionOf(() => provider().forAccount(ACCOUNT, RUN_ID)());

      expect(error).toBeInstanceOf(MemberAccountUnavailableError);
      expect(error).toMatchObject({ accountId: ACCOUNT, roleArn: ROLE_ARN, retryable: false, cause: sdk });
      expect((error as Error).message).toContain(`${ROLE_ARN} (account ${ACCOUNT}): RegionDisabledException`);
      expect((error as Error).message).toContain('activate');
    });

    test.each([
      ['Throttling (after the SDK retries)', () => sdkError('Throttling', { fault: 'client' })],
      ['a timeout', timeoutError],
      ['a server fault', () => sdkError('InternalFailure', { fault: 'server', status: 500 })],
    ])('%s is a retryable MemberSessionUnavailableError', async (_what, make) => {
      sts.on(AssumeRoleCommand).rejects(make());

      const error = await rejectionOf(() => provider().forAccount(ACCOUNT, RUN_ID)());

      expect(error).toBeInstanceOf(MemberSessionUnavailableError);
      expect(error).toBeInstanceOf(TransientServiceError);
      expect(error).toMatchObject({ accountId: ACCOUNT, roleArn: ROLE_ARN, retryable: true });
      expect((error as Error).message).toContain(`${ROLE_ARN} (account ${ACCOUNT})`);
    });

    test('any other failure keeps its mapping and still names the role and the account', async () => {
      sts
        .on(AssumeRoleCommand)
        .rejects(
          stsError('ValidationError', 'The requested DurationSeconds exceeds the 1 hour session limit', 400),
        );

      const error = await rejectionOf(() => provider().forAccount(ACCOUNT, RUN_ID)());

      expect(error).toBeInstanceOf(KeyRotationError);
      expect((error as Error).message).toContain(
        `sts:AssumeRole ${ROLE_ARN} (account ${ACCOUNT}): ValidationError`,
      );
    });

    test('an answer without complete credentials is refused', async () => {
      sts.on(AssumeRoleCommand).resolves({ Credentials: undefined });

      await expect(provider().forAccount(ACCOUNT, RUN_ID)()).rejects.toThrow(
        `sts:AssumeRole ${ROLE_ARN} (account ${ACCOUNT}) returned no complete credentials`,
      );
    });

    test('no error carries the session secret of an earlier session', async () => {
      const clock = manualClock();
      answerSessions(clock);
      const members = provider(clock);
      await members.forAccount(ACCOUNT, RUN_ID)();
      clock.advance(HOUR);
      sts.on(AssumeRoleCommand).rejects(stsError('AccessDenied', 'denied'));

      const error = await rejectionOf(() => members.forAccount(ACCOUNT, RUN_ID)());

      expect(everythingIn(error)).not.toContain('member-secret-1');
      expect(everythingIn(error)).not.toContain('member-token-1');
    });
  });

  describe('configuration', () => {
    test('a malformed account id is refused before any call', () => {
      expect(() => provider().forAccount('12345', RUN_ID)).toThrow(
        '"12345" is not an AWS account id (12 digits)',
      );
      expect(sts.commandCalls(AssumeRoleCommand)).toHaveLength(0);
    });

    test('each bad setting is named, and a session longer than role chaining allows is refused', () => {
      const error = (() => {
        try {
          provider(manualClock(), {
            memberRoleName: 'has space',
            partition: 'amazon',
            durationSeconds: 7200,
          });
        } catch (caught) {
          return caught;
        }
        throw new Error('expected a ConfigError');
      })();

      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).problems).toEqual([
        expect.stringContaining('memberRoleName "has space"'),
        expect.stringContaining('partition "amazon"'),
        expect.stringContaining('durationSeconds 7200'),
      ]);
    });
  });
});
