/**
 * SecretsManagerVault (production code) against the emulator's Secrets Manager: what it stores is
 * read back with plain SDK calls, by staging label and by version.
 */
import { CreateUserCommand, IAMClient } from '@aws-sdk/client-iam';
import {
  CreateSecretCommand,
  DeleteResourcePolicyCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  GetResourcePolicyCommand,
  GetSecretValueCommand,
  PutResourcePolicyCommand,
  RotateSecretCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { IamAdapter } from '../../../lambda/adapters/iam';
import { POLICY_SIDS, SecretsManagerVault } from '../../../lambda/adapters/secrets-manager';
import {
  ForeignSecretError,
  SecretNotFoundError,
  SecretRotationConflictError,
} from '../../../lambda/domain/errors';
import type { NewAccessKey } from '../../../lambda/domain/model';
import {
  PLACEHOLDER_VERSION,
  SECRET_TAGS,
  secretNameFor,
  secretVersionToken,
} from '../../../lambda/domain/naming';
import type { SecretRef } from '../../../lambda/ports';
import { ACCOUNT, createKmsKey, rejectionOf } from './fixtures';

const PREFIX = 'iam-key-rotation';
const SERVICE_ROLE = `arn:aws:iam::${ACCOUNT}:role/IamKeyRotation-RotatorRole-ABC123`;
const ADMIN_ROLE = `arn:aws:iam::${ACCOUNT}:role/key-admin`;
const READER_ROLE = `arn:aws:iam::${ACCOUNT}:role/deploy-pipeline`;

const secrets = new SecretsManagerClient({});
const iam = new IAMClient({});
const keys = new IamAdapter();
let kmsKeyArn: string;
let vault: SecretsManagerVault;

beforeAll(async () => {
  kmsKeyArn = await createKmsKey('iam-key-rotation secrets');
  vault = new SecretsManagerVault({
    kmsKeyArn,
    serviceRoleArn: SERVICE_ROLE,
    adminRoleArn: ADMIN_ROLE,
    readerArns: [READER_ROLE],
  });
});

afterAll(() => {
  secrets.destroy();
  iam.destroy();
});

/** A real IAM user with a real key: what the rotator stores. */
async function userWithKey(userName: string): Promise<{ ref: SecretRef; key: NewAccessKey }> {
  const created = await iam.send(new CreateUserCommand({ UserName: userName }));
  const ref: SecretRef = {
    accountId: ACCOUNT,
    userName,
    name: secretNameFor(PREFIX, ACCOUNT, userName),
    userArn: created.User!.Arn!,
  };
  return { ref, key: await keys.createAccessKey(userName) };
}

async function stagesOf(name: string): Promise<Record<string, string[]>> {
  const described = await secrets.send(new DescribeSecretCommand({ SecretId: name }));
  return described.VersionIdsToStages ?? {};
}

async function valueAt(name: string, select: { VersionStage?: string; VersionId?: string }) {
  const response = await secrets.send(new GetSecretValueCommand({ SecretId: name, ...select }));
  return { versionId: response.VersionId, value: response.SecretString };
}

const stored = (key: NewAccessKey) => ({
  AccessKeyId: key.accessKeyId,
  SecretAccessKey: key.secretAccessKey,
  UserName: key.userName,
  CreateDate: key.createDate.toISOString(),
});

describe('store', () => {
  test('a new secret: placeholder AWSCURRENT, the key AWSPENDING, our tags, the KMS key, the policy', async () => {
    const { ref, key } = await userWithKey('alice');

    await expect(vault.store(ref, key)).resolves.toMatchObject({ omittedReaders: [] });

    const described = await secrets.send(new DescribeSecretCommand({ SecretId: ref.name }));
    expect(described.Name).toBe(`iam-key-rotation/${ACCOUNT}/alice`);
    expect(described.KmsKeyId).toBe(kmsKeyArn);
    expect(described.Description).toContain('alice');
    expect(described.Tags).toEqual(
      expect.arrayContaining([
        { Key: SECRET_TAGS.managed, Value: 'true' },
        { Key: SECRET_TAGS.user, Value: `${ACCOUNT}/alice` },
      ]),
    );
    expect(described.RotationEnabled ?? false).toBe(false);
    expect(described.VersionIdsToStages).toEqual({
      [PLACEHOLDER_VERSION.token]: ['AWSCURRENT'],
      [secretVersionToken(key.accessKeyId)]: ['AWSPENDING'],
    });
    // Read back by stage: the placeholder holds no key; the pending version holds the new one.
    const current = await valueAt(ref.name, { VersionStage: 'AWSCURRENT' });
    expect(current).toEqual({ versionId: PLACEHOLDER_VERSION.token, value: PLACEHOLDER_VERSION.value });
    expect(current.value).not.toContain(key.accessKeyId);
    const pending = await valueAt(ref.name, { VersionStage: 'AWSPENDING' });
    expect(pending.versionId).toBe(secretVersionToken(key.accessKeyId));
    expect(JSON.parse(pending.value!)).toEqual(stored(key));
  });

  test('the resource policy: the user, admin and reader read; Denies keep reading and writing to them', async () => {
    const { ref, key } = await userWithKey('policy-user');

    await vault.store(ref, key);

    const response = await secrets.send(new GetResourcePolicyCommand({ SecretId: ref.name }));
    const policy = JSON.parse(response.ResourcePolicy!) as {
      Statement: { Sid: string; Effect: string; Principal: unknown; Action: unknown; Condition?: unknown }[];
    };
    const statement = (sid: string) => policy.Statement.find((candidate) => candidate.Sid === sid);
    expect(policy.Statement.map((candidate) => candidate.Sid)).toEqual([
      POLICY_SIDS.allowReaders,
      POLICY_SIDS.denyReading,
      POLICY_SIDS.denyWriting,
      POLICY_SIDS.denyManagedRotation,
    ]);
    expect(statement(POLICY_SIDS.allowReaders)).toMatchObject({
      Effect: 'Allow',
      Principal: { AWS: [ref.userArn, ADMIN_ROLE, READER_ROLE] },
    });
    expect(statement(POLICY_SIDS.denyReading)).toEqual(
      expect.objectContaining({
        Effect: 'Deny',
        Principal: '*',
        Action: ['secretsmanager:GetSecretValue'],
        Condition: {
          ArnNotEquals: { 'aws:PrincipalArn': [ref.userArn, ADMIN_ROLE, READER_ROLE, SERVICE_ROLE] },
        },
      }),
    );
    expect(statement(POLICY_SIDS.denyWriting)).toMatchObject({
      Effect: 'Deny',
      Principal: '*',
      Action: expect.arrayContaining(['secretsmanager:PutSecretValue']) as string[],
      Condition: { ArnNotEquals: { 'aws:PrincipalArn': [ADMIN_ROLE, SERVICE_ROLE] } },
    });
    expect(statement(POLICY_SIDS.denyManagedRotation)).toMatchObject({
      Effect: 'Deny',
      Action: ['secretsmanager:RotateSecret'],
    });
    // moto neither checks that the roles named exist (AWS refuses a policy naming a principal that
    // does not exist: MalformedPolicyDocumentException) nor enforces the policy: these tests read
    // the value with credentials the Deny would refuse on AWS.
  });

  test('storing the same key again changes nothing (same version id, same value)', async () => {
    const { ref, key } = await userWithKey('twice');
    await vault.store(ref, key);
    const before = await stagesOf(ref.name);

    await vault.store(ref, key);

    expect(await stagesOf(ref.name)).toEqual(before);
    const pending = await valueAt(ref.name, { VersionId: secretVersionToken(key.accessKeyId) });
    expect(JSON.parse(pending.value!)).toEqual(stored(key));
  });

  test('a secret under our name that we did not create: ForeignSecretError, and it is left as it was', async () => {
    const { ref, key } = await userWithKey('foreign');
    await secrets.send(new CreateSecretCommand({ Name: ref.name, SecretString: 'someone else’s' }));

    const error = await rejectionOf(vault.store(ref, key));

    expect(error).toBeInstanceOf(ForeignSecretError);
    expect(error.message).toContain(ref.name);
    expect(Object.values(await stagesOf(ref.name))).toEqual([['AWSCURRENT']]);
    await expect(valueAt(ref.name, { VersionStage: 'AWSCURRENT' })).resolves.toMatchObject({
      value: 'someone else’s',
    });
    const policy = await secrets.send(new GetResourcePolicyCommand({ SecretId: ref.name }));
    expect(policy.ResourcePolicy).toBeUndefined();
  });

  test('Secrets Manager rotation turned on for our secret: SecretRotationConflictError, nothing stored', async () => {
    const { ref, key } = await userWithKey('managed-rotation');
    await vault.store(ref, key);
    // AWS needs a rotation function (or a managed rotation) for RotateSecret; moto turns rotation
    // on with rotation rules alone, which is all this test needs.
    await secrets.send(
      new RotateSecretCommand({
        SecretId: ref.name,
        RotationRules: { AutomaticallyAfterDays: 30 },
        RotateImmediately: false,
      }),
    );
    await expect(vault.describe(ref)).resolves.toMatchObject({ rotationEnabled: true });
    const next = await keys.createAccessKey('managed-rotation');

    const error = await rejectionOf(vault.store(ref, next));

    expect(error).toBeInstanceOf(SecretRotationConflictError);
    expect(error.message).toContain('CancelRotateSecret');
    expect(Object.keys(await stagesOf(ref.name))).not.toContain(secretVersionToken(next.accessKeyId));
  });
});

describe('promote', () => {
  test('the key becomes AWSCURRENT, the placeholder AWSPREVIOUS, and AWSPENDING is gone', async () => {
    const { ref, key } = await userWithKey('promoted');
    await vault.store(ref, key);

    await vault.promote(ref, key.accessKeyId);

    expect(await stagesOf(ref.name)).toEqual({
      [PLACEHOLDER_VERSION.token]: ['AWSPREVIOUS'],
      [secretVersionToken(key.accessKeyId)]: ['AWSCURRENT'],
    });
    // What a workload reads is the verified key. On AWS a GetSecretValue naming neither version
    // nor stage returns AWSCURRENT; moto returns the version the secret was created with (its
    // default version) even after UpdateSecretVersionStage moved AWSCURRENT, so the stage is named.
    const current = await valueAt(ref.name, { VersionStage: 'AWSCURRENT' });
    expect(current.versionId).toBe(secretVersionToken(key.accessKeyId));
    expect(JSON.parse(current.value!)).toEqual(stored(key));
  });

  test('a second rotation: the new key AWSCURRENT, the old AWSPREVIOUS; both read back by version', async () => {
    const { ref, key: first } = await userWithKey('rotated');
    await vault.store(ref, first);
    await vault.promote(ref, first.accessKeyId);
    const second = await keys.createAccessKey('rotated');

    await vault.store(ref, second);
    expect((await stagesOf(ref.name))[secretVersionToken(first.accessKeyId)]).toEqual(['AWSCURRENT']);
    await vault.promote(ref, second.accessKeyId);
    await vault.promote(ref, second.accessKeyId); // idempotent

    const stages = await stagesOf(ref.name);
    expect(stages[secretVersionToken(second.accessKeyId)]).toEqual(['AWSCURRENT']);
    expect(stages[secretVersionToken(first.accessKeyId)]).toEqual(['AWSPREVIOUS']);
    // The placeholder has no label left (AWS omits such versions; moto lists them with none).
    expect(stages[PLACEHOLDER_VERSION.token] ?? []).toEqual([]);
    await expect(vault.read(ref, first.accessKeyId)).resolves.toEqual({
      accessKeyId: first.accessKeyId,
      secretAccessKey: first.secretAccessKey,
    });
    await expect(vault.read(ref, second.accessKeyId)).resolves.toEqual({
      accessKeyId: second.accessKeyId,
      secretAccessKey: second.secretAccessKey,
    });
    const previous = await valueAt(ref.name, { VersionStage: 'AWSPREVIOUS' });
    expect(previous.versionId).toBe(secretVersionToken(first.accessKeyId));
    await expect(vault.describe(ref)).resolves.toEqual({
      managedByUs: true,
      pendingDeletion: false,
      rotationEnabled: false,
      versions: expect.arrayContaining([
        { accessKeyId: first.accessKeyId, stages: ['AWSPREVIOUS'] },
        { accessKeyId: second.accessKeyId, stages: ['AWSCURRENT'] },
      ]) as unknown[],
      currentVersionId: secretVersionToken(second.accessKeyId),
    });
  });

  test('a key that was never stored, or a secret that does not exist: SecretNotFoundError', async () => {
    const { ref, key } = await userWithKey('unstored');
    await expect(vault.promote(ref, key.accessKeyId)).rejects.toBeInstanceOf(SecretNotFoundError);
    await vault.store(ref, key);
    await expect(vault.promote(ref, 'AKIANEVERSTORED00000')).rejects.toBeInstanceOf(SecretNotFoundError);
    await expect(vault.read(ref, 'AKIANEVERSTORED00000')).rejects.toBeInstanceOf(SecretNotFoundError);
  });
});

describe('one DescribeSecret per rotation: store and promote take what the rotation knows', () => {
  test('first rotation: known absent, then promote from what the store left', async () => {
    const { ref, key } = await userWithKey('known-first');

    const outcome = await vault.store(ref, key, 'absent');
    await vault.promote(ref, key.accessKeyId, outcome.secret);

    expect(outcome.secret).toMatchObject({ currentVersionId: PLACEHOLDER_VERSION.token });
    expect(await stagesOf(ref.name)).toEqual({
      [PLACEHOLDER_VERSION.token]: ['AWSPREVIOUS'],
      [secretVersionToken(key.accessKeyId)]: ['AWSCURRENT'],
    });
    const current = await valueAt(ref.name, { VersionStage: 'AWSCURRENT' });
    expect(JSON.parse(current.value!)).toEqual(stored(key));
  });

  test('a later rotation: described once, stored and promoted from that description', async () => {
    const { ref, key: first } = await userWithKey('known-later');
    await vault.promote(ref, first.accessKeyId, (await vault.store(ref, first, 'absent')).secret);
    const second = await keys.createAccessKey('known-later');
    const described = await vault.describe(ref);

    const outcome = await vault.store(ref, second, described);
    await vault.promote(ref, second.accessKeyId, outcome.secret);

    const stages = await stagesOf(ref.name);
    expect(stages[secretVersionToken(second.accessKeyId)]).toEqual(['AWSCURRENT']);
    expect(stages[secretVersionToken(first.accessKeyId)]).toEqual(['AWSPREVIOUS']);
    await expect(vault.describe(ref)).resolves.toMatchObject({
      currentVersionId: secretVersionToken(second.accessKeyId),
    });
  });

  test('known absent, but another run of ours created it meanwhile: CreateSecret is refused, the key is stored all the same', async () => {
    const { ref, key: first } = await userWithKey('known-raced');
    await vault.store(ref, first, 'absent');
    const second = await keys.createAccessKey('known-raced');

    const outcome = await vault.store(ref, second, 'absent');
    await vault.promote(ref, second.accessKeyId, outcome.secret);

    const stages = await stagesOf(ref.name);
    expect(stages[secretVersionToken(second.accessKeyId)]).toEqual(['AWSCURRENT']);
    expect(stages[PLACEHOLDER_VERSION.token]).toEqual(['AWSPREVIOUS']);
  });

  test('known absent, but a foreign secret appeared: ForeignSecretError, and it is left as it was', async () => {
    const { ref, key } = await userWithKey('known-foreign');
    await secrets.send(new CreateSecretCommand({ Name: ref.name, SecretString: 'theirs' }));

    const error = await rejectionOf(vault.store(ref, key, 'absent'));

    expect(error).toBeInstanceOf(ForeignSecretError);
    expect(Object.values(await stagesOf(ref.name))).toEqual([['AWSCURRENT']]);
  });

  test('a stale description whose secret lost our policy and had rotation turned on: described again, refused', async () => {
    const { ref, key } = await userWithKey('known-stale');
    await vault.store(ref, key, 'absent');
    const described = await vault.describe(ref);
    // Someone removes our policy (which denies RotateSecret) and turns Secrets Manager's rotation on.
    await secrets.send(new DeleteResourcePolicyCommand({ SecretId: ref.name }));
    await secrets.send(
      new RotateSecretCommand({
        SecretId: ref.name,
        RotationRules: { AutomaticallyAfterDays: 30 },
        RotateImmediately: false,
      }),
    );
    const next = await keys.createAccessKey('known-stale');

    const error = await rejectionOf(vault.store(ref, next, described));

    expect(error).toBeInstanceOf(SecretRotationConflictError);
    expect(Object.keys(await stagesOf(ref.name))).not.toContain(secretVersionToken(next.accessKeyId));
  });
});

describe('describe and settlePolicy', () => {
  test('describe: undefined for no secret; not ours for a foreign one; pending deletion seen', async () => {
    const { ref, key } = await userWithKey('described');
    await expect(vault.describe(ref)).resolves.toBeUndefined();
    await vault.store(ref, key);
    await expect(vault.describe(ref)).resolves.toEqual({
      managedByUs: true,
      pendingDeletion: false,
      rotationEnabled: false,
      versions: [{ accessKeyId: key.accessKeyId, stages: ['AWSPENDING'] }],
      currentVersionId: PLACEHOLDER_VERSION.token,
    });

    await secrets.send(new DeleteSecretCommand({ SecretId: ref.name, RecoveryWindowInDays: 7 }));

    await expect(vault.describe(ref)).resolves.toMatchObject({ managedByUs: true, pendingDeletion: true });
    // Tagged for another user of the account: not ours for this one.
    const other: SecretRef = { ...ref, userName: 'someone-else', name: secretNameFor(PREFIX, ACCOUNT, 'x') };
    await secrets.send(
      new CreateSecretCommand({
        Name: other.name,
        SecretString: '{}',
        Tags: [
          { Key: SECRET_TAGS.managed, Value: 'true' },
          { Key: SECRET_TAGS.user, Value: `${ACCOUNT}/described` },
        ],
      }),
    );
    await expect(vault.describe(other)).resolves.toMatchObject({ managedByUs: false });
  });

  test('settlePolicy writes our statements for a new service role and keeps an operator statement', async () => {
    const { ref, key } = await userWithKey('settled');
    await vault.store(ref, key);
    const operatorStatement = {
      Sid: 'AuditReadsMetadata',
      Effect: 'Allow',
      Principal: { AWS: `arn:aws:iam::${ACCOUNT}:role/auditor` },
      Action: 'secretsmanager:DescribeSecret',
      Resource: '*',
    };
    const written = JSON.parse(
      (await secrets.send(new GetResourcePolicyCommand({ SecretId: ref.name }))).ResourcePolicy!,
    ) as { Version: string; Statement: object[] };
    await secrets.send(
      new PutResourcePolicyCommand({
        SecretId: ref.name,
        ResourcePolicy: JSON.stringify({ ...written, Statement: [...written.Statement, operatorStatement] }),
      }),
    );
    const newRole = `arn:aws:iam::${ACCOUNT}:role/IamKeyRotation-RotatorRole-NEW456`;
    const redeployed = new SecretsManagerVault({ kmsKeyArn, serviceRoleArn: newRole });

    await expect(redeployed.settlePolicy(ref)).resolves.toEqual({ omittedReaders: [] });

    const settled = JSON.parse(
      (await secrets.send(new GetResourcePolicyCommand({ SecretId: ref.name }))).ResourcePolicy!,
    ) as { Statement: { Sid: string; Condition?: unknown }[] };
    expect(settled.Statement.map((statement) => statement.Sid)).toEqual([
      POLICY_SIDS.allowReaders,
      POLICY_SIDS.denyReading,
      POLICY_SIDS.denyWriting,
      POLICY_SIDS.denyManagedRotation,
      'AuditReadsMetadata',
    ]);
    expect(settled.Statement.at(-1)).toEqual(operatorStatement);
    expect(JSON.stringify(settled.Statement[1])).toContain(newRole);
    expect(JSON.stringify(settled)).not.toContain(SERVICE_ROLE);
  });
});
