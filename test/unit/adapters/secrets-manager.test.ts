import {
  CreateSecretCommand,
  DescribeSecretCommand,
  DescribeSecretCommandOutput,
  GetResourcePolicyCommand,
  GetSecretValueCommand,
  MalformedPolicyDocumentException,
  PutResourcePolicyCommand,
  PutResourcePolicyCommandInput,
  PutSecretValueCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { SecretsManagerVault, SecretsManagerVaultOptions } from '../../../lambda/adapters/secrets-manager';
import {
  AccessDeniedError,
  ConfigError,
  ForeignSecretError,
  KeyRotationError,
  SecretNotFoundError,
  SecretRotationConflictError,
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
const SERVICE_ROLE = `arn:aws:iam::${ACCOUNT}:role/KeyRotation-RotatorRole-ABC123`;
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

function vault(options: Partial<SecretsManagerVaultOptions> = {}): SecretsManagerVault {
  return new SecretsManagerVault({ kmsKeyArn: KMS_KEY, serviceRoleArn: SERVICE_ROLE, ...options }, client());
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

beforeEach(() => {
  secrets.reset();
  // An existing secret without a resource policy, unless a test says otherwise.
  secrets.on(GetResourcePolicyCommand).resolves({ Name: REF.name });
});
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
      rotationEnabled: false,
      versions: [
        { accessKeyId: 'AKIAOLDKEY000000001', stages: ['AWSPREVIOUS'] },
        { accessKeyId: 'AKIANEWKEY000000001', stages: ['AWSCURRENT'] },
      ],
      currentVersionId: 'iam-key-rotation-AKIANEWKEY000000001',
    });
  });

  test('the current version is named whatever it holds (the placeholder too)', async () => {
    secrets.on(DescribeSecretCommand).resolves(
      existingSecret({
        VersionIdsToStages: {
          'keyrot-placeholder-no-key-stored-yet': ['AWSCURRENT'],
          'iam-key-rotation-AKIANEWKEY000000001': ['AWSPENDING'],
        },
      }),
    );

    const description = await vault().describe(REF);

    expect(description).toMatchObject({
      versions: [{ accessKeyId: 'AKIANEWKEY000000001', stages: ['AWSPENDING'] }],
      currentVersionId: 'keyrot-placeholder-no-key-stored-yet',
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

interface PolicyStatement {
  Sid?: string;
  Effect: string;
  Principal: unknown;
  Action: string | string[];
  Resource: string;
  Condition?: Record<string, Record<string, string | string[]>>;
}

function policiesWritten(): { Version: string; Statement: PolicyStatement[] }[] {
  return inputsOf(secrets.commandCalls(PutResourcePolicyCommand)).map(
    (input) => JSON.parse(input.ResourcePolicy!) as { Version: string; Statement: PolicyStatement[] },
  );
}

function actionsOf(statement: PolicyStatement): string[] {
  return typeof statement.Action === 'string' ? [statement.Action] : statement.Action;
}

/** Who the policy lets call `action`: named in an Allow, or for our Denies, exempt from them. */
function exemptFrom(statements: PolicyStatement[], action: string): string[][] {
  return statements
    .filter((statement) => statement.Effect === 'Deny' && actionsOf(statement).includes(action))
    .map((statement) => {
      const exempt = statement.Condition?.ArnNotEquals?.['aws:PrincipalArn'];
      return exempt === undefined ? [] : typeof exempt === 'string' ? [exempt] : exempt;
    });
}

const policyOf = (statements: object[]) => JSON.stringify({ Version: '2012-10-17', Statement: statements });

describe('the resource policy', () => {
  function newSecret(): void {
    secrets.on(DescribeSecretCommand).rejects(notFound());
    secrets.on(CreateSecretCommand).resolves({});
    secrets.on(PutResourcePolicyCommand).resolves({});
    secrets.on(PutSecretValueCommand).resolves({});
  }

  test('lets the user read, and denies the value to every other principal of the account but the service', async () => {
    newSecret();

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
        {
          Sid: 'OnlyKeyOwnerAdminAndServiceReadTheKey',
          Effect: 'Deny',
          Principal: '*',
          Action: ['secretsmanager:GetSecretValue'],
          Resource: '*',
          Condition: { ArnNotEquals: { 'aws:PrincipalArn': [REF.userArn, SERVICE_ROLE] } },
        },
        {
          Sid: 'OnlyAdminAndServiceWriteTheKey',
          Effect: 'Deny',
          Principal: '*',
          Action: [
            'secretsmanager:PutSecretValue',
            'secretsmanager:UpdateSecret',
            'secretsmanager:UpdateSecretVersionStage',
            'secretsmanager:ReplicateSecretToRegions',
          ],
          Resource: '*',
          Condition: { ArnNotEquals: { 'aws:PrincipalArn': [SERVICE_ROLE] } },
        },
        {
          Sid: 'NoSecretsManagerRotation',
          Effect: 'Deny',
          Principal: '*',
          Action: ['secretsmanager:RotateSecret'],
          Resource: '*',
        },
      ],
    });
    // A new secret has no policy to keep: nothing is read first.
    expect(secrets.commandCalls(GetResourcePolicyCommand)).toHaveLength(0);
  });

  test('with an admin role: the role reads and writes the value too; the user only reads', async () => {
    newSecret();

    await vault({ adminRoleArn: ADMIN_ROLE }).store(REF, KEY);

    const [policy] = policiesWritten();
    const statements = policy!.Statement;
    expect(statements.find((st) => st.Effect === 'Allow')?.Principal).toEqual({
      AWS: [REF.userArn, ADMIN_ROLE],
    });
    expect(exemptFrom(statements, 'secretsmanager:GetSecretValue')).toEqual([
      [REF.userArn, ADMIN_ROLE, SERVICE_ROLE],
    ]);
    for (const write of ['PutSecretValue', 'UpdateSecret', 'UpdateSecretVersionStage']) {
      expect(exemptFrom(statements, `secretsmanager:${write}`)).toEqual([[ADMIN_ROLE, SERVICE_ROLE]]);
    }
    // Secrets Manager's own rotation: denied to everyone, us included.
    expect(exemptFrom(statements, 'secretsmanager:RotateSecret')).toEqual([[]]);
  });

  test('never denies what an administrator needs to repair or remove the secret', async () => {
    newSecret();

    await vault({ adminRoleArn: ADMIN_ROLE }).store(REF, KEY);

    const denied = policiesWritten()[0]!
      .Statement.filter((statement) => statement.Effect === 'Deny')
      .flatMap(actionsOf);
    for (const action of [
      'DescribeSecret',
      'GetResourcePolicy',
      'PutResourcePolicy',
      'DeleteResourcePolicy',
      'DeleteSecret',
      'CancelRotateSecret',
      'RestoreSecret',
    ]) {
      expect(denied).not.toContain(`secretsmanager:${action}`);
    }
    expect(denied.some((action) => action.includes('*'))).toBe(false);
  });

  test('keeps the statements an operator added, and replaces only ours', async () => {
    const operatorStatement = {
      Sid: 'AuditorsDescribe',
      Effect: 'Allow',
      Principal: { AWS: `arn:aws:iam::${ACCOUNT}:role/auditor` },
      Action: 'secretsmanager:DescribeSecret',
      Resource: '*',
    };
    const unnamedStatement = {
      Effect: 'Deny',
      Principal: '*',
      Action: 'secretsmanager:DeleteSecret',
      Resource: '*',
      Condition: { Bool: { 'aws:MultiFactorAuthPresent': 'false' } },
    };
    secrets.on(DescribeSecretCommand).resolves(existingSecret());
    secrets.on(GetResourcePolicyCommand).resolves({
      ResourcePolicy: policyOf([
        // Ours, from before (no Deny yet, a reader since removed): replaced.
        {
          Sid: 'KeyOwnerReadsOwnKey',
          Effect: 'Allow',
          Principal: { AWS: [REF.userArn, `arn:aws:iam::${ACCOUNT}:role/old-admin`] },
          Action: ['secretsmanager:GetSecretValue'],
          Resource: '*',
        },
        operatorStatement,
        unnamedStatement,
      ]),
    });
    secrets.on(PutResourcePolicyCommand).resolves({});
    secrets.on(PutSecretValueCommand).resolves({});

    await vault().store(REF, KEY);

    expect(inputsOf(secrets.commandCalls(GetResourcePolicyCommand))).toEqual([{ SecretId: REF.name }]);
    const [policy] = policiesWritten();
    expect(policy!.Statement).toContainEqual(operatorStatement);
    expect(policy!.Statement).toContainEqual(unnamedStatement);
    expect(policy!.Statement.filter((st) => st.Sid === 'KeyOwnerReadsOwnKey')).toEqual([
      expect.objectContaining({ Principal: { AWS: [REF.userArn] } }),
    ]);
    expect(JSON.stringify(policy)).not.toContain('old-admin');
    expect(policy!.Statement).toHaveLength(6);
  });

  test('a policy that already says it (in whatever formatting) is not written again', async () => {
    newSecret();
    await vault().store(REF, KEY);
    const [written] = policiesWritten();
    // As Secrets Manager may hand it back: other key order, one-element lists unwrapped, "*" spelt out.
    const reformatted = written!.Statement.map((statement) => {
      const { Sid, Effect, Principal, Action, Resource, Condition } = statement;
      const unwrap = (value: unknown): unknown =>
        Array.isArray(value) && value.length === 1 ? (value[0] as unknown) : value;
      return {
        Resource,
        ...(Condition
          ? {
              Condition: {
                ArnNotEquals: { 'aws:PrincipalArn': unwrap(Condition.ArnNotEquals!['aws:PrincipalArn']) },
              },
            }
          : {}),
        Action: unwrap(Action),
        Principal: Principal === '*' ? { AWS: '*' } : { AWS: unwrap((Principal as { AWS: unknown }).AWS) },
        Effect,
        Sid,
      };
    });
    secrets.reset();
    secrets.on(DescribeSecretCommand).resolves(existingSecret());
    secrets.on(GetResourcePolicyCommand).resolves({
      ResourcePolicy: JSON.stringify({ Statement: reformatted, Version: '2012-10-17' }, null, 2),
    });
    secrets.on(PutSecretValueCommand).resolves({});

    await vault().store(REF, KEY);

    expect(secrets.commandCalls(PutResourcePolicyCommand)).toHaveLength(0);
    expect(secrets.commandCalls(PutSecretValueCommand)).toHaveLength(1);
  });

  test('a single statement object (not a list) in the current policy is kept too', async () => {
    const operatorStatement = {
      Sid: 'Other',
      Effect: 'Allow',
      Principal: { AWS: ADMIN_ROLE },
      Action: 'secretsmanager:DescribeSecret',
      Resource: '*',
    };
    secrets.on(DescribeSecretCommand).resolves(existingSecret());
    secrets.on(GetResourcePolicyCommand).resolves({
      ResourcePolicy: JSON.stringify({ Version: '2012-10-17', Statement: operatorStatement }),
    });
    secrets.on(PutResourcePolicyCommand).resolves({});
    secrets.on(PutSecretValueCommand).resolves({});

    await vault().store(REF, KEY);

    expect(policiesWritten()[0]!.Statement).toContainEqual(operatorStatement);
  });

  test('without an admin role or the service role nobody could write under the Deny: refused before any call', async () => {
    const error = await rejectionOf(() => vault({ serviceRoleArn: undefined }).store(REF, KEY));

    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain('name the admin role (secretAdminRoleArn');
    expect(secrets.calls()).toHaveLength(0);
  });
});

describe('a missing admin role', () => {
  const unsupportedPrincipal = () =>
    new MalformedPolicyDocumentException({
      message: 'This resource policy contains an unsupported principal.',
      $metadata: { httpStatusCode: 400 },
    });

  /** Secrets Manager as it behaves while ADMIN_ROLE does not exist: a policy naming it is refused. */
  function roleMissing(missing: () => boolean): void {
    secrets.on(DescribeSecretCommand).resolves(existingSecret());
    secrets.on(PutSecretValueCommand).resolves({});
    secrets
      .on(PutResourcePolicyCommand)
      .callsFake((input: PutResourcePolicyCommandInput) =>
        missing() && input.ResourcePolicy!.includes(ADMIN_ROLE)
          ? Promise.reject(unsupportedPrincipal())
          : Promise.resolve({ Name: REF.name }),
      );
  }

  test('the key is stored without it, readable by the user, and the omission is returned', async () => {
    roleMissing(() => true);

    const outcome = await vault({ adminRoleArn: ADMIN_ROLE }).store(REF, KEY);

    expect(outcome.omittedReaders).toEqual([ADMIN_ROLE]);
    const [refused, stored] = policiesWritten();
    expect(JSON.stringify(refused)).toContain(ADMIN_ROLE);
    expect(JSON.stringify(stored)).not.toContain(ADMIN_ROLE);
    expect(stored!.Statement.find((st) => st.Effect === 'Allow')?.Principal).toEqual({ AWS: [REF.userArn] });
    expect(exemptFrom(stored!.Statement, 'secretsmanager:GetSecretValue')).toEqual([
      [REF.userArn, SERVICE_ROLE],
    ]);
    expect(secrets.commandCalls(PutSecretValueCommand)).toHaveLength(1);
  });

  test('is remembered: later stores do not pay a refused call, until a re-check picks up the recreated role', async () => {
    let now = Date.parse('2026-01-01T02:00:00Z');
    let missing = true;
    roleMissing(() => missing);
    const theVault = vault({ adminRoleArn: ADMIN_ROLE, now: () => now });
    const namingAdmin = () =>
      inputsOf(secrets.commandCalls(PutResourcePolicyCommand)).filter((input) =>
        input.ResourcePolicy!.includes(ADMIN_ROLE),
      ).length;

    await theVault.store(REF, KEY);
    now += 14 * 60_000;
    const second = await theVault.store(REF, KEY);

    expect(second.omittedReaders).toEqual([ADMIN_ROLE]);
    expect(namingAdmin()).toBe(1); // the first store's refused attempt only

    missing = false; // the role is created again
    now += 2 * 60_000;
    const third = await theVault.store(REF, KEY);

    expect(third.omittedReaders).toEqual([]);
    expect(namingAdmin()).toBe(2);
    expect(JSON.stringify(policiesWritten().at(-1))).toContain(ADMIN_ROLE);
  });

  test('without an admin role configured, a refused policy is an error, and nothing is stored', async () => {
    secrets.on(DescribeSecretCommand).resolves(existingSecret());
    secrets.on(PutResourcePolicyCommand).rejects(unsupportedPrincipal());

    const error = await rejectionOf(() => vault().store(REF, KEY));

    expect(error).toBeInstanceOf(KeyRotationError);
    expect((error as Error).message).toContain(`the resource policy of ${REF.name} was refused`);
    expect((error as Error).message).toContain('unsupported principal');
    expect(secrets.commandCalls(PutSecretValueCommand)).toHaveLength(0);
  });

  test('refused without the role too (an operator statement at fault): the error stands, nothing is stored', async () => {
    secrets.on(DescribeSecretCommand).resolves(existingSecret());
    secrets.on(PutResourcePolicyCommand).rejects(unsupportedPrincipal());

    const error = await rejectionOf(() => vault({ adminRoleArn: ADMIN_ROLE }).store(REF, KEY));

    expect(error).toBeInstanceOf(KeyRotationError);
    expect(secrets.commandCalls(PutResourcePolicyCommand)).toHaveLength(2);
    expect(secrets.commandCalls(PutSecretValueCommand)).toHaveLength(0);
  });
});

describe("Secrets Manager's own rotation", () => {
  test('RotationEnabled is reported by describe', async () => {
    secrets.on(DescribeSecretCommand).resolves(existingSecret({ RotationEnabled: true }));

    await expect(vault().describe(REF)).resolves.toMatchObject({ managedByUs: true, rotationEnabled: true });
  });

  test('store refuses a secret with rotation turned on, and writes nothing', async () => {
    secrets.on(DescribeSecretCommand).resolves(existingSecret({ RotationEnabled: true }));

    const error = await rejectionOf(() => vault().store(REF, KEY));

    expect(error).toBeInstanceOf(SecretRotationConflictError);
    expect((error as Error).message).toContain('CancelRotateSecret');
    expect(secrets.commandCalls(PutResourcePolicyCommand)).toHaveLength(0);
    expect(secrets.commandCalls(PutSecretValueCommand)).toHaveLength(0);
    expect(secrets.commandCalls(UpdateSecretVersionStageCommand)).toHaveLength(0);
  });
});

describe('one DescribeSecret per rotation: store and promote take what the caller knows', () => {
  const OLD_TOKEN = 'iam-key-rotation-AKIAOLDKEY000000001';
  const PLACEHOLDER = 'keyrot-placeholder-no-key-stored-yet';
  const ours = {
    managedByUs: true,
    pendingDeletion: false,
    rotationEnabled: false,
    versions: [{ accessKeyId: 'AKIAOLDKEY000000001', stages: ['AWSCURRENT'] }],
    currentVersionId: OLD_TOKEN,
  };

  /** The secret's policy as this vault writes it: our statements, which deny RotateSecret to everyone. */
  function ourPolicyInPlace(): void {
    secrets
      .on(GetResourcePolicyCommand)
      .resolves({ Name: REF.name, ResourcePolicy: JSON.stringify(vault().resourcePolicy(REF)) });
  }

  test('known absent: CreateSecret, the policy, the value; no DescribeSecret, and promote needs none either', async () => {
    secrets.on(CreateSecretCommand).resolves({ Name: REF.name });
    secrets.on(PutResourcePolicyCommand).resolves({});
    secrets.on(PutSecretValueCommand).resolves({});
    secrets.on(UpdateSecretVersionStageCommand).resolves({});

    const outcome = await vault().store(REF, KEY, 'absent');
    await vault().promote(REF, KEY.accessKeyId, outcome.secret);

    expect(outcome.secret).toEqual({
      managedByUs: true,
      pendingDeletion: false,
      rotationEnabled: false,
      versions: [{ accessKeyId: KEY.accessKeyId, stages: ['AWSPENDING'] }],
      currentVersionId: PLACEHOLDER,
    });
    expect(secrets.commandCalls(DescribeSecretCommand)).toHaveLength(0);
    expect(secrets.commandCalls(GetResourcePolicyCommand)).toHaveLength(0);
    const order = secrets
      .calls()
      .map((call) => (call.args[0] as { constructor: { name: string } }).constructor.name);
    expect(order).toEqual([
      'CreateSecretCommand',
      'PutResourcePolicyCommand',
      'PutSecretValueCommand',
      'UpdateSecretVersionStageCommand',
      'UpdateSecretVersionStageCommand',
    ]);
    expect(inputsOf(secrets.commandCalls(UpdateSecretVersionStageCommand))).toEqual([
      {
        SecretId: REF.name,
        VersionStage: 'AWSCURRENT',
        MoveToVersionId: TOKEN,
        RemoveFromVersionId: PLACEHOLDER,
      },
      { SecretId: REF.name, VersionStage: 'AWSPENDING', RemoveFromVersionId: TOKEN },
    ]);
  });

  test('known absent, but created meanwhile by someone else: described, refused as foreign, nothing written', async () => {
    secrets
      .on(CreateSecretCommand)
      .rejects(
        sdkError('ResourceExistsException', { fault: 'client', message: 'the secret already exists' }),
      );
    secrets.on(DescribeSecretCommand).resolves(existingSecret({ Tags: [{ Key: 'team', Value: 'data' }] }));

    const error = await rejectionOf(() => vault().store(REF, KEY, 'absent'));

    expect(error).toBeInstanceOf(ForeignSecretError);
    expect(secrets.commandCalls(DescribeSecretCommand)).toHaveLength(1);
    expect(secrets.commandCalls(PutResourcePolicyCommand)).toHaveLength(0);
    expect(secrets.commandCalls(PutSecretValueCommand)).toHaveLength(0);
  });

  test('known absent, but created meanwhile by another run of ours: described, and stored as in an existing secret', async () => {
    secrets
      .on(CreateSecretCommand)
      .rejects(
        sdkError('ResourceExistsException', { fault: 'client', message: 'the secret already exists' }),
      );
    secrets.on(DescribeSecretCommand).resolves(existingSecret());
    secrets.on(PutResourcePolicyCommand).resolves({});
    secrets.on(PutSecretValueCommand).resolves({});

    const outcome = await vault().store(REF, KEY, 'absent');

    expect(secrets.commandCalls(PutSecretValueCommand)).toHaveLength(1);
    expect(outcome.secret).toMatchObject({
      versions: [
        { accessKeyId: 'AKIAOLDKEY000000001', stages: ['AWSCURRENT'] },
        { accessKeyId: KEY.accessKeyId, stages: ['AWSPENDING'] },
      ],
      currentVersionId: OLD_TOKEN,
    });
  });

  test('known ours, its policy ours: GetResourcePolicy and PutSecretValue only; promote moves AWSCURRENT off the old key', async () => {
    ourPolicyInPlace();
    secrets.on(PutSecretValueCommand).resolves({});
    secrets.on(UpdateSecretVersionStageCommand).resolves({});

    const outcome = await vault().store(REF, KEY, ours);
    await vault().promote(REF, KEY.accessKeyId, outcome.secret);

    const order = secrets
      .calls()
      .map((call) => (call.args[0] as { constructor: { name: string } }).constructor.name);
    expect(order).toEqual([
      'GetResourcePolicyCommand',
      'PutSecretValueCommand',
      'UpdateSecretVersionStageCommand',
      'UpdateSecretVersionStageCommand',
    ]);
    expect(inputsOf(secrets.commandCalls(UpdateSecretVersionStageCommand))[0]).toEqual({
      SecretId: REF.name,
      VersionStage: 'AWSCURRENT',
      MoveToVersionId: TOKEN,
      RemoveFromVersionId: OLD_TOKEN,
    });
  });

  test('known ours, but its policy no longer denies rotation: described again, and refused if rotation is on now', async () => {
    secrets.on(DescribeSecretCommand).resolves(existingSecret({ RotationEnabled: true }));

    const error = await rejectionOf(() => vault().store(REF, KEY, ours));

    expect(error).toBeInstanceOf(SecretRotationConflictError);
    expect(secrets.commandCalls(DescribeSecretCommand)).toHaveLength(1);
    expect(secrets.commandCalls(PutResourcePolicyCommand)).toHaveLength(0);
    expect(secrets.commandCalls(PutSecretValueCommand)).toHaveLength(0);
  });

  test('known foreign or rotated by Secrets Manager: refused without a call', async () => {
    await expect(vault().store(REF, KEY, { ...ours, managedByUs: false })).rejects.toThrow(
      ForeignSecretError,
    );
    await expect(vault().store(REF, KEY, { ...ours, rotationEnabled: true })).rejects.toThrow(
      SecretRotationConflictError,
    );

    expect(secrets.calls()).toHaveLength(0);
  });

  test('promote with a description that lacks the key: SecretNotFoundError, no label moves', async () => {
    const error = await rejectionOf(() => vault().promote(REF, KEY.accessKeyId, ours));

    expect(error).toBeInstanceOf(SecretNotFoundError);
    expect(secrets.calls()).toHaveLength(0);
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

describe('readers (secretReaderArns)', () => {
  const READER_ROLE = `arn:aws:iam::${ACCOUNT}:role/billing-app`;
  const READER_USER = `arn:aws:iam::${ACCOUNT}:user/ci/deployer`;
  const unsupportedPrincipal = () =>
    new MalformedPolicyDocumentException({
      message: 'This resource policy contains an unsupported principal.',
      $metadata: { httpStatusCode: 400 },
    });

  /** Secrets Manager as it behaves while these principals do not exist: a policy naming one is refused. */
  function missing(...principals: string[]): void {
    secrets.on(DescribeSecretCommand).resolves(existingSecret());
    secrets.on(PutSecretValueCommand).resolves({});
    secrets
      .on(PutResourcePolicyCommand)
      .callsFake((input: PutResourcePolicyCommandInput) =>
        principals.some((principal) => input.ResourcePolicy!.includes(`"${principal}"`))
          ? Promise.reject(unsupportedPrincipal())
          : Promise.resolve({ Name: REF.name }),
      );
  }

  /** The policy that stands: the last one Secrets Manager accepted. */
  function policyInForce(...refused: string[]) {
    const accepted = policiesWritten().filter(
      (policy) => !refused.some((principal) => JSON.stringify(policy).includes(`"${principal}"`)),
    );
    return accepted.at(-1)!;
  }

  test('are named in the Allow and exempt from the Deny on reading, never from the Deny on writing', async () => {
    missing();

    await vault({ adminRoleArn: ADMIN_ROLE, readerArns: [READER_ROLE, READER_USER] }).store(REF, KEY);

    const [policy] = policiesWritten();
    const statements = policy!.Statement;
    expect(statements.find((st) => st.Effect === 'Allow')?.Principal).toEqual({
      AWS: [REF.userArn, ADMIN_ROLE, READER_ROLE, READER_USER],
    });
    expect(exemptFrom(statements, 'secretsmanager:GetSecretValue')).toEqual([
      [REF.userArn, ADMIN_ROLE, READER_ROLE, READER_USER, SERVICE_ROLE],
    ]);
    for (const write of [
      'PutSecretValue',
      'UpdateSecret',
      'UpdateSecretVersionStage',
      'ReplicateSecretToRegions',
    ]) {
      expect(exemptFrom(statements, `secretsmanager:${write}`)).toEqual([[ADMIN_ROLE, SERVICE_ROLE]]);
    }
  });

  test('a reader that is also the admin role or the user is named once', async () => {
    missing();

    await vault({ adminRoleArn: ADMIN_ROLE, readerArns: [ADMIN_ROLE, REF.userArn] }).store(REF, KEY);

    const statements = policiesWritten()[0]!.Statement;
    expect(statements.find((st) => st.Effect === 'Allow')?.Principal).toEqual({
      AWS: [REF.userArn, ADMIN_ROLE],
    });
  });

  test('a missing reader is left out and returned; the admin role and the other readers stay', async () => {
    missing(READER_ROLE);

    const outcome = await vault({ adminRoleArn: ADMIN_ROLE, readerArns: [READER_ROLE, READER_USER] }).store(
      REF,
      KEY,
    );

    expect(outcome.omittedReaders).toEqual([READER_ROLE]);
    const policy = policyInForce(READER_ROLE);
    expect(policy.Statement.find((st) => st.Effect === 'Allow')?.Principal).toEqual({
      AWS: [REF.userArn, ADMIN_ROLE, READER_USER],
    });
    expect(JSON.stringify(policy)).not.toContain(READER_ROLE);
    expect(secrets.commandCalls(PutSecretValueCommand)).toHaveLength(1);
  });

  test('two missing (the admin role and a reader): both left out, the reader that exists stays', async () => {
    missing(ADMIN_ROLE, READER_USER);

    const outcome = await vault({ adminRoleArn: ADMIN_ROLE, readerArns: [READER_ROLE, READER_USER] }).store(
      REF,
      KEY,
    );

    expect([...outcome.omittedReaders].sort()).toEqual([ADMIN_ROLE, READER_USER].sort());
    expect(
      policyInForce(ADMIN_ROLE, READER_USER).Statement.find((st) => st.Effect === 'Allow')?.Principal,
    ).toEqual({
      AWS: [REF.userArn, READER_ROLE],
    });
    expect(secrets.commandCalls(PutSecretValueCommand)).toHaveLength(1);
  });

  test('the policy that stays is written even when it is the one the secret had before the search', async () => {
    // The secret names READER_ROLE and READER_USER from an earlier store; a new reader is missing.
    const NEW_READER = `arn:aws:iam::${ACCOUNT}:role/new-app`;
    const before = vault({ readerArns: [READER_ROLE, READER_USER] }).resourcePolicy(REF);
    missing(NEW_READER);
    secrets.on(GetResourcePolicyCommand).resolves({ ResourcePolicy: JSON.stringify(before) });

    const outcome = await vault({ readerArns: [NEW_READER, READER_ROLE, READER_USER] }).store(REF, KEY);

    expect(outcome.omittedReaders).toEqual([NEW_READER]);
    // The search wrote [READER_ROLE] alone on the way: the last accepted write must restore both.
    expect(
      policiesWritten()
        .at(-1)!
        .Statement.find((st) => st.Effect === 'Allow')?.Principal,
    ).toEqual({
      AWS: [REF.userArn, READER_ROLE, READER_USER],
    });
  });

  test('a missing reader is remembered: later stores name it no more until the re-check', async () => {
    let now = Date.parse('2026-01-01T02:00:00Z');
    missing(READER_ROLE);
    const theVault = vault({ readerArns: [READER_ROLE, READER_USER], now: () => now });
    const naming = () =>
      inputsOf(secrets.commandCalls(PutResourcePolicyCommand)).filter((input) =>
        input.ResourcePolicy!.includes(READER_ROLE),
      ).length;

    await theVault.store(REF, KEY);
    const afterFirst = naming();
    now += 14 * 60_000;
    const second = await theVault.store(REF, KEY);

    expect(second.omittedReaders).toEqual([READER_ROLE]);
    expect(naming()).toBe(afterFirst);
  });
});

describe('a deleted principal in an operator statement', () => {
  // What Secrets Manager shows in place of a deleted role's or user's ARN.
  const DELETED_ROLE_ID = 'AROAKSCDLFT9R5DQP782U';
  const DELETED_USER_ID = 'AIDAJQABLZS4A3QDU576Q';
  const AUDITOR = `arn:aws:iam::${ACCOUNT}:role/auditor`;

  /** Secrets Manager refuses a policy that names a principal by unique ID. */
  function refusingUniqueIds(current: object[]): void {
    secrets.on(DescribeSecretCommand).resolves(existingSecret());
    secrets.on(GetResourcePolicyCommand).resolves({ ResourcePolicy: policyOf(current) });
    secrets.on(PutSecretValueCommand).resolves({});
    secrets.on(PutResourcePolicyCommand).callsFake((input: PutResourcePolicyCommandInput) =>
      /"A(ROA|IDA)[A-Z0-9]+"/.test(input.ResourcePolicy!)
        ? Promise.reject(
            new MalformedPolicyDocumentException({
              message: 'This resource policy contains an unsupported principal.',
              $metadata: { httpStatusCode: 400 },
            }),
          )
        : Promise.resolve({ Name: REF.name }),
    );
  }

  test('is removed from the statement, which is kept for the others it names; the store goes on and reports it', async () => {
    refusingUniqueIds([
      {
        Sid: 'AuditorsDescribe',
        Effect: 'Allow',
        Principal: { AWS: [AUDITOR, DELETED_ROLE_ID] },
        Action: 'secretsmanager:DescribeSecret',
        Resource: '*',
      },
    ]);

    const outcome = await vault({ adminRoleArn: ADMIN_ROLE }).store(REF, KEY);

    expect(outcome.omittedReaders).toEqual([DELETED_ROLE_ID]);
    const [policy, ...more] = policiesWritten();
    expect(more).toEqual([]); // accepted at once: the admin role is not suspected
    expect(policy!.Statement).toContainEqual({
      Sid: 'AuditorsDescribe',
      Effect: 'Allow',
      Principal: { AWS: [AUDITOR] },
      Action: 'secretsmanager:DescribeSecret',
      Resource: '*',
    });
    expect(JSON.stringify(policy)).toContain(ADMIN_ROLE);
    expect(secrets.commandCalls(PutSecretValueCommand)).toHaveLength(1);
  });

  test('a statement that named only deleted principals is dropped; a Deny to all but them applies to all', async () => {
    const denyDeleteExceptGone = {
      Sid: 'OnlyGoneMayDelete',
      Effect: 'Deny',
      NotPrincipal: { AWS: DELETED_USER_ID },
      Action: 'secretsmanager:DeleteSecret',
      Resource: '*',
    };
    refusingUniqueIds([
      {
        Sid: 'GoneReads',
        Effect: 'Allow',
        Principal: { AWS: DELETED_ROLE_ID },
        Action: 'secretsmanager:DescribeSecret',
        Resource: '*',
      },
      denyDeleteExceptGone,
    ]);

    const outcome = await vault().store(REF, KEY);

    expect([...outcome.omittedReaders].sort()).toEqual([DELETED_ROLE_ID, DELETED_USER_ID].sort());
    const [policy] = policiesWritten();
    expect(policy!.Statement.map((st) => st.Sid)).not.toContain('GoneReads');
    expect(policy!.Statement).toContainEqual({
      Sid: 'OnlyGoneMayDelete',
      Effect: 'Deny',
      Principal: '*',
      Action: 'secretsmanager:DeleteSecret',
      Resource: '*',
    });
    expect(JSON.stringify(policy)).not.toMatch(/A(ROA|IDA)[A-Z0-9]{12}/);
    expect(secrets.commandCalls(PutSecretValueCommand)).toHaveLength(1);
  });

  test('an account id or an ARN is not mistaken for a deleted principal', async () => {
    const statement = {
      Sid: 'Others',
      Effect: 'Allow',
      Principal: { AWS: [ACCOUNT, AUDITOR], Service: 'example.amazonaws.com' },
      Action: 'secretsmanager:DescribeSecret',
      Resource: '*',
    };
    refusingUniqueIds([statement]);

    const outcome = await vault().store(REF, KEY);

    expect(outcome.omittedReaders).toEqual([]);
    expect(policiesWritten()[0]!.Statement).toContainEqual(statement);
  });
});

describe('settlePolicy (a resumed rotation after a redeploy)', () => {
  const OLD_ROTATOR = `arn:aws:iam::${ACCOUNT}:role/KeyRotation-RotatorRole-OLD999`;

  test('rewrites our statements for the current rotator role, keeping an operator statement', async () => {
    const operatorStatement = {
      Sid: 'AuditorsDescribe',
      Effect: 'Allow',
      Principal: { AWS: `arn:aws:iam::${ACCOUNT}:role/auditor` },
      Action: 'secretsmanager:DescribeSecret',
      Resource: '*',
    };
    const before = vault({ serviceRoleArn: OLD_ROTATOR }).resourcePolicy(REF);
    secrets.on(GetResourcePolicyCommand).resolves({
      ResourcePolicy: JSON.stringify({ ...before, Statement: [...before.Statement, operatorStatement] }),
    });
    secrets.on(PutResourcePolicyCommand).resolves({});

    const outcome = await vault().settlePolicy(REF);

    expect(outcome.omittedReaders).toEqual([]);
    const [policy] = policiesWritten();
    expect(exemptFrom(policy!.Statement, 'secretsmanager:GetSecretValue')).toEqual([
      [REF.userArn, SERVICE_ROLE],
    ]);
    expect(exemptFrom(policy!.Statement, 'secretsmanager:UpdateSecretVersionStage')).toEqual([
      [SERVICE_ROLE],
    ]);
    expect(JSON.stringify(policy)).not.toContain(OLD_ROTATOR);
    expect(policy!.Statement).toContainEqual(operatorStatement);
    // Only the policy: no value or label is touched.
    expect(secrets.commandCalls(PutSecretValueCommand)).toHaveLength(0);
    expect(secrets.commandCalls(UpdateSecretVersionStageCommand)).toHaveLength(0);
  });

  test('a current policy is only read', async () => {
    secrets
      .on(GetResourcePolicyCommand)
      .resolves({ ResourcePolicy: JSON.stringify(vault().resourcePolicy(REF)) });

    await expect(vault().settlePolicy(REF)).resolves.toEqual({ omittedReaders: [] });

    expect(secrets.commandCalls(PutResourcePolicyCommand)).toHaveLength(0);
  });

  test('a secret that is gone is SecretNotFoundError', async () => {
    secrets.on(GetResourcePolicyCommand).rejects(notFound());

    await expect(vault().settlePolicy(REF)).rejects.toThrow(SecretNotFoundError);
  });
});
