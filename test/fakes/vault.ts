/**
 * Secrets Manager in memory: versions with staging labels (a new AWSCURRENT moves the old one to
 * AWSPREVIOUS), idempotent ClientRequestTokens, tags, and a resource policy per secret.
 */
import { ForeignSecretError, SecretNotFoundError } from '../../lambda/domain/errors';
import type { KeyCredentials, NewAccessKey } from '../../lambda/domain/model';
import {
  accessKeyIdFromToken,
  PLACEHOLDER_VERSION,
  SECRET_TAGS,
  secretVersionToken,
} from '../../lambda/domain/naming';
import type { AccessKeyVault, SecretDescription, SecretRef } from '../../lambda/ports';
import type { FakeClock } from './clock';
import { Faults } from './faults';

export const MANAGED_TAG = SECRET_TAGS.managed;
export const USER_TAG = SECRET_TAGS.user;

interface Version {
  readonly value: string;
  stages: Set<string>;
  readonly createdAt: Date;
}

export interface FakeSecret {
  readonly name: string;
  readonly tags: Record<string, string>;
  readonly readers: string[];
  readonly versions: Map<string, Version>;
}

export class FakeVault implements AccessKeyVault {
  readonly secrets = new Map<string, FakeSecret>();

  constructor(
    private readonly clock: FakeClock,
    private readonly faults: Faults,
  ) {}

  /** A secret someone else made under our name. */
  addForeignSecret(name: string, value = '{"note":"not ours"}'): void {
    this.secrets.set(name, {
      name,
      tags: { team: 'someone-else' },
      readers: [],
      versions: new Map([
        [
          'their-version-00000000000000000000',
          { value, stages: new Set(['AWSCURRENT']), createdAt: this.clock.now() },
        ],
      ]),
    });
  }

  /** What a workload reads: the AWSCURRENT credentials (or another label). */
  readStage(name: string, stage = 'AWSCURRENT'): (KeyCredentials & { UserName: string }) | undefined {
    const secret = this.secrets.get(name);
    const version = secret && [...secret.versions.values()].find((candidate) => candidate.stages.has(stage));
    if (!version) return undefined;
    const parsed = JSON.parse(version.value) as {
      AccessKeyId?: string;
      SecretAccessKey: string;
      UserName: string;
    };
    if (parsed.AccessKeyId === undefined) return undefined; // the placeholder holds no key
    return {
      accessKeyId: parsed.AccessKeyId,
      secretAccessKey: parsed.SecretAccessKey,
      UserName: parsed.UserName,
    };
  }

  /** Access key ids stored under a secret. */
  storedKeyIds(name: string): string[] {
    const secret = this.secrets.get(name);
    return secret
      ? [...secret.versions.keys()].flatMap((token) => {
          const accessKeyId = accessKeyIdFromToken(token);
          return accessKeyId ? [accessKeyId] : [];
        })
      : [];
  }

  private ours(secret: FakeSecret, ref: SecretRef): boolean {
    return (
      secret.tags[MANAGED_TAG] === 'true' && secret.tags[USER_TAG] === `${ref.accountId}/${ref.userName}`
    );
  }

  describe(ref: SecretRef): Promise<SecretDescription | undefined> {
    return this.faults.around('secretsmanager:DescribeSecret', () => {
      const secret = this.secrets.get(ref.name);
      if (!secret) return undefined;
      return {
        managedByUs: this.ours(secret, ref),
        versions: [...secret.versions.entries()].flatMap(([token, version]) => {
          const accessKeyId = accessKeyIdFromToken(token);
          return accessKeyId ? [{ accessKeyId, stages: [...version.stages] }] : [];
        }),
      };
    });
  }

  store(ref: SecretRef, key: NewAccessKey): Promise<void> {
    return this.faults.around('secretsmanager:Store', () => {
      const token = secretVersionToken(key.accessKeyId);
      const value = JSON.stringify({
        AccessKeyId: key.accessKeyId,
        SecretAccessKey: key.secretAccessKey,
        UserName: key.userName,
        CreateDate: key.createDate.toISOString(),
      });
      let secret = this.secrets.get(ref.name);
      if (!secret) {
        // As the adapter creates it: a placeholder first version, which Secrets Manager makes AWSCURRENT.
        secret = {
          name: ref.name,
          tags: { [MANAGED_TAG]: 'true', [USER_TAG]: `${ref.accountId}/${ref.userName}` },
          readers: [ref.userArn],
          versions: new Map([
            [
              PLACEHOLDER_VERSION.token,
              { value: PLACEHOLDER_VERSION.value, stages: new Set(['AWSCURRENT']), createdAt: this.clock.now() },
            ],
          ]),
        };
        this.secrets.set(ref.name, secret);
      } else if (!this.ours(secret, ref)) {
        throw new ForeignSecretError(`secret ${ref.name} exists and was not created by iam-key-rotation`);
      }
      const existing = secret.versions.get(token);
      if (existing) {
        if (existing.value !== value)
          throw new Error(`ResourceExistsException: version ${token} exists with other content`);
        return; // same token, same value: Secrets Manager treats it as a retry
      }
      // As Secrets Manager does: a secret's first version is AWSCURRENT whatever is asked; any later
      // one gets the label asked for (AWSPENDING here, moved off any other version).
      const first = secret.versions.size === 0;
      for (const version of secret.versions.values()) version.stages.delete('AWSPENDING');
      secret.versions.set(token, {
        value,
        stages: new Set(first ? ['AWSCURRENT', 'AWSPENDING'] : ['AWSPENDING']),
        createdAt: this.clock.now(),
      });
    });
  }

  promote(ref: SecretRef, accessKeyId: string): Promise<void> {
    return this.faults.around('secretsmanager:Promote', () => {
      const secret = this.secrets.get(ref.name);
      const target = secret?.versions.get(secretVersionToken(accessKeyId));
      if (!secret || !target)
        throw new SecretNotFoundError(`no version for key ${accessKeyId} in ${ref.name}`);
      if (!target.stages.has('AWSCURRENT')) {
        // As UpdateSecretVersionStage does: AWSPREVIOUS follows the version AWSCURRENT leaves.
        for (const version of secret.versions.values()) {
          version.stages.delete('AWSPREVIOUS');
          if (version.stages.delete('AWSCURRENT')) version.stages.add('AWSPREVIOUS');
        }
        target.stages.add('AWSCURRENT');
      }
      target.stages.delete('AWSPENDING');
    });
  }

  read(ref: SecretRef, accessKeyId: string): Promise<KeyCredentials> {
    return this.faults.around('secretsmanager:GetSecretValue', () => {
      const version = this.secrets.get(ref.name)?.versions.get(secretVersionToken(accessKeyId));
      if (!version) throw new SecretNotFoundError(`no version for key ${accessKeyId} in ${ref.name}`);
      const parsed = JSON.parse(version.value) as { AccessKeyId: string; SecretAccessKey: string };
      return { accessKeyId: parsed.AccessKeyId, secretAccessKey: parsed.SecretAccessKey };
    });
  }
}
