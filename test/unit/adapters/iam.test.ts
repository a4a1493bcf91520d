import {
  CreateAccessKeyCommand,
  CredentialReportNotPresentException,
  DeleteAccessKeyCommand,
  GenerateCredentialReportCommand,
  GetAccessKeyLastUsedCommand,
  GetCredentialReportCommand,
  GetUserCommand,
  IAMClient,
  LimitExceededException,
  ListAccessKeysCommand,
  ListAccessKeysCommandOutput,
  ListUsersCommand,
  ListUsersCommandOutput,
  NoSuchEntityException,
  UpdateAccessKeyCommand,
  User,
} from '@aws-sdk/client-iam';
import { mockClient } from 'aws-sdk-client-mock';
import { IamAdapter } from '../../../lambda/adapters/iam';
import {
  AccessDeniedError,
  CredentialReportBusyError,
  CredentialReportUnavailableError,
  KeyLimitExceededError,
  KeyRotationError,
  NoSuchKeyError,
  NoSuchUserError,
  ThrottledError,
  TransientServiceError,
} from '../../../lambda/domain/errors';
import { rejectionOf, sdkError, timeoutError } from './sdk-errors';

const iam = mockClient(IAMClient);

const ACCOUNT = '123456789012';
const KEY_ID = 'AKIAIOSFODNN7EXAMPLE';
const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';

function adapter(): IamAdapter {
  // One attempt and static credentials: no retries slow the error tests, nothing reaches AWS.
  return new IamAdapter(
    new IAMClient({
      region: 'us-east-1',
      maxAttempts: 1,
      credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
    }),
  );
}

const noSuchEntity = (message: string) => new NoSuchEntityException({ message, $metadata: {} });

beforeEach(() => iam.reset());
afterAll(() => iam.restore());

describe('credential report', () => {
  test.each(['STARTED', 'INPROGRESS', 'COMPLETE'] as const)(
    'GenerateCredentialReport state %s is passed through',
    async (state) => {
      iam.on(GenerateCredentialReportCommand).resolves({ State: state });

      await expect(adapter().generateCredentialReport()).resolves.toBe(state);
      expect(iam.commandCalls(GenerateCredentialReportCommand)).toHaveLength(1);
    },
  );

  test('GenerateCredentialReport LimitExceeded (no capacity for another report now) is CredentialReportBusyError, retryable', async () => {
    const sdk = new LimitExceededException({
      message: 'No more capacity to launch new report generation tasks',
      $metadata: { httpStatusCode: 409 },
    });
    iam.on(GenerateCredentialReportCommand).rejects(sdk);

    const error = await rejectionOf(() => adapter().generateCredentialReport());

    // A kind of "report unavailable", so that a caller that cannot wait still falls back to listing.
    expect(error).toBeInstanceOf(CredentialReportBusyError);
    expect(error).toBeInstanceOf(CredentialReportUnavailableError);
    expect((error as CredentialReportBusyError).retryable).toBe(true);
    expect((error as Error).message).toBe(
      'iam:GenerateCredentialReport: LimitExceededException: No more capacity to launch new report generation tasks',
    );
    expect((error as Error).cause).toBe(sdk);
  });

  test('GetCredentialReport content (bytes of a CSV) is returned as a string with its date', async () => {
    const csv =
      'user,arn,user_creation_time\nalice,arn:aws:iam::123456789012:user/alice,2025-01-01T00:00:00+00:00\n';
    const generatedAt = new Date('2026-01-01T02:00:00Z');
    iam.on(GetCredentialReportCommand).resolves({
      Content: new TextEncoder().encode(csv),
      ReportFormat: 'text/csv',
      GeneratedTime: generatedAt,
    });

    const report = await adapter().getCredentialReport();

    expect(report).toEqual({ csv, generatedAt });
  });

  test('a missing report is CredentialReportUnavailableError, keeping the SDK error as cause', async () => {
    const sdk = new CredentialReportNotPresentException({
      message: 'Credential report not present',
      $metadata: {},
    });
    iam.on(GetCredentialReportCommand).rejects(sdk);

    const error = await rejectionOf(() => adapter().getCredentialReport());

    expect(error).toBeInstanceOf(CredentialReportUnavailableError);
    expect((error as Error).message).toContain('CredentialReportNotPresentException');
    expect((error as Error).cause).toBe(sdk);
  });

  test('a report without content is CredentialReportUnavailableError', async () => {
    iam.on(GetCredentialReportCommand).resolves({ GeneratedTime: new Date('2026-01-01T02:00:00Z') });

    await expect(adapter().getCredentialReport()).rejects.toThrow(CredentialReportUnavailableError);
  });
});

describe('listUsers', () => {
  test('collects every page, following the Marker', async () => {
    const pages: Record<string, Partial<ListUsersCommandOutput>> = {
      first: {
        Users: [
          {
            UserName: 'alice',
            Arn: `arn:aws:iam::${ACCOUNT}:user/alice`,
            Path: '/',
            UserId: 'A',
            CreateDate: new Date(),
          },
          {
            UserName: 'bob',
            Arn: `arn:aws:iam::${ACCOUNT}:user/ops/bob`,
            Path: '/ops/',
            UserId: 'B',
            CreateDate: new Date(),
          },
        ],
        IsTruncated: true,
        Marker: 'm1',
      },
      m1: {
        // No Path: the adapter defaults it to "/".
        Users: [
          {
            UserName: 'carol',
            Arn: `arn:aws:iam::${ACCOUNT}:user/carol`,
            UserId: 'C',
            CreateDate: new Date(),
          } as User,
        ],
        IsTruncated: true,
        Marker: 'm2',
      },
      m2: {
        Users: [
          {
            UserName: 'dave',
            Arn: `arn:aws:iam::${ACCOUNT}:user/dave`,
            Path: '/',
            UserId: 'D',
            CreateDate: new Date(),
          },
        ],
        IsTruncated: false,
      },
    };
    // The paginator reuses one input object, so record each request's marker when it is sent.
    const markers: (string | undefined)[] = [];
    iam.on(ListUsersCommand).callsFake((input: { Marker?: string }) => {
      markers.push(input.Marker);
      return pages[input.Marker ?? 'first'];
    });

    const users = await adapter().listUsers();

    expect(users).toEqual([
      { userName: 'alice', arn: `arn:aws:iam::${ACCOUNT}:user/alice`, path: '/' },
      { userName: 'bob', arn: `arn:aws:iam::${ACCOUNT}:user/ops/bob`, path: '/ops/' },
      { userName: 'carol', arn: `arn:aws:iam::${ACCOUNT}:user/carol`, path: '/' },
      { userName: 'dave', arn: `arn:aws:iam::${ACCOUNT}:user/dave`, path: '/' },
    ]);
    expect(markers).toEqual([undefined, 'm1', 'm2']);
  });

  test('throttling on a later page rejects instead of returning a partial list', async () => {
    iam
      .on(ListUsersCommand)
      .resolvesOnce({
        Users: [{ UserName: 'alice', Arn: 'arn', Path: '/', UserId: 'A', CreateDate: new Date() }],
        Marker: 'm1',
        IsTruncated: true,
      })
      .rejectsOnce(sdkError('Throttling', { fault: 'client', message: 'Rate exceeded' }));

    const error = await rejectionOf(() => adapter().listUsers());

    expect(error).toBeInstanceOf(ThrottledError);
    expect((error as ThrottledError).retryable).toBe(true);
    expect((error as Error).message).toBe('iam:ListUsers: Throttling: Rate exceeded');
  });
});

describe('getUser', () => {
  test('asks for the user by name and returns its tags as a record', async () => {
    iam.on(GetUserCommand).resolves({
      User: {
        UserName: 'alice',
        Arn: `arn:aws:iam::${ACCOUNT}:user/alice`,
        Path: '/people/',
        UserId: 'A',
        CreateDate: new Date(),
        Tags: [
          { Key: 'key-rotation:owner', Value: 'alice@example.com' },
          { Key: 'team', Value: 'data' },
        ],
      },
    });

    const user = await adapter().getUser('alice');

    expect(iam.commandCalls(GetUserCommand).map((c) => c.args[0].input)).toEqual([{ UserName: 'alice' }]);
    expect(user).toEqual({
      userName: 'alice',
      arn: `arn:aws:iam::${ACCOUNT}:user/alice`,
      path: '/people/',
      tags: { 'key-rotation:owner': 'alice@example.com', team: 'data' },
    });
  });

  test('NoSuchEntityException is NoSuchUserError naming the user', async () => {
    const sdk = noSuchEntity('The user with name ghost cannot be found.');
    iam.on(GetUserCommand).rejects(sdk);

    const error = await rejectionOf(() => adapter().getUser('ghost'));

    expect(error).toBeInstanceOf(NoSuchUserError);
    expect((error as Error).message).toContain('user ghost does not exist');
    expect((error as Error).cause).toBe(sdk);
  });
});

describe('listAccessKeys', () => {
  test('collects every page for the user, following the Marker', async () => {
    const created = new Date('2025-10-01T00:00:00Z');
    const pages: Record<string, Partial<ListAccessKeysCommandOutput>> = {
      first: {
        AccessKeyMetadata: [
          { UserName: 'alice', AccessKeyId: 'AKIAFIRST0000000001', Status: 'Active', CreateDate: created },
        ],
        IsTruncated: true,
        Marker: 'k1',
      },
      k1: {
        AccessKeyMetadata: [
          { UserName: 'alice', AccessKeyId: 'AKIASECOND000000002', Status: 'Inactive', CreateDate: created },
        ],
        IsTruncated: false,
      },
    };
    const requests: { UserName?: string; Marker?: string }[] = [];
    iam.on(ListAccessKeysCommand).callsFake((input: { UserName?: string; Marker?: string }) => {
      requests.push({ ...input });
      return pages[input.Marker ?? 'first'];
    });

    const keys = await adapter().listAccessKeys('alice');

    expect(keys).toEqual([
      { accessKeyId: 'AKIAFIRST0000000001', status: 'Active', createDate: created },
      { accessKeyId: 'AKIASECOND000000002', status: 'Inactive', createDate: created },
    ]);
    expect(requests.map((r) => [r.UserName, r.Marker])).toEqual([
      ['alice', undefined],
      ['alice', 'k1'],
    ]);
  });

  test('NoSuchEntityException is NoSuchUserError', async () => {
    iam.on(ListAccessKeysCommand).rejects(noSuchEntity('The user with name ghost cannot be found.'));

    await expect(adapter().listAccessKeys('ghost')).rejects.toThrow(NoSuchUserError);
  });

  test('throttling is ThrottledError, never an empty list of keys', async () => {
    iam
      .on(ListAccessKeysCommand)
      .resolvesOnce({
        AccessKeyMetadata: [{ AccessKeyId: KEY_ID, Status: 'Active', CreateDate: new Date() }],
        Marker: 'k1',
        IsTruncated: true,
      })
      .rejectsOnce(sdkError('Throttling', { fault: 'client' }));

    await expect(adapter().listAccessKeys('alice')).rejects.toThrow(ThrottledError);
  });
});

describe('getAccessKeyLastUsed', () => {
  test('asks for the key and returns its last-used date', async () => {
    const used = new Date('2026-01-01T01:00:00Z');
    iam.on(GetAccessKeyLastUsedCommand).resolves({
      UserName: 'alice',
      AccessKeyLastUsed: { LastUsedDate: used, ServiceName: 's3', Region: 'us-east-1' },
    });

    await expect(adapter().getAccessKeyLastUsed(KEY_ID)).resolves.toEqual(used);
    expect(iam.commandCalls(GetAccessKeyLastUsedCommand).map((c) => c.args[0].input)).toEqual([
      { AccessKeyId: KEY_ID },
    ]);
  });

  test('a key IAM has never seen used resolves undefined', async () => {
    iam.on(GetAccessKeyLastUsedCommand).resolves({
      UserName: 'alice',
      AccessKeyLastUsed: { ServiceName: 'N/A', Region: 'N/A' },
    });

    await expect(adapter().getAccessKeyLastUsed(KEY_ID)).resolves.toBeUndefined();
  });

  test('throttling rejects with ThrottledError rather than resolving "never used"', async () => {
    iam
      .on(GetAccessKeyLastUsedCommand)
      .rejects(sdkError('Throttling', { fault: 'client', message: 'Rate exceeded' }));

    const error = await rejectionOf(() => adapter().getAccessKeyLastUsed(KEY_ID));

    expect(error).toBeInstanceOf(ThrottledError);
    expect((error as ThrottledError).retryable).toBe(true);
  });

  test('NoSuchEntityException is NoSuchKeyError naming the key', async () => {
    iam
      .on(GetAccessKeyLastUsedCommand)
      .rejects(noSuchEntity('The Access Key with id AKIA... cannot be found'));

    const error = await rejectionOf(() => adapter().getAccessKeyLastUsed(KEY_ID));

    expect(error).toBeInstanceOf(NoSuchKeyError);
    expect((error as Error).message).toContain(`access key ${KEY_ID} does not exist`);
  });
});

describe('createAccessKey', () => {
  test('creates a key for the user and returns the only copy of its secret', async () => {
    const created = new Date('2026-01-01T02:00:00Z');
    iam.on(CreateAccessKeyCommand).resolves({
      AccessKey: {
        UserName: 'alice',
        AccessKeyId: KEY_ID,
        SecretAccessKey: SECRET,
        Status: 'Active',
        CreateDate: created,
      },
    });

    const key = await adapter().createAccessKey('alice');

    expect(iam.commandCalls(CreateAccessKeyCommand).map((c) => c.args[0].input)).toEqual([
      { UserName: 'alice' },
    ]);
    expect(key).toEqual({
      userName: 'alice',
      accessKeyId: KEY_ID,
      secretAccessKey: SECRET,
      createDate: created,
    });
  });

  test('LimitExceededException is KeyLimitExceededError naming the user', async () => {
    const sdk = new LimitExceededException({
      message: 'Cannot exceed quota for AccessKeysPerUser: 2',
      $metadata: {},
    });
    iam.on(CreateAccessKeyCommand).rejects(sdk);

    const error = await rejectionOf(() => adapter().createAccessKey('alice'));

    expect(error).toBeInstanceOf(KeyLimitExceededError);
    expect((error as Error).message).toContain('user alice already has two access keys');
    expect((error as Error).cause).toBe(sdk);
  });

  test('NoSuchEntityException is NoSuchUserError', async () => {
    iam.on(CreateAccessKeyCommand).rejects(noSuchEntity('The user with name ghost cannot be found.'));

    await expect(adapter().createAccessKey('ghost')).rejects.toThrow(NoSuchUserError);
  });
});

describe('updateAccessKey and deleteAccessKey', () => {
  test('UpdateAccessKey names the user, the key and the status', async () => {
    iam.on(UpdateAccessKeyCommand).resolves({});

    await adapter().updateAccessKey('alice', KEY_ID, 'Inactive');

    expect(iam.commandCalls(UpdateAccessKeyCommand).map((c) => c.args[0].input)).toEqual([
      { UserName: 'alice', AccessKeyId: KEY_ID, Status: 'Inactive' },
    ]);
  });

  test('DeleteAccessKey names the user and the key', async () => {
    iam.on(DeleteAccessKeyCommand).resolves({});

    await adapter().deleteAccessKey('alice', KEY_ID);

    expect(iam.commandCalls(DeleteAccessKeyCommand).map((c) => c.args[0].input)).toEqual([
      { UserName: 'alice', AccessKeyId: KEY_ID },
    ]);
  });

  test.each([
    [
      'updateAccessKey',
      (e: Error) => iam.on(UpdateAccessKeyCommand).rejects(e),
      (a: IamAdapter) => a.updateAccessKey('alice', KEY_ID, 'Active'),
    ],
    [
      'deleteAccessKey',
      (e: Error) => iam.on(DeleteAccessKeyCommand).rejects(e),
      (a: IamAdapter) => a.deleteAccessKey('alice', KEY_ID),
    ],
  ] as const)('%s: NoSuchEntityException is NoSuchKeyError', async (_name, fail, run) => {
    fail(noSuchEntity('The Access Key with id AKIA... cannot be found'));

    const error = await rejectionOf(() => run(adapter()));

    expect(error).toBeInstanceOf(NoSuchKeyError);
    expect(error).not.toBeInstanceOf(NoSuchUserError);
  });
});

describe('generic error mapping, on every call', () => {
  // Each row: the operation, how to make its command fail, and the adapter call that sends it.
  const calls: readonly (readonly [string, (e: Error) => unknown, (a: IamAdapter) => Promise<unknown>])[] = [
    ['GetUser', (e) => iam.on(GetUserCommand).rejects(e), (a) => a.getUser('alice')],
    ['ListUsers', (e) => iam.on(ListUsersCommand).rejects(e), (a) => a.listUsers()],
    ['ListAccessKeys', (e) => iam.on(ListAccessKeysCommand).rejects(e), (a) => a.listAccessKeys('alice')],
    [
      'GetAccessKeyLastUsed',
      (e) => iam.on(GetAccessKeyLastUsedCommand).rejects(e),
      (a) => a.getAccessKeyLastUsed(KEY_ID),
    ],
    ['CreateAccessKey', (e) => iam.on(CreateAccessKeyCommand).rejects(e), (a) => a.createAccessKey('alice')],
    [
      'UpdateAccessKey',
      (e) => iam.on(UpdateAccessKeyCommand).rejects(e),
      (a) => a.updateAccessKey('alice', KEY_ID, 'Inactive'),
    ],
    [
      'DeleteAccessKey',
      (e) => iam.on(DeleteAccessKeyCommand).rejects(e),
      (a) => a.deleteAccessKey('alice', KEY_ID),
    ],
    [
      'GenerateCredentialReport',
      (e) => iam.on(GenerateCredentialReportCommand).rejects(e),
      (a) => a.generateCredentialReport(),
    ],
    [
      'GetCredentialReport',
      (e) => iam.on(GetCredentialReportCommand).rejects(e),
      (a) => a.getCredentialReport(),
    ],
  ];
  const failures = [
    ['Throttling', () => sdkError('Throttling', { fault: 'client' }), ThrottledError, true],
    [
      'AccessDenied',
      () => sdkError('AccessDenied', { fault: 'client', status: 403 }),
      AccessDeniedError,
      false,
    ],
    ['a socket TimeoutError', timeoutError, TransientServiceError, true],
    [
      'an unknown server fault',
      () => sdkError('Mystery', { fault: 'server', status: 500 }),
      TransientServiceError,
      true,
    ],
  ] as const;

  test.each(calls.flatMap(([name, fail, run]) => failures.map((f) => [name, f[0], fail, run, f] as const)))(
    '%s: %s',
    async (name, _failure, fail, run, [, make, expected, retryable]) => {
      const sdk = make();
      fail(sdk);

      const error = await rejectionOf(() => run(adapter()));

      expect(error).toBeInstanceOf(expected);
      expect((error as KeyRotationError).retryable).toBe(retryable);
      expect((error as Error).message.startsWith(`iam:${name}: `)).toBe(true);
      expect((error as Error).cause).toBe(sdk);
    },
  );
});
