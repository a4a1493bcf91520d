/** Secrets Manager over the AWS SDK v3: the AccessKeyVault port, one secret per IAM user. */
import {
  CreateSecretCommand,
  DescribeSecretCommand,
  GetResourcePolicyCommand,
  GetSecretValueCommand,
  PutResourcePolicyCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import {
  ConfigError,
  ForeignSecretError,
  KeyRotationError,
  SecretNotFoundError,
  SecretRotationConflictError,
} from '../domain/errors';
import type { KeyCredentials, NewAccessKey } from '../domain/model';
import { accessKeyIdFromToken, PLACEHOLDER_VERSION, SECRET_TAGS, secretVersionToken } from '../domain/naming';
import type {
  AccessKeyVault,
  KnownSecret,
  SecretDescription,
  SecretRef,
  StoredKeyOutcome,
  StoreOutcome,
} from '../ports';
import { call } from './aws-errors';
import { SDK_CLIENT_CONFIG } from './sdk-config';

export interface SecretsManagerVaultOptions {
  /** The customer-managed KMS key that encrypts every secret. */
  readonly kmsKeyArn: string;
  /**
   * An admin role that may also read every secret, and write its values (the CLI's `--apply` runs
   * as this role). Left out of a secret's policy while it does not exist.
   */
  readonly adminRoleArn?: string;
  /**
   * IAM roles and users of the account that may also read every secret's value (secretReaderArns):
   * named in the Allow and exempt from the Deny on reading, never from the Deny on writing. Each is
   * left out of a secret's policy while it does not exist. @default none
   */
  readonly readerArns?: readonly string[];
  /** The role of the service that writes the secrets (the rotator's own role): exempt from the Deny. */
  readonly serviceRoleArn?: string;
  /**
   * How long an admin role or reader found missing is left out before it is tried again.
   * @default 15 min
   */
  readonly missingRoleRecheckMs?: number;
  /** The clock of that re-check (a seam for tests). @default Date.now */
  readonly now?: () => number;
}

/**
 * The Sids of the statements this service writes into each secret's policy. Any other statement
 * (an operator's) is kept as it is when the policy is rewritten.
 */
export const POLICY_SIDS = {
  allowReaders: 'KeyOwnerReadsOwnKey',
  denyReading: 'OnlyKeyOwnerAdminAndServiceReadTheKey',
  denyWriting: 'OnlyAdminAndServiceWriteTheKey',
  denyManagedRotation: 'NoSecretsManagerRotation',
} as const;
const OUR_SIDS: ReadonlySet<string> = new Set(Object.values(POLICY_SIDS));

/**
 * Actions on the value that the Deny keeps to the named principals, whatever identity policies say.
 * Management (DescribeSecret, GetResourcePolicy, PutResourcePolicy, DeleteResourcePolicy,
 * DeleteSecret, tags) is deliberately not denied: an account administrator can always repair the
 * policy or remove the secret, and Secrets Manager refuses a policy that locks its caller out.
 */
const READ_ACTIONS = ['secretsmanager:GetSecretValue']; // BatchGetSecretValue needs it per secret too
const WRITE_ACTIONS = [
  'secretsmanager:PutSecretValue',
  'secretsmanager:UpdateSecret', // can also write a new value
  'secretsmanager:UpdateSecretVersionStage',
  'secretsmanager:ReplicateSecretToRegions', // a copy elsewhere, outside the rotation
];

const DEFAULT_RECHECK_MS = 15 * 60_000;

/**
 * The unique ID (AIDA... for a user, AROA... for a role) that Secrets Manager shows in place of the
 * ARN of a principal that was deleted after the policy named it. Such a principal can make no
 * request, and a principal created again under the same name has a new ID, so the entry grants or
 * denies nothing; but a policy holding it is refused, so it is removed before the policy is written.
 */
const DELETED_PRINCIPAL_ID = /^A(IDA|ROA)[A-Z0-9]{12,}$/;

/** Secrets Manager's answer to a principal that does not exist (or has not propagated yet). */
class PolicyRefusedError extends KeyRotationError {}

type Statement = Record<string, unknown> & { Sid?: unknown };
interface PolicyDocument {
  readonly Version: string;
  readonly Statement: readonly Statement[];
}

/** The stored form: the CreateAccessKey fields, as AWS names them. */
interface StoredKey {
  readonly AccessKeyId: string;
  readonly SecretAccessKey: string;
  readonly UserName: string;
  readonly CreateDate: string;
}

export class SecretsManagerVault implements AccessKeyVault {
  /**
   * When each optional principal (the admin role, a reader) was last found missing, per container:
   * it is left out until a re-check.
   */
  private readonly missingSince = new Map<string, number>();

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
      rotationEnabled: response.RotationEnabled === true,
      versions: Object.entries(response.VersionIdsToStages ?? {}).flatMap(([versionId, stages]) => {
        const accessKeyId = accessKeyIdFromToken(versionId);
        return accessKeyId ? [{ accessKeyId, stages }] : [];
      }),
      currentVersionId: Object.keys(response.VersionIdsToStages ?? {}).find((versionId) =>
        response.VersionIdsToStages?.[versionId]?.includes('AWSCURRENT'),
      ),
    };
  }

  /**
   * Describes the secret only if the caller has not (`known`). A description from the caller is
   * trusted while the secret's policy, which the store reads anyway, still carries our statements:
   * they deny everyone RotateSecret, so Secrets Manager's rotation cannot have been turned on since.
   * A secret that appeared since the caller found none is described when CreateSecret says it exists.
   */
  async store(ref: SecretRef, key: NewAccessKey, known?: KnownSecret): Promise<StoredKeyOutcome> {
    this.requireWriter();
    const token = secretVersionToken(key.accessKeyId);
    const stored: StoredKey = {
      AccessKeyId: key.accessKeyId,
      SecretAccessKey: key.secretAccessKey,
      UserName: key.userName,
      CreateDate: key.createDate.toISOString(),
    };
    const secretString = JSON.stringify(stored);
    let existing = known === undefined ? await this.describe(ref) : known === 'absent' ? undefined : known;
    let fromCaller = known !== undefined && known !== 'absent';
    let created = false;
    if (!existing) {
      created = await this.create(ref);
      if (!created) {
        // Created by someone else since the caller looked: it is checked like any existing secret.
        existing = await this.describeExisting(ref);
        fromCaller = false;
      }
    }
    let current: PolicyDocument | undefined;
    if (existing) {
      checkWritable(ref, existing);
      current = await this.currentPolicy(ref);
      if (fromCaller && !current?.Statement.some((s) => s.Sid === POLICY_SIDS.denyManagedRotation)) {
        // Nothing kept Secrets Manager's rotation off since the caller looked: look again.
        existing = await this.describeExisting(ref);
        checkWritable(ref, existing);
      }
    }
    // Who may read is settled before there is anything to read.
    const omittedReaders = await this.writePolicy(ref, current);
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
    return { omittedReaders, secret: afterStore(existing, key.accessKeyId, created) };
  }

  /**
   * Creates the secret with a placeholder as its first (and so AWSCURRENT) version: the key's
   * version is added as AWSPENDING like any other, so an unverified key never becomes AWSCURRENT.
   * False if a secret of that name exists already.
   */
  private async create(ref: SecretRef): Promise<boolean> {
    try {
      await call(
        'secretsmanager:CreateSecret',
        () =>
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
        { ResourceExistsException: (message) => new SecretExistsError(message) },
      );
      return true;
    } catch (error) {
      if (error instanceof SecretExistsError) return false;
      throw error;
    }
  }

  private async describeExisting(ref: SecretRef): Promise<SecretDescription> {
    const described = await this.describe(ref);
    if (!described) throw new SecretNotFoundError(`secret ${ref.name} does not exist`);
    return described;
  }

  async promote(ref: SecretRef, accessKeyId: string, known?: SecretDescription): Promise<void> {
    const token = secretVersionToken(accessKeyId);
    const secret = known ?? (await this.describeExisting(ref));
    const version = secret.versions.find((candidate) => candidate.accessKeyId === accessKeyId);
    if (!version) throw new SecretNotFoundError(`no version for key ${accessKeyId} in ${ref.name}`);
    const current = secret.currentVersionId;
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
    if (version.stages.includes('AWSPENDING')) {
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

  /**
   * Under the Deny below, only the admin role and the service's role may write values: without
   * either, no store could ever succeed, so none is started.
   */
  private requireWriter(): void {
    if (this.options.adminRoleArn || this.options.serviceRoleArn) return;
    throw new ConfigError([
      "no identity may write the secrets' values under their policy: name the admin role (secretAdminRoleArn, or --admin-role-arn for the CLI, and run as it) or the service's role",
    ]);
  }

  /**
   * Rewrites our statements in an existing secret's policy, as store does, if they are not already
   * there: a rotation resumed after a redeploy runs as a rotator role that the policy written at its
   * store does not name yet, and would be denied its own secret.
   */
  async settlePolicy(ref: SecretRef): Promise<StoreOutcome> {
    this.requireWriter();
    return { omittedReaders: await this.writePolicy(ref, await this.currentPolicy(ref)) };
  }

  /** The admin role and the readers, once each: the principals left out while they do not exist. */
  private optionalPrincipals(): string[] {
    const { adminRoleArn, readerArns = [] } = this.options;
    return [...new Set([...(adminRoleArn ? [adminRoleArn] : []), ...readerArns])];
  }

  /** Whether a principal was found missing less than the re-check interval ago. */
  private recentlyMissing(principal: string): boolean {
    const since = this.missingSince.get(principal);
    if (since === undefined) return false;
    return this.now() - since < (this.options.missingRoleRecheckMs ?? DEFAULT_RECHECK_MS);
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  /**
   * Writes our statements into the secret's policy (`current`: as it is now, undefined for a secret
   * just created), keeping every statement an operator added, and skips the write when the policy
   * already says it. Secrets Manager refuses a policy naming a
   * principal that does not exist without saying which: when the admin role or a reader is refused,
   * each is tried in turn and those refused are left out (the user still reads the key, and the
   * service keeps rotating). Returns the principals left out, to be reported: those, and deleted
   * principals removed from an operator's statements.
   */
  private async writePolicy(ref: SecretRef, current: PolicyDocument | undefined): Promise<string[]> {
    const { kept, deleted } = withoutDeletedPrincipals(
      (current?.Statement ?? []).filter((statement) => !OUR_SIDS.has(String(statement.Sid))),
    );
    const optional = this.optionalPrincipals();
    const named = optional.filter((principal) => !this.recentlyMissing(principal));
    const omitted = optional.filter((principal) => !named.includes(principal));
    // What the secret's policy says now: a write that would not change it is skipped.
    let onRecord = current;
    const write = async (principals: readonly string[]): Promise<void> => {
      const wanted = this.policyWith(ref, principals, kept);
      if (onRecord && samePolicy(onRecord, wanted)) return;
      await this.putPolicy(ref, wanted);
      onRecord = wanted;
    };
    try {
      await write(named);
      for (const principal of named) this.missingSince.delete(principal);
      return [...omitted, ...deleted];
    } catch (error) {
      if (!(error instanceof PolicyRefusedError) || named.length === 0) throw error;
    }
    // The user exists (we just read it from IAM): an optional principal is the one refused. Each is
    // added in turn to those accepted so far; the last accepted set is the policy that stays.
    const accepts = async (principals: readonly string[]): Promise<boolean> => {
      try {
        await write(principals);
        return true;
      } catch (error) {
        if (error instanceof PolicyRefusedError) return false;
        throw error;
      }
    };
    const accepted: string[] = [];
    const refused: string[] = [];
    for (const principal of named) {
      // With every other one accepted, this one completes the set just refused: no need to try it.
      const completesRefusedSet = accepted.length === named.length - 1;
      if (!completesRefusedSet && (await accepts([...accepted, principal]))) accepted.push(principal);
      else refused.push(principal);
    }
    // None accepted: if refused without any of them too, something else is wrong and that error stands.
    if (accepted.length === 0) await write([]);
    for (const principal of accepted) this.missingSince.delete(principal);
    for (const principal of refused) this.missingSince.set(principal, this.now());
    return [...omitted, ...refused, ...deleted];
  }

  private async putPolicy(ref: SecretRef, wanted: PolicyDocument): Promise<void> {
    await call(
      'secretsmanager:PutResourcePolicy',
      () =>
        this.client.send(
          new PutResourcePolicyCommand({
            SecretId: ref.name,
            ResourcePolicy: JSON.stringify(wanted),
            BlockPublicPolicy: true,
          }),
        ),
      {
        MalformedPolicyDocumentException: (message) =>
          new PolicyRefusedError(`the resource policy of ${ref.name} was refused: ${message}`),
        ResourceNotFoundException: (message) => new SecretNotFoundError(message),
      },
    );
  }

  private async currentPolicy(ref: SecretRef): Promise<PolicyDocument | undefined> {
    const response = await call(
      'secretsmanager:GetResourcePolicy',
      () => this.client.send(new GetResourcePolicyCommand({ SecretId: ref.name })),
      { ResourceNotFoundException: (message) => new SecretNotFoundError(message) },
    );
    if (!response.ResourcePolicy) return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(response.ResourcePolicy);
    } catch {
      throw new KeyRotationError(`the resource policy of ${ref.name} is not JSON; fix or delete it`);
    }
    const statements = (parsed as { Statement?: unknown } | null)?.Statement;
    if (statements === undefined) return { Version: '2012-10-17', Statement: [] };
    const list: unknown[] = Array.isArray(statements) ? statements : [statements];
    if (!list.every((statement) => typeof statement === 'object' && statement !== null)) {
      throw new KeyRotationError(`the resource policy of ${ref.name} has a statement that is not an object`);
    }
    const version = (parsed as { Version?: unknown }).Version;
    return {
      Version: typeof version === 'string' ? version : '2012-10-17',
      Statement: list as Statement[],
    };
  }

  /** Our statements for this secret, naming those of the optional principals given, then the kept ones. */
  private policyWith(ref: SecretRef, named: readonly string[], kept: readonly Statement[]): PolicyDocument {
    return { Version: '2012-10-17', Statement: [...this.statements(ref, named), ...kept] };
  }

  /**
   * Our statements. The Allow lets the user, the admin role and the readers read this one secret;
   * the KMS key policy defers to it. Allows alone would not stop an identity of the account whose own
   * policy allows GetSecretValue on `*`: the Denies do, as an explicit Deny in a resource policy
   * applies to every principal of the account too. An Allow an operator adds cannot lift them (an
   * explicit Deny wins over any Allow): readers are added through `readerArns` instead.
   * aws:PrincipalArn is a role's ARN (not the session's) for an assumed role, and the user's ARN for a
   * user; an absent key (anonymous) matches ArnNotEquals, so is denied as well. Readers read only:
   * writing stays with the admin role and the service. Nobody may turn on Secrets Manager's own
   * rotation, which would fight ours.
   */
  private statements(ref: SecretRef, named: readonly string[]): Statement[] {
    const { adminRoleArn, readerArns = [], serviceRoleArn } = this.options;
    const admin = adminRoleArn && named.includes(adminRoleArn) ? [adminRoleArn] : [];
    const service = serviceRoleArn ? [serviceRoleArn] : [];
    const readers = unique([ref.userArn, ...admin, ...readerArns.filter((arn) => named.includes(arn))]);
    const statements: Statement[] = [
      {
        Sid: POLICY_SIDS.allowReaders,
        Effect: 'Allow',
        Principal: { AWS: readers },
        Action: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
        Resource: '*',
      },
      {
        Sid: POLICY_SIDS.denyReading,
        Effect: 'Deny',
        Principal: '*',
        Action: READ_ACTIONS,
        Resource: '*',
        Condition: { ArnNotEquals: { 'aws:PrincipalArn': unique([...readers, ...service]) } },
      },
    ];
    const writers = unique([...admin, ...service]);
    if (writers.length > 0) {
      statements.push({
        Sid: POLICY_SIDS.denyWriting,
        Effect: 'Deny',
        Principal: '*',
        Action: WRITE_ACTIONS,
        Resource: '*',
        Condition: { ArnNotEquals: { 'aws:PrincipalArn': writers } },
      });
    }
    statements.push({
      Sid: POLICY_SIDS.denyManagedRotation,
      Effect: 'Deny',
      Principal: '*',
      Action: ['secretsmanager:RotateSecret'],
      Resource: '*',
    });
    return statements;
  }

  /** The policy this vault writes for a secret that has no other statements (for the CLI and tests). */
  resourcePolicy(ref: SecretRef): PolicyDocument {
    const named = this.optionalPrincipals().filter((principal) => !this.recentlyMissing(principal));
    return this.policyWith(ref, named, []);
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

/** CreateSecret found a secret of that name. */
class SecretExistsError extends KeyRotationError {}

/** A secret this service may write a key into: its own, and not rotated by Secrets Manager. */
function checkWritable(ref: SecretRef, secret: SecretDescription): void {
  if (!secret.managedByUs) {
    throw new ForeignSecretError(`secret ${ref.name} exists and was not created by iam-key-rotation`);
  }
  if (secret.rotationEnabled) {
    throw new SecretRotationConflictError(
      `secret ${ref.name} has Secrets Manager rotation turned on, which would move the same staging labels; turn it off (CancelRotateSecret) first`,
    );
  }
}

/**
 * The secret as a store leaves it: the key's version labelled AWSPENDING (moved off any other
 * version; an earlier identical store left its labels as they were), AWSCURRENT where it was, or on
 * the placeholder of a secret just created.
 */
function afterStore(
  before: SecretDescription | undefined,
  accessKeyId: string,
  created: boolean,
): SecretDescription {
  const earlier = before?.versions.find((version) => version.accessKeyId === accessKeyId);
  const others = (before?.versions ?? [])
    .filter((version) => version.accessKeyId !== accessKeyId)
    .map((version) => ({ ...version, stages: version.stages.filter((stage) => stage !== 'AWSPENDING') }))
    .filter((version) => version.stages.length > 0);
  return {
    managedByUs: true,
    pendingDeletion: false,
    rotationEnabled: false,
    versions: [...others, earlier ?? { accessKeyId, stages: ['AWSPENDING'] }],
    currentVersionId: created ? PLACEHOLDER_VERSION.token : before?.currentVersionId,
  };
}

function unique(values: readonly string[]): string[] {
  return [...new Set(values)];
}

/**
 * The statements with every deleted principal (its unique ID, see DELETED_PRINCIPAL_ID) taken out
 * of their `Principal` and `NotPrincipal`, which changes what they grant or deny for nobody: a
 * statement whose `Principal` named nobody else is dropped, a Deny whose `NotPrincipal` excepted
 * nobody else applies to `*`. The IDs taken out are returned, to be reported.
 */
function withoutDeletedPrincipals(statements: readonly Statement[]): {
  kept: Statement[];
  deleted: string[];
} {
  const kept: Statement[] = [];
  const deleted: string[] = [];
  for (const statement of statements) {
    let result: Statement | undefined = statement;
    for (const element of ['Principal', 'NotPrincipal'] as const) {
      const principal = result?.[element];
      if (typeof principal !== 'object' || principal === null || Array.isArray(principal)) continue;
      const aws = (principal as { AWS?: unknown }).AWS;
      const entries: unknown[] = Array.isArray(aws) ? aws : aws === undefined ? [] : [aws];
      const gone = entries.filter(
        (entry): entry is string => typeof entry === 'string' && DELETED_PRINCIPAL_ID.test(entry),
      );
      if (gone.length === 0) continue;
      deleted.push(...gone);
      const left = entries.filter((entry) => !gone.includes(entry as string));
      const rest: Record<string, unknown> = {};
      for (const [key, value] of Object.entries(principal as Record<string, unknown>)) {
        if (key !== 'AWS') rest[key] = value;
      }
      if (left.length > 0) rest.AWS = left;
      if (Object.keys(rest).length > 0) {
        result = { ...result, [element]: rest };
      } else if (element === 'Principal') {
        result = undefined; // it named nobody else, so it applied to nobody
      } else if (result?.Effect === 'Deny') {
        // Everyone but a principal that no longer exists is everyone.
        const denyAll: Statement = { ...result, Principal: '*' };
        delete denyAll.NotPrincipal;
        result = denyAll;
      } else {
        result = undefined; // an Allow to everyone but nobody would be public: dropped, granting less
      }
    }
    if (result) kept.push(result);
  }
  return { kept, deleted: unique(deleted) };
}

/**
 * Whether two policies say the same, whatever the formatting Secrets Manager returns: key order,
 * a one-element list or its element, the order of a list of names, `"*"` or `{"AWS":"*"}`.
 */
function samePolicy(a: PolicyDocument, b: PolicyDocument): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function canonical(value: unknown, key?: string): unknown {
  if (Array.isArray(value)) {
    const items = value.map((item) => canonical(item));
    if (items.length === 1) return items[0];
    return items.every((item) => typeof item === 'string') ? [...items].sort() : items;
  }
  if (key === 'Principal' && value === '*') return { AWS: '*' };
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((name) => [name, canonical((value as Record<string, unknown>)[name], name)]),
    );
  }
  return value;
}
