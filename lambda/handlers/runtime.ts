/**
 * What every handler shares: configuration read and validated once at cold start (fail fast with
 * the variable's name), and the Powertools logger and metrics.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { ENV, METRICS_NAMESPACE, SERVICE_NAME } from '../contract';
import { ConfigError } from '../domain/errors';
import { ownerTopicPrefixFor, secretPrefixProblem } from '../domain/naming';
import { OrganizationSettings, resolveOrganizationSettings } from '../domain/organization';
import { resolveSettings, RotationSettings } from '../domain/settings';
import type { Logger as PortLogger } from '../ports';

type Env = Readonly<Record<string, string | undefined>>;

export { SERVICE_NAME };

function requireEnv(env: Env, name: string): string {
  const value = env[name];
  if (value === undefined || value.trim() === '') {
    throw new ConfigError([`environment variable ${name} is not set; the KeyRotation construct sets it`]);
  }
  return value;
}

/** A variable holding a JSON object (`what` it is, for the message when it is not). */
function jsonObject(raw: string, name: string, what: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ConfigError([`environment variable ${name} is not JSON`]);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError([`environment variable ${name} must be a JSON object of ${what}`]);
  }
  return parsed as Record<string, unknown>;
}

function readSettings(env: Env): RotationSettings {
  return resolveSettings(jsonObject(requireEnv(env, ENV.rotationSettings), ENV.rotationSettings, 'settings'));
}

const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/\S+$/;
const ROLE_OR_USER_ARN = /^arn:aws[a-z-]*:iam::\d{12}:(role|user)\/\S+$/;

/** The readers of every secret: a JSON list of IAM role and user ARNs; none when unset. */
function readReaderArns(env: Env): string[] {
  const name = ENV.secretReaderArns;
  const raw = env[name]?.trim();
  if (!raw) return [];
  const expected = `a JSON list of IAM role or user ARNs such as ["arn:aws:iam::111122223333:role/app"]`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ConfigError([`environment variable ${name} must be ${expected} (got ${raw})`]);
  }
  if (!Array.isArray(parsed)) {
    throw new ConfigError([`environment variable ${name} must be ${expected} (got ${raw})`]);
  }
  const problems = parsed.flatMap((arn: unknown, index) =>
    typeof arn === 'string' && ROLE_OR_USER_ARN.test(arn)
      ? []
      : [`environment variable ${name}[${index}] ${JSON.stringify(arn)} is not an IAM role or user ARN`],
  );
  if (problems.length > 0) throw new ConfigError(problems);
  return parsed as string[];
}

/**
 * Construct props that travel with the organization settings in the stack's JSON but are not
 * settings of the functions (the trust's organization id, whether the StackSet is deployed).
 */
const CONSTRUCT_ONLY_ORGANIZATION_PROPS = ['organizationId', 'deployMembers'];

/** Organization mode's settings, or undefined in one account (the variable is not set). */
export function readOrganization(env: Env): OrganizationSettings | undefined {
  const raw = env[ENV.organization]?.trim();
  if (!raw) return undefined;
  const parsed = jsonObject(raw, ENV.organization, 'organization settings');
  const settings = Object.fromEntries(
    Object.entries(parsed).filter(([key]) => !CONSTRUCT_ONLY_ORGANIZATION_PROPS.includes(key)),
  );
  try {
    return resolveOrganizationSettings(settings);
  } catch (error) {
    if (error instanceof ConfigError) {
      throw new ConfigError(
        error.problems.map((problem) => `environment variable ${ENV.organization}: ${problem}`),
      );
    }
    throw error;
  }
}

/** Organization mode's part of the planner's configuration. */
export interface PlannerOrganizationConfig {
  readonly settings: OrganizationSettings;
  /** Where continuations of an account's planning go. */
  readonly planningQueueUrl: string;
  /** For the ops notice of an account that cannot be planned. */
  readonly topicArn: string;
  readonly opsTopicArn?: string;
  readonly kmsKeyArn: string;
}

export interface PlannerConfig {
  readonly tableName: string;
  readonly queueUrl: string;
  readonly settings: RotationSettings;
  /** Set in organization mode only: the planner then plans the accounts of the planning queue's messages. */
  readonly organization?: PlannerOrganizationConfig;
}

export interface DispatcherConfig {
  readonly organization: OrganizationSettings;
  readonly planningQueueUrl: string;
  /** The ledger, whose account run records name the accounts earlier runs covered (one Query). */
  readonly tableName: string;
}

export interface RotatorConfig {
  readonly tableName: string;
  readonly topicArn: string;
  readonly secretPrefix: string;
  readonly kmsKeyArn: string;
  readonly settings: RotationSettings;
  readonly subscribeOwners: boolean;
  readonly adminRoleArn?: string;
  /** Roles and users that may also read every secret's value (secretReaderArns). */
  readonly readerArns: readonly string[];
  /** The rotator's own role, exempt from the Deny in each secret's policy. */
  readonly serviceRoleArn: string;
  /** Name prefix of the per-owner topics (derived from the secret prefix when not set). */
  readonly ownerTopicPrefix: string;
  /** The operators' topic, for findings a person must act on. */
  readonly opsTopicArn?: string;
  /**
   * Set in organization mode only: the rotator works in the member account each message names,
   * through its member role, and stores secrets with the member account's own key (this alias).
   */
  readonly organization?: { readonly settings: OrganizationSettings; readonly memberKeyAlias: string };
}

export function loadPlannerConfig(env: Env): PlannerConfig {
  const organization = readOrganization(env);
  const opsTopicArn = env[ENV.opsTopicArn]?.trim();
  return {
    tableName: requireEnv(env, ENV.ledgerTableName),
    queueUrl: requireEnv(env, ENV.queueUrl),
    settings: readSettings(env),
    ...(organization
      ? {
          organization: {
            settings: organization,
            planningQueueUrl: requireEnv(env, ENV.planningQueueUrl),
            topicArn: requireEnv(env, ENV.topicArn),
            kmsKeyArn: requireEnv(env, ENV.kmsKeyArn),
            ...(opsTopicArn ? { opsTopicArn } : {}),
          },
        }
      : {}),
  };
}

export function loadDispatcherConfig(env: Env): DispatcherConfig {
  const organization = readOrganization(env);
  if (!organization) {
    throw new ConfigError([
      `environment variable ${ENV.organization} is not set; the KeyRotation construct sets it for the dispatcher in organization mode`,
    ]);
  }
  return {
    organization,
    planningQueueUrl: requireEnv(env, ENV.planningQueueUrl),
    tableName: requireEnv(env, ENV.ledgerTableName),
  };
}

/** An alias name of KMS: `alias/` and 1-250 letters, digits, `/_-`; not an AWS-managed `alias/aws/` one. */
const KMS_ALIAS = /^alias\/(?!aws\/)[A-Za-z0-9/_-]{1,250}$/;

export function loadRotatorConfig(env: Env): RotatorConfig {
  const secretPrefix = requireEnv(env, ENV.secretPrefix);
  const prefixProblem = secretPrefixProblem(secretPrefix);
  if (prefixProblem) throw new ConfigError([`environment variable ${ENV.secretPrefix}: ${prefixProblem}`]);
  const subscribe = env[ENV.subscribeOwners] ?? 'true';
  if (subscribe !== 'true' && subscribe !== 'false') {
    throw new ConfigError([
      `environment variable ${ENV.subscribeOwners} must be "true" or "false" (got "${subscribe}")`,
    ]);
  }
  const adminRoleArn = env[ENV.adminRoleArn];
  const ownerTopicPrefix = env[ENV.ownerTopicPrefix]?.trim() || ownerTopicPrefixFor(secretPrefix);
  if (!/^[A-Za-z0-9_-]{1,220}$/.test(ownerTopicPrefix)) {
    throw new ConfigError([
      `environment variable ${ENV.ownerTopicPrefix} must be 1-220 letters, digits, "_" or "-" (an SNS topic name prefix)`,
    ]);
  }
  const opsTopicArn = env[ENV.opsTopicArn]?.trim();
  // Named in each secret's Deny as a writer: without it, or with a wrong value, the rotator would
  // write policies that deny itself its own secrets.
  const serviceRoleArn = requireEnv(env, ENV.serviceRoleArn).trim();
  if (!ROLE_ARN.test(serviceRoleArn)) {
    throw new ConfigError([
      `environment variable ${ENV.serviceRoleArn} must be the ARN of an IAM role (got "${serviceRoleArn}")`,
    ]);
  }
  return {
    tableName: requireEnv(env, ENV.ledgerTableName),
    topicArn: requireEnv(env, ENV.topicArn),
    secretPrefix,
    kmsKeyArn: requireEnv(env, ENV.kmsKeyArn),
    settings: readSettings(env),
    subscribeOwners: subscribe === 'true',
    adminRoleArn: adminRoleArn && adminRoleArn.trim() !== '' ? adminRoleArn : undefined,
    readerArns: readReaderArns(env),
    serviceRoleArn,
    ownerTopicPrefix,
    ...(opsTopicArn ? { opsTopicArn } : {}),
    ...organizationOfRotator(env),
  };
}

function organizationOfRotator(env: Env): Pick<RotatorConfig, 'organization'> {
  const settings = readOrganization(env);
  if (!settings) return {};
  const memberKeyAlias = requireEnv(env, ENV.memberKeyAlias).trim();
  if (!KMS_ALIAS.test(memberKeyAlias)) {
    throw new ConfigError([
      `environment variable ${ENV.memberKeyAlias} must be a KMS alias name such as alias/iam-key-rotation-member (got "${memberKeyAlias}")`,
    ]);
  }
  return { organization: { settings, memberKeyAlias } };
}

/** The services' Logger port over a Powertools logger. */
export function auditLogger(logger: Logger): PortLogger {
  return {
    debug: (message, attributes) => logger.debug(message, attributes ?? {}),
    info: (message, attributes) => logger.info(message, attributes ?? {}),
    warn: (message, attributes) => logger.warn(message, attributes ?? {}),
    error: (message, attributes) => logger.error(message, attributes ?? {}),
  };
}

export function createObservability(): { logger: Logger; metrics: Metrics } {
  return {
    logger: new Logger({ serviceName: SERVICE_NAME }),
    metrics: new Metrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE_NAME }),
  };
}

/** The account a function runs in, from its ARN (`arn:aws:lambda:region:123456789012:function:name`). */
export function accountOfFunction(invokedFunctionArn: string): string {
  return invokedFunctionArn.split(':')[4] ?? '';
}

/**
 * The partition of a region (`AWS_REGION`, which Lambda always sets): `aws-cn` for the China
 * regions, `aws-us-gov` for GovCloud, `aws-iso*` for the isolated regions, `aws-eusc` for the European
 * Sovereign Cloud, else `aws` (as the SDK's and CDK's partition tables say). The member
 * role's ARN is built in it.
 */
export function partitionOfRegion(region: string | undefined): string {
  if (!region) return 'aws';
  if (region.startsWith('cn-')) return 'aws-cn';
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  if (region.startsWith('us-isob-')) return 'aws-iso-b';
  if (region.startsWith('us-iso-')) return 'aws-iso';
  if (region.startsWith('eu-isoe-')) return 'aws-iso-e';
  if (region.startsWith('us-isof-')) return 'aws-iso-f';
  // The AWS European Sovereign Cloud.
  if (region.startsWith('eusc-')) return 'aws-eusc';
  return 'aws';
}
