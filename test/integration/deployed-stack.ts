/**
 * The stack of cdk.out, "deployed" into the emulator: the resources its functions talk to are created
 * in moto from their template properties (the ledger's key schema, the FIFO queue's attributes and
 * redrive policy, the topics, the KMS key, the roles), and the functions' environments are resolved
 * from the template's Environment.Variables by replacing each Ref / Fn::GetAtt with what it names.
 * Resources the functions never reach (alarms, log groups, the schedule, policies) are not created:
 * a reference to one fails with its logical id, so a new dependency cannot slip by unresolved.
 */
import { createHash } from 'node:crypto';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  UpdateContinuousBackupsCommand,
  UpdateTimeToLiveCommand,
  type CreateTableCommandInput,
} from '@aws-sdk/client-dynamodb';
import { CreateRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { CreateKeyCommand, EnableKeyRotationCommand, KMSClient } from '@aws-sdk/client-kms';
import { CreateTopicCommand, SNSClient } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { CfnResource, CfnTemplate, STACK_NAME } from './deployed';

export const ACCOUNT_ID = '123456789012'; // moto's default account
export const REGION = 'eu-west-1';
export const PARTITION = 'aws';

/** What CloudFormation would return for a resource: its Ref and its Fn::GetAtt attributes. */
export interface PhysicalResource {
  readonly type: string;
  readonly ref: string;
  readonly attributes: Readonly<Record<string, string>>;
}

const PSEUDO_PARAMETERS: Readonly<Record<string, string>> = {
  'AWS::AccountId': ACCOUNT_ID,
  'AWS::Region': REGION,
  'AWS::Partition': PARTITION,
  'AWS::StackName': STACK_NAME,
  'AWS::URLSuffix': 'amazonaws.com',
};

export class DeployedStack {
  constructor(
    readonly template: CfnTemplate,
    private readonly physical: ReadonlyMap<string, PhysicalResource>,
  ) {}

  resource(logicalId: string): PhysicalResource {
    const found = this.physical.get(logicalId);
    if (!found) {
      const type = this.template.Resources[logicalId]?.Type ?? 'unknown type';
      throw new Error(`${logicalId} (${type}) is referenced but not provisioned in the emulator`);
    }
    return found;
  }

  /** The single provisioned resource of a type whose logical id starts with `prefix`. */
  byPrefix(type: string, prefix: string): PhysicalResource & { readonly logicalId: string } {
    const found = [...this.physical.entries()].filter(
      ([id, resource]) => resource.type === type && id.startsWith(prefix),
    );
    if (found.length !== 1) throw new Error(`expected one ${type} named ${prefix}*, found ${found.length}`);
    const [logicalId, resource] = found[0]!;
    return { logicalId, ...resource };
  }

  /** Replaces Ref, Fn::GetAtt and Fn::Join with what they name; everything else as it is. */
  resolve(value: unknown): unknown {
    if (Array.isArray(value)) return value.map((item) => this.resolve(item));
    if (typeof value !== 'object' || value === null) return value;
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 1) {
      const [key, argument] = entries[0]!;
      if (key === 'Ref') {
        const name = String(argument);
        return PSEUDO_PARAMETERS[name] ?? this.resource(name).ref;
      }
      if (key === 'Fn::GetAtt') {
        const [logicalId, attribute] = argument as [string, string];
        const found = this.resource(logicalId).attributes[attribute];
        if (found === undefined) throw new Error(`Fn::GetAtt ${logicalId}.${attribute} is not known`);
        return found;
      }
      if (key === 'Fn::Join') {
        const [separator, parts] = argument as [string, unknown[]];
        return parts.map((part) => String(this.resolve(part))).join(separator);
      }
      if (key.startsWith('Fn::')) throw new Error(`intrinsic ${key} is not supported by the resolver`);
    }
    return Object.fromEntries(entries.map(([key, item]) => [key, this.resolve(item)]));
  }

  /** A function's environment as Lambda would set it: every variable resolved to a string. */
  environmentOf(functionLogicalId: string): Record<string, string> {
    const resource = this.template.Resources[functionLogicalId];
    const variables =
      (resource?.Properties?.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables ??
      {};
    return Object.fromEntries(
      Object.entries(variables).map(([name, value]) => {
        const resolved = this.resolve(value);
        if (typeof resolved !== 'string') {
          throw new Error(`${functionLogicalId} variable ${name} does not resolve to a string`);
        }
        return [name, resolved];
      }),
    );
  }
}

/** CloudFormation's name for a resource created without one: `<stack>-<logicalId>-<suffix>`. */
function generatedName(logicalId: string, maxLength: number, suffix = ''): string {
  const hash = createHash('sha256').update(logicalId).digest('hex').slice(0, 12).toUpperCase();
  const base = `${STACK_NAME}-${logicalId}`.slice(0, maxLength - hash.length - 1 - suffix.length);
  return `${base}-${hash}${suffix}`;
}

type Provisioner = (
  logicalId: string,
  properties: Record<string, unknown>,
  clients: Clients,
) => Promise<PhysicalResource>;

interface Clients {
  readonly kms: KMSClient;
  readonly iam: IAMClient;
  readonly sqs: SQSClient;
  readonly sns: SNSClient;
  readonly dynamodb: DynamoDBClient;
}

const PROVISIONERS: Readonly<Record<string, Provisioner>> = {
  'AWS::KMS::Key': async (_id, properties, { kms }) => {
    const created = await kms.send(
      new CreateKeyCommand({
        Description: properties.Description as string | undefined,
        Policy: properties.KeyPolicy ? JSON.stringify(properties.KeyPolicy) : undefined,
      }),
    );
    const keyId = created.KeyMetadata!.KeyId!;
    if (properties.EnableKeyRotation === true) await kms.send(new EnableKeyRotationCommand({ KeyId: keyId }));
    return {
      type: 'AWS::KMS::Key',
      ref: keyId,
      attributes: { Arn: created.KeyMetadata!.Arn!, KeyId: keyId },
    };
  },

  'AWS::IAM::Role': async (id, properties, { iam }) => {
    const created = await iam.send(
      new CreateRoleCommand({
        RoleName: (properties.RoleName as string | undefined) ?? generatedName(id, 64),
        Path: properties.Path as string | undefined,
        AssumeRolePolicyDocument: JSON.stringify(properties.AssumeRolePolicyDocument),
      }),
    );
    const role = created.Role!;
    return {
      type: 'AWS::IAM::Role',
      ref: role.RoleName!,
      attributes: { Arn: role.Arn!, RoleId: role.RoleId! },
    };
  },

  'AWS::SQS::Queue': async (id, properties, { sqs }) => {
    const fifo = properties.FifoQueue === true;
    const attributes: Record<string, string> = {};
    for (const [name, value] of Object.entries(properties)) {
      if (name === 'QueueName' || name === 'Tags') continue;
      attributes[name] = typeof value === 'string' ? value : JSON.stringify(value);
    }
    const queueName =
      (properties.QueueName as string | undefined) ?? generatedName(id, 80, fifo ? '.fifo' : '');
    const created = await sqs.send(new CreateQueueCommand({ QueueName: queueName, Attributes: attributes }));
    const url = created.QueueUrl!;
    const read = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }),
    );
    return {
      type: 'AWS::SQS::Queue',
      ref: url,
      attributes: { Arn: read.Attributes!.QueueArn!, QueueName: queueName, QueueUrl: url },
    };
  },

  'AWS::SNS::Topic': async (id, properties, { sns }) => {
    const fifo = properties.FifoTopic === true;
    const attributes: Record<string, string> = {};
    for (const name of ['DisplayName', 'KmsMasterKeyId', 'FifoTopic', 'ContentBasedDeduplication']) {
      const value = properties[name];
      if (value !== undefined) attributes[name] = typeof value === 'string' ? value : JSON.stringify(value);
    }
    const topicName =
      (properties.TopicName as string | undefined) ?? generatedName(id, 256, fifo ? '.fifo' : '');
    const created = await sns.send(new CreateTopicCommand({ Name: topicName, Attributes: attributes }));
    return {
      type: 'AWS::SNS::Topic',
      ref: created.TopicArn!,
      attributes: { TopicArn: created.TopicArn!, TopicName: topicName },
    };
  },

  'AWS::DynamoDB::Table': async (id, properties, { dynamodb }) => {
    const tableName = (properties.TableName as string | undefined) ?? generatedName(id, 255);
    const sse = properties.SSESpecification as
      { SSEEnabled?: boolean; SSEType?: string; KMSMasterKeyId?: string } | undefined;
    const input: CreateTableCommandInput = {
      TableName: tableName,
      AttributeDefinitions:
        properties.AttributeDefinitions as CreateTableCommandInput['AttributeDefinitions'],
      KeySchema: properties.KeySchema as CreateTableCommandInput['KeySchema'],
      BillingMode: properties.BillingMode as CreateTableCommandInput['BillingMode'],
      GlobalSecondaryIndexes:
        properties.GlobalSecondaryIndexes as CreateTableCommandInput['GlobalSecondaryIndexes'],
      ...(sse
        ? {
            SSESpecification: {
              Enabled: sse.SSEEnabled,
              SSEType: sse.SSEType as 'KMS' | undefined,
              KMSMasterKeyId: sse.KMSMasterKeyId,
            },
          }
        : {}),
    };
    await dynamodb.send(new CreateTableCommand(input));
    const pitr = properties.PointInTimeRecoverySpecification as
      { PointInTimeRecoveryEnabled?: boolean } | undefined;
    if (pitr?.PointInTimeRecoveryEnabled) {
      await dynamodb.send(
        new UpdateContinuousBackupsCommand({
          TableName: tableName,
          PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        }),
      );
    }
    const ttl = properties.TimeToLiveSpecification as
      { AttributeName?: string; Enabled?: boolean } | undefined;
    if (ttl?.Enabled) {
      await dynamodb.send(
        new UpdateTimeToLiveCommand({
          TableName: tableName,
          TimeToLiveSpecification: { AttributeName: ttl.AttributeName, Enabled: true },
        }),
      );
    }
    const described = await dynamodb.send(new DescribeTableCommand({ TableName: tableName }));
    return {
      type: 'AWS::DynamoDB::Table',
      ref: tableName,
      attributes: { Arn: described.Table!.TableArn! },
    };
  },

  // Not created in the emulator (moto runs Lambda code in Docker); the tier runs the bundles in
  // process. Only the names and ARNs CloudFormation would give them.
  'AWS::Lambda::Function': async (id, properties) => {
    const name =
      typeof properties.FunctionName === 'string' ? properties.FunctionName : generatedName(id, 64);
    return {
      type: 'AWS::Lambda::Function',
      ref: name,
      attributes: { Arn: `arn:${PARTITION}:lambda:${REGION}:${ACCOUNT_ID}:function:${name}` },
    };
  },
};

/**
 * Creates in the emulator the Lambda functions' dependencies: what their environments and roles
 * refer to, and what those refer to in turn (the work queue's dead-letter queue, the KMS key), each
 * after the resources its properties name.
 */
export async function provisionStack(template: CfnTemplate): Promise<DeployedStack> {
  const physical = new Map<string, PhysicalResource>();
  const stack = new DeployedStack(template, physical);
  const dependencies = (resource: CfnResource): string[] =>
    resource.Type === 'AWS::Lambda::Function'
      ? referencedIds([resource.Properties?.Environment, resource.Properties?.Role])
      : referencedIds(resource.Properties);
  const needed = new Map<string, CfnResource>();
  const visit = (logicalId: string): void => {
    if (needed.has(logicalId) || logicalId.startsWith('AWS::')) return;
    const resource = template.Resources[logicalId];
    if (!resource) throw new Error(`the template refers to ${logicalId}, which it does not define`);
    needed.set(logicalId, resource);
    dependencies(resource).forEach(visit);
  };
  Object.entries(template.Resources)
    .filter(([, resource]) => resource.Type === 'AWS::Lambda::Function')
    .forEach(([logicalId]) => visit(logicalId));

  const clients: Clients = {
    kms: new KMSClient({}),
    iam: new IAMClient({}),
    sqs: new SQSClient({}),
    sns: new SNSClient({}),
    dynamodb: new DynamoDBClient({}),
  };
  try {
    while (physical.size < needed.size) {
      const ready = [...needed.entries()].filter(
        ([logicalId, resource]) =>
          !physical.has(logicalId) &&
          dependencies(resource).every((id) => id.startsWith('AWS::') || physical.has(id)),
      );
      if (ready.length === 0) throw new Error('circular references among the resources to provision');
      for (const [logicalId, resource] of ready) {
        const provision = PROVISIONERS[resource.Type];
        if (!provision) throw new Error(`${logicalId}: no provisioner for ${resource.Type}`);
        // A function's properties name its code in the CDK asset bucket (Fn::Sub): not needed here.
        const properties = (
          resource.Type === 'AWS::Lambda::Function' ? resource.Properties : stack.resolve(resource.Properties)
        ) as Record<string, unknown> | undefined;
        physical.set(logicalId, await provision(logicalId, properties ?? {}, clients));
      }
    }
  } finally {
    for (const client of Object.values(clients)) (client as { destroy(): void }).destroy();
  }
  return stack;
}

/** Logical ids that a value refers to (Ref and Fn::GetAtt), at any depth. */
function referencedIds(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(referencedIds);
  if (typeof value !== 'object' || value === null) return [];
  const record = value as Record<string, unknown>;
  if (typeof record.Ref === 'string') return [record.Ref]; // pseudo parameters (AWS::...) included
  if (Array.isArray(record['Fn::GetAtt'])) return [String(record['Fn::GetAtt'][0])];
  return Object.values(record).flatMap(referencedIds);
}
