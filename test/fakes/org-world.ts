/**
 * An AWS Organization in memory, with every fake wired to the real services of organization mode:
 * a FakeOrganization (nested OUs, N accounts), and per member account its own IAM (its own account
 * id, key ids unique across the organization as AWS's are), its own Secrets Manager and the STS that
 * accepts its keys; one clock, one Faults, one ledger, one notifier and one logger for the central
 * account. `FakeAccountAccess` stands for the member roles: it opens an account's ports, or fails as
 * STS does (role missing or not trusting us, throttled, account suspended).
 *
 * `runDay` is the scheduled pipeline of organization mode, through the handlers themselves (their
 * Powertools logs captured in `logger`, their EMF metrics in `metrics`): the dispatcher handler with
 * the schedule's input → planning queue (standard SQS: a message the planner handler reports as a
 * batch item failure is delivered again, up to PLANNING_MAX_RECEIVE_COUNT receives, then goes to its
 * dead-letter queue) → planner handler per message (continuations through the planning queue) →
 * work queue → rotator handler per message, in that account.
 */
import { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { Context, SQSRecord } from 'aws-lambda';
import {
  METRICS_NAMESPACE,
  PLANNING_MAX_RECEIVE_COUNT,
  PlanningMessage,
  SERVICE_NAME,
  WorkMessage,
} from '../../lambda/contract';
import {
  CredentialsNotYetValidError,
  MemberRoleAccessDeniedError,
  MemberSessionUnavailableError,
} from '../../lambda/domain/errors';
import type { KeyCredentials } from '../../lambda/domain/model';
import { secretNameFor } from '../../lambda/domain/naming';
import { OrganizationSettings, resolveOrganizationSettings } from '../../lambda/domain/organization';
import { resolveSettings, RotationSettings } from '../../lambda/domain/settings';
import { createDispatcherHandler } from '../../lambda/handlers/dispatcher-app';
import { createOrganizationPlannerHandler } from '../../lambda/handlers/org-planner-app';
import { createRotatorHandler } from '../../lambda/handlers/rotator-app';
import type {
  AccessKeyVault,
  AccountAccess,
  AccountPorts,
  IamDirectory,
  KeyVerifier,
  PlanningQueue,
} from '../../lambda/ports';
import type { DispatchResult } from '../../lambda/services/dispatch-accounts';
import type { AccountPlan } from '../../lambda/services/plan-account';
import type { MemberAccountOutcome } from '../../lambda/services/plan-member-account';
import type { UserOutcome } from '../../lambda/services/rotate-user';
import { FakeClock } from './clock';
import { Faults } from './faults';
import { FakeIam, FakeVerifier } from './iam';
import { FakeLedger } from './ledger';
import { CapturingLogger } from './logger';
import { FakeNotifier, FakeNotifierOptions } from './notifier';
import { FakeOrganization } from './organization';
import { FakeQueue } from './queue';
import { FakeVault } from './vault';

export const ORG_SECRET_PREFIX = 'iam-key-rotation';
/** The central (delegated administrator) account that runs the functions. */
export const CENTRAL_ACCOUNT_ID = '999988887777';
const PLANNER_ROLE = `arn:aws:iam::${CENTRAL_ACCOUNT_ID}:role/iam-key-rotation-planner`;

/**
 * One account's view of the shared faults: every call is counted here (which account it was made
 * in) and in the shared Faults (the organization's log, where the shared injections and crashes
 * apply); a fault injected here hits this account only.
 */
export class AccountFaults extends Faults {
  constructor(private readonly shared: Faults) {
    super();
  }

  override around<T>(op: string, effect: () => T | Promise<T>): Promise<T> {
    return this.shared.around(op, () => super.around(op, effect));
  }
}

/** One member account: its IAM users and keys, its secrets, and the STS that accepts its keys. */
export class MemberAccount {
  /** The calls made in this account (IAM, Secrets Manager, STS), and faults for it alone. */
  readonly faults: AccountFaults;
  readonly iam: FakeIam;
  readonly vault: FakeVault;
  readonly verifier: FakeVerifier;

  constructor(
    readonly accountId: string,
    readonly name: string,
    readonly roleArn: string,
    shared: Faults,
    clock: FakeClock,
    /** The central ledger (for the invariant checks, which look up this account's records). */
    readonly ledger: FakeLedger,
    index: number,
  ) {
    this.faults = new AccountFaults(shared);
    this.iam = new FakeIam(clock, this.faults, accountId);
    // AWS access key ids are unique across accounts: start each account's key numbers apart.
    (this.iam as unknown as { keyCounter: number }).keyCounter = index * 1_000_000;
    this.vault = new FakeVault(clock, this.faults);
    // In a member account the secrets are written by the member role (its policy names it).
    this.vault.serviceRoleArn = roleArn;
    this.verifier = new FakeVerifier(this.iam, clock, this.faults);
  }

  secretName(userName: string): string {
    return secretNameFor(ORG_SECRET_PREFIX, this.accountId, userName);
  }

  /** Calls that change something in this account (the credential report's generation aside). */
  writes(): string[] {
    return this.faults.writes().filter((op) => op !== 'iam:GenerateCredentialReport');
  }
}

/**
 * STS GetCallerIdentity for the whole organization: a key is accepted by the account whose IAM
 * holds it (with that account's propagation delay), and the identity names that account.
 */
export class OrgVerifier implements KeyVerifier {
  constructor(
    private readonly members: ReadonlyMap<string, MemberAccount>,
    private readonly faults: Faults,
  ) {}

  callerIdentity(credentials: KeyCredentials): Promise<{ readonly arn: string; readonly account: string }> {
    for (const member of this.members.values()) {
      if (member.iam.findKey(credentials.accessKeyId)) return member.verifier.callerIdentity(credentials);
    }
    return this.faults.around('sts:GetCallerIdentity', () => {
      throw new CredentialsNotYetValidError(
        'InvalidClientTokenId: The security token included in the request is invalid.',
      );
    });
  }
}

/** How AssumeRole into an account fails. */
export type AccessFailure = 'no-role' | 'denied' | 'throttled' | 'suspended';

interface FailureRule {
  readonly mode: AccessFailure;
  remaining: number;
}

/**
 * The member roles: AssumeRole into `<account>/<memberRoleName>` with the run id as session name,
 * one session per account and run (reused by every later open, as MemberCredentials does), failures
 * not cached. AssumeRole is counted in the account's calls.
 *
 * A role stays when its account leaves the selection (excluded, moved out of the included OUs), as
 * the member StackSet keeps it (no account filter, RetainStacksOnAccountRemoval); a test that has
 * it deleted anyway (by hand, or by a StackSet that filtered the account out) says so with
 * `fail(accountId, 'no-role')`, and `clear` when an operator deploys it again.
 */
export class FakeAccountAccess implements AccountAccess {
  /** Every session opened (one AssumeRole that succeeded), in order. */
  readonly sessions: { readonly accountId: string; readonly runId: string }[] = [];
  /** Every open refused, in order. */
  readonly refusals: { readonly accountId: string; readonly runId: string; readonly mode: AccessFailure }[] =
    [];
  private readonly failures = new Map<string, FailureRule>();
  private readonly opened = new Map<string, AccountPorts>();

  constructor(private readonly world: OrgWorld) {}

  /** AssumeRole into the account fails this way (`times` times; by default until `clear`). */
  fail(accountId: string, mode: AccessFailure, times = Number.POSITIVE_INFINITY): void {
    this.failures.set(accountId, { mode, remaining: times });
  }

  /** The failure is fixed: the role deployed or trusted again, STS calm, the account reinstated. */
  clear(accountId: string): void {
    const rule = this.failures.get(accountId);
    this.failures.delete(accountId);
    const account = this.world.organization.accounts.get(accountId);
    if (rule?.mode === 'suspended' && account) account.state = 'ACTIVE';
  }

  /** A new container: the sessions opened so far are gone, the next open assumes the role again. */
  restart(): void {
    this.opened.clear();
  }

  async open(accountId: string, runId: string): Promise<AccountPorts> {
    const key = `${accountId}\n${runId}`;
    const cached = this.opened.get(key);
    if (cached) return cached;
    const member = this.world.members.get(accountId);
    const roleArn = `arn:aws:iam::${accountId}:role/${this.world.organizationSettings.memberRoleName}`;
    const denied = () =>
      new MemberRoleAccessDeniedError(
        `sts:AssumeRole: AccessDenied: User: ${PLANNER_ROLE.replace(':iam::', ':sts::').replace(':role/', ':assumed-role/')}/${runId} is not authorized to perform: sts:AssumeRole on resource: ${roleArn}`,
        accountId,
        roleArn,
      );
    const faults = member?.faults ?? this.world.faults;
    const ports = await faults.around('sts:AssumeRole', () => {
      const rule = this.failures.get(accountId);
      if (rule && rule.remaining > 0) {
        rule.remaining--;
        this.refusals.push({ accountId, runId, mode: rule.mode });
        switch (rule.mode) {
          case 'throttled':
            throw new MemberSessionUnavailableError(
              `sts:AssumeRole: Throttling: Rate exceeded (role ${roleArn}, after the SDK's retries)`,
              accountId,
              roleArn,
            );
          case 'suspended': {
            const account = this.world.organization.accounts.get(accountId);
            if (account) account.state = 'SUSPENDED';
            throw denied();
          }
          case 'no-role':
          case 'denied':
            throw denied();
        }
      }
      if (!member) throw denied();
      return { accountId, iam: member.iam, vault: member.vault };
    });
    this.sessions.push({ accountId, runId });
    this.opened.set(key, ports);
    return ports;
  }
}

/** The planning queue (standard SQS) in memory: every message sent, in order. */
export class FakePlanningQueue implements PlanningQueue {
  readonly sent: PlanningMessage[] = [];
  /** Messages waiting for a planner, with how often SQS has delivered each. */
  readonly waiting: { readonly message: PlanningMessage; receiveCount: number }[] = [];

  constructor(private readonly faults: Faults) {}

  async send(messages: readonly PlanningMessage[]): Promise<void> {
    for (let start = 0; start < messages.length; start += 10) {
      const batch = messages.slice(start, start + 10);
      await this.faults.around('sqs:SendMessageBatch', () => {
        this.sent.push(...batch);
        this.waiting.push(...batch.map((message) => ({ message, receiveCount: 0 })));
      });
    }
  }
}

export interface OrgWorldOptions {
  readonly start?: string;
  readonly settings?: Partial<RotationSettings>;
  /** The rotator's SUBSCRIBE_OWNERS. @default true */
  readonly subscribeOwners?: boolean;
  readonly notifier?: FakeNotifierOptions;
}

/** A Powertools logger whose lines go to a CapturingLogger (nothing printed). */
class CapturedPowertoolsLogger extends PowertoolsLogger {
  constructor(private readonly sink: CapturingLogger) {
    super({ serviceName: SERVICE_NAME, logLevel: 'DEBUG' });
  }

  protected override printLog(
    _logLevel: number,
    log: { prepareForPrint(): void; getAttributes(): Record<string, unknown> },
  ): void {
    log.prepareForPrint();
    const { level, message, ...attributes } = log.getAttributes();
    delete attributes.timestamp;
    const name = String(level).toLowerCase();
    const method = name === 'critical' ? 'error' : (name as 'debug' | 'info' | 'warn' | 'error');
    this.sink[method](String(message), attributes);
  }
}

/** Powertools metrics whose EMF documents are kept in `sink` (nothing printed). */
class CapturedMetrics extends Metrics {
  constructor(
    private readonly sink: Record<string, unknown>[],
    singleMetric = false,
  ) {
    const quiet = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };
    super({ namespace: METRICS_NAMESPACE, serviceName: SERVICE_NAME, singleMetric, logger: quiet });
    (this as unknown as { console: { log(line: string): void } }).console = {
      log: (line) => this.sink.push(JSON.parse(line) as Record<string, unknown>),
    };
  }

  override singleMetric(): Metrics {
    return new CapturedMetrics(this.sink, true);
  }
}

/** An account port that must never be used: the rotator's own account's, in organization mode. */
function unusedPort<T extends object>(what: string): T {
  return new Proxy({} as T, {
    get: (_target, property) => () => {
      throw new Error(`${what}.${String(property)} called: organization mode works in member accounts only`);
    },
  });
}

/** A Lambda context in the central account, with the time left that `remainingMs` says. */
function centralContext(functionName: string, requestId: string, remainingMs: () => number): Context {
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:eu-west-1:${CENTRAL_ACCOUNT_ID}:function:${functionName}`,
    memoryLimitInMB: '512',
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: '2026/01/01/[$LATEST]org-world',
    getRemainingTimeInMillis: remainingMs,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** An SQS record as Lambda's event source delivers it (FIFO attributes when a group is given). */
function sqsRecord(messageId: string, body: unknown, receiveCount: number, groupId?: string): SQSRecord {
  return {
    messageId,
    receiptHandle: `handle-${messageId}`,
    body: JSON.stringify(body),
    attributes: {
      ApproximateReceiveCount: String(receiveCount),
      SentTimestamp: '1767232800000',
      SenderId: 'AROAEXAMPLE:org-world',
      ApproximateFirstReceiveTimestamp: '1767232800001',
      ...(groupId !== undefined ? { MessageGroupId: groupId, MessageDeduplicationId: messageId } : {}),
    },
    messageAttributes: {},
    md5OfBody: 'not-checked',
    eventSource: 'aws:sqs',
    eventSourceARN: `arn:aws:sqs:eu-west-1:${CENTRAL_ACCOUNT_ID}:org-world`,
    awsRegion: 'eu-west-1',
  };
}

/** How one account fared in one day. */
export interface AccountDay {
  readonly accountId: string;
  /** The planner's outcome of each delivery for the account, in order (retries, continuations). */
  readonly deliveries: MemberAccountOutcome[];
  /** The plans of its planned deliveries. */
  readonly plans: AccountPlan[];
  /** The rotator's outcome for each of its work messages. */
  readonly outcomes: UserOutcome[];
  /** Work messages the rotator failed (thrown), with why. */
  readonly failures: { readonly userName: string; readonly error: unknown }[];
  /** Planning messages of the account the planner handler asked SQS to deliver again (batch item failures). */
  redelivered: number;
}

export interface OrgDay {
  readonly runId: string;
  readonly dispatch: DispatchResult;
  readonly accounts: ReadonlyMap<string, AccountDay>;
  /** Planning messages that reached the dead-letter queue (retryable failures on every delivery). */
  readonly deadLetters: readonly PlanningMessage[];
  readonly workMessages: readonly WorkMessage[];
}

export interface RunDayOptions {
  readonly dryRun?: boolean;
  /** Users a planner invocation handles before it runs short of time (continuations); default no limit. */
  readonly usersPerPlannerInvocation?: number;
}

export class OrgWorld {
  readonly clock: FakeClock;
  readonly faults = new Faults();
  readonly organization: FakeOrganization;
  readonly members = new Map<string, MemberAccount>();
  readonly ledger: FakeLedger;
  readonly notifier: FakeNotifier;
  /** Every log line of the handlers (and of the services they call). */
  readonly logger = new CapturingLogger();
  /** Every EMF document the handlers published. */
  readonly metrics: Record<string, unknown>[] = [];
  readonly settings: RotationSettings;
  readonly access: FakeAccountAccess;
  readonly verifier: OrgVerifier;
  readonly planningQueue: FakePlanningQueue;
  readonly workQueue: FakeQueue;
  organizationSettings: OrganizationSettings = resolveOrganizationSettings({});
  private invocations = 0;

  constructor(private readonly options: OrgWorldOptions = {}) {
    this.clock = new FakeClock(options.start ?? '2026-01-01T02:00:00Z');
    this.organization = new FakeOrganization(this.faults);
    this.ledger = new FakeLedger(this.faults);
    this.notifier = new FakeNotifier(this.faults, options.notifier);
    this.settings = resolveSettings(options.settings ?? {});
    this.access = new FakeAccountAccess(this);
    this.verifier = new OrgVerifier(this.members, this.faults);
    this.planningQueue = new FakePlanningQueue(this.faults);
    this.workQueue = new FakeQueue(this.faults);
  }

  /** Creates an OU under `parentId` (the root by default). */
  addOu(parentId?: string): string {
    return this.organization.addOu(parentId);
  }

  /** Creates an account under `parentId` (the root by default), with its own IAM and Secrets Manager. */
  addAccount(
    parentId?: string,
    options: { name?: string; tags?: Record<string, string> } = {},
  ): MemberAccount {
    const accountId = this.organization.addAccount(parentId, options);
    const name = this.organization.accounts.get(accountId)!.name;
    const roleArn = `arn:aws:iam::${accountId}:role/${this.organizationSettings.memberRoleName}`;
    const member = new MemberAccount(
      accountId,
      name,
      roleArn,
      this.faults,
      this.clock,
      this.ledger,
      this.members.size + 1,
    );
    this.members.set(accountId, member);
    return member;
  }

  member(accountId: string): MemberAccount {
    const member = this.members.get(accountId);
    if (!member) throw new Error(`no member account ${accountId}`);
    return member;
  }

  /** The organization settings (validated as the construct does); the next runDay's functions read them. */
  configure(input: unknown): void {
    this.organizationSettings = resolveOrganizationSettings(input);
  }

  /** The sum of a metric's values in the EMF documents published, optionally only those of one account. */
  metricTotal(name: string, accountId?: string): number {
    return this.metrics
      .filter((doc) => (accountId === undefined ? doc.AccountId === undefined : doc.AccountId === accountId))
      .map((doc) => doc[name])
      .flatMap((value) =>
        Array.isArray(value) ? (value as number[]) : value === undefined ? [] : [value as number],
      )
      .reduce((sum, value) => sum + value, 0);
  }

  private observability() {
    return { logger: new CapturedPowertoolsLogger(this.logger), metrics: new CapturedMetrics(this.metrics) };
  }

  /** The dispatcher as deployed (functions built from the current settings, as after a deploy). */
  dispatcher() {
    return createDispatcherHandler({
      config: {
        organization: this.organizationSettings,
        planningQueueUrl: PLANNING_QUEUE_URL,
        tableName: LEDGER_TABLE,
      },
      directory: this.organization,
      queue: this.planningQueue,
      runs: this.ledger,
      clock: this.clock,
      ...this.observability(),
    });
  }

  /** The planner of organization mode as deployed; `onOutcome` is told each delivery's outcome. */
  planner(onOutcome?: (outcome: MemberAccountOutcome, message: PlanningMessage) => void) {
    return createOrganizationPlannerHandler({
      config: {
        tableName: LEDGER_TABLE,
        queueUrl: WORK_QUEUE_URL,
        settings: this.settings,
        organization: {
          settings: this.organizationSettings,
          planningQueueUrl: PLANNING_QUEUE_URL,
          topicArn: `arn:aws:sns:eu-west-1:${CENTRAL_ACCOUNT_ID}:iam-key-rotation`,
          kmsKeyArn: `arn:aws:kms:eu-west-1:${CENTRAL_ACCOUNT_ID}:key/org-world`,
        },
      },
      access: this.access,
      ledger: this.ledger,
      queue: this.workQueue,
      planningQueue: this.planningQueue,
      notifier: this.notifier,
      clock: this.clock,
      ...this.observability(),
      ...(onOutcome ? { onOutcome } : {}),
    });
  }

  /** The rotator of organization mode as deployed; `onResult` is told what became of each message. */
  rotator(onResult?: (message: WorkMessage, result: { outcome: UserOutcome } | { error: unknown }) => void) {
    return createRotatorHandler({
      config: {
        tableName: LEDGER_TABLE,
        topicArn: `arn:aws:sns:eu-west-1:${CENTRAL_ACCOUNT_ID}:iam-key-rotation`,
        secretPrefix: ORG_SECRET_PREFIX,
        kmsKeyArn: `arn:aws:kms:eu-west-1:${CENTRAL_ACCOUNT_ID}:key/org-world`,
        settings: this.settings,
        subscribeOwners: this.options.subscribeOwners ?? true,
        readerArns: [],
        serviceRoleArn: `arn:aws:iam::${CENTRAL_ACCOUNT_ID}:role/iam-key-rotation-rotator`,
        ownerTopicPrefix: 'iam-key-rotation-owner-',
        organization: {
          settings: this.organizationSettings,
          memberKeyAlias: 'alias/iam-key-rotation-member',
        },
      },
      iam: unusedPort<IamDirectory>("the central account's IAM"),
      vault: unusedPort<AccessKeyVault>("the central account's vault"),
      access: this.access,
      verifier: this.verifier,
      notifier: this.notifier,
      ledger: this.ledger,
      clock: this.clock,
      ...this.observability(),
      ...(onResult ? { onResult } : {}),
    });
  }

  /** One work message through the rotator handler (a fresh invocation); true when it was reported failed. */
  async rotate(
    message: WorkMessage,
    onResult?: (message: WorkMessage, result: { outcome: UserOutcome } | { error: unknown }) => void,
    receiveCount = 1,
  ): Promise<boolean> {
    const id = `${++this.invocations}`;
    const response = await this.rotator(onResult)(
      {
        Records: [sqsRecord(`work-${id}`, message, receiveCount, `${message.accountId}/${message.userName}`)],
      },
      centralContext('rotator', `rotator-${id}`, () => 900_000),
    );
    return response.batchItemFailures.length > 0;
  }

  /** The scheduled pipeline of organization mode for one day (see the header). */
  async runDay(options: RunDayOptions = {}): Promise<OrgDay> {
    const dryRun = options.dryRun ?? false;
    const runId = this.clock.now().toISOString();
    // The schedule's input (organization mode): its scheduled time is the run's id.
    const dispatch = await this.dispatcher()(
      { dryRun, scheduledAt: runId },
      centralContext('dispatcher', `dispatcher-${++this.invocations}`, () => 60_000),
    );
    const accounts = new Map<string, AccountDay>();
    const day = (accountId: string): AccountDay => {
      let found = accounts.get(accountId);
      if (!found) {
        found = { accountId, deliveries: [], plans: [], outcomes: [], failures: [], redelivered: 0 };
        accounts.set(accountId, found);
      }
      return found;
    };
    const deadLetters: PlanningMessage[] = [];
    const workFrom = this.workQueue.messages.length;

    // The planners: one invocation per delivery (batch size 1). SQS delivers a message again when
    // the handler reports it failed, until it has been received PLANNING_MAX_RECEIVE_COUNT times; then
    // the dead-letter queue takes it.
    const planner = this.planner((outcome, message) => {
      const account = day(message.accountId);
      account.deliveries.push(outcome);
      if (outcome.status === 'planned') account.plans.push(outcome.plan);
    });
    for (let next = this.planningQueue.waiting.shift(); next; next = this.planningQueue.waiting.shift()) {
      next.receiveCount++;
      const id = `${++this.invocations}`;
      const response = await planner(
        { Records: [sqsRecord(`planning-${id}`, next.message, next.receiveCount)] },
        centralContext('planner', `planner-${id}`, plannerBudget(options.usersPerPlannerInvocation)),
      );
      if (response.batchItemFailures.length > 0) {
        day(next.message.accountId).redelivered++;
        if (next.receiveCount < PLANNING_MAX_RECEIVE_COUNT) this.planningQueue.waiting.push(next);
        else deadLetters.push(next.message);
      }
    }

    // The rotators: one user per work message, in the message's account.
    const workMessages = this.workQueue.messages.slice(workFrom);
    for (const message of workMessages) {
      await this.rotate(message, (handled, result) => {
        const account = day(handled.accountId);
        if ('outcome' in result) account.outcomes.push(result.outcome);
        else account.failures.push({ userName: handled.userName, error: result.error });
      });
    }
    return { runId, dispatch, accounts, deadLetters, workMessages };
  }
}

const LEDGER_TABLE = 'iam-key-rotation-ledger';
const PLANNING_QUEUE_URL = `https://sqs.eu-west-1.amazonaws.com/${CENTRAL_ACCOUNT_ID}/iam-key-rotation-planning`;
const WORK_QUEUE_URL = `https://sqs.eu-west-1.amazonaws.com/${CENTRAL_ACCOUNT_ID}/iam-key-rotation-work.fifo`;

/** A planner invocation's time left: plenty for `users` users, then short (undefined: no limit). */
function plannerBudget(users: number | undefined): () => number {
  if (users === undefined) return () => 900_000;
  let asked = 0;
  return () => (++asked < users ? 900_000 : 0);
}
