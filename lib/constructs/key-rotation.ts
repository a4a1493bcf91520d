import * as path from 'node:path';
import {
  Annotations,
  Aws,
  CfnElement,
  Duration,
  RemovalPolicy,
  Stack,
  TimeZone,
  Token,
  Validations,
} from 'aws-cdk-lib';
import {
  Alarm,
  AlarmWidget,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  IMetric,
  LogQueryWidget,
  MathExpression,
  Metric,
  TextWidget,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { AttributeType, BillingMode, ProjectionType, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import {
  AnyPrincipal,
  Effect,
  Policy,
  PolicyDocument,
  PolicyStatement,
  Role,
  ServicePrincipal,
} from 'aws-cdk-lib/aws-iam';
import { IKey, Key } from 'aws-cdk-lib/aws-kms';
import {
  Architecture,
  Function as LambdaFunction,
  FunctionOptions,
  LoggingFormat,
  Tracing,
} from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, QueryDefinition, QueryString } from 'aws-cdk-lib/aws-logs';
import {
  ContextAttribute,
  Schedule,
  ScheduleExpression,
  ScheduleTargetInput,
} from 'aws-cdk-lib/aws-scheduler';
import { LambdaInvoke } from 'aws-cdk-lib/aws-scheduler-targets';
import { SubscriptionFilter, Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { DeadLetterQueue, Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct, IConstruct } from 'constructs';
import {
  ACCOUNT_DIMENSION,
  type DispatcherInput,
  ENV,
  LEDGER_ACCOUNT_PARTITION,
  LEDGER_SCREENING_FIELDS,
  LEDGER_SCREENING_INDEX,
  METRIC,
  METRICS_NAMESPACE,
  PlannerInput,
  PLANNING_MAX_RECEIVE_COUNT,
  WORK_MAX_RECEIVE_COUNT,
  ROTATOR_USER_BUDGET_MS,
  SERVICE_NAME,
} from '../../lambda/contract';
import { ownerTopicPrefixFor } from '../../lambda/domain/naming';
import type { RotationSettings } from '../../lambda/domain/settings';
import {
  KeyRotationProps,
  ResolvedKeyRotationConfig,
  ResolvedOrganizationConfig,
  resolveKeyRotationProps,
} from './key-rotation-props';
import { KEY_ROTATION_MEMBER_DEFAULTS, MEMBER_TRUST_ACTIONS } from './key-rotation-member';
import {
  HANDLER_BUNDLING,
  HANDLER_RUNTIME,
  handlerEntry,
  HandlerName,
  prebuiltHandlerCode,
} from './bundling';
import { MemberStackSet } from './member-stack-set';
import { SECRETS_ACTIONS } from './rotator-actions';

export type { KeyRotationOrganizationProps, KeyRotationProps } from './key-rotation-props';

export { SERVICE_NAME };

/** Messages the rotator takes per invocation. */
export const ROTATOR_BATCH_SIZE = 5;
/**
 * A full batch of users, each within its budget (ROTATOR_USER_BUDGET_MS: up to 120 s proving the new
 * key with STS while IAM propagates, plus the IAM, Secrets Manager, DynamoDB and SNS calls), fits in
 * one invocation. The rotator starts a message only with a user's budget left and defers the rest of
 * the batch; a deferred message counts a receive towards maxReceiveCount (then the dead-letter queue),
 * so this ratio must hold for deferral never to happen normally: 5 × 180 s = 15 min, Lambda's maximum.
 */
export const ROTATOR_TIMEOUT = Duration.minutes(15);
if (ROTATOR_TIMEOUT.toMilliseconds() < ROTATOR_BATCH_SIZE * ROTATOR_USER_BUDGET_MS) {
  throw new Error('ROTATOR_TIMEOUT must fit ROTATOR_BATCH_SIZE users of ROTATOR_USER_BUDGET_MS each');
}
/** One account per run: credential report (generate, poll, read), then a few calls per user with work. */
export const PLANNER_TIMEOUT = Duration.minutes(10);
/** AWS guidance for SQS event sources: at least six times the function timeout. */
export const WORK_QUEUE_VISIBILITY_TIMEOUT = Duration.seconds(ROTATOR_TIMEOUT.toSeconds() * 6);
/** A message that fails this many times goes to the dead-letter queue (and raises an alarm). */
export const MAX_RECEIVE_COUNT = WORK_MAX_RECEIVE_COUNT;
/**
 * Organization mode: AWS guidance for SQS event sources, six times the planner's timeout (SQS allows
 * up to 12 hours). A planner still working on an account keeps its message invisible to the others.
 */
export const PLANNING_QUEUE_VISIBILITY_TIMEOUT = Duration.seconds(PLANNER_TIMEOUT.toSeconds() * 6);
if (PLANNING_QUEUE_VISIBILITY_TIMEOUT.toSeconds() > Duration.hours(12).toSeconds()) {
  throw new Error("PLANNING_QUEUE_VISIBILITY_TIMEOUT exceeds SQS's maximum visibility timeout (12 hours)");
}
/**
 * Organization mode: the dispatcher lists the organization (every page, OUs walked to any depth, the
 * tags of each account still in the running) and queues a message per account; Organizations'
 * request rate, not computation, bounds it.
 */
export const DISPATCHER_TIMEOUT = Duration.minutes(15);

const PROJECT_ROOT = path.join(__dirname, '..', '..');

/** The IAM actions both functions need to read users and keys. */
const IAM_READ_ACTIONS = ['iam:GetUser', 'iam:ListAccessKeys', 'iam:GetAccessKeyLastUsed'];
/** The only IAM writes of the service. */
const IAM_KEY_WRITE_ACTIONS = ['iam:CreateAccessKey', 'iam:UpdateAccessKey', 'iam:DeleteAccessKey'];
/** IAM actions that do not support resource-level permissions (Resource must be `*`). */
const IAM_ACCOUNT_ACTIONS = ['iam:GenerateCredentialReport', 'iam:GetCredentialReport', 'iam:ListUsers'];

/**
 * IAM access key rotation as a service: a daily EventBridge schedule runs the planner, which queues one
 * FIFO message per user with work; the rotator rotates, stores the new key in Secrets Manager, records
 * in the DynamoDB ledger and notifies over SNS. One customer-managed KMS key encrypts every store.
 * CloudWatch alarms, a dashboard and saved Logs Insights queries cover operations and audit.
 *
 * Props are validated at synth time (see {@link KeyRotationProps}); the construct holds no business
 * logic: the handlers read the resolved settings from their environment.
 */
export class KeyRotation extends Construct {
  /** Every prop with its default applied. */
  readonly config: ResolvedKeyRotationConfig;
  readonly settings: RotationSettings;
  readonly secretPrefix: string;
  /** Name prefix of the per-owner topics the rotator creates; undefined when owners are not subscribed. */
  readonly ownerTopicPrefix?: string;

  /**
   * The one customer-managed key: secrets, ledger, topics and queues. Created by the construct, or the
   * existing key named by `encryptionKeyArn` (whose policy the stack does not manage).
   */
  readonly encryptionKey: IKey;
  readonly ledgerTable: Table;
  /** Notices to owners, default recipients and operators (message attribute `owner` for filters). */
  readonly notificationTopic: Topic;
  /** Alarms, for the operators. */
  readonly opsTopic: Topic;
  /** FIFO, one message group per `<accountId>/<userName>`. */
  readonly workQueue: Queue;
  readonly deadLetterQueue: Queue;
  /** Standard queue (Scheduler refuses FIFO) for planner invocations the schedule could not deliver. */
  readonly scheduleDeadLetterQueue: Queue;

  readonly plannerLogGroup: LogGroup;
  readonly rotatorLogGroup: LogGroup;
  readonly plannerRole: Role;
  readonly rotatorRole: Role;
  readonly planner: LambdaFunction;
  readonly rotator: LambdaFunction;
  readonly schedulerRole: Role;
  readonly schedule: Schedule;

  /** Organization mode only (the `organization` prop): the accounts covered and how. */
  readonly organization?: ResolvedOrganizationConfig;
  /** Organization mode: lists the organization's accounts and queues one planning message per account. */
  readonly dispatcher?: LambdaFunction;
  readonly dispatcherRole?: Role;
  readonly dispatcherLogGroup?: LogGroup;
  /** Organization mode: standard queue of planning messages, one per account, consumed by the planner. */
  readonly planningQueue?: Queue;
  readonly planningDeadLetterQueue?: Queue;
  /** Organization mode with deployMembers: the member footprint in every account under includeOus. */
  readonly memberStackSet?: MemberStackSet;
  /**
   * Organization mode: the central functions' roles every member role trusts as the service (planner,
   * rotator): the member template's CentralRoleArns parameter.
   */
  readonly memberTrustedRoleArns?: readonly string[];
  /**
   * Organization mode: the central roles operators assume the member roles with (the secret admin
   * role when set, else none): the member template's OperatorRoleArns parameter.
   */
  readonly memberOperatorRoleArns?: readonly string[];
  /** Organization mode: an account could not be planned (AccountFailures). */
  readonly accountFailuresAlarm?: Alarm;
  readonly planningDeadLetterQueueAlarm?: Alarm;
  readonly dispatcherErrorsAlarm?: Alarm;

  readonly plannerErrorsAlarm: Alarm;
  readonly rotatorErrorsAlarm: Alarm;
  readonly deadLetterQueueAlarm: Alarm;
  readonly scheduleDeadLetterQueueAlarm: Alarm;
  readonly plannerNotRunningAlarm: Alarm;
  readonly overdueKeysAlarm: Alarm;
  /** Users whose rotation failed (partial batch failures do not fail the invocation, so Errors stays 0). */
  readonly rotationFailuresAlarm: Alarm;
  /** A reader named for the secrets (secretAdminRoleArn, secretReaderArns) does not exist: secrets are stored without it. */
  readonly secretReadersOmittedAlarm: Alarm;
  /** An owner could not be subscribed to their notices. */
  readonly ownerSubscriptionFailuresAlarm: Alarm;
  readonly dashboard: Dashboard;
  /** Saved CloudWatch Logs Insights queries over both log groups. */
  readonly auditQueries: {
    readonly rotations: QueryDefinition;
    readonly failures: QueryDefinition;
    readonly postponed: QueryDefinition;
    readonly userActions: QueryDefinition;
  };

  constructor(scope: Construct, id: string, props: KeyRotationProps = {}) {
    super(scope, id);
    const stack = Stack.of(this);
    this.config = resolveKeyRotationProps(props, {
      account: Token.isUnresolved(stack.account) ? undefined : stack.account,
      region: Token.isUnresolved(stack.region) ? undefined : stack.region,
    });
    if (this.config.defaultRecipients.length === 0) {
      Annotations.of(this).addWarningV2(
        'iam-key-rotation:noDefaultRecipients',
        'defaultRecipients is empty: nobody receives the notices of users without a (valid) owner tag. Set defaultRecipients to the e-mail addresses that should.',
      );
    }
    this.settings = this.config.settings;
    this.organization = this.config.organization;
    this.secretPrefix = this.config.secretPrefix;
    this.ownerTopicPrefix = this.config.subscribeOwners ? ownerTopicPrefixFor(this.secretPrefix) : undefined;

    this.encryptionKey = this.config.encryptionKeyArn
      ? Key.fromKeyArn(this, 'EncryptionKey', this.config.encryptionKeyArn)
      : this.createEncryptionKey();
    this.ledgerTable = new Table(this, 'Ledger', {
      partitionKey: { name: 'pk', type: AttributeType.STRING },
      sortKey: { name: 'sk', type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      encryption: TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: this.encryptionKey,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // The planner's daily screen reads this index rather than the table: the table's own keys and
    // only the fields the screen reads, so that its items stay small however long a record's history
    // grows, and a Query page (1 MB) holds thousands of users. Added to an existing table on the
    // next deployment (CloudFormation creates one such index per stack update; this is the only one).
    this.ledgerTable.addGlobalSecondaryIndex({
      indexName: LEDGER_SCREENING_INDEX,
      partitionKey: { name: 'pk', type: AttributeType.STRING },
      sortKey: { name: 'sk', type: AttributeType.STRING },
      projectionType: ProjectionType.INCLUDE,
      nonKeyAttributes: [...LEDGER_SCREENING_FIELDS],
    });

    this.notificationTopic = new Topic(this, 'NotificationTopic', {
      displayName: 'IAM access key rotation',
      masterKey: this.encryptionKey,
      enforceSSL: true,
    });
    this.opsTopic = new Topic(this, 'OpsTopic', {
      displayName: 'IAM access key rotation alarms',
      masterKey: this.encryptionKey,
      enforceSSL: true,
    });
    this.subscribeRecipients();
    this.allowAlarmsToPublish();

    this.deadLetterQueue = new Queue(this, 'DeadLetterQueue', {
      fifo: true,
      encryption: QueueEncryption.KMS,
      encryptionMasterKey: this.encryptionKey,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    const deadLetterQueue: DeadLetterQueue = {
      queue: this.deadLetterQueue,
      maxReceiveCount: MAX_RECEIVE_COUNT,
    };
    this.workQueue = new Queue(this, 'WorkQueue', {
      fifo: true,
      // The planner sets a deduplication id per user and run: a retried send is dropped, the next
      // day's message for the same user is not.
      contentBasedDeduplication: false,
      encryption: QueueEncryption.KMS,
      encryptionMasterKey: this.encryptionKey,
      enforceSSL: true,
      visibilityTimeout: WORK_QUEUE_VISIBILITY_TIMEOUT,
      retentionPeriod: Duration.days(4),
      deadLetterQueue,
    });
    if (this.organization) {
      this.planningDeadLetterQueue = new Queue(this, 'PlanningDeadLetterQueue', {
        encryption: QueueEncryption.KMS,
        encryptionMasterKey: this.encryptionKey,
        enforceSSL: true,
        retentionPeriod: Duration.days(14),
      });
      // Standard, not FIFO: one message per account, planned in any order; the planner is idempotent.
      this.planningQueue = new Queue(this, 'PlanningQueue', {
        encryption: QueueEncryption.KMS,
        encryptionMasterKey: this.encryptionKey,
        enforceSSL: true,
        visibilityTimeout: PLANNING_QUEUE_VISIBILITY_TIMEOUT,
        retentionPeriod: Duration.days(4),
        deadLetterQueue: { queue: this.planningDeadLetterQueue, maxReceiveCount: PLANNING_MAX_RECEIVE_COUNT },
      });
    }

    this.plannerLogGroup = this.createLogGroup('PlannerLogs');
    this.rotatorLogGroup = this.createLogGroup('RotatorLogs');
    this.plannerRole = new Role(this, 'PlannerRole', {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: 'iam-key-rotation planner: reads IAM users and keys, queues work',
      inlinePolicies: this.plannerPolicies(),
    });
    this.rotatorRole = new Role(this, 'RotatorRole', {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: 'iam-key-rotation rotator: rotates access keys, stores them in Secrets Manager',
      inlinePolicies: this.rotatorPolicies(),
    });
    this.plannerLogGroup.grantWrite(this.plannerRole);
    this.rotatorLogGroup.grantWrite(this.rotatorRole);

    const environment = this.environment();
    const organization = this.organization;
    this.planner = this.handlerFunction('Planner', 'planner', {
      description: organization
        ? 'iam-key-rotation: plans one member account per message and queues one message per user'
        : 'iam-key-rotation: finds users with work and queues one message per user',
      // In organization mode, as for the rotator: the SQS event source's grant (kms:Decrypt on the key
      // through any service) does not reach the role; its statements are written explicitly.
      role: organization ? this.plannerRole.withoutPolicyUpdates() : this.plannerRole,
      logGroup: this.plannerLogGroup,
      timeout: PLANNER_TIMEOUT,
      // The credential report of up to 5,000 users is parsed in memory; memory also buys CPU.
      memorySize: 512,
      // Opt-in (reserveConcurrency): one planning run at a time. Otherwise the schedule alone keeps
      // runs apart; an overlapping manual run is harmless (FIFO deduplication + per-user ledger lock).
      // In organization mode, planConcurrency (the queue trigger's maximum): a lower reservation would
      // throttle deliveries back into the queue, counted towards the dead-letter queue.
      reservedConcurrentExecutions: this.config.reserveConcurrency
        ? (organization?.settings.planConcurrency ?? 1)
        : undefined,
      // Asynchronous invocations (the schedule, continuations): planning is idempotent, so retry, but
      // not for long. In organization mode the planner is invoked by its SQS event source only
      // (synchronously, retried by SQS): no asynchronous invocation configuration.
      ...(organization ? {} : { retryAttempts: 2, maxEventAge: Duration.hours(2) }),
      environment: organization
        ? {
            ...environment,
            [ENV.organization]: JSON.stringify(organization.settings),
            [ENV.planningQueueUrl]: this.planningQueue!.queueUrl,
          }
        : environment,
    });
    if (organization && this.planningQueue) {
      this.planner.addEventSource(
        new SqsEventSource(this.planningQueue, {
          // One account per invocation, the accounts of a run planned planConcurrency at a time.
          batchSize: 1,
          reportBatchItemFailures: true,
          maxConcurrency: organization.settings.planConcurrency,
        }),
      );
      this.plannerRole.addToPrincipalPolicy(
        new PolicyStatement({
          actions: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'],
          resources: ['*'],
        }),
      );
    } else {
      // A run that comes close to its timeout continues in a new, asynchronous invocation of the
      // planner. A policy of its own, not in the role's default policy: the function depends on that
      // one, and naming the function's ARN there would make the function depend on itself.
      new Policy(this, 'PlannerContinuation', {
        roles: [this.plannerRole],
        statements: [
          new PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [this.planner.functionArn] }),
        ],
      });
    }
    this.rotator = this.handlerFunction('Rotator', 'rotator', {
      description: 'iam-key-rotation: rotates, deactivates and deletes the access keys of one user',
      // Grants made through the function (CDK's SQS event source, X-Ray tracing) do not reach the role:
      // the event source's would allow kms:Decrypt on the key through any service. The rotator's
      // permissions are written explicitly below and in rotatorPolicies(); grant to rotatorRole.
      role: this.rotatorRole.withoutPolicyUpdates(),
      logGroup: this.rotatorLogGroup,
      timeout: ROTATOR_TIMEOUT,
      // One user at a time, mostly waiting on AWS APIs.
      memorySize: 256,
      // Opt-in (reserveConcurrency); the queue trigger's maximum concurrency caps the rotator anyway.
      reservedConcurrentExecutions: this.config.reserveConcurrency
        ? this.config.rotatorConcurrency
        : undefined,
      environment: organization
        ? {
            ...environment,
            [ENV.organization]: JSON.stringify(organization.settings),
            [ENV.memberKeyAlias]: KEY_ROTATION_MEMBER_DEFAULTS.keyAliasName,
          }
        : environment,
    });
    this.rotator.addEventSource(
      new SqsEventSource(this.workQueue, {
        batchSize: ROTATOR_BATCH_SIZE,
        reportBatchItemFailures: true,
        // Bounds the IAM write rate without reserving concurrency; one user is never handled twice at
        // once (FIFO group + ledger lock). Equal to the reservation when there is one, so that no
        // batch is throttled back into the queue and counted towards maxReceiveCount.
        maxConcurrency: this.config.rotatorConcurrency,
      }),
    );
    // What the event source and active tracing would have granted, minus the unconditioned kms:Decrypt
    // (the queue's messages are decrypted through SQS: the kms:ViaService statement of StoreSecrets).
    this.rotatorRole.addToPrincipalPolicy(
      new PolicyStatement({
        actions: [
          'sqs:ReceiveMessage',
          'sqs:ChangeMessageVisibility',
          'sqs:GetQueueUrl',
          'sqs:DeleteMessage',
          'sqs:GetQueueAttributes',
        ],
        resources: [this.workQueue.queueArn],
      }),
    );
    this.rotatorRole.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'],
        resources: ['*'],
      }),
    );

    this.schedulerRole = new Role(this, 'SchedulerRole', {
      description: 'iam-key-rotation: lets EventBridge Scheduler invoke the planner',
      assumedBy: new ServicePrincipal('scheduler.amazonaws.com', {
        conditions: {
          StringEquals: {
            'aws:SourceAccount': Aws.ACCOUNT_ID,
            'aws:SourceArn': `arn:${Aws.PARTITION}:scheduler:${Aws.REGION}:${Aws.ACCOUNT_ID}:schedule-group/default`,
          },
        },
      }),
    });
    // Invocations the schedule could not deliver (after its retries, or older than maxEventAge).
    this.scheduleDeadLetterQueue = new Queue(this, 'ScheduleDeadLetterQueue', {
      encryption: QueueEncryption.KMS,
      encryptionMasterKey: this.encryptionKey,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    // Scheduler sends dead letters with the schedule's role: SendMessage (granted by the target) and
    // the key, through SQS only.
    this.schedulerRole.addToPrincipalPolicy(
      this.kmsStatement(['kms:Decrypt', 'kms:GenerateDataKey'], ['sqs']),
    );
    if (organization) {
      this.dispatcherLogGroup = this.createLogGroup('DispatcherLogs');
      this.dispatcherRole = new Role(this, 'DispatcherRole', {
        assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
        description:
          "iam-key-rotation dispatcher: lists the organization's accounts, queues one planning message per account",
        inlinePolicies: this.dispatcherPolicies(organization),
      });
      this.dispatcherLogGroup.grantWrite(this.dispatcherRole);
      this.dispatcher = this.handlerFunction('Dispatcher', 'dispatcher', {
        description:
          'iam-key-rotation: lists the accounts to cover and queues one planning message per account',
        role: this.dispatcherRole,
        logGroup: this.dispatcherLogGroup,
        timeout: DISPATCHER_TIMEOUT,
        memorySize: 256,
        reservedConcurrentExecutions: this.config.reserveConcurrency ? 1 : undefined,
        // Asynchronous invocations (the schedule): dispatching twice queues each account twice, which
        // the planner absorbs (idempotent planning, FIFO deduplication per user and run).
        retryAttempts: 2,
        maxEventAge: Duration.hours(2),
        environment: {
          [ENV.organization]: JSON.stringify(organization.settings),
          [ENV.planningQueueUrl]: this.planningQueue!.queueUrl,
          // The account-run records: accounts that left the selection with work still to finish.
          [ENV.ledgerTableName]: this.ledgerTable.tableName,
          POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
          POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
          NODE_OPTIONS: '--enable-source-maps',
        },
      });
      this.memberTrustedRoleArns = [this.plannerRole.roleArn, this.rotatorRole.roleArn];
      // `keyrot --org --apply`, run as the secret admin role, assumes the member roles (a trust
      // statement of its own, without the source identity of the functions' statement).
      this.memberOperatorRoleArns = this.config.secretAdminRoleArn ? [this.config.secretAdminRoleArn] : [];
      if (organization.deployMembers) {
        this.memberStackSet = new MemberStackSet(this, 'MemberStackSet', {
          member: {
            organizationId: organization.organizationId,
            memberRoleName: organization.settings.memberRoleName,
            secretPrefix: this.secretPrefix,
            includePaths: this.settings.includePaths,
            excludePaths: this.settings.excludePaths,
            keyAliasName: KEY_ROTATION_MEMBER_DEFAULTS.keyAliasName,
            ...(organization.memberPermissionsBoundaryArn
              ? { permissionsBoundaryArn: organization.memberPermissionsBoundaryArn }
              : {}),
          },
          centralRoleArns: this.memberTrustedRoleArns,
          operatorRoleArns: this.memberOperatorRoleArns,
          organization: organization.settings,
        });
      }
    }

    // In organization mode the schedule starts the dispatcher, which queues the accounts for the planner.
    const scheduled = this.dispatcher ?? this.planner;
    // Organization mode: the schedule's time is the run's id, so that an invocation Lambda retries
    // continues the same run (the dispatcher's DispatcherInput). One account: the planner's input
    // as it always was.
    const input: PlannerInput | DispatcherInput = this.dispatcher
      ? { dryRun: this.config.dryRun, scheduledAt: ContextAttribute.scheduledTime }
      : { dryRun: this.config.dryRun };
    this.schedule = new Schedule(this, 'DailySchedule', {
      description: 'iam-key-rotation: daily planning run',
      schedule: ScheduleExpression.expression(
        this.config.scheduleExpression,
        TimeZone.of(this.config.scheduleTimeZone),
      ),
      target: new LambdaInvoke(scheduled, {
        role: this.schedulerRole,
        input: ScheduleTargetInput.fromObject(input),
        // A late run is fine; one more than two hours late is dropped: the next day's run catches up
        // and the not-running alarm tells the operators.
        retryAttempts: 10,
        maxEventAge: Duration.hours(2),
        deadLetterQueue: this.scheduleDeadLetterQueue,
      }),
    });
    // The invoke permission must exist before the first run.
    this.schedule.node.addDependency(this.schedulerRole);

    this.plannerErrorsAlarm = this.errorsAlarm('PlannerErrorsAlarm', this.planner, 'planner');
    this.rotatorErrorsAlarm = this.errorsAlarm('RotatorErrorsAlarm', this.rotator, 'rotator');
    this.deadLetterQueueAlarm = this.alarm('DeadLetterQueueAlarm', {
      metric: this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(5),
        statistic: 'Maximum',
      }),
      threshold: 1,
      description:
        'Work messages failed 3 times and are in the dead-letter queue: read the rotator logs, fix, then redrive.',
    });
    this.scheduleDeadLetterQueueAlarm = this.alarm('ScheduleDeadLetterQueueAlarm', {
      metric: this.scheduleDeadLetterQueue.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(5),
        statistic: 'Maximum',
      }),
      threshold: 1,
      description:
        "The schedule could not invoke the planner (after its retries): a planning run was skipped. Read the message in the schedule's dead-letter queue (it holds the error), fix, then invoke the planner by hand.",
    });
    this.rotationFailuresAlarm = this.alarm('RotationFailuresAlarm', {
      metric: this.serviceMetric(METRIC.rotationFailures, 'Sum', Duration.minutes(5)),
      threshold: 1,
      description:
        'A user could not be rotated (the message is retried, then goes to the dead-letter queue): read the rotator\'s log group (Logs Insights query "failures").',
    });
    this.secretReadersOmittedAlarm = this.alarm('SecretReadersOmittedAlarm', {
      metric: this.serviceMetric(METRIC.secretReadersOmitted, 'Sum', Duration.minutes(5)),
      threshold: 1,
      description:
        "A principal named for the secrets' policies does not exist (secretAdminRoleArn, secretReaderArns, or a deleted one in an operator's statement); secrets are stored without it. See the rotator's secret.reader-omitted audit line: create the role or user, or change the prop and redeploy.",
    });
    this.ownerSubscriptionFailuresAlarm = this.alarm('OwnerSubscriptionFailuresAlarm', {
      metric: this.serviceMetric(METRIC.ownerSubscriptionFailures, 'Sum', Duration.minutes(5)),
      threshold: 1,
      description:
        "An owner could not be subscribed to their notices (the default recipients were told instead): see the ops topic's finding and the rotator's log.",
    });
    const scheduledName = this.dispatcher ? 'dispatcher' : 'planner';
    // Watches what the schedule starts: the dispatcher in organization mode (the planner then runs
    // only when accounts are queued). The id stays PlannerNotRunningAlarm so that the single-account
    // template does not change.
    this.plannerNotRunningAlarm = this.alarm('PlannerNotRunningAlarm', {
      metric: scheduled.metricInvocations({ period: Duration.hours(1), statistic: 'Sum' }),
      comparisonOperator: ComparisonOperator.LESS_THAN_THRESHOLD,
      threshold: 1,
      evaluationPeriods: this.config.notRunningAlarmHours,
      treatMissingData: TreatMissingData.BREACHING,
      description: `The ${scheduledName} has not run for ${this.config.notRunningAlarmHours} hours: check the schedule (EventBridge Scheduler) and the ${scheduledName}'s logs.`,
    });
    if (this.dispatcher && this.planningDeadLetterQueue) {
      this.dispatcherErrorsAlarm = this.errorsAlarm('DispatcherErrorsAlarm', this.dispatcher, 'dispatcher');
      this.planningDeadLetterQueueAlarm = this.alarm('PlanningDeadLetterQueueAlarm', {
        metric: this.planningDeadLetterQueue.metricApproximateNumberOfMessagesVisible({
          period: Duration.minutes(5),
          statistic: 'Maximum',
        }),
        threshold: 1,
        // An account's own failure never lands here: the planner consumes it on its last delivery
        // (AccountFailures, the account.unreachable notice) and the next run tries again.
        description: `Planning messages failed ${PLANNING_MAX_RECEIVE_COUNT} times and are in the planning dead-letter queue: a message the planner cannot read, a failure of the central service itself (ledger, queues, topics, or a bug) on every delivery, or users of an account that could not be planned on any delivery. An unreachable member account is not among them (see AccountFailures). Read the planner's log group (Logs Insights query "failures"), fix, then redrive; the next daily run plans the accounts again anyway.`,
      });
      this.accountFailuresAlarm = this.alarm('AccountFailuresAlarm', {
        metric: this.serviceMetric(METRIC.accountFailures, 'Sum', Duration.minutes(5)),
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        threshold: 0,
        description:
          "A member account could not be planned (member role missing or not trusted, account suspended, STS throttled): see the account.unreachable notice on the ops topic, the dashboard's AccountFailures by AccountId and the planner's logs. The next run tries the account again.",
      });
    }
    this.overdueKeysAlarm = this.alarm('OverdueKeysAlarm', {
      metric: this.serviceMetric(METRIC.overdueKeys, 'Maximum', Duration.hours(1)),
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      threshold: 0,
      // One datapoint per planning run: between runs the alarm keeps the state of the last run instead
      // of going back to OK every hour without data.
      treatMissingData: TreatMissingData.IGNORE,
      description: `Active access keys older than maxKeyAgeDays (${this.settings.maxKeyAgeDays}) were found: see the planner's audit log.`,
    });

    this.auditQueries = this.createAuditQueries();
    this.dashboard = this.createDashboard();
    this.acknowledgeFindings();
  }

  private createEncryptionKey(): Key {
    const key = new Key(this, 'EncryptionKey', {
      description: 'iam-key-rotation: secrets, ledger, topics and queues',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // The pattern of the AWS-managed aws/secretsmanager key, narrowed to decrypting our secrets: any
    // principal of the account may decrypt through Secrets Manager, so that who reads which secret is
    // decided by the secret's resource policy alone (an IAM user can read its own secret).
    key.addToResourcePolicy(
      new PolicyStatement({
        sid: 'DecryptSecretsUnderPrefixThroughSecretsManager',
        principals: [new AnyPrincipal()],
        actions: ['kms:Decrypt'],
        resources: ['*'],
        conditions: {
          StringEquals: {
            'kms:ViaService': `secretsmanager.${Aws.REGION}.amazonaws.com`,
            'kms:CallerAccount': Aws.ACCOUNT_ID,
          },
          StringLike: { 'kms:EncryptionContext:SecretARN': this.secretArnPattern() },
        },
      }),
    );
    // CloudWatch alarms publish to the encrypted ops topic.
    key.addToResourcePolicy(
      new PolicyStatement({
        sid: 'CloudWatchAlarmsPublishToEncryptedTopic',
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: ['*'],
        // Only for alarms of this account and region (the same conditions as the ops topic's policy).
        conditions: this.alarmSourceConditions(),
      }),
    );
    return key;
  }

  private createLogGroup(id: string): LogGroup {
    // Retained on stack deletion: the logs are the audit trail.
    return new LogGroup(this, id, {
      retention: this.config.logRetention,
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }

  private subscribeRecipients(): void {
    for (const address of this.config.defaultRecipients) {
      this.notificationTopic.addSubscription(
        new EmailSubscription(address, {
          filterPolicy: { owner: SubscriptionFilter.stringFilter({ allowlist: ['default'] }) },
        }),
      );
    }
    for (const address of this.config.opsRecipients) {
      this.notificationTopic.addSubscription(new EmailSubscription(address));
      this.opsTopic.addSubscription(new EmailSubscription(address));
    }
  }

  private allowAlarmsToPublish(): void {
    this.opsTopic.addToResourcePolicy(
      new PolicyStatement({
        sid: 'CloudWatchAlarmsPublish',
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.opsTopic.topicArn],
        conditions: this.alarmSourceConditions(),
      }),
    );
  }

  /** CloudWatch acting for an alarm of this account and region only (confused-deputy protection). */
  private alarmSourceConditions(): Record<string, Record<string, string>> {
    return {
      ArnLike: {
        'aws:SourceArn': `arn:${Aws.PARTITION}:cloudwatch:${Aws.REGION}:${Aws.ACCOUNT_ID}:alarm:*`,
      },
      StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
    };
  }

  /** `arn:<partition>:iam::<account>:user<path>*` for each path. */
  private userArns(paths: readonly string[]): string[] {
    return paths.map((userPath) => `arn:${Aws.PARTITION}:iam::${Aws.ACCOUNT_ID}:user${userPath}*`);
  }

  /** `arn:<partition>:sns:<region>:<account>:<ownerTopicPrefix>*`: every owner topic, nothing else. */
  private ownerTopicArnPattern(): string {
    return `arn:${Aws.PARTITION}:sns:${Aws.REGION}:${Aws.ACCOUNT_ID}:${this.ownerTopicPrefix}*`;
  }

  private secretArnPattern(): string {
    return `arn:${Aws.PARTITION}:secretsmanager:${Aws.REGION}:${Aws.ACCOUNT_ID}:secret:${this.secretPrefix}/*`;
  }

  /** KMS use through the services that hold our data; the functions never call KMS directly. */
  private kmsStatement(actions: string[], services: string[]): PolicyStatement {
    return new PolicyStatement({
      actions,
      resources: [this.encryptionKey.keyArn],
      conditions: {
        StringEquals: {
          'kms:ViaService': services.map((service) => `${service}.${Aws.REGION}.amazonaws.com`),
        },
      },
    });
  }

  /** Reading users and keys under includePaths (both functions). */
  private iamUserReadStatement(): PolicyStatement {
    return new PolicyStatement({
      actions: IAM_READ_ACTIONS,
      resources: this.userArns(this.settings.includePaths),
    });
  }

  /**
   * Organization mode: assume the member role of any account of the organization (and of no other),
   * as the service (SourceIdentity) and with session tags. Nothing in the central account: in
   * organization mode both functions work in every account, the central one included, through its
   * member role.
   */
  private memberRoleStatements(organization: ResolvedOrganizationConfig): PolicyStatement[] {
    const memberRoles = `arn:${Aws.PARTITION}:iam::*:role/${organization.settings.memberRoleName}`;
    const inOrganization = { 'aws:ResourceOrgID': organization.organizationId };
    return [
      new PolicyStatement({
        actions: MEMBER_TRUST_ACTIONS.filter((action) => action !== 'sts:TagSession'),
        resources: [memberRoles],
        conditions: { StringEquals: { ...inOrganization, 'sts:SourceIdentity': SERVICE_NAME } },
      }),
      // Tagging the session: a statement of its own without the source identity, the same split as
      // the member trust's (MemberCredentials sends no session tags today; allowed on both sides so
      // that tags can be added without redeploying every member stack).
      new PolicyStatement({
        actions: ['sts:TagSession'],
        resources: [memberRoles],
        conditions: { StringEquals: inOrganization },
      }),
    ];
  }

  private dispatcherPolicies(organization: ResolvedOrganizationConfig): Record<string, PolicyDocument> {
    return {
      ListAccounts: new PolicyDocument({
        statements: [
          // Listing actions with no resource type in the Service Authorization Reference: Resource "*".
          new PolicyStatement({
            actions: [
              'organizations:ListAccounts',
              'organizations:ListAccountsForParent',
              'organizations:ListChildren',
            ],
            resources: ['*'],
          }),
          // The dispatcher reads the tags of accounts only: the organization's account ARNs
          // (arn:<partition>:organizations::<management account>:account/<organization id>/<account id>).
          new PolicyStatement({
            actions: ['organizations:ListTagsForResource'],
            resources: [`arn:${Aws.PARTITION}:organizations::*:account/${organization.organizationId}/*`],
          }),
        ],
      }),
      QueuePlanning: new PolicyDocument({
        statements: [
          new PolicyStatement({ actions: ['sqs:SendMessage'], resources: [this.planningQueue!.queueArn] }),
          this.kmsStatement(['kms:Decrypt', 'kms:GenerateDataKey'], ['sqs']),
        ],
      }),
      // The account-run records (to finish the work of accounts that left the selection), and
      // nothing else of the ledger.
      ReadAccountRuns: new PolicyDocument({
        statements: [
          new PolicyStatement({
            actions: ['dynamodb:Query'],
            resources: [this.ledgerTable.tableArn],
            conditions: {
              'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [LEDGER_ACCOUNT_PARTITION] },
            },
          }),
          this.kmsStatement(['kms:Decrypt'], ['dynamodb']),
        ],
      }),
    };
  }

  private plannerPolicies(): Record<string, PolicyDocument> {
    const { organization } = this;
    return {
      // Only the planner detects (credential report, user listing); the rotator reads one user at a time.
      ...(organization
        ? {
            PlanMemberAccounts: new PolicyDocument({
              statements: [
                ...this.memberRoleStatements(organization),
                // Consume the planning queue; send to it to continue a run short of time.
                new PolicyStatement({
                  actions: [
                    'sqs:ReceiveMessage',
                    'sqs:ChangeMessageVisibility',
                    'sqs:GetQueueUrl',
                    'sqs:DeleteMessage',
                    'sqs:GetQueueAttributes',
                    'sqs:SendMessage',
                  ],
                  resources: [this.planningQueue!.queueArn],
                }),
                // Each account's run record, and nothing else of the ledger.
                new PolicyStatement({
                  actions: ['dynamodb:GetItem', 'dynamodb:PutItem'],
                  resources: [this.ledgerTable.tableArn],
                  conditions: {
                    'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [LEDGER_ACCOUNT_PARTITION] },
                  },
                }),
                this.kmsStatement(['kms:Encrypt'], ['dynamodb']),
                // The ops notice of an unreachable account. Both topics are encrypted with the key:
                // SNS asks a publisher for GenerateDataKey and Decrypt on it.
                new PolicyStatement({
                  actions: ['sns:Publish'],
                  resources: [this.notificationTopic.topicArn, this.opsTopic.topicArn],
                }),
                this.kmsStatement(['kms:Decrypt', 'kms:GenerateDataKey'], ['sns']),
              ],
            }),
          }
        : {
            ReadIamUsers: new PolicyDocument({
              statements: [
                new PolicyStatement({ actions: IAM_ACCOUNT_ACTIONS, resources: ['*'] }),
                this.iamUserReadStatement(),
              ],
            }),
          }),
      ReadLedger: new PolicyDocument({
        statements: [
          // The table for dry runs (whole records); the screening index for the scheduled runs.
          new PolicyStatement({
            actions: ['dynamodb:Query'],
            resources: [
              this.ledgerTable.tableArn,
              `${this.ledgerTable.tableArn}/index/${LEDGER_SCREENING_INDEX}`,
            ],
          }),
        ],
      }),
      QueueWork: new PolicyDocument({
        statements: [
          new PolicyStatement({ actions: ['sqs:SendMessage'], resources: [this.workQueue.queueArn] }),
          this.kmsStatement(['kms:Decrypt', 'kms:GenerateDataKey'], ['sqs', 'dynamodb']),
        ],
      }),
    };
  }

  private rotatorPolicies(): Record<string, PolicyDocument> {
    const { organization } = this;
    if (organization) {
      // Users, keys and secrets are in the member accounts, reached through the member role.
      return {
        RotateInMemberAccounts: new PolicyDocument({
          statements: [
            ...this.memberRoleStatements(organization),
            this.kmsStatement(
              ['kms:Encrypt', 'kms:Decrypt', 'kms:GenerateDataKey'],
              ['sqs', 'sns', 'dynamodb'],
            ),
          ],
        }),
        ...this.rotatorCentralPolicies(),
      };
    }
    const statements = [
      this.iamUserReadStatement(),
      new PolicyStatement({
        actions: IAM_KEY_WRITE_ACTIONS,
        resources: this.userArns(this.settings.includePaths),
      }),
    ];
    if (this.settings.excludePaths.length > 0) {
      // Invariant I7: exempt paths are never modified, whatever the code does.
      statements.push(
        new PolicyStatement({
          effect: Effect.DENY,
          actions: IAM_KEY_WRITE_ACTIONS,
          resources: this.userArns(this.settings.excludePaths),
        }),
      );
    }
    return {
      RotateAccessKeys: new PolicyDocument({ statements }),
      ...this.rotatorCentralPolicies(),
    };
  }

  /** The rotator's stores in the central account: secrets (in one account only), topics, ledger. */
  private rotatorCentralPolicies(): Record<string, PolicyDocument> {
    return {
      // Secrets are stored centrally in one account only; in organization mode, in each member account.
      ...(this.organization
        ? {}
        : {
            StoreSecrets: new PolicyDocument({
              statements: [
                new PolicyStatement({
                  actions: [...SECRETS_ACTIONS],
                  resources: [this.secretArnPattern()],
                }),
                // kms:Encrypt kept for the ledger's writes (what CDK's own DynamoDB write grant includes).
                this.kmsStatement(
                  ['kms:Encrypt', 'kms:Decrypt', 'kms:GenerateDataKey'],
                  ['secretsmanager', 'sqs', 'sns', 'dynamodb'],
                ),
              ],
            }),
          }),
      Notify: new PolicyDocument({
        statements: [
          new PolicyStatement({
            actions: ['sns:Publish'],
            resources: [this.notificationTopic.topicArn, this.opsTopic.topicArn],
          }),
          // Owner topics are created on demand, one per owner, all named under the prefix.
          ...(this.ownerTopicPrefix
            ? [
                new PolicyStatement({
                  actions: [
                    'sns:CreateTopic',
                    'sns:SetTopicAttributes',
                    'sns:GetTopicAttributes',
                    'sns:Subscribe',
                    'sns:Publish',
                  ],
                  resources: [this.ownerTopicArnPattern()],
                }),
              ]
            : []),
        ],
      }),
      WriteLedger: new PolicyDocument({
        statements: [
          new PolicyStatement({
            actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
            resources: [this.ledgerTable.tableArn],
          }),
        ],
      }),
    };
  }

  private environment(): Record<string, string> {
    const { settings, config } = this;
    return {
      [ENV.ledgerTableName]: this.ledgerTable.tableName,
      [ENV.topicArn]: this.notificationTopic.topicArn,
      [ENV.queueUrl]: this.workQueue.queueUrl,
      [ENV.secretPrefix]: this.secretPrefix,
      [ENV.kmsKeyArn]: this.encryptionKey.keyArn,
      [ENV.rotationSettings]: JSON.stringify(settings),
      [ENV.subscribeOwners]: String(config.subscribeOwners),
      ...(config.secretAdminRoleArn ? { [ENV.adminRoleArn]: config.secretAdminRoleArn } : {}),
      ...(config.secretReaderArns.length > 0
        ? { [ENV.secretReaderArns]: JSON.stringify(config.secretReaderArns) }
        : {}),
      // Exempt from the Deny in each secret's policy, as the service that writes the secrets.
      [ENV.serviceRoleArn]: this.rotatorRole.roleArn,
      [ENV.opsTopicArn]: this.opsTopic.topicArn,
      ...(this.ownerTopicPrefix ? { [ENV.ownerTopicPrefix]: this.ownerTopicPrefix } : {}),
      POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
      POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
      // Stack traces point into the TypeScript sources (the bundle ships its source map).
      NODE_OPTIONS: '--enable-source-maps',
    };
  }

  /**
   * One of the service's functions, with the secure defaults they share. Its code is the package's
   * prebuilt bundle when there is one (the compiled library, installed from npm), else bundled from
   * the TypeScript sources by NodejsFunction; both with the options of ./bundling.ts.
   */
  private handlerFunction(id: string, name: HandlerName, props: FunctionOptions): LambdaFunction {
    const defaults = {
      // Pinned (see HANDLER_RUNTIME) so that a runtime change is a reviewed change.
      runtime: HANDLER_RUNTIME,
      architecture: Architecture.ARM_64,
      tracing: Tracing.ACTIVE,
      loggingFormat: LoggingFormat.JSON,
    };
    const code = prebuiltHandlerCode(name);
    if (code) return new LambdaFunction(this, id, { ...defaults, ...props, code, handler: 'index.handler' });
    return new NodejsFunction(this, id, {
      ...defaults,
      ...props,
      handler: 'handler',
      entry: path.join(PROJECT_ROOT, handlerEntry(name)),
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: path.join(PROJECT_ROOT, 'package-lock.json'),
      bundling: { ...HANDLER_BUNDLING, externalModules: [...HANDLER_BUNDLING.externalModules] },
    });
  }

  private alarm(
    id: string,
    props: {
      metric: IMetric;
      threshold: number;
      description: string;
      comparisonOperator?: ComparisonOperator;
      evaluationPeriods?: number;
      treatMissingData?: TreatMissingData;
    },
  ): Alarm {
    const evaluationPeriods = props.evaluationPeriods ?? 1;
    const alarm = new Alarm(this, id, {
      metric: props.metric,
      threshold: props.threshold,
      comparisonOperator: props.comparisonOperator ?? ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods,
      datapointsToAlarm: evaluationPeriods,
      treatMissingData: props.treatMissingData ?? TreatMissingData.NOT_BREACHING,
      alarmDescription: props.description,
    });
    alarm.addAlarmAction(new SnsAction(this.opsTopic));
    alarm.addOkAction(new SnsAction(this.opsTopic));
    return alarm;
  }

  private errorsAlarm(id: string, fn: LambdaFunction, name: string): Alarm {
    return this.alarm(id, {
      metric: fn.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' }),
      threshold: 1,
      description: `The ${name} failed: read its log group (Logs Insights query "failures").`,
    });
  }

  private serviceMetric(metricName: string, statistic: string, period: Duration): Metric {
    return new Metric({
      namespace: METRICS_NAMESPACE,
      metricName,
      dimensionsMap: { service: SERVICE_NAME },
      statistic,
      period,
    });
  }

  private createAuditQueries(): KeyRotation['auditQueries'] {
    const logGroups = [
      this.plannerLogGroup,
      this.rotatorLogGroup,
      ...(this.dispatcherLogGroup ? [this.dispatcherLogGroup] : []),
    ];
    const fields = [
      '@timestamp',
      'audit.action',
      'audit.accountId',
      'audit.userName',
      'audit.keyId',
      'audit.newKeyId',
      'audit.reason',
      'audit.dryRun',
      'audit.outcome',
    ];
    const prefix = `${Stack.of(this).stackName}/`;
    const query = (id: string, name: string, filter: string): QueryDefinition =>
      new QueryDefinition(this, id, {
        queryDefinitionName: `${prefix}${name}`,
        logGroups,
        queryString: new QueryString({
          fields,
          filterStatements: [filter],
          sort: '@timestamp desc',
          limit: 10000,
        }),
      });
    return {
      // Pick the period in the console's time range.
      rotations: query('RotationsQuery', 'rotations', "audit.action = 'key.rotated'"),
      failures: query('FailuresQuery', 'failures', "audit.outcome = 'failure' or level = 'ERROR'"),
      postponed: query('PostponedQuery', 'keys-still-in-use', "audit.action = 'key.postponed'"),
      // Replace USER with the IAM user name before running.
      userActions: query('UserActionsQuery', 'actions-for-user', "audit.userName = 'USER'"),
    };
  }

  private createDashboard(): Dashboard {
    const hour = Duration.hours(1);
    const sum = (name: string, label: string): IMetric =>
      this.serviceMetric(name, 'Sum', Duration.days(1)).with({ label });
    const dashboard = new Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.days(14),
    });
    dashboard.addWidgets(
      new TextWidget({
        markdown:
          '# IAM access key rotation\nDaily planning run, key lifecycle and failures. Audit trail: the saved Logs Insights queries under the stack name.',
        width: 24,
        height: 2,
      }),
    );
    dashboard.addWidgets(
      new GraphWidget({
        title: 'Keys and users scanned per day',
        left: [sum(METRIC.usersScanned, 'users'), sum(METRIC.keysScanned, 'keys')],
        right: [this.serviceMetric(METRIC.overdueKeys, 'Maximum', hour).with({ label: 'overdue keys' })],
        width: 12,
      }),
      new GraphWidget({
        title: 'Key lifecycle per day',
        left: [
          sum(METRIC.keysRotated, 'rotated'),
          sum(METRIC.keysDeactivated, 'deactivated'),
          sum(METRIC.keysPostponed, 'postponed (still in use)'),
          sum(METRIC.keysEnforced, 'enforced'),
          sum(METRIC.keysDeleted, 'deleted'),
          sum(METRIC.keysReaped, 'reaped'),
        ],
        stacked: true,
        width: 12,
      }),
    );
    dashboard.addWidgets(
      new GraphWidget({
        title: 'Failures',
        left: [
          this.planner.metricErrors({ period: hour, label: 'planner errors' }),
          this.rotator.metricErrors({ period: hour, label: 'rotator errors' }),
          this.serviceMetric(METRIC.rotationFailures, 'Sum', hour).with({ label: 'rotation failures' }),
          this.serviceMetric(METRIC.invalidMessages, 'Sum', hour).with({ label: 'invalid messages' }),
          this.serviceMetric(METRIC.usersDeferred, 'Sum', hour).with({
            label: 'users deferred (no time left)',
          }),
          this.serviceMetric(METRIC.secretReadersOmitted, 'Sum', hour).with({
            label: 'secret readers omitted',
          }),
          this.serviceMetric(METRIC.ownerSubscriptionFailures, 'Sum', hour).with({
            label: 'owner subscriptions failed',
          }),
        ],
        width: 12,
      }),
      new GraphWidget({
        title: 'Work queue',
        left: [
          this.workQueue.metricApproximateNumberOfMessagesVisible({ period: hour, label: 'queued' }),
          this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
            period: hour,
            statistic: 'Maximum',
            label: 'dead-letter queue',
          }),
          this.scheduleDeadLetterQueue.metricApproximateNumberOfMessagesVisible({
            period: hour,
            statistic: 'Maximum',
            label: "schedule's dead-letter queue",
          }),
          this.serviceMetric(METRIC.workMessages, 'Sum', hour).with({ label: 'messages planned' }),
          this.serviceMetric(METRIC.plannerContinuations, 'Sum', hour).with({
            label: 'planning runs continued (time)',
          }),
        ],
        right: [this.workQueue.metricApproximateAgeOfOldestMessage({ period: hour, label: 'oldest (s)' })],
        width: 12,
      }),
    );
    dashboard.addWidgets(
      new GraphWidget({
        title: 'Invocations and duration',
        left: [
          this.planner.metricInvocations({ period: hour, label: 'planner runs' }),
          this.rotator.metricInvocations({ period: hour, label: 'rotator runs' }),
        ],
        right: [
          this.planner.metricDuration({ period: hour, statistic: 'Maximum', label: 'planner max (ms)' }),
          this.rotator.metricDuration({ period: hour, statistic: 'Maximum', label: 'rotator max (ms)' }),
        ],
        width: 12,
      }),
      new GraphWidget({
        title: 'Throttles',
        left: [
          new MathExpression({
            expression: 'planner + rotator',
            usingMetrics: {
              planner: this.planner.metricThrottles({ period: hour }),
              rotator: this.rotator.metricThrottles({ period: hour }),
            },
            label: 'throttled invocations',
            period: hour,
          }),
        ],
        width: 12,
      }),
    );
    dashboard.addWidgets(
      ...[
        this.plannerErrorsAlarm,
        this.rotatorErrorsAlarm,
        this.rotationFailuresAlarm,
        this.deadLetterQueueAlarm,
        this.scheduleDeadLetterQueueAlarm,
        this.plannerNotRunningAlarm,
        this.overdueKeysAlarm,
        this.secretReadersOmittedAlarm,
        this.ownerSubscriptionFailuresAlarm,
        ...[this.accountFailuresAlarm, this.planningDeadLetterQueueAlarm, this.dispatcherErrorsAlarm].filter(
          (alarm): alarm is Alarm => alarm !== undefined,
        ),
      ].map((alarm) => new AlarmWidget({ alarm, title: alarm.node.id.replace(/Alarm$/, ''), width: 8 })),
    );
    if (this.organization && this.dispatcher && this.planningQueue && this.planningDeadLetterQueue) {
      const day = Duration.days(1);
      dashboard.addWidgets(
        new GraphWidget({
          title: 'Accounts per day',
          left: [
            sum(METRIC.accountsSelected, 'selected'),
            sum(METRIC.accountsSkipped, 'skipped (excluded, not ACTIVE, tags)'),
            sum(METRIC.accountFailures, 'failed'),
            sum(METRIC.accountRetries, 'retried (delivered again)'),
          ],
          width: 8,
        }),
        new GraphWidget({
          title: 'AccountFailures by AccountId',
          left: [
            // One line per failing account: the metric the planner emits with an AccountId dimension.
            new MathExpression({
              expression: `SEARCH('{${METRICS_NAMESPACE},${ACCOUNT_DIMENSION},service} MetricName="${METRIC.accountFailures}"', 'Sum', ${day.toSeconds()})`,
              usingMetrics: {},
              label: '',
              period: day,
            }),
          ],
          width: 8,
        }),
        new GraphWidget({
          title: 'Planning queue',
          left: [
            this.planningQueue.metricApproximateNumberOfMessagesVisible({
              period: hour,
              label: 'accounts queued',
            }),
            this.planningDeadLetterQueue.metricApproximateNumberOfMessagesVisible({
              period: hour,
              statistic: 'Maximum',
              label: 'dead-letter queue',
            }),
            this.dispatcher.metricErrors({ period: hour, label: 'dispatcher errors' }),
          ],
          right: [
            this.planningQueue.metricApproximateAgeOfOldestMessage({ period: hour, label: 'oldest (s)' }),
          ],
          width: 8,
        }),
      );
    }
    dashboard.addWidgets(
      new LogQueryWidget({
        title: 'Latest failures',
        logGroupNames: [this.plannerLogGroup.logGroupName, this.rotatorLogGroup.logGroupName],
        queryLines: [
          'fields @timestamp, audit.action, audit.accountId, audit.userName, audit.keyId, audit.reason',
          "filter audit.outcome = 'failure'",
          'sort @timestamp desc',
          'limit 50',
        ],
        width: 24,
      }),
    );
    return dashboard;
  }

  /**
   * cdk-nag findings that are intended, each acknowledged at the narrowest construct with its reason.
   * The IDs are exact (`Rule[finding]`), so a new wildcard is reported, not silently accepted.
   */
  private acknowledgeFindings(): void {
    const iam5 = (finding: string): string => `AwsSolutions-IAM5[${finding}]`;
    const accountActions =
      'iam:GenerateCredentialReport, iam:GetCredentialReport and iam:ListUsers do not support resource-level permissions: the credential report and the user list cover the whole account.';
    const userPaths = (paths: readonly string[]): string =>
      `The service reads (planner, rotator) and rotates (rotator) the keys of every IAM user under includePaths (${paths.join(', ')}); users are not known at deploy time, so the user ARN ends in a wildcard after the path.`;
    const xray =
      'X-Ray PutTraceSegments and PutTelemetryRecords do not support resource-level permissions (added by CDK for active tracing).';

    const { organization } = this;
    if (!organization) {
      acknowledge(this.plannerRole.node.defaultChild, iam5('Resource::*'), accountActions);
    }
    for (const role of [this.plannerRole, this.rotatorRole]) {
      if (organization) {
        acknowledge(
          role.node.defaultChild,
          iam5(`Resource::arn:<AWS::Partition>:iam::*:role/${organization.settings.memberRoleName}`),
          `The member role ${organization.settings.memberRoleName} exists in every covered account, which discovery finds at run time; the statement is limited to accounts of the organization (aws:ResourceOrgID ${organization.organizationId}) and, for AssumeRole, to the service's source identity.`,
        );
      } else {
        for (const userPath of this.settings.includePaths) {
          acknowledge(
            role.node.defaultChild,
            iam5(`Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:user${userPath}*`),
            userPaths(this.settings.includePaths),
          );
        }
      }
      acknowledge(defaultPolicyOf(role), iam5('Resource::*'), xray);
    }
    if (!organization) {
      acknowledge(
        this.rotatorRole.node.defaultChild,
        iam5(
          `Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:${this.secretPrefix}/*`,
        ),
        `One secret per user, named ${this.secretPrefix}/<accountId>/<userName>, created at run time; the rotator may touch only secrets under the prefix.`,
      );
    }
    if (organization && this.dispatcherRole) {
      acknowledge(
        this.dispatcherRole.node.defaultChild,
        iam5('Resource::*'),
        'organizations:ListAccounts, ListAccountsForParent and ListChildren have no resource type in the Service Authorization Reference: they take Resource "*" (read-only listing of the organization).',
      );
      acknowledge(
        this.dispatcherRole.node.defaultChild,
        iam5(`Resource::arn:<AWS::Partition>:organizations::*:account/${organization.organizationId}/*`),
        `The dispatcher reads the tags of the organization's accounts (accountTags filter), found at run time; the ARN names the organization ${organization.organizationId} and accounts only (the management account's id, unknown to a delegated administrator, is the wildcard).`,
      );
      acknowledge(defaultPolicyOf(this.dispatcherRole), iam5('Resource::*'), xray);
    }
    if (this.ownerTopicPrefix) {
      acknowledge(
        this.rotatorRole.node.defaultChild,
        iam5(`Resource::arn:<AWS::Partition>:sns:<AWS::Region>:<AWS::AccountId>:${this.ownerTopicPrefix}*`),
        `Each owner gets an SNS topic of their own, named ${this.ownerTopicPrefix}<owner>, created at run time (SNS allows 200 filter policies per topic, so filtered subscriptions on one topic cannot reach every owner); the rotator may create, configure, read the subscription counts of, subscribe to and publish to topics under that prefix only.`,
      );
    }
    acknowledge(
      this.scheduleDeadLetterQueue.node.defaultChild,
      'AwsSolutions-SQS3',
      "This queue is the dead-letter queue of the EventBridge Scheduler schedule (its target's DeadLetterConfig), which cdk-nag does not recognise as a DLQ; a dead-letter queue needs none of its own.",
    );
    const scheduled = this.dispatcher ?? this.planner;
    const scheduledArn = Stack.of(this).getLogicalId(scheduled.node.defaultChild as CfnElement);
    acknowledge(
      defaultPolicyOf(this.schedulerRole),
      iam5(`Resource::<${scheduledArn}.Arn>:*`),
      `CDK grants lambda:InvokeFunction on the ${this.dispatcher ? 'dispatcher' : 'planner'} and its versions/aliases (ARN:*); the role can invoke nothing else.`,
    );
  }
}

function defaultPolicyOf(role: Role): IConstruct | undefined {
  return role.node.tryFindChild('DefaultPolicy')?.node.defaultChild;
}

function acknowledge(scope: IConstruct | undefined, id: string, reason: string): void {
  if (!scope) throw new Error(`KeyRotation: nothing to acknowledge ${id} on`);
  Validations.of(scope).acknowledge({ id, reason });
}
