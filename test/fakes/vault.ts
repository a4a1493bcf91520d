/**
 * Secrets Manager in memory: versions with staging labels (a new AWSCURRENT moves the old one to
 * AWSPREVIOUS), idempotent ClientRequestTokens, tags, Secrets Manager's own rotation flag, and a
 * resource policy per secret reduced to who may read the value (the Allow and the Deny of the
 * adapter: the key's user, the admin role, the readers, and the service's role). Like Secrets
 * Manager, it refuses a principal that does not exist (`missingPrincipals`), and like the adapter, it
 * then stores without the admin role or reader and says so. Its callers are the service's role of the
 * moment (`serviceRoleArn`): a policy that names another one (written before a redeploy) denies them
 * the value and the labels, as the adapter's Deny would.
 *
 * `sdkCalls` lists the Secrets Manager operations the adapter makes for each call, as far as the
 * fake's state decides them (a secret created or described, a policy written or already current),
 * so that a count of real calls can be made from a run on the fakes.
 */
import {
  AccessDeniedError,
  ForeignSecretError,
  KeyRotationError,
  SecretNotFoundError,
  SecretRotationConflictError,
} from '../../lambda/domain/errors';
import type { KeyCredentials, NewAccessKey } from '../../lambda/domain/model';
import {
  accessKeyIdFromToken,
  PLACEHOLDER_VERSION,
  SECRET_TAGS,
  secretVersionToken,
} from '../../lambda/domain/naming';
import type {
  AccessKeyVault,
  KnownSecret,
  SecretDescription,
  SecretRef,
  StoredKeyOutcome,
  StoreOutcome,
} from '../../lambda/ports';
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
  /** The principals the policy lets read the value (Allow); the Deny exempts these and the service. */
  readers: string[];
  /** The service's role the policy names (exempt from the Deny), as of the policy's last write. */
  serviceRole?: string;
  readonly versions: Map<string, Version>;
  /** Secrets Manager's own rotation (DescribeSecret RotationEnabled). */
  rotationEnabled?: boolean;
}

export class FakeVault implements AccessKeyVault {
  readonly secrets = new Map<string, FakeSecret>();
  /** The admin role named in every policy (secretAdminRoleArn). */
  adminRoleArn?: string;
  /** Roles and users that may also read every secret (secretReaderArns). */
  readerArns: string[] = [];
  /** The service's own role, exempt from the Deny. */
  serviceRoleArn?: string = 'arn:aws:iam::111122223333:role/iam-key-rotation-rotator';
  /** Principals that do not exist: Secrets Manager refuses a policy naming them. */
  readonly missingPrincipals = new Set<string>();
  /** The Secrets Manager operations the adapter would have made, in order (see the header). */
  readonly sdkCalls: string[] = [];

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

  /** Turns on Secrets Manager's own rotation for a secret (as RotateSecret would). */
  enableRotation(name: string): void {
    const secret = this.secrets.get(name);
    if (!secret) throw new Error(`no secret ${name}`);
    secret.rotationEnabled = true;
  }

  /** Whether a principal (a user's or role's ARN) may read the secret's value under its policy. */
  canRead(name: string, principalArn: string): boolean {
    const secret = this.secrets.get(name);
    if (!secret) return false;
    return secret.readers.includes(principalArn) || principalArn === secret.serviceRole;
  }

  /** The caller (the service's role of the moment) is denied the value and labels by the policy. */
  private denyUnlessServiceNamed(secret: FakeSecret, what: string): void {
    if (secret.serviceRole !== undefined && secret.serviceRole !== this.serviceRoleArn) {
      throw new AccessDeniedError(
        `secretsmanager:${what}: AccessDeniedException: ${this.serviceRoleArn} is denied ${secret.name} by an explicit deny in a resource-based policy`,
      );
    }
  }

  /**
   * Our statements, as the adapter settles them: a refused admin role or reader is left out and
   * returned; a refused user fails the write.
   */
  private settle(secret: FakeSecret, ref: SecretRef, { existed }: { existed: boolean }): string[] {
    if (existed) this.sdkCalls.push('GetResourcePolicy');
    if (this.missingPrincipals.has(ref.userArn)) {
      this.sdkCalls.push('PutResourcePolicy');
      throw new KeyRotationError(`MalformedPolicyDocumentException: unsupported principal in ${ref.name}`);
    }
    const optional = [...new Set([...(this.adminRoleArn ? [this.adminRoleArn] : []), ...this.readerArns])];
    const omitted = optional.filter((arn) => this.missingPrincipals.has(arn));
    const readers = [ref.userArn, ...optional.filter((arn) => !omitted.includes(arn))];
    // One PutResourcePolicy when the policy changes, one more per refused principal tried alone.
    const unchanged =
      existed &&
      secret.serviceRole === this.serviceRoleArn &&
      JSON.stringify(secret.readers) === JSON.stringify(readers);
    if (!unchanged) this.sdkCalls.push('PutResourcePolicy');
    for (let tried = 0; tried < omitted.length; tried++) this.sdkCalls.push('PutResourcePolicy');
    secret.readers = readers;
    secret.serviceRole = this.serviceRoleArn;
    return omitted;
  }

  settlePolicy(ref: SecretRef): Promise<StoreOutcome> {
    return this.faults.around('secretsmanager:SettlePolicy', () => {
      const secret = this.secrets.get(ref.name);
      if (!secret) throw new SecretNotFoundError(`secret ${ref.name} does not exist`);
      return { omittedReaders: this.settle(secret, ref, { existed: true }) };
    });
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
    return this.faults.around('secretsmanager:DescribeSecret', () => this.described(ref));
  }

  private described(ref: SecretRef, { counted = true } = {}): SecretDescription | undefined {
    if (counted) this.sdkCalls.push('DescribeSecret');
    const secret = this.secrets.get(ref.name);
    if (!secret) return undefined;
    const labelled = [...secret.versions.entries()].filter(([, version]) => version.stages.size > 0);
    return {
      managedByUs: this.ours(secret, ref),
      rotationEnabled: secret.rotationEnabled === true,
      versions: labelled.flatMap(([token, version]) => {
        const accessKeyId = accessKeyIdFromToken(token);
        return accessKeyId ? [{ accessKeyId, stages: [...version.stages] }] : [];
      }),
      currentVersionId: labelled.find(([, version]) => version.stages.has('AWSCURRENT'))?.[0],
    };
  }

  /**
   * Decides on the secret as it is, as the adapter's checks do whatever the caller knew (`known` only
   * saves the adapter its DescribeSecret, which `sdkCalls` leaves out).
   */
  store(ref: SecretRef, key: NewAccessKey, known?: KnownSecret): Promise<StoredKeyOutcome> {
    return this.faults.around('secretsmanager:Store', () => {
      if (known === undefined) this.described(ref);
      const token = secretVersionToken(key.accessKeyId);
      const value = JSON.stringify({
        AccessKeyId: key.accessKeyId,
        SecretAccessKey: key.secretAccessKey,
        UserName: key.userName,
        CreateDate: key.createDate.toISOString(),
      });
      let secret = this.secrets.get(ref.name);
      const existed = secret !== undefined;
      if (!secret || known === 'absent') this.sdkCalls.push('CreateSecret');
      if (secret && known === 'absent') this.described(ref); // created meanwhile: CreateSecret refused
      if (!secret) {
        // As the adapter creates it: a placeholder first version, which Secrets Manager makes AWSCURRENT.
        secret = {
          name: ref.name,
          tags: { [MANAGED_TAG]: 'true', [USER_TAG]: `${ref.accountId}/${ref.userName}` },
          readers: [ref.userArn],
          versions: new Map([
            [
              PLACEHOLDER_VERSION.token,
              {
                value: PLACEHOLDER_VERSION.value,
                stages: new Set(['AWSCURRENT']),
                createdAt: this.clock.now(),
              },
            ],
          ]),
        };
        this.secrets.set(ref.name, secret);
      } else if (!this.ours(secret, ref)) {
        throw new ForeignSecretError(`secret ${ref.name} exists and was not created by iam-key-rotation`);
      } else if (secret.rotationEnabled) {
        throw new SecretRotationConflictError(`secret ${ref.name} has Secrets Manager rotation turned on`);
      }
      // The policy, as the adapter settles it: a refused admin role or reader is left out and reported.
      const omittedReaders = this.settle(secret, ref, { existed });
      this.sdkCalls.push('PutSecretValue');
      const existing = secret.versions.get(token);
      if (existing) {
        if (existing.value !== value)
          throw new Error(`ResourceExistsException: version ${token} exists with other content`);
        // same token, same value: Secrets Manager treats it as a retry
        return { omittedReaders, secret: this.described(ref, { counted: false })! };
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
      return { omittedReaders, secret: this.described(ref, { counted: false })! };
    });
  }

  /**
   * With `known` (the secret as the store left it), the adapter moves AWSCURRENT off the version that
   * description names: if another version holds it by now, Secrets Manager refuses the move, as here.
   */
  promote(ref: SecretRef, accessKeyId: string, known?: SecretDescription): Promise<void> {
    return this.faults.around('secretsmanager:Promote', () => {
      if (!known) this.described(ref);
      const secret = this.secrets.get(ref.name);
      const token = secretVersionToken(accessKeyId);
      const target = secret?.versions.get(token);
      if (!secret || !target)
        throw new SecretNotFoundError(`no version for key ${accessKeyId} in ${ref.name}`);
      const current = [...secret.versions.entries()].find(([, version]) => version.stages.has('AWSCURRENT'));
      if (known && known.currentVersionId !== token && known.currentVersionId !== current?.[0]) {
        this.sdkCalls.push('UpdateSecretVersionStage');
        throw new KeyRotationError(
          `secretsmanager:UpdateSecretVersionStage: InvalidParameterException: AWSCURRENT is not on version ${known.currentVersionId} of ${ref.name}`,
        );
      }
      this.denyUnlessServiceNamed(secret, 'UpdateSecretVersionStage');
      if (!target.stages.has('AWSCURRENT')) this.sdkCalls.push('UpdateSecretVersionStage');
      if (target.stages.has('AWSPENDING')) this.sdkCalls.push('UpdateSecretVersionStage');
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
      this.sdkCalls.push('GetSecretValue');
      const secret = this.secrets.get(ref.name);
      const version = secret?.versions.get(secretVersionToken(accessKeyId));
      if (!secret || !version)
        throw new SecretNotFoundError(`no version for key ${accessKeyId} in ${ref.name}`);
      this.denyUnlessServiceNamed(secret, 'GetSecretValue');
      const parsed = JSON.parse(version.value) as { AccessKeyId: string; SecretAccessKey: string };
      return { accessKeyId: parsed.AccessKeyId, secretAccessKey: parsed.SecretAccessKey };
    });
  }
}
