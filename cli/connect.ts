/**
 * Builds the services' dependencies for the operator's own credentials: the standard SDK chain
 * (profile, region, AWS_ENDPOINT_URL), the account id, and the stack's resources.
 */
import { readFileSync } from 'node:fs';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { IAMClient } from '@aws-sdk/client-iam';
import { OrganizationsClient } from '@aws-sdk/client-organizations';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SNSClient } from '@aws-sdk/client-sns';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { STACK_OUTPUT } from '../lambda/contract';
import { call } from '../lambda/adapters/aws-errors';
import { DynamoLedger } from '../lambda/adapters/dynamodb-ledger';
import { IamAdapter } from '../lambda/adapters/iam';
import { MemberAccountAccess } from '../lambda/adapters/member-account-access';
import { OrganizationsAdapter } from '../lambda/adapters/organizations';
import { SecretsManagerVault } from '../lambda/adapters/secrets-manager';
import { SnsNotifier } from '../lambda/adapters/sns';
import { StsVerifier } from '../lambda/adapters/sts';
import { SDK_CLIENT_CONFIG } from '../lambda/adapters/sdk-config';
import { ownerTopicPrefixFor, secretPrefixProblem } from '../lambda/domain/naming';
import { resolveSettings, RotationSettings } from '../lambda/domain/settings';
import type { UserLedger } from '../lambda/domain/model';
import type {
  AccessKeyVault,
  AccountAccess,
  Clock,
  IamDirectory,
  KeyVerifier,
  OrganizationDirectory,
  OwnerNotifier,
  RotationLedger,
} from '../lambda/ports';
import { systemClock } from '../lambda/ports';
import { CliOptions, RefusedError, UsageError } from './args';

/** The alias of each member account's own KMS key for secrets (KeyRotationMember's default). */
export const MEMBER_KEY_ALIAS = 'alias/iam-key-rotation-member';

export interface Resources {
  readonly table?: string;
  readonly topicArn?: string;
  readonly secretPrefix?: string;
  readonly kmsKeyArn?: string;
  /** The deployed stack's settings (JSON), when read from its outputs. */
  readonly settingsJson?: string;
  /** The admin role written into each secret's policy: an ARN, `none`, or undefined when unknown. */
  readonly adminRoleArn?: string;
  /** The rotator's role, also named in each secret's policy: an ARN, `none`, or undefined when unknown. */
  readonly rotatorRoleArn?: string;
  /** The roles and users that may also read every secret (secretReaderArns), or undefined when unknown. */
  readonly secretReaderArns?: readonly string[];
  /** The operators' topic (findings such as an owner who cannot be subscribed). */
  readonly opsTopicArn?: string;
  /** Name prefix of the per-owner topics, or `none` when the stack does not subscribe owners. */
  readonly ownerTopicPrefix?: string;
  /** The deployed organization settings (JSON), when the stack is in organization mode. */
  readonly organizationJson?: string;
}

/** Who the operator's credentials are (STS GetCallerIdentity). */
export interface CallerIdentity {
  readonly account: string;
  /** An IAM user or role ARN, or an assumed-role session ARN (`arn:aws:sts::ACCT:assumed-role/NAME/SESSION`). */
  readonly arn: string;
}

export interface Connection {
  /** Always the caller's account: the CLI works with the operator's own credentials. */
  readonly accountId: string;
  readonly caller: CallerIdentity;
  readonly clock: Clock;
  readonly settings: RotationSettings;
  readonly resources: Resources;
  readonly iam: IamDirectory;
  readonly ledger: RotationLedger;
}

export interface WriteConnection extends Connection {
  readonly verifier: KeyVerifier;
  readonly vault: AccessKeyVault;
  readonly notifier: OwnerNotifier;
  readonly secretPrefix: string;
}

/** For read-only commands without a deployed stack: the service remembers nothing yet. */
export class EmptyLedger implements RotationLedger {
  load(): Promise<UserLedger | undefined> {
    return Promise.resolve(undefined);
  }
  loadAccount(): Promise<UserLedger[]> {
    return Promise.resolve([]);
  }
  screenAccount(): Promise<UserLedger[]> {
    return Promise.resolve([]);
  }
  private refuse(): never {
    throw new UsageError('this needs the ledger table: pass --stack NAME or --table NAME');
  }
  acquireLock(): Promise<UserLedger> {
    this.refuse();
  }
  save(): Promise<UserLedger> {
    this.refuse();
  }
  releaseLock(): Promise<void> {
    this.refuse();
  }
  findOwnerSubscription(): Promise<undefined> {
    return Promise.resolve(undefined);
  }
  recordOwnerSubscription(): Promise<void> {
    this.refuse();
  }
}

/** Like the Lambdas', but a person is waiting: fewer, shorter attempts against a silent endpoint. */
function clientConfig(options: CliOptions) {
  return {
    ...SDK_CLIENT_CONFIG,
    maxAttempts: 4,
    requestHandler: { ...SDK_CLIENT_CONFIG.requestHandler, requestTimeout: 10_000 },
    ...(options.region ? { region: options.region } : {}),
    ...(options.profile ? { profile: options.profile } : {}),
  };
}

async function stackResources(options: CliOptions): Promise<Resources> {
  if (!options.stack) return {};
  const stackName = options.stack;
  const cloudFormation = new CloudFormationClient(clientConfig(options));
  const response = await call('cloudformation:DescribeStacks', () =>
    cloudFormation.send(new DescribeStacksCommand({ StackName: stackName })),
  );
  const outputs = new Map(
    (response.Stacks?.[0]?.Outputs ?? []).map((output) => [output.OutputKey ?? '', output.OutputValue ?? '']),
  );
  if (outputs.size === 0)
    throw new UsageError(`stack ${stackName} has no outputs; is it the iam-key-rotation stack?`);
  return {
    table: outputs.get(STACK_OUTPUT.ledgerTableName),
    topicArn: outputs.get(STACK_OUTPUT.topicArn),
    secretPrefix: outputs.get(STACK_OUTPUT.secretPrefix),
    kmsKeyArn: outputs.get(STACK_OUTPUT.kmsKeyArn),
    settingsJson: outputs.get(STACK_OUTPUT.settings),
    // `none` when the stack has no admin role; absent on a stack deployed before that output existed.
    adminRoleArn: outputs.get(STACK_OUTPUT.secretAdminRoleArn),
    // Absent on a stack deployed before that output existed: then --rotator-role-arn says it.
    rotatorRoleArn: outputs.get(STACK_OUTPUT.rotatorRoleArn),
    // Absent on a stack deployed before readers existed, which therefore has none.
    secretReaderArns: readerList(outputs.get(STACK_OUTPUT.secretReaderArns), stackName),
    opsTopicArn: outputs.get(STACK_OUTPUT.opsTopicArn),
    ownerTopicPrefix: outputs.get(STACK_OUTPUT.ownerTopicPrefix),
    // Present only on a stack in organization mode.
    organizationJson: outputs.get(STACK_OUTPUT.organization),
  };
}

/** The stack output SecretReaderArns: a JSON list of ARNs (none when the output is absent). */
function readerList(output: string | undefined, stackName: string): string[] {
  if (output === undefined) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(output);
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed) || !parsed.every((arn) => typeof arn === 'string')) {
    throw new UsageError(
      `the output ${STACK_OUTPUT.secretReaderArns} of stack ${stackName} is not a JSON list of ARNs (got ${output}); is it the iam-key-rotation stack?`,
    );
  }
  return parsed;
}

/**
 * The SDK resolves the region from the client config, AWS_REGION, the profile in ~/.aws/config, and
 * on EC2 the instance metadata; without one every call fails with "Region is missing". Said here,
 * before any call, in words that say what to change.
 */
async function requireRegion(sts: STSClient): Promise<void> {
  try {
    await sts.config.region();
  } catch {
    const defaultRegion = process.env.AWS_DEFAULT_REGION
      ? ' (AWS_DEFAULT_REGION is set, but the AWS SDK for JavaScript reads AWS_REGION)'
      : '';
    throw new RefusedError(
      `no AWS region: pass --region REGION (e.g. --region eu-west-1) or set AWS_REGION${defaultRegion}, or set region in your AWS profile`,
    );
  }
}

/** Who the credentials are; refuses an --account-id that is not theirs, before anything is read. */
async function callerIdentity(sts: STSClient, options: CliOptions): Promise<CallerIdentity> {
  const identity = await call('sts:GetCallerIdentity', () => sts.send(new GetCallerIdentityCommand({})));
  const caller = { account: identity.Account ?? '', arn: identity.Arn ?? '' };
  if (options.accountId !== undefined && options.accountId !== caller.account) {
    // A wrong account would name every secret and ledger record after an account the keys are not
    // in: the keys would be created, then fail verification and stay behind as a second active key.
    throw new RefusedError(
      `--account-id ${options.accountId} is not the account of your credentials: they are ${caller.arn} in account ${caller.account}. ` +
        `keyrot works on the account its credentials belong to: use credentials of account ${options.accountId} ` +
        `(e.g. --profile NAME of a role there), or leave --account-id out to work on ${caller.account}. Nothing was changed`,
    );
  }
  return caller;
}

/** A role flag must agree with the stack's output of the same role (when the stack has it). */
function roleFromFlag(flag: string, fromFlag: string | undefined, fromStack: string | undefined) {
  if (fromFlag === undefined) return fromStack;
  if (fromStack !== undefined && fromStack !== fromFlag) {
    throw new UsageError(
      `--${flag} ${fromFlag} differs from the stack's (${fromStack}); leave it out to keep the stack's`,
    );
  }
  return fromFlag;
}

/** --secret-reader-arns must agree with the stack's readers (when the stack has them), in any order. */
function readersFromFlag(fromFlag: readonly string[] | undefined, fromStack: readonly string[] | undefined) {
  if (fromFlag === undefined) return fromStack;
  const same = (a: readonly string[], b: readonly string[]) =>
    JSON.stringify([...new Set(a)].sort()) === JSON.stringify([...new Set(b)].sort());
  if (fromStack !== undefined && !same(fromFlag, fromStack)) {
    throw new UsageError(
      `--secret-reader-arns ${fromFlag.join(',') || 'none'} differs from the stack's (${fromStack.join(',') || 'none'}); leave it out to keep the stack's`,
    );
  }
  return fromFlag;
}

function readJsonObject(text: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${what} is not JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UsageError(`${what} must be a JSON object of settings, e.g. {"rotateAfterDays": 80}`);
  }
  return value as Record<string, unknown>;
}

/** Defaults < the stack's settings < --config file < flags; validated with the construct's rules. */
export function settingsFor(options: CliOptions, resources: Resources): RotationSettings {
  const fromStack = resources.settingsJson
    ? readJsonObject(resources.settingsJson, 'the stack output RotationSettings')
    : {};
  let fromFile: Record<string, unknown> = {};
  if (options.configFile) {
    let text: string;
    try {
      text = readFileSync(options.configFile, 'utf8');
    } catch (error) {
      throw new UsageError(
        (error as NodeJS.ErrnoException).code === 'ENOENT'
          ? `--config ${options.configFile}: no such file`
          : `cannot read --config ${options.configFile}: ${(error as Error).message}`,
      );
    }
    fromFile = readJsonObject(text, `--config ${options.configFile}`);
  }
  return resolveSettings({ ...fromStack, ...fromFile, ...options.settings });
}

export async function connect(options: CliOptions): Promise<Connection> {
  const config = clientConfig(options);
  const sts = new STSClient(config);
  await requireRegion(sts);
  const caller = await callerIdentity(sts, options);
  const resourcesFromStack = await stackResources(options);
  const resources: Resources = {
    ...resourcesFromStack,
    ...(options.table ? { table: options.table } : {}),
    ...(options.topicArn ? { topicArn: options.topicArn } : {}),
    ...(options.secretPrefix ? { secretPrefix: options.secretPrefix } : {}),
    ...(options.kmsKeyArn ? { kmsKeyArn: options.kmsKeyArn } : {}),
    adminRoleArn: roleFromFlag('admin-role-arn', options.adminRoleArn, resourcesFromStack.adminRoleArn),
    rotatorRoleArn: roleFromFlag(
      'rotator-role-arn',
      options.rotatorRoleArn,
      resourcesFromStack.rotatorRoleArn,
    ),
    secretReaderArns: readersFromFlag(options.secretReaderArns, resourcesFromStack.secretReaderArns),
  };
  const settings = settingsFor(options, resources);
  return {
    accountId: caller.account,
    caller,
    clock: systemClock,
    settings,
    resources,
    iam: new IamAdapter(new IAMClient(config), new IAMClient({ ...config, maxAttempts: 1 })),
    ledger: resources.table
      ? new DynamoLedger(resources.table, new DynamoDBClient(config))
      : new EmptyLedger(),
  };
}

/** The IAM role behind a caller ARN (user, role or role session), or undefined for anything else. */
function roleOf(arn: string): { partition: string; account: string; name: string } | undefined {
  // A role session is arn:aws:sts::ACCT:assumed-role/NAME/SESSION: the role's path is not in it, but
  // a role name is unique in its account whatever the path, so account and name identify the role.
  const session = /^arn:(aws[a-z-]*):sts::(\d{12}):assumed-role\/([^/]+)\/[^/]+$/.exec(arn);
  if (session) return { partition: session[1]!, account: session[2]!, name: session[3]! };
  const role = /^arn:(aws[a-z-]*):iam::(\d{12}):role\/(?:.*\/)?([^/]+)$/.exec(arn);
  if (role) return { partition: role[1]!, account: role[2]!, name: role[3]! };
  return undefined;
}

/**
 * Whether a caller is the given role as a secret policy's `aws:PrincipalArn` condition sees it: for
 * a role session that key holds the role's ARN (with its path), not the session's.
 */
export function callerIsRole(callerArn: string, roleArn: string): boolean {
  const caller = roleOf(callerArn);
  const role = roleOf(roleArn);
  return (
    caller !== undefined &&
    role !== undefined &&
    caller.partition === role.partition &&
    caller.account === role.account &&
    caller.name === role.name
  );
}

/**
 * What run --apply and rotate --apply need on top: every resource of the stack, its settings, the two
 * roles each secret's policy names, and credentials of one of those roles. All that is missing is
 * named in one message.
 */
export function forWriting(connection: Connection, options: CliOptions, command: string): WriteConnection {
  const {
    table,
    topicArn,
    secretPrefix,
    kmsKeyArn,
    settingsJson,
    adminRoleArn,
    rotatorRoleArn,
    secretReaderArns,
  } = connection.resources;
  const missing = [
    table ? undefined : '--table NAME (the ledger table)',
    topicArn ? undefined : '--topic-arn ARN (the notification topic)',
    secretPrefix ? undefined : '--secret-prefix PREFIX',
    kmsKeyArn ? undefined : '--kms-key-arn ARN (the key that encrypts the secrets)',
    settingsJson || options.configFile
      ? undefined
      : '--config FILE (the settings the stack was deployed with)',
    adminRoleArn !== undefined ? undefined : "--admin-role-arn ARN or none (the stack's secretAdminRoleArn)",
    rotatorRoleArn !== undefined ? undefined : "--rotator-role-arn ARN or none (the stack's rotator role)",
    secretReaderArns !== undefined
      ? undefined
      : "--secret-reader-arns ARN,ARN or none (the stack's secretReaderArns)",
  ].filter((flag): flag is string => flag !== undefined);
  if (missing.length > 0) {
    throw new UsageError(
      options.stack
        ? `${command} --apply needs what stack ${options.stack} does not say (deployed by an earlier version?): redeploy the stack, or pass ${missing.join(', ')}`
        : `${command} --apply writes what the Lambdas write, so it needs the deployed stack: pass --stack NAME, or without a stack all of ${missing.join(', ')}`,
    );
  }
  const problem = secretPrefixProblem(secretPrefix);
  if (problem) throw new UsageError(problem);
  // Writes follow the deployed policy, never a what-if: an override of the exemption tag or the
  // paths could rotate a user the stack leaves alone (I7).
  if (Object.keys(options.settings).length > 0) {
    throw new UsageError(
      `${command} --apply follows the deployed policy; setting flags are for plan and report (what-if). ` +
        (settingsJson
          ? "To change the policy, change the stack's settings and redeploy"
          : 'Put the settings the stack was deployed with in the --config FILE'),
    );
  }
  if (settingsJson && options.configFile) {
    throw new UsageError(
      `${command} --apply follows the stack's settings; leave --config out (it is for what-if plans and reports)`,
    );
  }
  // Each secret's policy denies the value to everyone but the key's user, the admin role and the
  // rotator: the CLI writes as one of those roles, or its PutSecretValue would be refused and the new
  // key deleted again. Refused here, before anything is written.
  const admin = adminRoleArn === 'none' ? undefined : adminRoleArn;
  const rotator = rotatorRoleArn === 'none' ? undefined : rotatorRoleArn;
  const writers = [admin, rotator].filter((arn): arn is string => arn !== undefined);
  if (!writers.some((arn) => callerIsRole(connection.caller.arn, arn))) {
    const you = `you are ${connection.caller.arn}`;
    throw new RefusedError(
      admin
        ? `${command} --apply must run as the admin role ${admin}: each secret's policy lets only that role and the rotator write the secret; ${you}. ` +
            'Run keyrot with credentials of that role (e.g. --profile NAME of a profile whose role_arn is that role). Nothing was changed'
        : `${command} --apply must run as a role that each secret's policy names, and there is no admin role: ` +
            (options.stack
              ? 'set secretAdminRoleArn on the stack to a role you can assume, redeploy, and run keyrot as that role'
              : 'pass --admin-role-arn ARN of the role you run keyrot as') +
            `; ${you}. Nothing was changed`,
    );
  }
  const config = clientConfig(options);
  return {
    ...connection,
    secretPrefix: secretPrefix!,
    verifier: new StsVerifier({
      ...(options.region ? { region: options.region } : {}),
    }),
    vault: new SecretsManagerVault(
      // The admin role and the rotator stay in each secret's policy, so that the schedule keeps
      // rotating the secrets the CLI wrote, and so do the readers, so that no workload is cut off.
      { kmsKeyArn: kmsKeyArn!, adminRoleArn: admin, readerArns: secretReaderArns!, serviceRoleArn: rotator },
      new SecretsManagerClient(config),
    ),
    notifier: new SnsNotifier(
      {
        topicArn: topicArn!,
        // Owners have topics of their own (named after the secret prefix) unless the stack says `none`.
        ...(connection.resources.ownerTopicPrefix === 'none'
          ? {}
          : {
              ownerTopicPrefix: connection.resources.ownerTopicPrefix ?? ownerTopicPrefixFor(secretPrefix!),
            }),
        kmsKeyArn: kmsKeyArn!,
        ...(connection.resources.opsTopicArn ? { opsTopicArn: connection.resources.opsTopicArn } : {}),
      },
      new SNSClient(config),
    ),
  };
}

/** For dry runs: the write-side ports refuse to be used, so a dry run provably only reads (I6). */
export function readOnly(connection: Connection): WriteConnection {
  const refuse = (): never => {
    throw new UsageError('a dry run tried to write; this is a bug: please report it');
  };
  return {
    ...connection,
    secretPrefix: connection.resources.secretPrefix ?? 'iam-key-rotation',
    verifier: { callerIdentity: refuse },
    vault: { describe: refuse, store: refuse, promote: refuse, read: refuse, settlePolicy: refuse },
    notifier: { publish: refuse, ensureSubscribed: refuse, subscriptionState: refuse },
  };
}

/**
 * Organization mode: the organization's accounts, read with the operator's own credentials
 * (Organizations answers only the management account or a delegated administrator).
 */
export function organizationDirectory(_connection: Connection, options: CliOptions): OrganizationDirectory {
  return new OrganizationsAdapter(new OrganizationsClient(clientConfig(options)));
}

/**
 * Organization mode: each member account through its member role, assumed with the operator's own
 * credentials (the role trusts the stack's roles, its admin role among them). Each account's vault
 * encrypts with the account's own key and names, in each secret's policy, the member role as the
 * service that writes it, as the rotator does there.
 */
export function memberAccess(
  connection: Connection,
  options: CliOptions,
  memberRoleName: string,
): AccountAccess {
  const partition = /^arn:(aws[a-z-]*):/.exec(connection.caller.arn)?.[1] ?? 'aws';
  // No admin role or readers in member secrets' policies, as the rotator writes them: the member key
  // lets only the member account's principals decrypt, and operators read through the member role.
  return new MemberAccountAccess({
    memberRoleName,
    partition,
    memberKeyAlias: MEMBER_KEY_ALIAS,
    // The member role is assumed with the operator's credentials (profile, region, endpoint).
    clientConfig: clientConfig(options),
  });
}
