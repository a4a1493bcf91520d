import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { mockClient } from 'aws-sdk-client-mock';
import { IamAdapter } from '../../../lambda/adapters/iam';
import { MemberAccountAccess } from '../../../lambda/adapters/member-account-access';
import { MemberCredentials } from '../../../lambda/adapters/member-credentials';
import { SecretsManagerVault } from '../../../lambda/adapters/secrets-manager';
import {
  AccessDeniedError,
  ConfigError,
  InvalidMessageError,
  KeyRotationError,
  MemberRoleAccessDeniedError,
  MemberSessionUnavailableError,
} from '../../../lambda/domain/errors';
import { rejectionOf, sdkError } from './sdk-errors';

const sts = mockClient(STSClient);

const ACCOUNT = '111122223333';
const OTHER = '444455556666';
const RUN = '2026-01-01T02:00:00.000Z';
const NEXT_RUN = '2026-01-02T02:00:00.000Z';
const MEMBER_ROLE = 'iam-key-rotation-member';
const KEY_ALIAS = 'alias/iam-key-rotation-member';
const ADMIN = 'arn:aws:iam::999999999999:role/key-admin';
const READER = 'arn:aws:iam::111122223333:role/reader';

/** A request as the SDK sent it over the wire (after signing). */
interface SentRequest {
  readonly hostname: string;
  readonly headers: Record<string, string>;
}

/**
 * The HTTP layer of the IAM and Secrets Manager clients: records each signed request and answers
 * AccessDenied in the service's own protocol (IAM query XML, Secrets Manager JSON 1.1).
 */
function deniedOverTheWire() {
  const sent: SentRequest[] = [];
  const handler = {
    handle: (request: SentRequest) => {
      sent.push({ hostname: request.hostname, headers: { ...request.headers } });
      const iam = request.hostname.startsWith('iam.');
      const body = iam
        ? '<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not authorized to perform this action</Message></Error><RequestId>r-1</RequestId></ErrorResponse>'
        : JSON.stringify({
            __type: 'AccessDeniedException',
            message: 'not authorized to perform this action',
          });
      return Promise.resolve({
        response: {
          statusCode: 403,
          headers: iam
            ? { 'content-type': 'text/xml' }
            : { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-errortype': 'AccessDeniedException' },
          body: new TextEncoder().encode(body),
        },
      });
    },
  };
  return { sent, handler };
}

let issued = 0;
function answerSessions(): void {
  sts.on(AssumeRoleCommand).callsFake(() => {
    issued += 1;
    return {
      Credentials: {
        AccessKeyId: `ASIAMEMBER${String(issued).padStart(10, '0')}`,
        SecretAccessKey: `member-secret-${issued}`,
        SessionToken: `member-token-${issued}`,
        Expiration: new Date(Date.now() + 3_600_000),
      },
    };
  });
}

function access(handler: object, extra: Partial<ConstructorParameters<typeof MemberAccountAccess>[0]> = {}) {
  return new MemberAccountAccess({
    memberRoleName: MEMBER_ROLE,
    partition: 'aws',
    memberKeyAlias: KEY_ALIAS,
    adminRoleArn: ADMIN,
    readerArns: [READER],
    clientConfig: {
      region: 'eu-west-1',
      maxAttempts: 1,
      requestHandler: handler,
      // The central function's own credentials: only STS may be signed with them.
      credentials: { accessKeyId: 'AKIACENTRALFUNCTION1', secretAccessKey: 'central-secret' },
    },
    ...extra,
  });
}

beforeEach(() => {
  sts.reset();
  issued = 0;
});
afterAll(() => sts.restore());

describe('MemberAccountAccess', () => {
  test('open assumes the member role of the account for the run, with the run as session name', async () => {
    // Arrange
    answerSessions();
    const { handler } = deniedOverTheWire();

    // Act
    const ports = await access(handler).open(ACCOUNT, RUN);

    // Assert
    expect(ports.accountId).toBe(ACCOUNT);
    expect(sts.commandCalls(AssumeRoleCommand).map((call) => call.args[0].input)).toEqual([
      expect.objectContaining({
        RoleArn: `arn:aws:iam::${ACCOUNT}:role/${MEMBER_ROLE}`,
        RoleSessionName: '2026-01-01T02-00-00.000Z',
        SourceIdentity: 'iam-key-rotation',
      }),
    ]);
  });

  test("IAM and Secrets Manager calls are signed with the member role's session, not the function's credentials", async () => {
    // Arrange
    answerSessions();
    const { sent, handler } = deniedOverTheWire();
    const ports = await access(handler).open(ACCOUNT, RUN);

    // Act
    const iamError = await rejectionOf(() => ports.iam.getUser('alice'));
    const vaultError = await rejectionOf(() =>
      ports.vault.read(
        {
          accountId: ACCOUNT,
          userName: 'alice',
          name: `iam-key-rotation/${ACCOUNT}/alice`,
          userArn: `arn:aws:iam::${ACCOUNT}:user/alice`,
        },
        'AKIAEXAMPLE000000001',
      ),
    );

    // Assert: both reached the wire signed with the session AssumeRole returned...
    expect(sent.map((request) => request.hostname)).toEqual([
      'iam.amazonaws.com',
      'secretsmanager.eu-west-1.amazonaws.com',
    ]);
    for (const request of sent) {
      expect(request.headers.authorization).toContain('Credential=ASIAMEMBER0000000001/');
      expect(request.headers['x-amz-security-token']).toBe('member-token-1');
    }
    // ...and their errors are mapped to the named errors, as in one account.
    expect(iamError).toBeInstanceOf(AccessDeniedError);
    expect(vaultError).toBeInstanceOf(AccessDeniedError);
  });

  test("the vault encrypts with the member account's key alias and names the member role as the writer", async () => {
    // Arrange
    answerSessions();
    const { handler } = deniedOverTheWire();

    // Act
    const ports = await access(handler).open(ACCOUNT, RUN);

    // Assert
    expect(ports.vault).toBeInstanceOf(SecretsManagerVault);
    expect(ports.iam).toBeInstanceOf(IamAdapter);
    const options = (ports.vault as unknown as { options: Record<string, unknown> }).options;
    expect(options).toEqual({
      kmsKeyArn: KEY_ALIAS,
      serviceRoleArn: `arn:aws:iam::${ACCOUNT}:role/${MEMBER_ROLE}`,
      adminRoleArn: ADMIN,
      readerArns: [READER],
    });
  });

  test('CreateAccessKey gets one attempt (not idempotent); the other IAM calls the configured retries', async () => {
    // Arrange
    answerSessions();
    const { handler } = deniedOverTheWire();
    const ports = await new MemberAccountAccess({
      memberRoleName: MEMBER_ROLE,
      partition: 'aws',
      memberKeyAlias: KEY_ALIAS,
      clientConfig: { region: 'eu-west-1', requestHandler: handler },
    }).open(ACCOUNT, RUN);

    // Act
    const clients = ports.iam as unknown as {
      client: { config: { maxAttempts: () => Promise<number> } };
      createClient: { config: { maxAttempts: () => Promise<number> } };
    };

    // Assert
    expect(await clients.client.config.maxAttempts()).toBe(8);
    expect(await clients.createClient.config.maxAttempts()).toBe(1);
  });

  test('ports are reused for the same account and run (one session); a new run opens new ones', async () => {
    // Arrange
    answerSessions();
    const { sent, handler } = deniedOverTheWire();
    const members = access(handler);

    // Act
    const first = await members.open(ACCOUNT, RUN);
    const again = await members.open(ACCOUNT, RUN);
    const other = await members.open(OTHER, RUN);
    const nextRun = await members.open(ACCOUNT, NEXT_RUN);
    await rejectionOf(() => nextRun.iam.getUser('alice'));

    // Assert
    expect(again).toBe(first);
    expect(other).not.toBe(first);
    expect(other.accountId).toBe(OTHER);
    expect(nextRun).not.toBe(first);
    expect(sts.commandCalls(AssumeRoleCommand).map((call) => call.args[0].input.RoleSessionName)).toEqual([
      '2026-01-01T02-00-00.000Z',
      '2026-01-01T02-00-00.000Z',
      '2026-01-02T02-00-00.000Z',
    ]);
    expect(sent[0]?.headers['x-amz-security-token']).toBe('member-token-3');
  });

  test('a role that cannot be assumed fails at open with the named error, and is tried again next time', async () => {
    // Arrange
    let calls = 0;
    sts.on(AssumeRoleCommand).callsFake(() => {
      calls += 1;
      if (calls === 1) throw sdkError('AccessDenied', { fault: 'client', status: 403 });
      return {
        Credentials: {
          AccessKeyId: 'ASIAMEMBER0000000002',
          SecretAccessKey: 'member-secret-2',
          SessionToken: 'member-token-2',
          Expiration: new Date(Date.now() + 3_600_000),
        },
      };
    });
    const members = access(deniedOverTheWire().handler);

    // Act
    const error = await rejectionOf(() => members.open(ACCOUNT, RUN));
    const retried = await members.open(ACCOUNT, RUN);

    // Assert
    expect(error).toBeInstanceOf(MemberRoleAccessDeniedError);
    expect(error).toMatchObject({
      accountId: ACCOUNT,
      roleArn: `arn:aws:iam::${ACCOUNT}:role/${MEMBER_ROLE}`,
    });
    expect(retried.accountId).toBe(ACCOUNT);
  });

  test('STS throttled past its retries fails at open as MemberSessionUnavailableError (retryable)', async () => {
    // Arrange
    sts.on(AssumeRoleCommand).rejects(sdkError('Throttling', { fault: 'client', status: 400 }));

    // Act
    const error = await rejectionOf(() => access(deniedOverTheWire().handler).open(ACCOUNT, RUN));

    // Assert
    expect(error).toBeInstanceOf(MemberSessionUnavailableError);
    expect((error as KeyRotationError).retryable).toBe(true);
  });

  test('an account id that is not 12 digits is refused before any call', async () => {
    // Act
    const error = await rejectionOf(() => access(deniedOverTheWire().handler).open('1234', RUN));

    // Assert
    expect(error).toBeInstanceOf(InvalidMessageError);
    expect(sts.commandCalls(AssumeRoleCommand)).toHaveLength(0);
  });

  test('uses the MemberCredentials given (a seam), which decides the session and the role ARN', async () => {
    // Arrange
    answerSessions();
    const credentials = new MemberCredentials({ memberRoleName: 'custom-role', partition: 'aws-cn' });

    // Act
    const ports = await access(deniedOverTheWire().handler, { credentials }).open(ACCOUNT, RUN);

    // Assert
    expect(sts.commandCalls(AssumeRoleCommand)[0]?.args[0].input.RoleArn).toBe(
      `arn:aws-cn:iam::${ACCOUNT}:role/custom-role`,
    );
    expect((ports.vault as unknown as { options: { serviceRoleArn: string } }).options.serviceRoleArn).toBe(
      `arn:aws-cn:iam::${ACCOUNT}:role/custom-role`,
    );
  });
});

describe('MemberAccountAccess without a member key alias (the planner: IAM only)', () => {
  const ref = {
    accountId: ACCOUNT,
    userName: 'alice',
    name: `iam-key-rotation/${ACCOUNT}/alice`,
    userArn: `arn:aws:iam::${ACCOUNT}:user/alice`,
  };

  test('IAM works in the account; every vault call is refused with a ConfigError, before any request', async () => {
    // Arrange
    answerSessions();
    const { sent, handler } = deniedOverTheWire();
    const ports = await access(handler, { memberKeyAlias: undefined }).open(ACCOUNT, RUN);

    // Act
    const iamError = await rejectionOf(() => ports.iam.getUser('alice'));
    const refusals = await Promise.all([
      rejectionOf(() => ports.vault.read(ref, 'AKIAEXAMPLE000000001')),
      rejectionOf(() => ports.vault.describe(ref)),
      rejectionOf(() => ports.vault.settlePolicy(ref)),
      rejectionOf(() => ports.vault.promote(ref, 'AKIAEXAMPLE000000001')),
      rejectionOf(() =>
        ports.vault.store(ref, {
          accessKeyId: 'AKIAEXAMPLE000000001',
          secretAccessKey: 'never-stored',
          userName: 'alice',
          createDate: new Date(0),
        }),
      ),
    ]);

    // Assert
    expect(iamError).toBeInstanceOf(AccessDeniedError);
    expect(sent.map((request) => request.hostname)).toEqual(['iam.amazonaws.com']);
    for (const refusal of refusals) {
      expect(refusal).toBeInstanceOf(ConfigError);
      expect((refusal as Error).message).toContain(
        `the vault of account ${ACCOUNT} was used, but MemberAccountAccess opened it for IAM only (no memberKeyAlias`,
      );
    }
  });
});

describe('MemberAccountAccess in a long-lived container', () => {
  test('keeps the ports of the most recently opened accounts only, the least recently opened dropped', async () => {
    // Arrange
    answerSessions();
    const members = access(deniedOverTheWire().handler, { maxOpenAccounts: 2 });
    const [A, B, C] = ['111111111111', '222222222222', '333333333333'];

    // Act
    const a = await members.open(A, RUN);
    const b = await members.open(B, RUN);
    const aAgain = await members.open(A, RUN); // A is now the most recent: B is the oldest
    await members.open(C, RUN); // drops B
    const aThird = await members.open(A, RUN);
    const bAgain = await members.open(B, RUN); // built anew; drops C
    const bThird = await members.open(B, RUN);

    // Assert
    expect(aAgain).toBe(a);
    expect(aThird).toBe(a);
    expect(bAgain).not.toBe(b);
    expect(bAgain.accountId).toBe(B);
    expect(bThird).toBe(bAgain);
    const opened = (members as unknown as { opened: Map<string, unknown> }).opened;
    expect([...opened.keys()]).toEqual([A, B]);
  });

  test('keeps 50 accounts by default, and refuses a limit below one', async () => {
    // Arrange
    answerSessions();
    const members = access(deniedOverTheWire().handler);
    const accounts = Array.from({ length: 60 }, (_, index) => String(100000000000 + index));

    // Act
    for (const accountId of accounts) await members.open(accountId, RUN);

    // Assert
    const opened = (members as unknown as { opened: Map<string, unknown> }).opened;
    expect([...opened.keys()]).toEqual(accounts.slice(10));
    expect(() => access(deniedOverTheWire().handler, { maxOpenAccounts: 0 })).toThrow(ConfigError);
  });

  test('every client it builds, in every account and for STS, shares one keep-alive HTTP handler', async () => {
    // Arrange
    answerSessions();
    const members = new MemberAccountAccess({
      memberRoleName: MEMBER_ROLE,
      partition: 'aws',
      memberKeyAlias: KEY_ALIAS,
      clientConfig: { region: 'eu-west-1' },
    });
    type WithHandler = { config: { requestHandler: unknown } };

    // Act
    const first = await members.open(ACCOUNT, RUN);
    const second = await members.open(OTHER, RUN);
    const handlers = [first, second].flatMap((ports) => [
      (ports.iam as unknown as { client: WithHandler }).client.config.requestHandler,
      (ports.iam as unknown as { createClient: WithHandler }).createClient.config.requestHandler,
      (ports.vault as unknown as { client: WithHandler }).client.config.requestHandler,
    ]);
    const sts = (members as unknown as { credentials: { sts: WithHandler } }).credentials.sts.config
      .requestHandler;

    // Assert
    expect(handlers[0]).toBeInstanceOf(NodeHttpHandler);
    expect(new Set([...handlers, sts]).size).toBe(1);
    const config = await (
      handlers[0] as {
        configProvider: Promise<{
          httpsAgent: { keepAlive: boolean };
          connectionTimeout: number;
          requestTimeout: number;
        }>;
      }
    ).configProvider;
    expect(config.httpsAgent.keepAlive).toBe(true);
    // The time limits of SDK_CLIENT_CONFIG still hold on the shared handler.
    expect(config).toMatchObject({ connectionTimeout: 5_000, requestTimeout: 30_000 });
  });
});
