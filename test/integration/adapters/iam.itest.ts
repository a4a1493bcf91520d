/**
 * IamAdapter and StsVerifier (production code) against the emulator's IAM and STS.
 */
import {
  CreateUserCommand,
  IAMClient,
  ListAccessKeysCommand,
  ListUsersCommand,
  TagUserCommand,
} from '@aws-sdk/client-iam';
import { IamAdapter } from '../../../lambda/adapters/iam';
import { StsVerifier } from '../../../lambda/adapters/sts';
import { parseCredentialReport } from '../../../lambda/domain/credential-report';
import {
  CredentialReportUnavailableError,
  KeyLimitExceededError,
  NoSuchKeyError,
  NoSuchUserError,
} from '../../../lambda/domain/errors';
import { ACCOUNT, inBatches, rejectionOf } from './fixtures';

const iam = new IAMClient({});
const adapter = new IamAdapter();
const verifier = new StsVerifier();

const anyDate = expect.any(Date) as Date;
const userArn = (userName: string, path = '/') => `arn:aws:iam::${ACCOUNT}:user${path}${userName}`;

async function createUser(userName: string, path = '/'): Promise<void> {
  await iam.send(new CreateUserCommand({ UserName: userName, Path: path }));
}

afterAll(() => iam.destroy());

describe('users', () => {
  const MANY = 130;

  beforeAll(async () => {
    await inBatches(MANY, 10, (index) =>
      createUser(`bulk-${String(index).padStart(3, '0')}`, index % 2 ? '/team/' : '/'),
    );
  });

  test('listUsers returns every user of the account, more than one default page (100) of them', async () => {
    const users = await adapter.listUsers();

    const bulk = users.filter((user) => user.userName.startsWith('bulk-'));
    expect(bulk).toHaveLength(MANY);
    expect(new Set(bulk.map((user) => user.userName)).size).toBe(MANY);
    expect(bulk.find((user) => user.userName === 'bulk-007')).toEqual({
      userName: 'bulk-007',
      arn: userArn('bulk-007', '/team/'),
      path: '/team/',
    });
    // moto answers ListUsers in one page whatever MaxItems says (IsTruncated is always false), so
    // the Marker loop is not exercised here; test/unit/adapters/iam.test.ts follows real pages.
    const page = await iam.send(new ListUsersCommand({ MaxItems: 10 }));
    expect(page.Users!.length).toBeGreaterThanOrEqual(10);
  });

  test('getUser returns the path and every tag, with empty values kept', async () => {
    await createUser('tagged', '/service/');
    await iam.send(
      new TagUserCommand({
        UserName: 'tagged',
        Tags: [
          { Key: 'owner', Value: 'alice@example.com bob@example.com' },
          { Key: 'key-rotation:exempt', Value: '' },
        ],
      }),
    );

    await expect(adapter.getUser('tagged')).resolves.toEqual({
      userName: 'tagged',
      arn: userArn('tagged', '/service/'),
      path: '/service/',
      tags: { owner: 'alice@example.com bob@example.com', 'key-rotation:exempt': '' },
    });
    await expect(adapter.getUser('bulk-000')).resolves.toMatchObject({ tags: {} });
  });

  test('a missing user is NoSuchUserError for getUser, listAccessKeys and createAccessKey', async () => {
    for (const call of [
      () => adapter.getUser('nobody'),
      () => adapter.listAccessKeys('nobody'),
      () => adapter.createAccessKey('nobody'),
    ]) {
      const error = await rejectionOf(call());
      expect(error).toBeInstanceOf(NoSuchUserError);
      expect(error.message).toContain('nobody');
    }
  });
});

describe('access keys', () => {
  test('a user gets two keys and no third: KeyLimitExceededError, and IAM still holds two', async () => {
    await createUser('two-keys');
    const first = await adapter.createAccessKey('two-keys');
    const second = await adapter.createAccessKey('two-keys');

    const error = await rejectionOf(adapter.createAccessKey('two-keys'));

    expect(error).toBeInstanceOf(KeyLimitExceededError);
    expect(error.message).toContain('two-keys');
    const listed = await iam.send(new ListAccessKeysCommand({ UserName: 'two-keys' }));
    expect(listed.AccessKeyMetadata!.map((key) => key.AccessKeyId).sort()).toEqual(
      [first.accessKeyId, second.accessKeyId].sort(),
    );
  });

  test('createAccessKey returns the new key with its secret and creation time', async () => {
    await createUser('fresh');
    const before = Date.now();

    const key = await adapter.createAccessKey('fresh');

    expect(key.userName).toBe('fresh');
    expect(key.accessKeyId).toMatch(/^AKIA[A-Z0-9]{16}$/);
    expect(key.secretAccessKey.length).toBeGreaterThanOrEqual(40);
    // The emulator's clock stamps the key; a second of slack for its whole-second resolution.
    expect(key.createDate.getTime()).toBeGreaterThanOrEqual(before - 1000);
    expect(key.createDate.getTime()).toBeLessThanOrEqual(Date.now() + 1000);
    await expect(adapter.listAccessKeys('fresh')).resolves.toEqual([
      { accessKeyId: key.accessKeyId, status: 'Active', createDate: anyDate },
    ]);
  });

  test('updateAccessKey deactivates and reactivates; deleteAccessKey removes the key', async () => {
    await createUser('cycled');
    const key = await adapter.createAccessKey('cycled');

    await adapter.updateAccessKey('cycled', key.accessKeyId, 'Inactive');
    await expect(adapter.listAccessKeys('cycled')).resolves.toMatchObject([{ status: 'Inactive' }]);
    await adapter.updateAccessKey('cycled', key.accessKeyId, 'Active');
    await expect(adapter.listAccessKeys('cycled')).resolves.toMatchObject([{ status: 'Active' }]);
    await adapter.deleteAccessKey('cycled', key.accessKeyId);

    await expect(adapter.listAccessKeys('cycled')).resolves.toEqual([]);
  });

  test('a key that does not exist is NoSuchKeyError for last-used, update and delete', async () => {
    await createUser('keyless');
    const missing = 'AKIAXXXXXXXXXXXXXXXX';
    for (const call of [
      () => adapter.getAccessKeyLastUsed(missing),
      () => adapter.updateAccessKey('keyless', missing, 'Inactive'),
      () => adapter.deleteAccessKey('keyless', missing),
    ]) {
      const error = await rejectionOf(call());
      expect(error).toBeInstanceOf(NoSuchKeyError);
      expect(error.message).toContain(missing);
    }
  });

  test('a key never used has no last-used date; once it signs an STS call, it has one', async () => {
    await createUser('user-of-sts', '/apps/');
    const key = await adapter.createAccessKey('user-of-sts');
    await expect(adapter.getAccessKeyLastUsed(key.accessKeyId)).resolves.toBeUndefined();
    const before = Date.now();

    const identity = await verifier.callerIdentity(key);

    expect(identity).toEqual({ arn: userArn('user-of-sts', '/apps/'), account: ACCOUNT });
    const lastUsed = await adapter.getAccessKeyLastUsed(key.accessKeyId);
    expect(lastUsed).toBeInstanceOf(Date);
    expect(lastUsed!.getTime()).toBeGreaterThanOrEqual(before - 1000);
    expect(lastUsed!.getTime()).toBeLessThanOrEqual(Date.now() + 1000);
  });
});

describe('StsVerifier', () => {
  test('a new key signs as its own user in the account', async () => {
    await createUser('verified');
    const key = await adapter.createAccessKey('verified');

    await expect(verifier.callerIdentity(key)).resolves.toEqual({
      arn: userArn('verified'),
      account: ACCOUNT,
    });
  });

  test('a deleted key does not prove itself as its user', async () => {
    await createUser('deleted-key');
    const key = await adapter.createAccessKey('deleted-key');
    await adapter.deleteAccessKey('deleted-key', key.accessKeyId);

    // AWS answers InvalidClientTokenId (CredentialsNotYetValidError). moto accepts any key and
    // answers with its default identity (README, "Where moto differs"), which is not the user's ARN:
    // the rotator compares the ARN before it trusts a key. Pinned, so that a moto that starts
    // refusing the key shows up here and this can assert AWS's error instead.
    await expect(verifier.callerIdentity(key)).resolves.toEqual({
      arn: `arn:aws:sts::${ACCOUNT}:user/moto`,
      account: ACCOUNT,
    });
  });
});

describe('credential report', () => {
  test('there is none to read before one is generated: CredentialReportUnavailableError', async () => {
    await expect(adapter.getCredentialReport()).rejects.toBeInstanceOf(CredentialReportUnavailableError);
  });

  test('generated, polled until COMPLETE and parsed as planAccount parses it', async () => {
    await createUser('report-none', '/');
    await createUser('report-one', '/team/');
    await createUser('report-two');
    const one = await adapter.createAccessKey('report-one');
    await verifier.callerIdentity(one); // gives key 1 a last-used date
    const first = await adapter.createAccessKey('report-two');
    await adapter.createAccessKey('report-two');
    await adapter.updateAccessKey('report-two', first.accessKeyId, 'Inactive');

    // The planner's loop: ask until IAM says COMPLETE (moto completes on the second request).
    const states: string[] = [];
    for (let attempt = 0; attempt < 10; attempt++) {
      const state = await adapter.generateCredentialReport();
      states.push(state);
      if (state === 'COMPLETE') break;
    }
    expect(states[0]).toBe('STARTED');
    expect(states.at(-1)).toBe('COMPLETE');
    const { csv } = await adapter.getCredentialReport();
    const rows = parseCredentialReport(csv);

    const row = (userName: string) => rows.find((candidate) => candidate.userName === userName);
    expect(row('report-none')).toEqual({
      userName: 'report-none',
      arn: userArn('report-none'),
      path: '/',
      keys: [
        { active: false, createDate: undefined, lastUsedDate: undefined },
        { active: false, createDate: undefined, lastUsedDate: undefined },
      ],
    });
    expect(row('report-one')).toMatchObject({
      arn: userArn('report-one', '/team/'),
      path: '/team/',
      keys: [
        { active: true, createDate: anyDate, lastUsedDate: anyDate },
        { active: false, createDate: undefined },
      ],
    });
    const [slot1, slot2] = row('report-two')!.keys;
    expect(slot1).toMatchObject({ active: false, createDate: anyDate, lastUsedDate: undefined });
    expect(slot2).toMatchObject({ active: true, createDate: anyDate, lastUsedDate: undefined });
    // The report's times are the keys' own creation times (to the second).
    const listed = await adapter.listAccessKeys('report-one');
    expect(
      Math.abs(row('report-one')!.keys[0]!.createDate!.getTime() - listed[0]!.createDate.getTime()),
    ).toBeLessThan(1000);
  });
});
