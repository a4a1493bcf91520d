/**
 * The interfaces the services need. Adapters (lambda/adapters) implement them over the AWS SDK;
 * tests implement them in memory (test/fakes). Implementations map failures to the named errors
 * of domain/errors.ts.
 */
import type { PlanningMessage, WorkMessage } from './contract';
import type {
  AccessKey,
  KeyCredentials,
  KeyStatus,
  NewAccessKey,
  OwnerNotification,
  UserLedger,
} from './domain/model';
import type { MemberAccount } from './domain/organization';

export type CredentialReportState = 'STARTED' | 'INPROGRESS' | 'COMPLETE';

export interface UserSummary {
  readonly userName: string;
  readonly arn: string;
  readonly path: string;
}

export interface UserDetails extends UserSummary {
  readonly tags: Readonly<Record<string, string>>;
}

/** IAM users and their access keys in one account. */
export interface IamDirectory {
  generateCredentialReport(): Promise<CredentialReportState>;
  /** The report CSV. Throws CredentialReportUnavailableError when there is none to read. */
  /**
   * The report CSV and when IAM generated it (undefined if IAM did not say). Throws
   * CredentialReportUnavailableError when there is none to read.
   */
  getCredentialReport(): Promise<{ readonly csv: string; readonly generatedAt?: Date }>;
  /** Every user (all pages). */
  listUsers(): Promise<UserSummary[]>;
  /** Throws NoSuchUserError. */
  getUser(userName: string): Promise<UserDetails>;
  /** Keys without last-used dates (all pages). Throws NoSuchUserError. */
  listAccessKeys(userName: string): Promise<Omit<AccessKey, 'lastUsedDate'>[]>;
  getAccessKeyLastUsed(accessKeyId: string): Promise<Date | undefined>;
  /** Returns the only copy of the secret that will ever exist. Throws KeyLimitExceededError. */
  createAccessKey(userName: string): Promise<NewAccessKey>;
  updateAccessKey(userName: string, accessKeyId: string, status: KeyStatus): Promise<void>;
  deleteAccessKey(userName: string, accessKeyId: string): Promise<void>;
}

/** Proves that credentials work (STS GetCallerIdentity signed with them). */
export interface KeyVerifier {
  /** Throws CredentialsNotYetValidError while IAM has not propagated the key. */
  callerIdentity(credentials: KeyCredentials): Promise<{ readonly arn: string; readonly account: string }>;
}

export interface SecretRef {
  readonly accountId: string;
  readonly userName: string;
  /** `<prefix>/<accountId>/<userName>` */
  readonly name: string;
  /** The IAM user allowed to read the secret. */
  readonly userArn: string;
}

export interface SecretDescription {
  /** True if the secret carries this service's ownership tags for this account and user. */
  readonly managedByUs: boolean;
  /** True if the secret is scheduled for deletion: it cannot take a new version until restored. */
  readonly pendingDeletion?: boolean;
  /**
   * True if Secrets Manager's own rotation is turned on for the secret: it would move the same
   * staging labels as this service, so nothing is written until someone turns it off.
   */
  readonly rotationEnabled?: boolean;
  /** Access key ids stored in the secret (one per labelled version), with their staging labels. */
  readonly versions: readonly { readonly accessKeyId: string; readonly stages: readonly string[] }[];
  /** The version labelled AWSCURRENT, whatever it holds (the placeholder too); absent if none is. */
  readonly currentVersionId?: string;
}

/**
 * What a DescribeSecret the caller made moments ago said: the secret, or `absent` when there was
 * none. Passed on so that one rotation describes its secret once (see {@link AccessKeyVault.store}).
 */
export type KnownSecret = SecretDescription | 'absent';

/** What became of one store. */
export interface StoreOutcome {
  /**
   * Principals left out of the secret's policy because they do not exist: the admin role or a reader
   * (deleted or never created), which Secrets Manager would refuse, and deleted principals that an
   * operator's statement still named (shown as unique IDs, AROA... or AIDA...), removed from it. The
   * key is stored and readable by its user, and the caller reports the omission.
   */
  readonly omittedReaders: readonly string[];
}

/** What became of one stored key. */
export interface StoredKeyOutcome extends StoreOutcome {
  /** The secret as the store left it (the key's version labelled AWSPENDING): what promote needs. */
  readonly secret: SecretDescription;
}

/** Secrets Manager, one secret per user. */
export interface AccessKeyVault {
  describe(ref: SecretRef): Promise<SecretDescription | undefined>;
  /**
   * Stores the key as a new version labelled AWSPENDING, creating the (empty) secret with our tags
   * first if needed, and settles its resource policy (the user, the admin role and the readers read,
   * everyone else is denied the value) before the value exists. Idempotent per access key id. Throws
   * ForeignSecretError if a secret of that name exists that we did not create, and
   * SecretRotationConflictError if Secrets Manager's own rotation is turned on for it.
   *
   * `known`: the caller's own description of the secret, so that the store need not describe it
   * again. The checks still hold for a secret that changed since: one that appeared meanwhile is
   * described when its creation is refused, and one whose policy no longer carries this service's
   * statements (which deny turning Secrets Manager's rotation on) is described again.
   */
  store(ref: SecretRef, key: NewAccessKey, known?: KnownSecret): Promise<StoredKeyOutcome>;
  /**
   * Makes the key's version AWSCURRENT (the version that was current becomes AWSPREVIOUS), as the
   * last step of Secrets Manager's own rotation protocol does. Called only once the key is verified,
   * so that what owners read is always a key proven to work. Idempotent. `known`: the secret as the
   * store left it ({@link StoredKeyOutcome.secret}); without it the secret is described first.
   */
  promote(ref: SecretRef, accessKeyId: string, known?: SecretDescription): Promise<void>;
  /** Reads the stored credentials of one key. Throws SecretNotFoundError. */
  read(ref: SecretRef, accessKeyId: string): Promise<KeyCredentials>;
  /**
   * Settles the resource policy of an existing secret as store does (a no-op when it is current).
   * For a rotation resumed after a redeploy: the policy written at its store names the rotator role
   * of that time, and denies a new one the value.
   */
  settlePolicy(ref: SecretRef): Promise<StoreOutcome>;
}

/** An owner's own notification topic and their (e-mail) subscription to it. */
export interface OwnerSubscription {
  /** The address, in lower case. */
  readonly owner: string;
  readonly topicArn: string;
  /** ISO time the subscription was (last) requested; SNS then e-mails the owner a confirmation link. */
  readonly subscribedAt: string;
  /** ISO time the subscription was last seen confirmed; absent until the owner has confirmed. */
  readonly confirmedAt?: string;
}

/** An owner's subscription as SNS sees it: confirmed, waiting for the owner's click, or none at all. */
export type SubscriptionState = 'confirmed' | 'pending' | 'none';

/** What became of one notice. */
export interface PublishOutcome {
  /** Owners not reachable on a topic of their own: the default recipients got their copy. */
  readonly undeliveredOwners: readonly string[];
}

/**
 * SNS: notices to owners, default recipients and operators. Every notice goes to the notification
 * topic (message attribute `owner` for filters); with per-owner topics, also to the own topic of each
 * recipient known to be reachable there, and the default recipients get the copy of any other owner;
 * a notice marked for operators also goes to the ops topic.
 */
export interface OwnerNotifier {
  publish(notification: OwnerNotification, reachableOwners: readonly string[]): Promise<PublishOutcome>;
  /** Creates the owner's topic if needed and subscribes the address to it. Idempotent. */
  ensureSubscribed(owner: string): Promise<Pick<OwnerSubscription, 'owner' | 'topicArn'>>;
  /** The state of the owner's subscription to their own topic (`none` if the topic does not exist). */
  subscriptionState(owner: string): Promise<SubscriptionState>;
}

/** The lock, taken or released in the same write as a record's changes. */
export interface SaveOptions {
  /** Take (or renew) the user's lock: this holder, until then. */
  readonly lock?: { readonly holder: string; readonly until: Date };
  /** Release the lock, if this holder holds it in the record written. */
  readonly release?: string;
}

/** DynamoDB: per-user memory with conditional writes and a lock with a lease. */
export interface RotationLedger {
  load(accountId: string, userName: string): Promise<UserLedger | undefined>;
  /** Every record of the account, whole and read consistently (all pages): for dry runs and confirmAll. */
  loadAccount(accountId: string): Promise<UserLedger[]>;
  /**
   * Every record of the account with only the fields the planner's screen reads (`review`,
   * `inactiveSince`, `inFlight`, `outbox`; every other field empty, `version` 0: never saved back),
   * all pages. Read from the table's `screening` index, whose items stay small however long a
   * record's history grows, so that the daily detection costs one Query page per MB of screening
   * fields rather than per MB of records. Eventually consistent (a global secondary index cannot
   * be read with ConsistentRead): a write made moments ago may not show yet.
   */
  screenAccount(accountId: string): Promise<UserLedger[]>;
  /**
   * Writes the record if its stored version still equals `record.version` (0: only if there is no
   * record yet); returns it as stored, with version + 1. The user's lock is taken or released in the
   * same conditional write (`options`), so that a unit of work needs no calls of its own for it: the
   * caller has loaded the record and seen the lock free or its lease expired, and the version proves
   * nobody wrote since. Throws ConcurrentUpdateError, or LockHeldError when the write was to take the
   * lock and another holder has taken it meanwhile.
   */
  save(record: UserLedger, options?: SaveOptions): Promise<UserLedger>;
  /** Releases the lock if `holder` still holds it (whatever the version): for a unit of work that failed. */
  releaseLock(accountId: string, userName: string, holder: string): Promise<void>;
  /** The owner's recorded subscription (kept in the ledger, so nobody pages through SNS to find it). */
  findOwnerSubscription(owner: string): Promise<OwnerSubscription | undefined>;
  /** Records an owner's subscription; idempotent. */
  recordOwnerSubscription(subscription: OwnerSubscription): Promise<void>;
}

/** SQS FIFO: the planner's work messages for the rotator. */
export interface WorkQueue {
  send(messages: readonly WorkMessage[]): Promise<void>;
}

/** Organization mode: the planning queue (standard SQS), one message per account to plan. */
export interface PlanningQueue {
  send(messages: readonly PlanningMessage[]): Promise<void>;
}

export interface Clock {
  now(): Date;
  sleep(ms: number): Promise<void>;
}

/** Structured logger (Powertools Logger fits). Attributes must never carry secret material. */
export interface Logger {
  debug(message: string, attributes?: Record<string, unknown>): void;
  info(message: string, attributes?: Record<string, unknown>): void;
  warn(message: string, attributes?: Record<string, unknown>): void;
  error(message: string, attributes?: Record<string, unknown>): void;
}

/**
 * AWS Organizations, read-only: what discovery needs to find the accounts to cover. Called from the
 * management account or a delegated administrator. Every list follows every page, including an
 * empty page that still carries a NextToken. Throws OrganizationsNotInUseError,
 * OrganizationParentNotFoundError, AccessDeniedError, ThrottledError.
 */
export interface OrganizationDirectory {
  /** Every account of the organization (ListAccounts). */
  listAccounts(): Promise<MemberAccount[]>;
  /** The ids of the OUs directly under a root or OU (ListChildren, ORGANIZATIONAL_UNIT). */
  listChildOus(parentId: string): Promise<string[]>;
  /** The accounts directly under a root or OU (ListAccountsForParent). */
  listAccountsForParent(parentId: string): Promise<MemberAccount[]>;
  /** The account's tags (ListTagsForResource). Throws OrganizationAccountNotFoundError. */
  accountTags(accountId: string): Promise<Record<string, string>>;
}

/** What the services need inside one account: its IAM users and keys, and its secrets. */
export interface AccountPorts {
  readonly accountId: string;
  readonly iam: IamDirectory;
  readonly vault: AccessKeyVault;
}

/**
 * Reaches the accounts the service works in. In one account: the function's own account, with its
 * own credentials. In an organization: any member account, through its member role (one role session
 * per account per run, reused by every port opened for it). `runId` is the run's `plannedAt`, the
 * session's name. Throws MemberRoleAccessDeniedError (role missing, not trusted, account suspended),
 * MemberAccountUnavailableError (region disabled) or MemberSessionUnavailableError (STS throttled or
 * unreachable past its retries: worth trying again), and InvalidMessageError for an account it does
 * not serve.
 */
export interface AccountAccess {
  open(accountId: string, runId: string): Promise<AccountPorts>;
}

/** A record of how one account fared in one run of organization mode (the ledger keeps the last one). */
export interface AccountRunRecord {
  readonly accountId: string;
  /** The run (its plannedAt). */
  readonly runId: string;
  readonly dryRun: boolean;
  /**
   * `planned`, `failed`: a run covering the account. `finishing`: the account is no longer covered
   * and finish-only work was queued for its unfinished users; `left`: no longer covered and nothing
   * of ours is unfinished there (the dispatcher no longer sends it anything).
   */
  readonly status: 'planned' | 'failed' | 'finishing' | 'left';
  /** ISO time the outcome was recorded. */
  readonly at: string;
  /** Work messages queued for the account in this invocation (planned and finishing runs). */
  readonly queued?: number;
  /** Why it failed (name and message, never secret material). */
  readonly error?: { readonly name: string; readonly message: string };
  /** True when trying again may succeed (throttling, STS unreachable); false for a missing or untrusted role. */
  readonly retryable?: boolean;
  /** Runs in a row that failed for this account, this one included (0 after a planned run). */
  readonly consecutiveFailures: number;
  /** ISO time of the last run that planned the account, if any. */
  readonly lastPlannedAt?: string;
  /**
   * An account no longer covered (`finishing`, or `failed` on its finish-only pass): the users with
   * our unfinished work there (a rotation in flight, notices not delivered), by name.
   */
  readonly unfinishedUsers?: readonly string[];
}

/** The ledger's record of accounts in organization mode (its own partition, beside users and owners). */
export interface AccountRunLedger {
  /** The account's last recorded run, or undefined. */
  lastAccountRun(accountId: string): Promise<AccountRunRecord | undefined>;
  /** Records the account's outcome of a run (replaces the last one). */
  recordAccountRun(record: AccountRunRecord): Promise<void>;
  /** Every account's last run (all pages). */
  listAccountRuns(): Promise<AccountRunRecord[]>;
}

export const systemClock: Clock = {
  now: () => new Date(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};
