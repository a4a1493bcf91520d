/**
 * The API meter: each port the services use, wrapped around its in-memory fake (test/fakes), so that
 * every port call is charged the AWS requests the real adapter sends for it in that state
 * (aws-calls.ts), counted by `service:Operation` and waited for in modelled time (virtual-time.ts) at
 * the latency model's price.
 */
import { ForeignSecretError, SecretRotationConflictError } from '../lambda/domain/errors';
import type { PlannerContinuation } from '../lambda/handlers/planner-app';
import type { PlannerInput, WorkMessage } from '../lambda/contract';
import type { NewAccessKey, OwnerNotification } from '../lambda/domain/model';
import { secretVersionToken } from '../lambda/domain/naming';
import type {
  AccessKeyVault,
  Clock,
  IamDirectory,
  KeyVerifier,
  KnownSecret,
  OwnerNotifier,
  OwnerSubscription,
  RotationLedger,
  SecretDescription,
  SecretRef,
  WorkQueue,
} from '../lambda/ports';
import type { FakeClock } from '../test/fakes/clock';
import type { FakeIam, FakeVerifier } from '../test/fakes/iam';
import type { FakeLedger } from '../test/fakes/ledger';
import type { FakeNotifier } from '../test/fakes/notifier';
import type { FakeVault } from '../test/fakes/vault';
import {
  DYNAMODB,
  IAM,
  LAMBDA,
  LatencyModel,
  latencyOf,
  NotifierSetup,
  PromoteCase,
  queryPages,
  screeningItemBytes,
  SECRETS_MANAGER,
  SNS,
  SQS,
  STS,
} from './aws-calls';
import { VirtualTime } from './virtual-time';

/** Lambda ended the invocation at its timeout: the requests after it were never sent. */
export class InvocationTimeout extends Error {
  constructor(readonly timeoutMs: number) {
    super(`the invocation ran past its ${timeoutMs / 1000} s timeout`);
    this.name = 'InvocationTimeout';
  }
}

export type Counts = ReadonlyMap<string, number>;

/** One request in the meter's log. */
export interface LoggedCall {
  /** `service:Operation` */
  readonly op: string;
  /** The port method that sent it (`ledger.save`). */
  readonly via: string;
  /** Modelled ms since the account's clock started. */
  readonly at: number;
}

export class ApiMeter {
  private readonly counted = new Map<string, number>();
  total = 0;
  /** Modelled ms the services spent in their own sleeps (polling, back-off). */
  sleptMs = 0;
  /** The requests in order, while a scenario wants them (undefined: not kept). */
  log?: LoggedCall[];
  /** Called once per port call (heap sampling). */
  onCall?: () => void;
  private deadline?: { readonly at: number; readonly timeoutMs: number };

  constructor(
    readonly time: VirtualTime,
    readonly latency: LatencyModel,
  ) {}

  /** Requests from now on past `timeoutMs` of modelled time throw InvocationTimeout. */
  startDeadline(timeoutMs: number): void {
    this.deadline = { at: this.time.now + timeoutMs, timeoutMs };
  }

  clearDeadline(): void {
    this.deadline = undefined;
  }

  /** Before a port call: an invocation past its timeout has been stopped by Lambda. */
  checkDeadline(): void {
    if (this.deadline && this.time.now >= this.deadline.at)
      throw new InvocationTimeout(this.deadline.timeoutMs);
  }

  /** Counts the requests of one port call, then waits their modelled latency. */
  async charge(via: string, ops: readonly string[]): Promise<void> {
    let ms = 0;
    for (const op of ops) {
      this.counted.set(op, (this.counted.get(op) ?? 0) + 1);
      this.total++;
      this.log?.push({ op, via, at: this.time.now });
      ms += latencyOf(op, this.latency);
    }
    this.onCall?.();
    if (ms > 0) await this.time.sleep(ms);
  }

  counts(): Counts {
    return new Map(this.counted);
  }

  /** The requests counted since `earlier` (a `counts()`), by operation. */
  since(earlier: Counts): Map<string, number> {
    const diff = new Map<string, number>();
    for (const [op, count] of this.counted) {
      const delta = count - (earlier.get(op) ?? 0);
      if (delta !== 0) diff.set(op, delta);
    }
    return diff;
  }

  /** The services' clock: the fake account's time, and sleeps that pass in modelled time. */
  clock(fake: FakeClock): Clock {
    return {
      now: () => fake.now(),
      sleep: async (ms: number) => {
        this.sleptMs += ms;
        await this.time.sleep(ms);
      },
    };
  }
}

export function sum(counts: Counts): number {
  let total = 0;
  for (const count of counts.values()) total += count;
  return total;
}

/** Runs the fake's effect, then charges the requests the real adapter would have sent for it. */
async function metered<T>(
  meter: ApiMeter,
  via: string,
  effect: () => Promise<T>,
  requests: (outcome: { readonly value?: T; readonly error?: unknown }) => readonly string[],
): Promise<T> {
  meter.checkDeadline();
  let value: T;
  try {
    value = await effect();
  } catch (error) {
    await meter.charge(via, requests({ error }));
    throw error;
  }
  await meter.charge(via, requests({ value }));
  return value;
}

export function meteredIam(iam: FakeIam, meter: ApiMeter): IamDirectory {
  return {
    generateCredentialReport: () =>
      metered(
        meter,
        'iam.generateCredentialReport',
        () => iam.generateCredentialReport(),
        IAM.generateCredentialReport,
      ),
    getCredentialReport: () =>
      metered(meter, 'iam.getCredentialReport', () => iam.getCredentialReport(), IAM.getCredentialReport),
    listUsers: () =>
      metered(
        meter,
        'iam.listUsers',
        () => iam.listUsers(),
        ({ value }) => IAM.listUsers(value?.length ?? 0),
      ),
    getUser: (userName) => metered(meter, 'iam.getUser', () => iam.getUser(userName), IAM.getUser),
    listAccessKeys: (userName) =>
      metered(
        meter,
        'iam.listAccessKeys',
        () => iam.listAccessKeys(userName),
        ({ value }) => IAM.listAccessKeys(value?.length ?? 0),
      ),
    getAccessKeyLastUsed: (accessKeyId) =>
      metered(
        meter,
        'iam.getAccessKeyLastUsed',
        () => iam.getAccessKeyLastUsed(accessKeyId),
        IAM.getAccessKeyLastUsed,
      ),
    createAccessKey: (userName) =>
      metered(meter, 'iam.createAccessKey', () => iam.createAccessKey(userName), IAM.createAccessKey),
    updateAccessKey: (userName, accessKeyId, status) =>
      metered(
        meter,
        'iam.updateAccessKey',
        () => iam.updateAccessKey(userName, accessKeyId, status),
        IAM.updateAccessKey,
      ),
    deleteAccessKey: (userName, accessKeyId) =>
      metered(
        meter,
        'iam.deleteAccessKey',
        () => iam.deleteAccessKey(userName, accessKeyId),
        IAM.deleteAccessKey,
      ),
  };
}

export function meteredVerifier(verifier: FakeVerifier, meter: ApiMeter): KeyVerifier {
  return {
    callerIdentity: (credentials) =>
      metered(
        meter,
        'verifier.callerIdentity',
        () => verifier.callerIdentity(credentials),
        STS.callerIdentity,
      ),
  };
}

/** What decides the policy requests: who the secret's policy lets read, and the service role it names. */
function policyOf(vault: FakeVault, name: string): string | undefined {
  const secret = vault.secrets.get(name);
  return secret ? JSON.stringify([secret.readers, secret.serviceRole ?? null]) : undefined;
}

export function meteredVault(vault: FakeVault, meter: ApiMeter): AccessKeyVault {
  const requireModelled = () => {
    // The adapter tries a refused policy again principal by principal: not modelled (no bench needs it).
    if (vault.missingPrincipals.size > 0) throw new Error('the meter does not model refused principals');
  };
  const wrapped: AccessKeyVault = {
    describe: (ref: SecretRef) =>
      metered(meter, 'vault.describe', () => vault.describe(ref), SECRETS_MANAGER.describe),
    store: (ref: SecretRef, key: NewAccessKey, known?: KnownSecret) => {
      requireModelled();
      const existed = vault.secrets.has(ref.name);
      const policyBefore = policyOf(vault, ref.name);
      return metered(
        meter,
        'vault.store',
        () => vault.store(ref, key, known),
        ({ error }) =>
          SECRETS_MANAGER.store({
            known: known === undefined ? undefined : known === 'absent' ? 'absent' : 'description',
            existed,
            refused: error instanceof ForeignSecretError || error instanceof SecretRotationConflictError,
            // The fake's policy always carries our statements once written: never described again.
            policyNotOurs: false,
            policyChanged: policyOf(vault, ref.name) !== policyBefore,
          }),
      );
    },
    promote: (ref: SecretRef, accessKeyId: string, known?: SecretDescription) => {
      const token = secretVersionToken(accessKeyId);
      // What the adapter decides on: the caller's description if given, else the secret as it is.
      let found: PromoteCase;
      if (known) {
        const version = known.versions.find((candidate) => candidate.accessKeyId === accessKeyId);
        found = {
          described: true,
          hasVersion: version !== undefined,
          current: known.currentVersionId === token,
          pending: version?.stages.includes('AWSPENDING') ?? false,
        };
      } else {
        const version = vault.secrets.get(ref.name)?.versions.get(token);
        found = {
          hasVersion: version !== undefined,
          current: version?.stages.has('AWSCURRENT') ?? false,
          pending: version?.stages.has('AWSPENDING') ?? false,
        };
      }
      return metered(
        meter,
        'vault.promote',
        () => vault.promote(ref, accessKeyId, known),
        () => SECRETS_MANAGER.promote(found),
      );
    },
    read: (ref: SecretRef, accessKeyId: string) =>
      metered(meter, 'vault.read', () => vault.read(ref, accessKeyId), SECRETS_MANAGER.read),
    settlePolicy: (ref: SecretRef) => {
      requireModelled();
      const exists = vault.secrets.has(ref.name);
      const policyBefore = policyOf(vault, ref.name);
      return metered(
        meter,
        'vault.settlePolicy',
        () => vault.settlePolicy(ref),
        () =>
          SECRETS_MANAGER.settlePolicy({ exists, policyChanged: policyOf(vault, ref.name) !== policyBefore }),
      );
    },
  };
  return wrapped;
}

export function meteredNotifier(
  notifier: FakeNotifier,
  meter: ApiMeter,
  setup: NotifierSetup,
): OwnerNotifier {
  return {
    publish: (notification: OwnerNotification, reachableOwners: readonly string[]) =>
      metered(
        meter,
        'notifier.publish',
        () => notifier.publish(notification, reachableOwners),
        () => SNS.publish(setup, notification, reachableOwners),
      ),
    ensureSubscribed: (owner: string) =>
      metered(
        meter,
        'notifier.ensureSubscribed',
        () => notifier.ensureSubscribed(owner),
        () => SNS.ensureSubscribed(setup),
      ),
    subscriptionState: (owner: string) =>
      metered(
        meter,
        'notifier.subscriptionState',
        () => notifier.subscriptionState(owner),
        SNS.subscriptionState,
      ),
  };
}

/** DynamoDB's size of an item, near enough: its JSON (names and values, a few bytes of syntax more). */
function itemBytes(record: unknown): number {
  return Buffer.byteLength(JSON.stringify(record));
}

/**
 * The ledger of one container (one Lambda execution environment, or one CLI process): like the
 * adapter, it remembers the owner subscriptions it read or wrote and answers those without a request.
 */
export function meteredLedger(ledger: FakeLedger, meter: ApiMeter): RotationLedger {
  const known = new Map<string, OwnerSubscription>();
  return {
    load: (accountId, userName) =>
      metered(meter, 'ledger.load', () => ledger.load(accountId, userName), DYNAMODB.load),
    loadAccount: (accountId) =>
      metered(
        meter,
        'ledger.loadAccount',
        () => ledger.loadAccount(accountId),
        ({ value }) =>
          DYNAMODB.loadAccount(
            queryPages((value ?? []).reduce((bytes, record) => bytes + itemBytes(record), 0)),
          ),
      ),
    screenAccount: (accountId) =>
      metered(
        meter,
        'ledger.screenAccount',
        () => ledger.screenAccount(accountId),
        ({ value }) =>
          DYNAMODB.screenAccount(
            queryPages((value ?? []).reduce((bytes, record) => bytes + screeningItemBytes(record), 0)),
          ),
      ),
    save: (record, options) =>
      metered(meter, 'ledger.save', () => ledger.save(record, options), DYNAMODB.save),
    releaseLock: (accountId, userName, holder) =>
      metered(
        meter,
        'ledger.releaseLock',
        () => ledger.releaseLock(accountId, userName, holder),
        DYNAMODB.releaseLock,
      ),
    findOwnerSubscription: async (owner) => {
      const address = owner.toLowerCase();
      const remembered = known.get(address);
      if (remembered) {
        await meter.charge('ledger.findOwnerSubscription', DYNAMODB.findOwnerSubscription(true));
        return remembered;
      }
      const found = await metered(
        meter,
        'ledger.findOwnerSubscription',
        () => ledger.findOwnerSubscription(owner),
        () => DYNAMODB.findOwnerSubscription(false),
      );
      if (found) known.set(address, found);
      return found;
    },
    recordOwnerSubscription: async (subscription) => {
      await metered(
        meter,
        'ledger.recordOwnerSubscription',
        () => ledger.recordOwnerSubscription(subscription),
        DYNAMODB.recordOwnerSubscription,
      );
      const address = subscription.owner.toLowerCase();
      known.set(address, { ...subscription, owner: address });
    },
  };
}

/** The planner's continuation of a run (Lambda Invoke of itself): the input, for the bench to invoke. */
export function meteredContinuation(meter: ApiMeter, continued: PlannerInput[]): PlannerContinuation {
  return {
    continueRun: (_functionName: string, input: PlannerInput) =>
      metered(
        meter,
        'continuation.continueRun',
        () => {
          continued.push(input);
          return Promise.resolve();
        },
        LAMBDA.continueRun,
      ),
  };
}

/** The work queue: SQS FIFO in memory (one group per user), charged per SendMessageBatch. */
export class MeteredQueue implements WorkQueue {
  private readonly waiting: WorkMessage[] = [];
  sent = 0;
  /** Modelled time of each send, relative to the account's clock (when messages became available). */
  readonly sendTimes: number[] = [];

  constructor(private readonly meter: ApiMeter) {}

  send(messages: readonly WorkMessage[]): Promise<void> {
    return metered(
      this.meter,
      'queue.send',
      () => {
        this.waiting.push(...messages);
        this.sent += messages.length;
        if (messages.length > 0) this.sendTimes.push(this.meter.time.now);
        return Promise.resolve();
      },
      () => SQS.send(messages.length),
    );
  }

  get length(): number {
    return this.waiting.length;
  }

  /** Up to `max` messages, at most one per user (FIFO group) in a batch. */
  receive(max: number): WorkMessage[] {
    const batch: WorkMessage[] = [];
    const groups = new Set<string>();
    for (let index = 0; index < this.waiting.length && batch.length < max;) {
      const message = this.waiting[index]!;
      const group = `${message.accountId}/${message.userName}`;
      if (groups.has(group)) {
        index++;
        continue;
      }
      groups.add(group);
      batch.push(message);
      this.waiting.splice(index, 1);
    }
    return batch;
  }

  clear(): void {
    this.waiting.length = 0;
  }
}
