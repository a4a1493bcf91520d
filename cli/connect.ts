/**
 * Builds the services' dependencies for the operator's own credentials: the standard SDK chain
 * (profile, region, AWS_ENDPOINT_URL), the account id, and the stack's resources.
 */
import { readFileSync } from 'node:fs';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { IAMClient } from '@aws-sdk/client-iam';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SNSClient } from '@aws-sdk/client-sns';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { STACK_OUTPUT } from '../lambda/contract';
import { call } from '../lambda/adapters/aws-errors';
import { DynamoLedger } from '../lambda/adapters/dynamodb-ledger';
import { IamAdapter } from '../lambda/adapters/iam';
import { SecretsManagerVault } from '../lambda/adapters/secrets-manager';
import { SnsNotifier } from '../lambda/adapters/sns';
import { StsVerifier } from '../lambda/adapters/sts';
import { SDK_CLIENT_CONFIG } from '../lambda/adapters/sdk-config';
import { secretPrefixProblem } from '../lambda/domain/naming';
import { resolveSettings, RotationSettings } from '../lambda/domain/settings';
import type { UserLedger } from '../lambda/domain/model';
import type {
  AccessKeyVault,
  Clock,
  IamDirectory,
  KeyVerifier,
  OwnerNotifier,
  RotationLedger,
} from '../lambda/ports';
import { systemClock } from '../lambda/ports';
import { CliOptions, UsageError } from './args';

export interface Resources {
  readonly table?: string;
  readonly topicArn?: string;
  readonly secretPrefix?: string;
  readonly kmsKeyArn?: string;
  /** The deployed stack's settings (JSON), when read from its outputs. */
  readonly settingsJson?: string;
  /** The admin role written into each secret's policy: an ARN, `none`, or undefined when unknown. */
  readonly adminRoleArn?: string;
}

export interface Connection {
  readonly accountId: string;
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
  };
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
  const resourcesFromStack = await stackResources(options);
  let resources: Resources = {
    ...resourcesFromStack,
    ...(options.table ? { table: options.table } : {}),
    ...(options.topicArn ? { topicArn: options.topicArn } : {}),
    ...(options.secretPrefix ? { secretPrefix: options.secretPrefix } : {}),
    ...(options.kmsKeyArn ? { kmsKeyArn: options.kmsKeyArn } : {}),
  };
  if (options.adminRoleArn) {
    const fromStack = resourcesFromStack.adminRoleArn;
    if (fromStack !== undefined && fromStack !== options.adminRoleArn) {
      throw new UsageError(
        `--admin-role-arn ${options.adminRoleArn} differs from the stack's (${fromStack}); leave it out to keep the stack's`,
      );
    }
    resources = { ...resources, adminRoleArn: options.adminRoleArn };
  }
  const settings = settingsFor(options, resources);
  const config = clientConfig(options);
  let accountId = options.accountId;
  if (!accountId) {
    const sts = new STSClient(config);
    const identity = await call('sts:GetCallerIdentity', () => sts.send(new GetCallerIdentityCommand({})));
    accountId = identity.Account ?? '';
  }
  return {
    accountId,
    clock: systemClock,
    settings,
    resources,
    iam: new IamAdapter(new IAMClient(config), new IAMClient({ ...config, maxAttempts: 1 })),
    ledger: resources.table
      ? new DynamoLedger(resources.table, new DynamoDBClient(config))
      : new EmptyLedger(),
  };
}

/** What run --apply and rotate --apply need on top: every resource of the stack. */
export function forWriting(connection: Connection, options: CliOptions, command: string): WriteConnection {
  const { table, topicArn, secretPrefix, kmsKeyArn } = connection.resources;
  const missing = [
    table ? undefined : '--table',
    topicArn ? undefined : '--topic-arn',
    secretPrefix ? undefined : '--secret-prefix',
    kmsKeyArn ? undefined : '--kms-key-arn',
  ].filter((flag): flag is string => flag !== undefined);
  if (missing.length > 0) {
    throw new UsageError(
      `${command} --apply needs the stack's resources: pass --stack NAME (the deployed stack), or ${missing.join(', ')}`,
    );
  }
  const problem = secretPrefixProblem(secretPrefix);
  if (problem) throw new UsageError(problem);
  // Writes follow the deployed policy, never a what-if: an override of the exemption tag or the
  // paths could rotate a user the stack leaves alone (I7).
  if (Object.keys(options.settings).length > 0) {
    throw new UsageError(
      `${command} --apply follows the deployed policy; setting flags are for plan and report (what-if). Change the stack's settings, or pass --config FILE`,
    );
  }
  if (connection.resources.settingsJson && options.configFile) {
    throw new UsageError(
      `${command} --apply follows the stack's settings; --config is for plan and report (what-if) when --stack is given`,
    );
  }
  if (!connection.resources.settingsJson && !options.configFile) {
    throw new UsageError(
      `${command} --apply needs the policy the stack uses: pass --stack NAME, or --config FILE with the same settings`,
    );
  }
  // Each store replaces the secret's policy whole: the admin role must be known, not guessed.
  const adminRole = connection.resources.adminRoleArn;
  if (adminRole === undefined) {
    throw new UsageError(
      `${command} --apply rewrites each secret's policy: pass --admin-role-arn ARN (or none) to keep the stack's admin role`,
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
      // The stack's admin role stays in each secret's policy (the policy is replaced whole).
      { kmsKeyArn: kmsKeyArn!, adminRoleArn: adminRole === 'none' ? undefined : adminRole },
      new SecretsManagerClient(config),
    ),
    notifier: new SnsNotifier(topicArn!, new SNSClient(config)),
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
    vault: { describe: refuse, store: refuse, promote: refuse, read: refuse },
    notifier: { publish: refuse, ensureSubscribed: refuse },
  };
}
