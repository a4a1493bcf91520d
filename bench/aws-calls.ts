/**
 * What each port call costs in AWS API calls: for every method of the ports the services use, the
 * requests the real adapter (lambda/adapters/*) sends for it, given what the call found. The bench's
 * meter (meter.ts) charges these for every call the services make on the in-memory fakes, and
 * test/unit/bench/aws-calls.test.ts drives each real adapter with mocked SDK clients through the same
 * cases and checks that the requests it sends are these.
 *
 * Names are `service:Operation` as in IAM policies and CloudTrail (`iam:ListUsers`,
 * `dynamodb:PutItem`).
 */

import { LEDGER_SCREENING_FIELDS } from '../lambda/contract';

/** IAM's default page size (MaxItems) for the list calls, which the adapter does not set. */
export const IAM_PAGE_SIZE = 100;
/** DynamoDB returns at most 1 MB of items per Query page. */
export const QUERY_PAGE_BYTES = 1024 * 1024;
/** SendMessageBatch takes at most 10 messages. */
export const SQS_BATCH = 10;

function times(op: string, count: number): string[] {
  return Array.from({ length: count }, () => op);
}

function pages(items: number, perPage: number): number {
  return Math.max(1, Math.ceil(items / perPage));
}

/** IamAdapter (lambda/adapters/iam.ts). */
export const IAM = {
  generateCredentialReport: () => ['iam:GenerateCredentialReport'],
  getCredentialReport: () => ['iam:GetCredentialReport'],
  /** One request per page (the SDK paginator), at least one. */
  listUsers: (users: number) => times('iam:ListUsers', pages(users, IAM_PAGE_SIZE)),
  getUser: () => ['iam:GetUser'],
  listAccessKeys: (keys: number) => times('iam:ListAccessKeys', pages(keys, IAM_PAGE_SIZE)),
  getAccessKeyLastUsed: () => ['iam:GetAccessKeyLastUsed'],
  /** A single attempt, also when it fails (a client with maxAttempts 1). */
  createAccessKey: () => ['iam:CreateAccessKey'],
  updateAccessKey: () => ['iam:UpdateAccessKey'],
  deleteAccessKey: () => ['iam:DeleteAccessKey'],
} as const;

/** StsVerifier (lambda/adapters/sts.ts): one GetCallerIdentity, signed with the key, per attempt. */
export const STS = {
  callerIdentity: () => ['sts:GetCallerIdentity'],
} as const;

/** What a store was told and found, as far as it decides the requests sent. */
export interface StoreCase {
  /**
   * What the caller knew of the secret: nothing (the store describes it), its description (from the
   * rotation's own DescribeSecret), or that there was none (`absent`).
   */
  readonly known?: 'description' | 'absent';
  /** The secret existed when the store ran. */
  readonly existed: boolean;
  /**
   * Refused before writing anything (by the first check): a secret under our name that is not ours,
   * or one that Secrets Manager rotates itself.
   */
  readonly refused?: boolean;
  /** The secret's resource policy had to change (always written for a secret just created). */
  readonly policyChanged: boolean;
  /**
   * Given a description: the secret's policy no longer carries this service's statements (which
   * deny turning Secrets Manager's rotation on), so the store describes the secret again.
   */
  readonly policyNotOurs?: boolean;
}

/** What a promote found. */
export interface PromoteCase {
  /** The caller passed the secret as the store left it (no DescribeSecret of the promote's own). */
  readonly described?: boolean;
  /** The secret holds a version for the key. */
  readonly hasVersion: boolean;
  /** The key's version is already AWSCURRENT. */
  readonly current: boolean;
  /** The key's version still carries AWSPENDING. */
  readonly pending: boolean;
}

/**
 * SecretsManagerVault (lambda/adapters/secrets-manager.ts), with every principal of the policy
 * existing (a refused principal makes the adapter try the policy again without it; the bench has none).
 */
export const SECRETS_MANAGER = {
  describe: () => ['secretsmanager:DescribeSecret'],
  store: ({ known, existed, refused = false, policyChanged, policyNotOurs = false }: StoreCase) => {
    const ops: string[] = [];
    if (known === undefined) ops.push('secretsmanager:DescribeSecret');
    const exists = existed || known === 'description';
    // Told `absent` of a secret that exists by now: CreateSecret refuses it, and it is described.
    if (!exists || known === 'absent') ops.push('secretsmanager:CreateSecret');
    if (exists && known === 'absent') ops.push('secretsmanager:DescribeSecret');
    if (exists) {
      if (refused) return ops;
      ops.push('secretsmanager:GetResourcePolicy');
      if (known === 'description' && policyNotOurs) ops.push('secretsmanager:DescribeSecret');
    }
    if (policyChanged || !exists) ops.push('secretsmanager:PutResourcePolicy');
    ops.push('secretsmanager:PutSecretValue');
    return ops;
  },
  promote: ({ described = false, hasVersion, current, pending }: PromoteCase) => [
    ...(described ? [] : ['secretsmanager:DescribeSecret']),
    ...(hasVersion && !current ? ['secretsmanager:UpdateSecretVersionStage'] : []),
    ...(hasVersion && pending ? ['secretsmanager:UpdateSecretVersionStage'] : []),
  ],
  read: () => ['secretsmanager:GetSecretValue'],
  /** A secret that does not exist fails at GetResourcePolicy. */
  settlePolicy: ({ exists, policyChanged }: { exists: boolean; policyChanged: boolean }) => [
    'secretsmanager:GetResourcePolicy',
    ...(exists && policyChanged ? ['secretsmanager:PutResourcePolicy'] : []),
  ],
} as const;

/** How the notifier is deployed: the construct's defaults (owner topics, an ops topic, a KMS key). */
export interface NotifierSetup {
  readonly ownerTopics: boolean;
  readonly opsTopic: boolean;
  readonly kmsKey: boolean;
}

export const DEPLOYED_NOTIFIER: NotifierSetup = { ownerTopics: true, opsTopic: true, kmsKey: true };

/** SnsNotifier (lambda/adapters/sns.ts). */
export const SNS = {
  /**
   * One Publish per topic sent to: each recipient's own topic when the caller found them reachable
   * (a topic that turns out not to exist still costs its Publish), the notification topic, and the
   * ops topic for a notice marked for operators.
   */
  publish: (
    setup: NotifierSetup,
    notice: { readonly recipients: readonly string[]; readonly toOperators?: boolean },
    reachableOwners: readonly string[],
  ) => {
    const ownTopics = setup.ownerTopics
      ? notice.recipients.filter((owner) => owner !== 'default' && reachableOwners.includes(owner)).length
      : 0;
    return times('sns:Publish', ownTopics + 1 + (notice.toOperators && setup.opsTopic ? 1 : 0));
  },
  /** CreateTopic (idempotent), its attributes one by one, and the e-mail subscription. */
  ensureSubscribed: (setup: NotifierSetup) =>
    setup.ownerTopics
      ? ['sns:CreateTopic', ...times('sns:SetTopicAttributes', setup.kmsKey ? 3 : 2), 'sns:Subscribe']
      : [],
  subscriptionState: () => ['sns:GetTopicAttributes'],
} as const;

/** Pages of a Query that reads items of these sizes (bytes), at least one. */
export function queryPages(totalBytes: number): number {
  return pages(totalBytes, QUERY_PAGE_BYTES);
}

/** What DynamoDB adds to the size of each item of a global secondary index. */
export const INDEX_ITEM_OVERHEAD_BYTES = 100;

/**
 * The size of a record's item in the ledger's `screening` index, near enough: the keys (`pk`, `sk`)
 * and the projected fields as JSON (names and values, a few bytes of syntax more), plus the 100
 * bytes DynamoDB adds to every index item. A Query of the index reads pages of these.
 */
export function screeningItemBytes(record: {
  readonly accountId: string;
  readonly userName: string;
}): number {
  const fields = record as unknown as Record<string, unknown>;
  const item: Record<string, unknown> = { pk: record.accountId, sk: record.userName };
  for (const name of LEDGER_SCREENING_FIELDS) if (fields[name] !== undefined) item[name] = fields[name];
  return Buffer.byteLength(JSON.stringify(item)) + INDEX_ITEM_OVERHEAD_BYTES;
}

/** DynamoLedger (lambda/adapters/dynamodb-ledger.ts). */
export const DYNAMODB = {
  load: () => ['dynamodb:GetItem'],
  /** One Query per page of the table (whole records, 1 MB a page), at least one. */
  loadAccount: (pageCount: number) => times('dynamodb:Query', Math.max(1, pageCount)),
  /** One Query per page of the screening index (its small items, 1 MB a page), at least one. */
  screenAccount: (pageCount: number) => times('dynamodb:Query', Math.max(1, pageCount)),
  /** One conditional PutItem, which also takes or releases the user's lock. */
  save: () => ['dynamodb:PutItem'],
  /** Only for a unit of work that failed: its lock alone. */
  releaseLock: () => ['dynamodb:UpdateItem'],
  /** The adapter remembers the subscriptions it read or wrote (per container): no request for those. */
  findOwnerSubscription: (knownToContainer: boolean) => (knownToContainer ? [] : ['dynamodb:GetItem']),
  recordOwnerSubscription: () => ['dynamodb:PutItem'],
} as const;

/** SqsWorkQueue (lambda/adapters/sqs-queue.ts): one SendMessageBatch per 10 messages, none for none. */
export const SQS = {
  send: (messages: number) => times('sqs:SendMessageBatch', Math.ceil(messages / SQS_BATCH)),
} as const;

/** LambdaContinuation (lambda/adapters/lambda-invoke.ts): the planner invokes itself to continue a run. */
export const LAMBDA = {
  continueRun: () => ['lambda:Invoke'],
} as const;

/** The modelled latency of one request. */
export interface LatencyModel {
  readonly iamMs: number;
  readonly otherMs: number;
}

export function latencyOf(op: string, model: LatencyModel): number {
  return op.startsWith('iam:') ? model.iamMs : model.otherMs;
}
