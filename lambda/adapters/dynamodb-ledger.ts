/**
 * The ledger in DynamoDB: one item per (account, user), partition key `pk` = account id, sort key
 * `sk` = user name. Every save is one conditional PutItem on the version, which also takes or releases
 * the user's lock (an attribute of the item), so that a unit of work spends no calls on its lock;
 * only a unit of work that failed releases it alone, conditionally on its holder. Owner
 * subscriptions live in their own partition, `pk` = OWNER_PARTITION and `sk` = the owner's address
 * (never an account id, so an account's query never returns them). In organization mode, each
 * account's last run has an item in the partition LEDGER_ACCOUNT_PARTITION, `sk` = the account id.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  paginateQuery,
  PutCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { LEDGER_ACCOUNT_PARTITION, LEDGER_SCREENING_FIELDS, LEDGER_SCREENING_INDEX } from '../contract';
import { ConcurrentUpdateError, LockHeldError } from '../domain/errors';
import { emptyLedger, UserLedger } from '../domain/model';
import type {
  AccountRunLedger,
  AccountRunRecord,
  OwnerSubscription,
  RotationLedger,
  SaveOptions,
} from '../ports';
import { awsErrorName, call, mapAwsError } from './aws-errors';
import { SDK_CLIENT_CONFIG } from './sdk-config';

type Item = Record<string, unknown>;

/** Partition of the owner-subscription items. */
export const OWNER_PARTITION = '#owner-subscriptions';

/**
 * The record fields the planner's screen reads (lambda/domain/credential-report.ts screenUser and
 * suggestedActions, and the planner's own check for unfinished work), which the `screening` index
 * projects: checked here to be fields of a record.
 */
const SCREENING_ATTRIBUTES: readonly (keyof UserLedger)[] = LEDGER_SCREENING_FIELDS;

/** A stored item as a complete record: fields added in later versions get their empty value. */
export function recordFromItem(item: Item): UserLedger {
  const { pk, sk, ...rest } = item as Item & { pk: string; sk: string };
  const empty = emptyLedger(pk, sk);
  return { ...empty, ...(rest as Partial<UserLedger>), accountId: pk, userName: sk };
}

/**
 * An index item as a screening record: the keys and the projected fields, every other field empty
 * (whatever else an emulator's index might return), so that the record says no more than the index
 * holds in AWS.
 */
function screeningRecordFromItem(item: Item): UserLedger {
  const picked: Item = { pk: item.pk, sk: item.sk };
  for (const name of SCREENING_ATTRIBUTES) if (item[name] !== undefined) picked[name] = item[name];
  return recordFromItem(picked);
}

/** The record with the lock taken or released as asked. */
function withLockChange(record: UserLedger, { lock, release }: SaveOptions): UserLedger {
  if (lock) return { ...record, lock: { holder: lock.holder, until: lock.until.toISOString() } };
  if (release !== undefined && record.lock?.holder === release) return { ...record, lock: undefined };
  return record;
}

/**
 * The lock of the item a conditional write found (ReturnValuesOnConditionCheckFailure), if it has
 * one. The document client does not unmarshall errors: the item is in AttributeValue form.
 */
function lockOfFailedWrite(error: unknown): { holder: string; until?: string } | undefined {
  const lock = (error as { Item?: { lock?: { M?: { holder?: { S?: string }; until?: { S?: string } } } } })
    .Item?.lock?.M;
  const holder = lock?.holder?.S;
  return holder === undefined ? undefined : { holder, until: lock?.until?.S };
}

/** A stored account-run item as a record (the keys dropped, the account id from `sk`). */
function accountRunFromItem(item: Item): AccountRunRecord {
  const { sk, ...rest } = item as Item & { sk: string };
  delete rest.pk;
  return { ...(rest as Omit<AccountRunRecord, 'accountId'>), accountId: sk };
}

export class DynamoLedger implements RotationLedger, AccountRunLedger {
  private readonly documents: DynamoDBDocumentClient;
  /** Subscriptions read or written by this container: a subscription is never taken back. */
  private readonly knownSubscriptions = new Map<string, OwnerSubscription>();

  constructor(
    private readonly tableName: string,
    client: DynamoDBClient = new DynamoDBClient(SDK_CLIENT_CONFIG),
  ) {
    this.documents = DynamoDBDocumentClient.from(client, {
      marshallOptions: { removeUndefinedValues: true, convertEmptyValues: false },
    });
  }

  async load(accountId: string, userName: string): Promise<UserLedger | undefined> {
    const response = await call('dynamodb:GetItem', () =>
      this.documents.send(
        new GetCommand({
          TableName: this.tableName,
          Key: { pk: accountId, sk: userName },
          ConsistentRead: true,
        }),
      ),
    );
    return response.Item ? recordFromItem(response.Item) : undefined;
  }

  async loadAccount(accountId: string): Promise<UserLedger[]> {
    const records: UserLedger[] = [];
    await call('dynamodb:Query', async () => {
      const pages = paginateQuery(
        { client: this.documents },
        {
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': accountId },
          ConsistentRead: true,
        },
      );
      for await (const page of pages) records.push(...(page.Items ?? []).map(recordFromItem));
    });
    return records;
  }

  async screenAccount(accountId: string): Promise<UserLedger[]> {
    const records: UserLedger[] = [];
    await call('dynamodb:Query', async () => {
      // The paginator follows every LastEvaluatedKey, an empty page's too (a page can come back
      // empty and still not be the last). The query is by account, so the owner-subscription items
      // (their own partition, in the index as well) never come back.
      const pages = paginateQuery(
        { client: this.documents },
        {
          TableName: this.tableName,
          IndexName: LEDGER_SCREENING_INDEX,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': accountId },
          ConsistentRead: false,
        },
      );
      for await (const page of pages) records.push(...(page.Items ?? []).map(screeningRecordFromItem));
    });
    return records;
  }

  async save(record: UserLedger, options: SaveOptions = {}): Promise<UserLedger> {
    const next: UserLedger = { ...withLockChange(record, options), version: record.version + 1 };
    const { accountId, userName, ...attributes } = next;
    try {
      await this.documents.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { pk: accountId, sk: userName, ...attributes },
          ConditionExpression: record.version === 0 ? 'attribute_not_exists(pk)' : '#version = :expected',
          ...(record.version === 0
            ? {}
            : {
                ExpressionAttributeNames: { '#version': 'version' },
                ExpressionAttributeValues: { ':expected': record.version },
              }),
          // Taking the lock: who took it meanwhile, if anyone, is named from the item as it is.
          ...(options.lock ? { ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const } : {}),
        }),
      );
    } catch (error) {
      if (awsErrorName(error) === 'ConditionalCheckFailedException') {
        const holder = options.lock ? lockOfFailedWrite(error) : undefined;
        if (holder && holder.holder !== options.lock?.holder) {
          throw new LockHeldError(
            `user ${userName} is being worked on by ${holder.holder} until ${holder.until ?? 'its lease ends'}`,
            { cause: error },
          );
        }
        throw new ConcurrentUpdateError(
          `ledger record of ${userName} changed since version ${record.version}`,
          {
            cause: error,
          },
        );
      }
      throw mapAwsError(error, 'dynamodb:PutItem');
    }
    return next;
  }

  async releaseLock(accountId: string, userName: string, holder: string): Promise<void> {
    try {
      await this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: accountId, sk: userName },
          UpdateExpression: 'REMOVE #lock SET #version = #version + :one',
          ConditionExpression: '#lock.#holder = :holder',
          ExpressionAttributeNames: { '#lock': 'lock', '#version': 'version', '#holder': 'holder' },
          ExpressionAttributeValues: { ':holder': holder, ':one': 1 },
        }),
      );
    } catch (error) {
      // Not ours any more (lease expired and taken over): nothing to release.
      if (awsErrorName(error) === 'ConditionalCheckFailedException') return;
      throw mapAwsError(error, 'dynamodb:UpdateItem');
    }
  }

  async findOwnerSubscription(owner: string): Promise<OwnerSubscription | undefined> {
    const address = owner.toLowerCase();
    const known = this.knownSubscriptions.get(address);
    if (known) return known;
    const response = await call('dynamodb:GetItem', () =>
      this.documents.send(
        new GetCommand({ TableName: this.tableName, Key: { pk: OWNER_PARTITION, sk: address } }),
      ),
    );
    const item = response.Item as
      { topicArn?: unknown; subscribedAt?: unknown; confirmedAt?: unknown } | undefined;
    if (typeof item?.topicArn !== 'string' || typeof item.subscribedAt !== 'string') return undefined;
    const found: OwnerSubscription = {
      owner: address,
      topicArn: item.topicArn,
      subscribedAt: item.subscribedAt,
      ...(typeof item.confirmedAt === 'string' ? { confirmedAt: item.confirmedAt } : {}),
    };
    this.knownSubscriptions.set(address, found);
    return found;
  }

  async recordOwnerSubscription(subscription: OwnerSubscription): Promise<void> {
    const address = subscription.owner.toLowerCase();
    await call('dynamodb:PutItem', () =>
      this.documents.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            pk: OWNER_PARTITION,
            sk: address,
            topicArn: subscription.topicArn,
            subscribedAt: subscription.subscribedAt,
            // When the owner was last seen confirmed: trusted for a while by every container, so
            // that SNS is not asked again on each notice. Absent (removed) when not confirmed.
            ...(subscription.confirmedAt ? { confirmedAt: subscription.confirmedAt } : {}),
          },
        }),
      ),
    );
    this.knownSubscriptions.set(address, { ...subscription, owner: address });
  }
  async lastAccountRun(accountId: string): Promise<AccountRunRecord | undefined> {
    const response = await call('dynamodb:GetItem', () =>
      this.documents.send(
        new GetCommand({
          TableName: this.tableName,
          Key: { pk: LEDGER_ACCOUNT_PARTITION, sk: accountId },
          ConsistentRead: true,
        }),
      ),
    );
    return response.Item ? accountRunFromItem(response.Item) : undefined;
  }

  async recordAccountRun(record: AccountRunRecord): Promise<void> {
    const { accountId, ...attributes } = record;
    await call('dynamodb:PutItem', () =>
      this.documents.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { pk: LEDGER_ACCOUNT_PARTITION, sk: accountId, ...attributes },
        }),
      ),
    );
  }

  async listAccountRuns(): Promise<AccountRunRecord[]> {
    const records: AccountRunRecord[] = [];
    await call('dynamodb:Query', async () => {
      const pages = paginateQuery(
        { client: this.documents },
        {
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': LEDGER_ACCOUNT_PARTITION },
          ConsistentRead: true,
        },
      );
      for await (const page of pages) records.push(...(page.Items ?? []).map(accountRunFromItem));
    });
    return records;
  }
}
