import {
  CreateSecretCommand,
  DescribeSecretCommand,
  DescribeSecretCommandOutput,
  GetSecretValueCommand,
  PutResourcePolicyCommand,
  PutSecretValueCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { SecretsManagerVault } from '../../../lambda/adapters/secrets-manager';
import {
  AccessDeniedError,
  ForeignSecretError,
  KeyRotationError,
  SecretNotFoundError,
  ThrottledError,
  TransientServiceError,
} from '../../../lambda/domain/errors';
import type { NewAccessKey } from '../../../lambda/domain/model';
import type { SecretRef } from '../../../lambda/ports';
import { everythingIn, rejectionOf, sdkError, timeoutError } from './sdk-errors';

const secrets = mockClient(SecretsManagerClient);

const ACCOUNT = '123456789012';
const KMS_KEY = `arn:aws:kms:eu-west-1:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
const ADMIN_ROLE = `arn:aws:iam::${ACCOUNT}:role/key-admin`;
const REF: SecretRef = {
  accountId: ACCOUNT,
  userName: 'alice',
  name: `iam-key-rotation/${ACCOUNT}/alice`,
  userArn: `arn:aws:iam::${ACCOUNT}:user/alice`,
};
const KEY: NewAccessKey = {
  userName: 'alice',
  accessKeyId: 'AKIANEWKEY000000001',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRET001',
  createDate: new Date('2026-01-01T02:00:00.000Z'),
};
const TOKEN = `iam-key-rotation-${KEY.accessKeyId}`;
const OUR_TAGS = [
  { Key: 'iam-key-rotation:managed', Value: 'true' },
  { Key: 'iam-key-rotation:user', Value: `${ACCOUNT}/alice` },
];

function client(): SecretsManagerClient {
  return new SecretsManagerClient({
    region: 'eu-west-1',
    maxAttempts: 1,
    credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
  });
}

function vault(options: { adminRoleArn?: string } = {}): SecretsManagerVault {
  return new SecretsManagerVault({ kmsKeyArn: KMS_KEY, ...options }, client());
}

const notFound = () =>
  new ResourceNotFoundException({
    message: "Secrets Manager can't find the specified secret.",
    $metadata: {},
  });

function existingSecret(
  overrides: Partial<DescribeSecretCommandOutput> = {},
): Partial<DescribeSecretCommandOutput> {
  return {
    ARN: `arn:aws:secretsmanager:eu-west-1:${ACCOUNT}:secret:${REF.name}-AbCdEf`,
    Name: REF.name,
    Tags: OUR_TAGS,
    VersionIdsToStages: { 'iam-key-rotation-AKIAOLDKEY000000001': ['AWSCURRENT'] },
    ...overrides,
  };
}

function inputsOf<T>(calls: { args: [{ input: T }] }[]): T[] {
  return calls.map((c) => c.args[0].input);
}

beforeEach(() => secrets.reset());
afterAll(() => secrets.restore());

describe('describe', () => {
  test('a secret with our tags for this user is managed by us; versions come from our tokens', async () => {
    secrets.on(DescribeSecretCommand).resolves(
      existingSecret({
        VersionIdsToStages: {
          'iam-key-rotation-AKIAOLDKEY000000001': ['AWSPREVIOUS'],
          'iam-key-rotation-AKIANEWKEY000000001': ['AWSCURRENT'],
          // Written by someone else (the console): not a key of ours.
          'a1b2c3d4-5678-90ab-cdef-EXAMPLE11111': ['AWSPENDING'],
        },
      }),
    );

    const description = await vault().describe(REF);

    expect(inputsOf(secrets.commandCalls(DescribeSecretCommand))).toEqual([{ SecretId: REF.name }]);
    expect(description).toEqual({
      managedByUs: true,
      pendingDeletion: false,
      versions: [
        { accessKeyId: 'AKIAOLDKEY000000001', stages: ['AWSPREVIOUS'] },
        { accessKeyId: 'AKIANEWKEY000000001', stages: ['AWSCURRENT'] },
      ],
    });
  });

  test('ResourceNotFoundException means there is no secret: undefined', async () => {
    secrets.on(DescribeSecretCommand).rejects(notFound());

    await expect(vault().describe(REF)).resolves.toBeUndefined();
  });

  test.each([
    ['no tags', []],
    ['only the managed tag', [OUR_TAGS[0]!]],
    ['managed tag not "true"', [{ Key: 'iam-key-rotation:managed', Value: 'yes' }, OUR_TAGS[1]!]],
    ['another user', [OUR_TAGS[0]!, { Key: 'iam-key-rotation:user', Value: `${ACCOUNT}/bob` }]],
    ['another account', [OUR_TAGS[0]!, { Key: 'iam-key-rotation:user', Value: `999999999999/alice` }]],
  ])('a secret with %s is not managed by us', async (_name, tags) => {
    secrets.on(DescribeSecretCommand).resolves(existingSecret({ Tags: tags }));

    const description = await vault().describe(REF);

    expect(description?.managedByUs).toBe(false);
  });

  test('a secret with a DeletedDate is pending deletion', async () => {
    secrets
      .on(DescribeSecretCommand)
      .resolves(existingSecret({ DeletedDate: new Date('2026-01-01T00:00:00Z') }));

    const description = await vault().describe(REF);

    expect(description).toMatchObject({ managedByUs: true, pendingDeletion: true });
  });

  test.each([
    ['Throttling', () => sdkError('ThrottlingException', { fault: 'client' }), ThrottledError],
    [
      'AccessDenied',
      () => sdkError('AccessDeniedException', { fault: 'client', status: 400 }),
      AccessDeniedError,
    ],
    ['TimeoutError', timeoutError, TransientServiceError],
    [
      'server fault',
      () => sdkError('InternalServiceError', { fault: 'server', status: 500 }),
      TransientServiceError,
    ],
  ] as const)('%s is not mistaken for "no secret"', async (_name, make, expected) => {
    secrets.on(DescribeSecretCommand).rejects(make());

    await expect(vault().describe(REF)).rejects.toThrow(expected);
  });
});

describe('store', () => {
  test('no secret yet: CreateSecret with a placeholder (name, CMK, tags), the resource policy, then the key as AWSPENDING', async () => {
    secrets.on(DescribeSecretCommand).rejects(notFound());
    secrets.on(CreateSecretCommand).resolves({ Name: REF.name });
    secrets.on(PutResourcePolicyCommand).resolves({ Name: REF.name });
    secrets.on(PutSecretValueCommand).resolves({ Name: REF.name, VersionId: TOKEN });

    await vault().store(REF, KEY);

    const [create, ...moreCreates] = inputsOf(secrets.commandCalls(CreateSecretCommand));
    expect(moreCreates).toEqual([]);
    // Secrets Manager makes a secret's first version AWSCURRENT whatever is asked: that version is a
    // placeholder holding no key, so an unverified key never becomes AWSCURRENT, even in a new secret.
    expect(create).toEqual({
      Name: REF.name,
      Description: expect.any(String) as string,
      KmsKeyId: KMS_KEY,
      ClientRequestToken: 'keyrot-placeholder-no-key-stored-yet',
      SecretString: expect.not.stringContaining('SecretAccessKey') as string,
      Tags: [
        { Key: 'iam-key-rotation:managed', Value: 'true' },
        { Key: 'iam-key-rotation:user', Value: `${ACCOUNT}/alice` },
      ],
    });
    expect(create!.Description).not.toContain(KEY.secretAccessKey);
    expect(inputsOf(secrets.commandCalls(PutResourcePolicyCommand))).toEqual([
      { SecretId: REF.name, ResourcePolicy: expect.any(String) as string, BlockPublicPolicy: true },
    ]);
    const [put] = inputsOf(secrets.commandCalls(PutSecretValueCommand));
    expect(put).toEqual({
      SecretId: REF.name,
      ClientRequestToken: TOKEN,
      SecretString: expect.any(String) as string,
      VersionStages: ['AWSPENDING'],
    });
    expect(JSON.parse(put!.SecretString!)).toEqual({
      AccessKeyId: KEY.accessKeyId,
      SecretAccessKey: KEY.secretAccessKey,
      UserName: 'alice',
      CreateDate: '2026-01-01T02:00:00.000Z',
    });
    // The policy is in place before the value exists.
    const order = secrets
      .calls()
      .map((call) => (call.args[0] as { constructor: { name: string } }).constructor.name);
    expect(order.indexOf('PutResourcePolicyCommand')).toBeLessThan(order.indexOf('PutSecretValueCommand'));
  });

  test('our secret exists: PutSecretValue labelled AWSPENDING (not yet verified) with the key token, no CreateSecret', async () => {
    secrets.on(DescribeSecretCommand).resolves(existingSecret());
    secrets.on(PutSecretValueCommand).resolves({ Name: REF.name, VersionId: TOKEN });
    secrets.on(PutResourcePolicyCommand).resolves({ Name: REF.name });

    await vault().store(REF, KEY);

    expect(secrets.commandCalls(CreateSecretCommand)).toHaveLength(0);
    const puts = inputsOf(secrets.commandCalls(PutSecretValueCommand));
    expect(puts).toEqual([
      {
        SecretId: REF.name,
        ClientRequestToken: TOKEN,
        SecretString: expect.any(String) as string,
        VersionStages: ['AWSPENDING'],
      },
    ]);
    expect(JSON.parse(puts[0]!.SecretString!)).toEqual({
      AccessKeyId: KEY.accessKeyId,
      SecretAccessKey: KEY.secretAccessKey,
      UserName: 'alice',
      CreateDate: '2026-01-01T02:00:00.000Z',
    });
    expect(secrets.commandCalls(PutResourcePolicyCommand)).toHaveLength(1);
  });

  test('storing the same key twice sends the same token and value (idempotent per key id)', async () => {
    secrets.on(DescribeSecretCommand).resolves(existingSecret());
    secrets.on(PutSecretValueCommand).resolves({});
    secrets.on(PutResourcePolicyCommand).resolves({});

    await vault().store(REF, KEY);
    await vault().store(REF, KEY);

    const [first, second] = inputsOf(secrets.commandCalls(PutSecretValueCommand));
    expect(second).toEqual(first);
  });

  test('the resource policy lets only the user read the secret, with public policies blocked', async () => {
    secrets.on(DescribeSecretCommand).rejects(notFound());
    secrets.on(CreateSecretCommand).resolves({});
    secrets.on(PutResourcePolicyCommand).resolves({});

    await vault().store(REF, KEY);

    const [put] = inputsOf(secrets.commandCalls(PutResourcePolicyCommand));
    expect(put?.BlockPublicPolicy).toBe(true);
    expect(JSON.parse(put!.ResourcePolicy!)).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'KeyOwnerReadsOwnKey',
          Effect: 'Allow',
          Principal: { AWS: [REF.userArn] },
          Action: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
          Resource: '*',
        },
      ],
    });
  });

  test('with an admin role configured, the policy names the user and the role', async () => {
    secrets.on(DescribeSecretCommand).resolves(existingSecret());
    secrets.on(PutSecretValueCommand).resolves({});
    secrets.on(PutResourcePolicyCommand).resolves({});

    await vault({ adminRoleArn: ADMIN_ROLE }).store(REF, KEY);

    const [put] = inputsOf(secrets.commandCalls(PutResourcePolicyCommand));
    const policy = JSON.parse(put!.ResourcePolicy!) as { Statement: { Principal: { AWS: string[] } }[] };
    expect(policy.Statement.map((s) => s.Principal.AWS)).toEqual([[REF.userArn, ADMIN_ROLE]]);
    expect(put?.BlockPublicPolicy).toBe(true);
  });

  test('a secret without our tags is ForeignSecretError, and nothing is written', async () => {
    secrets.on(DescribeSecretCommand).resolves(existingSecret({ Tags: [{ Key: 'team', Value: 'data' }] }));

    const error = await rejectionOf(() => vault().store(REF, KEY));

    expect(error).toBeInstanceOf(ForeignSecretError);
    expect((error as Error).message).toContain(REF.name);
    expect(secrets.commandCalls(CreateSecretCommand)).toHaveLength(0);
    expect(secrets.commandCalls(PutSecretValueCommand)).toHaveLength(0);
    expect(secrets.commandCalls(PutResourcePolicyCommand)).toHaveLength(0);
  });

  test('a secret tagged for another user is ForeignSecretError too', async () => {
    secrets.on(DescribeSecretCommand).resolves(
      existingSecret({
        Tags: [OUR_TAGS[0]!, { Key: 'iam-key-rotation:user', Value: `${ACCOUNT}/al,ice` }],
      }),
    );

    await expect(vault().store(REF, KEY)).rejects.toThrow(ForeignSecretError);
    expect(secrets.commandCalls(PutSecretValueCommand)).toHaveLength(0);
  });

  const failPut = (e: Error) => secrets.on(PutSecretValueCommand).rejects(e);
  const failPolicy = (e: Error) => secrets.on(PutResourcePolicyCommand).rejects(e);
  test.each([
    [
      'PutSecretValue throttled',
      failPut,
      () => sdkError('ThrottlingException', { fault: 'client' }),
      ThrottledError,
    ],
    ['PutSecretValue timed out', failPut, timeoutError, TransientServiceError],
    [
      'PutResourcePolicy denied',
      failPolicy,
      () => sdkError('AccessDeniedException', { fault: 'client' }),
      AccessDeniedError,
    ],
  ] as const)('%s: the error is mapped and carries no secret', async (_name, fail, make, expected) => {
    secrets.on(DescribeSecretCommand).resolves(existingSecret());
    secrets.on(PutSecretValueCommand).resolves({});
    secrets.on(PutResourcePolicyCommand).resolves({});
    fail(make());

    const error = await rejectionOf(() => vault().store(REF, KEY));

    expect(error).toBeInstanceOf(expected);
    expect((error as Error).message).not.toContain(KEY.secretAccessKey);
    expect(everythingIn(error)).not.toContain(KEY.secretAccessKey);
  });

  test('CreateSecret failing: the error carries no secret', async () => {
    secrets.on(DescribeSecretCommand).rejects(notFound());
    secrets
      .on(CreateSecretCommand)
      .rejects(sdkError('InternalServiceError', { fault: 'server', status: 500 }));

    const error = await rejectionOf(() => vault().store(REF, KEY));

    expect(error).toBeInstanceOf(TransientServiceError);
    expect(everythingIn(error)).not.toContain(KEY.secretAccessKey);
    expect(secrets.commandCalls(PutResourcePolicyCommand)).toHaveLength(0);
  });
});

describe('promote', () => {
  const OLD_TOKEN = 'iam-key-rotation-AKIAOLDKEY000000001';

  test('moves AWSCURRENT from the old version to the key, then drops AWSPENDING from the key', async () => {
    secrets
      .on(DescribeSecretCommand)
      .resolves(
        existingSecret({ VersionIdsToStages: { [OLD_TOKEN]: ['AWSCURRENT'], [TOKEN]: ['AWSPENDING'] } }),
      );
    secrets.on(UpdateSecretVersionStageCommand).resolves({});

    await vault().promote(REF, KEY.accessKeyId);

    expect(inputsOf(secrets.commandCalls(DescribeSecretCommand))).toEqual([{ SecretId: REF.name }]);
    expect(inputsOf(secrets.commandCalls(UpdateSecretVersionStageCommand))).toEqual([
      {
        SecretId: REF.name,
        VersionStage: 'AWSCURRENT',
        MoveToVersionId: TOKEN,
        RemoveFromVersionId: OLD_TOKEN,
      },
      { SecretId: REF.name, VersionStage: 'AWSPENDING', RemoveFromVersionId: TOKEN },
    ]);
  });

  test('a key already current and no longer pending: nothing to do (idempotent)', async () => {
    secrets
      .on(DescribeSecretCommand)
      .resolves(
        existingSecret({ VersionIdsToStages: { [OLD_TOKEN]: ['AWSPREVIOUS'], [TOKEN]: ['AWSCURRENT'] } }),
      );

    await vault().promote(REF, KEY.accessKeyId);

    expect(secrets.commandCalls(UpdateSecretVersionStageCommand)).toHaveLength(0);
  });

  test('a repeat after a crash between the two moves finishes the second one only', async () => {
    secrets.on(DescribeSecretCommand).resolves(
      existingSecret({
        VersionIdsToStages: { [OLD_TOKEN]: ['AWSPREVIOUS'], [TOKEN]: ['AWSCURRENT', 'AWSPENDING'] },
      }),
    );
    secrets.on(UpdateSecretVersionStageCommand).resolves({});

    await vault().promote(REF, KEY.accessKeyId);

    expect(inputsOf(secrets.commandCalls(UpdateSecretVersionStageCommand))).toEqual([
      { SecretId: REF.name, VersionStage: 'AWSPENDING', RemoveFromVersionId: TOKEN },
    ]);
  });

  test('with no current version anywhere, AWSCURRENT is attached without a RemoveFromVersionId', async () => {
    secrets
      .on(DescribeSecretCommand)
      .resolves(existingSecret({ VersionIdsToStages: { [TOKEN]: ['AWSPENDING'] } }));
    secrets.on(UpdateSecretVersionStageCommand).resolves({});

    await vault().promote(REF, KEY.accessKeyId);

    expect(inputsOf(secrets.commandCalls(UpdateSecretVersionStageCommand))[0]).toEqual({
      SecretId: REF.name,
      VersionStage: 'AWSCURRENT',
      MoveToVersionId: TOKEN,
    });
  });

  test('a key with no version in the secret is SecretNotFoundError, and no label moves', async () => {
    secrets
      .on(DescribeSecretCommand)
      .resolves(existingSecret({ VersionIdsToStages: { [OLD_TOKEN]: ['AWSCURRENT'] } }));

    const error = await rejectionOf(() => vault().promote(REF, KEY.accessKeyId));

    expect(error).toBeInstanceOf(SecretNotFoundError);
    expect((error as Error).message).toBe(`no version for key ${KEY.accessKeyId} in ${REF.name}`);
    expect(secrets.commandCalls(UpdateSecretVersionStageCommand)).toHaveLength(0);
  });

  test('a missing secret is SecretNotFoundError (never a silent success)', async () => {
    secrets.on(DescribeSecretCommand).rejects(notFound());

    await expect(vault().promote(REF, KEY.accessKeyId)).rejects.toThrow(SecretNotFoundError);
    expect(secrets.commandCalls(UpdateSecretVersionStageCommand)).toHaveLength(0);
  });

  test('throttling while moving a label is ThrottledError', async () => {
    secrets
      .on(DescribeSecretCommand)
      .resolves(
        existingSecret({ VersionIdsToStages: { [OLD_TOKEN]: ['AWSCURRENT'], [TOKEN]: ['AWSPENDING'] } }),
      );
    secrets.on(UpdateSecretVersionStageCommand).rejects(sdkError('ThrottlingException', { fault: 'client' }));

    await expect(vault().promote(REF, KEY.accessKeyId)).rejects.toThrow(ThrottledError);
  });
});

describe('read', () => {
  test('reads the version of the key by its token and returns its credentials', async () => {
    secrets.on(GetSecretValueCommand).resolves({
      Name: REF.name,
      VersionId: TOKEN,
      SecretString: JSON.stringify({
        AccessKeyId: KEY.accessKeyId,
        SecretAccessKey: KEY.secretAccessKey,
        UserName: 'alice',
        CreateDate: '2026-01-01T02:00:00.000Z',
      }),
    });

    const credentials = await vault().read(REF, KEY.accessKeyId);

    expect(inputsOf(secrets.commandCalls(GetSecretValueCommand))).toEqual([
      { SecretId: REF.name, VersionId: TOKEN },
    ]);
    expect(credentials).toEqual({ accessKeyId: KEY.accessKeyId, secretAccessKey: KEY.secretAccessKey });
  });

  test('ResourceNotFoundException is SecretNotFoundError naming the key and the secret', async () => {
    secrets.on(GetSecretValueCommand).rejects(notFound());

    const error = await rejectionOf(() => vault().read(REF, KEY.accessKeyId));

    expect(error).toBeInstanceOf(SecretNotFoundError);
    expect((error as Error).message).toBe(`no version for key ${KEY.accessKeyId} in ${REF.name}`);
  });

  test('a corrupt SecretString is an error that never shows the value', async () => {
    // Not JSON (truncated): the adapter must say where the bad value is, never what it holds.
    const corrupt = `{"AccessKeyId":"${KEY.accessKeyId}","SecretAccessKey":"${KEY.secretAccessKey}"`;
    secrets.on(GetSecretValueCommand).resolves({ SecretString: corrupt });

    const error = await rejectionOf(() => vault().read(REF, KEY.accessKeyId));

    expect(error).toBeInstanceOf(KeyRotationError);
    expect((error as Error).message).toContain(REF.name);
    expect((error as Error).message).not.toContain(KEY.secretAccessKey);
    expect(everythingIn(error)).not.toContain(KEY.secretAccessKey);
  });

  test.each(['null', '42', '"text"'])(
    'a value that is JSON but not an object (%s) is a KeyRotationError',
    async (value) => {
      secrets.on(GetSecretValueCommand).resolves({ SecretString: value });

      const error = await rejectionOf(() => vault().read(REF, KEY.accessKeyId));

      expect(error).toBeInstanceOf(KeyRotationError);
      expect((error as Error).message).toContain('is not the JSON this service writes');
    },
  );

  test('a short corrupt value, which the JSON.parse error of Node 20 quotes whole, is not shown either', async () => {
    const secret = 'plainSecretValue123';
    secrets.on(GetSecretValueCommand).resolves({ SecretString: secret });

    const error = await rejectionOf(() => vault().read(REF, KEY.accessKeyId));

    expect(error).toBeInstanceOf(KeyRotationError);
    expect(everythingIn(error)).not.toContain(secret);
  });

  test('a version holding another key is an error that does not show the secret', async () => {
    secrets.on(GetSecretValueCommand).resolves({
      SecretString: JSON.stringify({
        AccessKeyId: 'AKIAOTHERKEY0000002',
        SecretAccessKey: KEY.secretAccessKey,
      }),
    });

    const error = await rejectionOf(() => vault().read(REF, KEY.accessKeyId));

    expect(error).toBeInstanceOf(KeyRotationError);
    expect((error as Error).message).toContain('does not hold that key');
    expect(everythingIn(error)).not.toContain(KEY.secretAccessKey);
  });

  test('a version without a SecretAccessKey is an error', async () => {
    secrets
      .on(GetSecretValueCommand)
      .resolves({ SecretString: JSON.stringify({ AccessKeyId: KEY.accessKeyId }) });

    await expect(vault().read(REF, KEY.accessKeyId)).rejects.toThrow('does not hold that key');
  });

  test('throttling is ThrottledError', async () => {
    secrets.on(GetSecretValueCommand).rejects(sdkError('ThrottlingException', { fault: 'client' }));

    await expect(vault().read(REF, KEY.accessKeyId)).rejects.toThrow(ThrottledError);
  });
});
