/**
 * One simulated account for the bench: the in-memory fakes as "AWS", the real handler cores
 * (planner-app.ts, rotator-app.ts) configured as the construct configures them, every port metered
 * (meter.ts), and modelled time. A day is what the deployed stack does: the schedule invokes the
 * planner, then the rotator drains the queue at its concurrency, a batch per invocation.
 */
import type { Context, SQSEvent } from 'aws-lambda';
import type { PlannerInput, WorkMessage } from '../lambda/contract';
import { ownerTopicName, secretNameFor } from '../lambda/domain/naming';
import type { NewAccessKey } from '../lambda/domain/model';
import { createPlannerHandler } from '../lambda/handlers/planner-app';
import { createRotatorHandler } from '../lambda/handlers/rotator-app';
import { loadPlannerConfig, loadRotatorConfig } from '../lambda/handlers/runtime';
import { FakeClock } from '../test/fakes/clock';
import { Faults } from '../test/fakes/faults';
import { FakeIam, FakeKey, FakeUser, FakeVerifier } from '../test/fakes/iam';
import { FakeLedger } from '../test/fakes/ledger';
import { FakeNotifier, OWNER_TOPIC_PREFIX } from '../test/fakes/notifier';
import { FakeVault } from '../test/fakes/vault';
import { DEPLOYED_NOTIFIER, LatencyModel } from './aws-calls';
import { LAMBDA_ENV } from './bundles';
import {
  ApiMeter,
  InvocationTimeout,
  meteredContinuation,
  meteredIam,
  meteredLedger,
  meteredNotifier,
  meteredVault,
  meteredVerifier,
  MeteredQueue,
} from './meter';
import { VirtualTime } from './virtual-time';

export const ACCOUNT_ID = '111122223333';
export const SECRET_PREFIX = LAMBDA_ENV.SECRET_PREFIX!;
export const OWNER_TAG = 'key-rotation:owner';

/**
 * The fake IAM with its keys indexed by id: the fake finds a key by scanning every user, which is
 * fine for tests and too slow for 10,000 users a day over weeks. Behaviour is the fake's.
 */
class IndexedIam extends FakeIam {
  private readonly index = new Map<string, { readonly user: FakeUser; readonly key: FakeKey }>();

  addKey(userName: string, options: Parameters<FakeIam['addKey']>[1]): FakeKey {
    const key = super.addKey(userName, options);
    this.index.set(key.accessKeyId, { user: this.users.get(userName)!, key });
    return key;
  }

  async createAccessKey(userName: string): Promise<NewAccessKey> {
    const created = await super.createAccessKey(userName);
    const user = this.users.get(userName)!;
    const key = user.keys.find((candidate) => candidate.accessKeyId === created.accessKeyId)!;
    this.index.set(created.accessKeyId, { user, key });
    return created;
  }

  private entry(accessKeyId: string) {
    const entry = this.index.get(accessKeyId);
    if (!entry) return undefined;
    if (this.users.get(entry.user.userName) === entry.user && entry.user.keys.includes(entry.key))
      return entry;
    this.index.delete(accessKeyId); // deleted since
    return undefined;
  }

  findKey(accessKeyId: string): FakeKey | undefined {
    return this.entry(accessKeyId)?.key;
  }

  ownerOfKey(accessKeyId: string): FakeUser | undefined {
    return this.entry(accessKeyId)?.user;
  }
}

/**
 * A Powertools logger or metrics object that does nothing, except tell what each user's run did (the
 * handler's `user processed` line) and which audit actions succeeded.
 */
function quietLambdaTools(listener?: {
  userProcessed?: (fields: Record<string, unknown>) => void;
  audited?: (action: string, userName?: string) => void;
}) {
  const noop = () => undefined;
  return new Proxy(
    {},
    {
      get: (_target, name) =>
        name === 'info'
          ? (message: string, fields?: Record<string, unknown>) => {
              if (message === 'user processed' && fields) listener?.userProcessed?.(fields);
              const entry = fields?.audit as
                { action?: string; outcome?: string; userName?: string } | undefined;
              if (entry?.action && entry.outcome === 'success')
                listener?.audited?.(entry.action, entry.userName);
            }
          : noop,
    },
  );
}

function lambdaContext(name: string, time: VirtualTime, timeoutMs: number, requestId: string): Context {
  const start = time.now;
  return {
    functionName: name,
    invokedFunctionArn: `arn:aws:lambda:eu-west-1:${ACCOUNT_ID}:function:${name}`,
    awsRequestId: requestId,
    getRemainingTimeInMillis: () => Math.max(0, start + timeoutMs - time.now),
  } as unknown as Context;
}

/** One invocation of the planner. */
export interface PlannerInvocation {
  readonly ms: number;
  readonly calls: number;
  readonly queued: number;
  /** Lambda stopped it at its timeout. */
  readonly timedOut: boolean;
  readonly error?: unknown;
  /** Modelled ms from the invocation's start to its first message queued (undefined: none). */
  readonly firstQueuedMs?: number;
  /** It stopped short of time and invoked the planner again to continue. */
  readonly continued: boolean;
}

/** A scheduled planning run: its first invocation and every continuation of it. */
export interface PlannerRun {
  readonly invocations: readonly PlannerInvocation[];
  /** Modelled ms of the whole run, continuations included (each starts once the one before asks). */
  readonly ms: number;
  readonly calls: number;
  readonly queued: number;
  readonly timedOut: boolean;
}

export interface DrainRun {
  readonly ms: number;
  readonly calls: number;
  readonly invocations: number;
  readonly users: number;
  /** Messages the rotator failed (they would be retried, then go to the dead-letter queue). */
  readonly failed: number;
  /** What each user's run did (the handler's `user processed` line), in the order they finished. */
  readonly processed: readonly { readonly performed: readonly string[]; readonly status: string }[];
  /** The audit actions that succeeded (key.warned, key.rotated, notice.sent...), in order. */
  readonly audited: readonly string[];
  /** The same, with the user each was about. */
  readonly auditedBy: readonly { readonly action: string; readonly userName?: string }[];
}

export interface DayRun {
  readonly planner: PlannerRun;
  readonly drain: DrainRun;
  readonly calls: ReadonlyMap<string, number>;
}

export interface BenchAccountOptions {
  readonly latency: LatencyModel;
  readonly start?: string;
  readonly plannerTimeoutMs: number;
  readonly rotatorTimeoutMs: number;
}

export class BenchAccount {
  readonly clock: FakeClock;
  readonly faults = new Faults();
  readonly iam: FakeIam;
  readonly verifier: FakeVerifier;
  readonly vault: FakeVault;
  readonly notifier: FakeNotifier;
  readonly ledger: FakeLedger;
  readonly time: VirtualTime;
  readonly meter: ApiMeter;
  readonly queue: MeteredQueue;
  /** Each user's workload and the key it signs with (it reads the secret's AWSCURRENT when there is one). */
  private readonly workloads = new Map<string, FakeKey | { accessKeyId: string; secretAccessKey: string }>();
  private invocations = 0;
  private readonly confirmedOwners = new Set<string>();

  constructor(private readonly options: BenchAccountOptions) {
    this.clock = new FakeClock(options.start ?? '2026-01-01T02:00:00Z');
    this.iam = new IndexedIam(this.clock, this.faults, ACCOUNT_ID);
    this.verifier = new FakeVerifier(this.iam, this.clock, this.faults);
    this.vault = new FakeVault(this.clock, this.faults);
    this.notifier = new FakeNotifier(this.faults);
    this.ledger = new FakeLedger(this.faults);
    this.time = new VirtualTime((ms) => this.clock.advance(ms));
    this.meter = new ApiMeter(this.time, options.latency);
    this.queue = new MeteredQueue(this.meter);
  }

  /** A user with an owner tag and one key per age given; its workload uses the newest active key. */
  addUser(
    userName: string,
    keys: readonly { ageDays: number; status?: 'Active' | 'Inactive'; lastUsedDaysAgo?: number }[],
    path = '/',
  ): void {
    this.iam.addUser(userName, { path, tags: { [OWNER_TAG]: `${userName}@example.com` } });
    for (const key of keys) {
      const added = this.iam.addKey(userName, key);
      if (added.status === 'Active') this.workloads.set(userName, added);
    }
  }

  secretName(userName: string): string {
    return secretNameFor(SECRET_PREFIX, ACCOUNT_ID, userName);
  }

  /**
   * A day's work outside the service: each workload signs with the key its secret holds now
   * (AWSCURRENT), or its original key before there is one; owners confirm their subscriptions.
   */
  workloadsUseTheirKeys(): void {
    for (const [userName, original] of this.workloads) {
      const current = this.vault.readStage(this.secretName(userName));
      this.iam.use(current ?? original);
    }
    // notifier.confirmAll() visits every topic for every owner: fine in tests, too slow for 10,000.
    for (const address of this.notifier.subscribed) {
      if (this.confirmedOwners.has(address)) continue;
      this.confirmedOwners.add(address);
      for (const subscription of this.notifier.topics.get(ownerTopicName(OWNER_TOPIC_PREFIX, address))
        ?.subscriptions ?? []) {
        if (subscription.endpoint === address) subscription.confirmed = true;
      }
    }
  }

  /** The clock at `day` days after the start, at the schedule's hour (02:00 UTC). */
  goToDay(start: string, day: number): void {
    this.clock.set(new Date(new Date(start).getTime() + day * 86_400_000));
  }

  plannerHandler(continued: PlannerInput[]) {
    return createPlannerHandler({
      config: loadPlannerConfig(LAMBDA_ENV),
      iam: meteredIam(this.iam, this.meter),
      ledger: meteredLedger(this.ledger, this.meter),
      queue: this.queue,
      continuation: meteredContinuation(this.meter, continued),
      clock: this.meter.clock(this.clock),
      logger: quietLambdaTools() as never,
      metrics: quietLambdaTools() as never,
    });
  }

  /** One execution environment of the rotator (its own SDK clients and the ledger's memory). */
  rotatorHandler(listener: Parameters<typeof quietLambdaTools>[0]) {
    return createRotatorHandler({
      config: loadRotatorConfig(LAMBDA_ENV),
      iam: meteredIam(this.iam, this.meter),
      verifier: meteredVerifier(this.verifier, this.meter),
      vault: meteredVault(this.vault, this.meter),
      notifier: meteredNotifier(this.notifier, this.meter, DEPLOYED_NOTIFIER),
      ledger: meteredLedger(this.ledger, this.meter),
      clock: this.meter.clock(this.clock),
      logger: quietLambdaTools(listener) as never,
      metrics: quietLambdaTools() as never,
    });
  }

  /** One invocation of the planner, stopped at its timeout as Lambda would; continuations it asked for. */
  async plannerInvocation(event: unknown, continued: PlannerInput[]): Promise<PlannerInvocation> {
    const start = this.time.now;
    const before = this.meter.total;
    const queuedBefore = this.queue.sent;
    const sendsBefore = this.queue.sendTimes.length;
    const continuationsBefore = continued.length;
    // A new execution environment for each invocation (the planner runs once a day).
    const handler = this.plannerHandler(continued);
    const context = lambdaContext(
      'planner',
      this.time,
      this.options.plannerTimeoutMs,
      `plan-${++this.invocations}`,
    );
    this.meter.startDeadline(this.options.plannerTimeoutMs);
    let timedOut = false;
    let error: unknown;
    try {
      await handler(event, context);
    } catch (caught) {
      if (caught instanceof InvocationTimeout) timedOut = true;
      else error = caught;
    } finally {
      this.meter.clearDeadline();
    }
    const firstSend = this.queue.sendTimes[sendsBefore];
    return {
      ms: this.time.now - start,
      calls: this.meter.total - before,
      queued: this.queue.sent - queuedBefore,
      timedOut,
      error,
      firstQueuedMs: firstSend === undefined ? undefined : firstSend - start,
      continued: continued.length > continuationsBefore,
    };
  }

  /**
   * The schedule's planning run: one invocation, and each continuation it starts (Lambda invokes
   * them asynchronously; the time Lambda takes to start one is not modelled). At most `limit`.
   */
  async planner(event: unknown = {}, limit = 20): Promise<PlannerRun> {
    const start = this.time.now;
    const before = this.meter.total;
    const queuedBefore = this.queue.sent;
    const continued: PlannerInput[] = [];
    const invocations: PlannerInvocation[] = [await this.plannerInvocation(event, continued)];
    while (continued.length >= invocations.length && invocations.length < limit) {
      invocations.push(await this.plannerInvocation(continued[invocations.length - 1], continued));
    }
    return {
      invocations,
      ms: this.time.now - start,
      calls: this.meter.total - before,
      queued: this.queue.sent - queuedBefore,
      timedOut: invocations.some((invocation) => invocation.timedOut),
    };
  }

  /** The rotator drains the queue: `concurrency` execution environments, `batchSize` messages each time. */
  async drain(concurrency: number, batchSize: number): Promise<DrainRun> {
    const start = this.time.now;
    const before = this.meter.total;
    const processed: { performed: string[]; status: string }[] = [];
    const audited: string[] = [];
    const auditedBy: { action: string; userName?: string }[] = [];
    let invocations = 0;
    let users = 0;
    let failed = 0;
    const environment = async () => {
      const handler = this.rotatorHandler({
        userProcessed: (fields) =>
          processed.push({
            performed: (fields.performed as string[] | undefined) ?? [],
            status: String(fields.status),
          }),
        audited: (action, userName) => {
          audited.push(action);
          auditedBy.push({ action, userName });
        },
      });
      for (;;) {
        const batch = this.queue.receive(batchSize);
        if (batch.length === 0) return;
        invocations++;
        users += batch.length;
        const context = lambdaContext(
          'rotator',
          this.time,
          this.options.rotatorTimeoutMs,
          `rotate-${++this.invocations}`,
        );
        const response = await handler(sqsEvent(batch), context);
        failed += response.batchItemFailures.length;
      }
    };
    await Promise.all(Array.from({ length: concurrency }, environment));
    return {
      ms: this.time.now - start,
      calls: this.meter.total - before,
      invocations,
      users,
      failed,
      processed,
      audited,
      auditedBy,
    };
  }

  /** The schedule's day: workloads, then the planner, then the rotator until the queue is empty. */
  async day(concurrency: number, batchSize: number): Promise<DayRun> {
    this.workloadsUseTheirKeys();
    const before = this.meter.counts();
    const planner = await this.planner();
    const drain = await this.drain(concurrency, batchSize);
    return { planner, drain, calls: this.meter.since(before) };
  }
}

function sqsEvent(messages: readonly WorkMessage[]): SQSEvent {
  return {
    Records: messages.map((message, index) => ({
      messageId: `m-${index}-${message.userName}`,
      receiptHandle: 'r',
      body: JSON.stringify(message),
      attributes: {
        ApproximateReceiveCount: '1',
        SentTimestamp: '0',
        SenderId: 'planner',
        ApproximateFirstReceiveTimestamp: '0',
        MessageGroupId: `${message.accountId}/${message.userName}`,
      },
      messageAttributes: {},
      md5OfBody: '',
      eventSource: 'aws:sqs',
      eventSourceARN: `arn:aws:sqs:eu-west-1:${ACCOUNT_ID}:work.fifo`,
      awsRegion: 'eu-west-1',
    })),
  };
}
