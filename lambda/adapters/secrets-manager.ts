/** Secrets Manager over the AWS SDK v3: the AccessKeyVault port, one secret per IAM user. */
import {
  CreateSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutResourcePolicyCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { ForeignSecretError, KeyRotationError, SecretNotFoundError } from '../domain/errors';
import type { KeyCredentials, NewAccessKey } from '../domain/model';
import { accessKeyIdFromToken, PLACEHOLDER_VERSION, SECRET_TAGS, secretVersionToken } from '../domain/naming';
import type { AccessKeyVault, SecretDescription, SecretRef } from '../ports';
import { call } from './aws-errors';
import { SDK_CLIENT_CONFIG } from './sdk-config';

export interface SecretsManagerVaultOptions {
  /** The customer-managed KMS key that encrypts every secret. */
  readonly kmsKeyArn: string;
  /** An admin role that may also read every secret. */
  readonly adminRoleArn?: string;
}

/** The stored form: the CreateAccessKey fields, as AWS names them. */
interface StoredKey {
  readonly AccessKeyId: string;
  readonly SecretAccessKey: string;
  readonly UserName: string;
  readonly CreateDate: string;
}

export class SecretsManagerVault implements AccessKeyVault {
  constructor(
    private readonly options: SecretsManagerVaultOptions,
    private readonly client: SecretsManagerClient = new SecretsManagerClient(SDK_CLIENT_CONFIG),
  ) {}

  async describe(ref: SecretRef): Promise<SecretDescription | undefined> {
    let response;
    try {
      response = await call(
        'secretsmanager:DescribeSecret',
        () => this.client.send(new DescribeSecretCommand({ SecretId: ref.name })),
        { ResourceNotFoundException: (message) => new SecretNotFoundError(message) },
      );
    } catch (error) {
      if (error instanceof SecretNotFoundError) return undefined;
      throw error;
    }
    const tags = Object.fromEntries((response.Tags ?? []).map((tag) => [tag.Key ?? '', tag.Value ?? '']));
    return {
      managedByUs:
        tags[SECRET_TAGS.managed] === 'true' && tags[SECRET_TAGS.user] === `${ref.accountId}/${ref.userName}`,
      pendingDeletion: response.DeletedDate !== undefined,
      versions: Object.entries(response.VersionIdsToStages ?? {}).flatMap(([versionId, stages]) => {
        const accessKeyId = accessKeyIdFromToken(versionId);
        return accessKeyId ? [{ accessKeyId, stages }] : [];
      }),
    };
  }

  async store(ref: SecretRef, key: NewAccessKey): Promise<void> {
    const token = secretVersionToken(key.accessKeyId);
    const stored: StoredKey = {
      AccessKeyId: key.accessKeyId,
      SecretAccessKey: key.secretAccessKey,
      UserName: key.userName,
      CreateDate: key.createDate.toISOString(),
    };
    const secretString = JSON.stringify(stored);
    const existing = await this.describe(ref);
    if (existing && !existing.managedByUs) {
      throw new ForeignSecretError(`secret ${ref.name} exists and was not created by iam-key-rotation`);
    }
    if (!existing) {
      // Created with a placeholder as its first (and so AWSCURRENT) version: the key's version is
      // added below as AWSPENDING like any other, so an unverified key never becomes AWSCURRENT.
      await call('secretsmanager:CreateSecret', () =>
        this.client.send(
          new CreateSecretCommand({
            Name: ref.name,
            Description: `IAM access key of ${ref.userName} in ${ref.accountId}, rotated by iam-key-rotation`,
            KmsKeyId: this.options.kmsKeyArn,
            ClientRequestToken: PLACEHOLDER_VERSION.token,
            SecretString: PLACEHOLDER_VERSION.value,
            Tags: [
              { Key: SECRET_TAGS.managed, Value: 'true' },
              { Key: SECRET_TAGS.user, Value: `${ref.accountId}/${ref.userName}` },
            ],
          }),
        ),
      );
    }
    // Who may read is settled before there is anything to read.
    await call('secretsmanager:PutResourcePolicy', () =>
      this.client.send(
        new PutResourcePolicyCommand({
          SecretId: ref.name,
          ResourcePolicy: JSON.stringify(this.resourcePolicy(ref)),
          BlockPublicPolicy: true,
        }),
      ),
    );
    // AWSPENDING until verified (promote). Same token and value as an earlier attempt: ignored.
    await call('secretsmanager:PutSecretValue', () =>
      this.client.send(
        new PutSecretValueCommand({
          SecretId: ref.name,
          ClientRequestToken: token,
          SecretString: secretString,
          VersionStages: ['AWSPENDING'],
        }),
      ),
    );
  }

  async promote(ref: SecretRef, accessKeyId: string): Promise<void> {
    const token = secretVersionToken(accessKeyId);
    const response = await call(
      'secretsmanager:DescribeSecret',
      () => this.client.send(new DescribeSecretCommand({ SecretId: ref.name })),
      { ResourceNotFoundException: () => new SecretNotFoundError(`secret ${ref.name} does not exist`) },
    );
    const stages = response.VersionIdsToStages ?? {};
    if (!stages[token]) throw new SecretNotFoundError(`no version for key ${accessKeyId} in ${ref.name}`);
    const current = Object.keys(stages).find((versionId) => stages[versionId]?.includes('AWSCURRENT'));
    if (current !== token) {
      // Secrets Manager moves AWSPREVIOUS to the version AWSCURRENT leaves.
      await call('secretsmanager:UpdateSecretVersionStage', () =>
        this.client.send(
          new UpdateSecretVersionStageCommand({
            SecretId: ref.name,
            VersionStage: 'AWSCURRENT',
            MoveToVersionId: token,
            ...(current ? { RemoveFromVersionId: current } : {}),
          }),
        ),
      );
    }
    if (stages[token]?.includes('AWSPENDING')) {
      await call('secretsmanager:UpdateSecretVersionStage', () =>
        this.client.send(
          new UpdateSecretVersionStageCommand({
            SecretId: ref.name,
            VersionStage: 'AWSPENDING',
            RemoveFromVersionId: token,
          }),
        ),
      );
    }
  }

  /** The user (and the admin role) may read this one secret; the KMS key policy defers to this. */
  resourcePolicy(ref: SecretRef): object {
    const readers = [ref.userArn, ...(this.options.adminRoleArn ? [this.options.adminRoleArn] : [])];
    return {
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'KeyOwnerReadsOwnKey',
          Effect: 'Allow',
          Principal: { AWS: readers },
          Action: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
          Resource: '*',
        },
      ],
    };
  }

  async read(ref: SecretRef, accessKeyId: string): Promise<KeyCredentials> {
    const response = await call(
      'secretsmanager:GetSecretValue',
      () =>
        this.client.send(
          new GetSecretValueCommand({ SecretId: ref.name, VersionId: secretVersionToken(accessKeyId) }),
        ),
      {
        ResourceNotFoundException: () =>
          new SecretNotFoundError(`no version for key ${accessKeyId} in ${ref.name}`),
      },
    );
    let parsed: Partial<StoredKey> | null;
    try {
      parsed = JSON.parse(response.SecretString ?? '') as Partial<StoredKey> | null;
    } catch {
      parsed = null;
    }
    if (typeof parsed !== 'object' || parsed === null) {
      // Say where, never what: the value may hold a secret.
      throw new KeyRotationError(
        `secret ${ref.name} version for ${accessKeyId} is not the JSON this service writes`,
      );
    }
    if (parsed.AccessKeyId !== accessKeyId || typeof parsed.SecretAccessKey !== 'string') {
      throw new KeyRotationError(`secret ${ref.name} version for ${accessKeyId} does not hold that key`);
    }
    return { accessKeyId: parsed.AccessKeyId, secretAccessKey: parsed.SecretAccessKey };
  }
}
