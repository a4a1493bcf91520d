/**
 * The one contract between the CDK construct (lib/) and the Lambda code (lambda/): environment
 * variable names, metric names and the shape of queue messages. Imports nothing on purpose.
 */

/** Environment variables the construct sets and the handlers read (once, at cold start). */
export const ENV = {
  ledgerTableName: 'LEDGER_TABLE_NAME',
  topicArn: 'NOTIFY_TOPIC_ARN',
  queueUrl: 'WORK_QUEUE_URL',
  secretPrefix: 'SECRET_PREFIX',
  /** ARN of the customer-managed KMS key that encrypts the secrets. */
  kmsKeyArn: 'SECRETS_KMS_KEY_ARN',
  /** JSON of the rotation settings (see lambda/domain/settings.ts); validated at cold start. */
  rotationSettings: 'ROTATION_SETTINGS',
  /** `true` or `false`: subscribe owners to the topic when they are first notified. */
  subscribeOwners: 'SUBSCRIBE_OWNERS',
  /** Optional ARN of an admin role that may also read every secret. */
  adminRoleArn: 'SECRET_ADMIN_ROLE_ARN',
  /**
   * JSON list of the IAM roles and users (ARNs) that may also read every secret's value
   * (secretReaderArns); absent or `[]` when there are none.
   */
  secretReaderArns: 'SECRET_READER_ARNS',
  /** ARN of the rotator's own role (required): named in each secret's policy as the service that writes it. */
  serviceRoleArn: 'SERVICE_ROLE_ARN',
  /** ARN of the operators' topic (alarms and findings that need a person). */
  opsTopicArn: 'OPS_TOPIC_ARN',
  /** Name prefix of the per-owner topics the rotator creates on demand (`<prefix><owner-id>`). */
  ownerTopicPrefix: 'OWNER_TOPIC_PREFIX',
  /**
   * Organization mode only (absent: the function works in its own account, as before). JSON of the
   * resolved organization settings (lambda/domain/organization.ts); validated at cold start.
   */
  organization: 'ORGANIZATION_SETTINGS',
  /** Organization mode: the standard SQS queue of planning messages, one per account (dispatcher, planner). */
  planningQueueUrl: 'PLANNING_QUEUE_URL',
  /** Organization mode: the alias of each member account's own KMS key for secrets (rotator). */
  memberKeyAlias: 'MEMBER_KEY_ALIAS',
} as const;

/** CloudFormation outputs of the deployed stack; the operator CLI finds its resources by these keys. */
export const STACK_OUTPUT = {
  ledgerTableName: 'LedgerTableName',
  topicArn: 'NotificationTopicArn',
  queueUrl: 'WorkQueueUrl',
  secretPrefix: 'SecretPrefix',
  kmsKeyArn: 'EncryptionKeyArn',
  /** JSON of the resolved rotation settings, so that the CLI applies the same policy. */
  settings: 'RotationSettings',
  /** The admin role written into each secret's policy (`none` when not set). */
  secretAdminRoleArn: 'SecretAdminRoleArn',
  /** JSON list of the roles and users that may also read every secret (`[]` when none). */
  secretReaderArns: 'SecretReaderArns',
  /** The rotator's role, named in each secret's policy as the service that writes it. */
  rotatorRoleArn: 'RotatorRoleArn',
  /** The operators' topic (alarms and findings). */
  opsTopicArn: 'OpsTopicArn',
  /** Name prefix of the per-owner notification topics. */
  ownerTopicPrefix: 'OwnerTopicPrefix',
  /** Organization mode only: JSON of the resolved organization settings (absent in one account). */
  organization: 'OrganizationSettings',
} as const;

/** Service name: Powertools' `service` key in logs and the `service` dimension of every EMF metric. */
export const SERVICE_NAME = 'iam-key-rotation';

/** CloudWatch namespace of the service's EMF metrics. */
export const METRICS_NAMESPACE = 'IamKeyRotation';

/** Metric names, emitted by the handlers and alarmed on by the construct. */
export const METRIC = {
  usersScanned: 'UsersScanned',
  keysScanned: 'KeysScanned',
  overdueKeys: 'OverdueKeys',
  workMessages: 'WorkMessages',
  keysRotated: 'KeysRotated',
  keysDeactivated: 'KeysDeactivated',
  keysPostponed: 'KeysPostponed',
  keysEnforced: 'KeysEnforced',
  keysDeleted: 'KeysDeleted',
  keysReaped: 'KeysReaped',
  rotationFailures: 'RotationFailures',
  invalidMessages: 'InvalidMessages',
  /** A principal named for a secret's policy (the admin role, a reader) does not exist and was left out. */
  secretReadersOmitted: 'SecretReadersOmitted',
  /** An owner could not be subscribed to their topic; the default recipients were told instead. */
  ownerSubscriptionFailures: 'OwnerSubscriptionFailures',
  /** Users of a batch not started because the invocation had too little time left; retried. */
  usersDeferred: 'UsersDeferred',
  /** Planning runs that stopped short of time and continued in a new invocation of the planner. */
  plannerContinuations: 'PlannerContinuations',
  /** Organization mode: accounts the dispatcher queued for planning in one run. */
  accountsSelected: 'AccountsSelected',
  /** Organization mode: accounts discovery met and left out (excluded, not ACTIVE, tags), per run. */
  accountsSkipped: 'AccountsSkipped',
  /**
   * Organization mode: an account that could not be planned (member role missing or not trusted,
   * account suspended, STS throttled past its retries). Emitted twice: without dimensions beyond the
   * service (the alarm's), and with an `AccountId` dimension (which account).
   */
  accountFailures: 'AccountFailures',
  /**
   * Organization mode: an account's planning failed for a reason worth retrying (STS throttled or
   * unreachable) and SQS delivers its message again; not an alarm by itself (AccountFailures is
   * counted only when no delivery is left). Emitted without dimensions beyond the service.
   */
  accountRetries: 'AccountRetries',
} as const;

/** The dimension that names a member account on the metrics of organization mode. */
export const ACCOUNT_DIMENSION = 'AccountId';

/**
 * The most time one user's message may take in the rotator: proving the new key with STS while IAM
 * propagates it (up to 120 s) plus a margin for the IAM, Secrets Manager, DynamoDB and SNS calls.
 * The rotator starts a message only with at least this much time left; the construct sizes the
 * function timeout to a full batch of such users.
 */
export const ROTATOR_USER_BUDGET_MS = 180_000;

/**
 * The ledger table's global secondary index for the planner's daily screen: the table's own key
 * schema (`pk`, `sk`), projecting only the record fields the screen reads. An index item's size is
 * its keys and projected attributes plus 100 bytes: a few hundred bytes however long a record's
 * history grows, so that one Query page (1 MB) holds thousands of users.
 */
export const LEDGER_SCREENING_INDEX = 'screening';
/** The record fields the screening index projects (see lambda/adapters/dynamodb-ledger.ts screenAccount). */
export const LEDGER_SCREENING_FIELDS = ['review', 'inactiveSince', 'inFlight', 'outbox'] as const;

/** Version of {@link WorkMessage}; a consumer refuses versions it does not know. */
export const WORK_MESSAGE_VERSION = 1;

/**
 * One unit of work for the rotator: a user of an account that may need action.
 * It names the user; it never carries key material. The rotator re-reads live state and decides
 * again, so the listed actions are for the audit trail only.
 */
export interface WorkMessage {
  readonly version: typeof WORK_MESSAGE_VERSION;
  readonly accountId: string;
  readonly userName: string;
  readonly dryRun: boolean;
  /** The action kinds the planner saw due, for the audit trail. */
  readonly plannedActions: readonly string[];
  /** ISO time of the planning run that produced this message. */
  readonly plannedAt: string;
  /**
   * Set for an account the run no longer covers (excluded, or left out of `accounts`) that still has
   * unfinished work: the rotator only finishes that work (a rotation in flight is completed or its
   * new key deleted, undelivered notices are sent, I1) and changes nothing else (I7).
   */
  readonly finishOnly?: true;
}

/**
 * Organization mode: the ledger partition (`pk`) of the accounts' run records, one item per account
 * (`sk` = account id). Account ids are 12 digits, so no account's users share it.
 */
export const LEDGER_ACCOUNT_PARTITION = '#account-runs';

/**
 * Organization mode: deliveries of one planning message before it goes to the planning dead-letter
 * queue. A planner that fails an account for a reason worth retrying (STS throttled) lets SQS deliver
 * it again; the ops notice is sent on the last delivery only.
 */
export const PLANNING_MAX_RECEIVE_COUNT = 3;

/** Deliveries of one work message before it goes to the work queue's dead-letter queue. */
export const WORK_MAX_RECEIVE_COUNT = 3;

/** Version of {@link PlanningMessage}; a consumer refuses versions it does not know. */
export const PLANNING_MESSAGE_VERSION = 1;

/**
 * Organization mode: one account to plan, from the dispatcher (or from a planner continuing a run
 * that stopped for lack of time) to the planners, over the planning queue. The run's id is its
 * `plannedAt`: the member role's session name in every account (CloudTrail there shows it), and the
 * FIFO deduplication of its work messages.
 */
export interface PlanningMessage {
  readonly version: typeof PLANNING_MESSAGE_VERSION;
  readonly accountId: string;
  readonly dryRun: boolean;
  /** ISO time of the run (the dispatcher's start), kept by every message and continuation of the run. */
  readonly plannedAt: string;
  /** Set on a continuation: the last user already handled. */
  readonly startAfter?: string;
  /**
   * Set by the dispatcher for an account the run no longer covers but whose last recorded run is not
   * `left`: the planner opens nothing in the account, reads the ledger's records of its users, and
   * queues a finish-only work message for each with unfinished work (a rotation in flight, notices
   * not delivered). It records the account `finishing`, or `left` once nothing is unfinished (the
   * dispatcher then stops sending it). Never with startAfter.
   */
  readonly finishOnly?: true;
}

/** What the schedule (or an operator, by hand) sends the dispatcher (organization mode). */
export interface DispatcherInput {
  /** Plan and report only, in every account. @default false */
  readonly dryRun?: boolean;
  /**
   * The schedule's time (EventBridge Scheduler's `<aws.scheduler.scheduled-time>`, such as
   * 2026-01-01T02:00:00Z), used as the run's id (plannedAt), so that Lambda's retry of a failed
   * invocation continues the same run rather than starting a second one. @default the time of invocation
   */
  readonly scheduledAt?: string;
}

/** What the schedule (or an operator, by hand) sends the planner. */
export interface PlannerInput {
  /** Plan and report only; nothing is changed and no work is queued for changes. @default false */
  readonly dryRun?: boolean;
  /**
   * Set by the planner itself when a run stopped for lack of time: the last user it handled. The
   * continuation plans the users after it. Always with {@link plannedAt}.
   */
  readonly startAfter?: string;
  /** With {@link startAfter}: the ISO time of the run being continued, kept in its messages. */
  readonly plannedAt?: string;
}
