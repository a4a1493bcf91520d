/**
 * The scenarios behind each figure of `npm run bench` (see run.ts for how they are printed). Every
 * figure counts the AWS requests the real adapters would send (aws-calls.ts) and computes modelled
 * time (virtual-time.ts); nothing waits for real.
 */
import { KEY_ROTATION_DEFAULTS } from '../lib/constructs/key-rotation-props';
import { PLANNER_TIMEOUT, ROTATOR_BATCH_SIZE, ROTATOR_TIMEOUT } from '../lib/constructs/key-rotation';
import { settingsFor } from '../cli/connect';
import { main, Wiring } from '../cli/main';
import { DEPLOYED_NOTIFIER, LatencyModel, screeningItemBytes } from './aws-calls';
import { ACCOUNT_ID, BenchAccount, SECRET_PREFIX } from './account';
import {
  Counts,
  LoggedCall,
  meteredIam,
  meteredLedger,
  meteredNotifier,
  meteredVault,
  meteredVerifier,
  sum,
} from './meter';

export const ROTATOR_CONCURRENCY: number = KEY_ROTATION_DEFAULTS.rotatorConcurrency;
export const BATCH_SIZE = ROTATOR_BATCH_SIZE;
export const START = '2026-01-01T02:00:00Z';

/** Deterministic pseudo-random numbers, so that runs are comparable. */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function userName(index: number): string {
  return `user-${String(index).padStart(5, '0')}`;
}

function account(latency: LatencyModel, plannerTimeoutMs = PLANNER_TIMEOUT.toMilliseconds()): BenchAccount {
  return new BenchAccount({
    latency,
    start: START,
    plannerTimeoutMs,
    rotatorTimeoutMs: ROTATOR_TIMEOUT.toMilliseconds(),
  });
}

async function day(world: BenchAccount, index: number) {
  world.goToDay(START, index);
  return world.day(ROTATOR_CONCURRENCY, BATCH_SIZE);
}

/** Audit actions by how often they succeeded (notices and starts left out). */
export function tally(actions: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const action of actions) {
    if (action === 'notice.sent' || action === 'rotation.started') continue;
    counts[action] = (counts[action] ?? 0) + 1;
  }
  return counts;
}

// ---------------------------------------------------------------------------------------------
// 1. Daily detection

export interface QuietDays {
  readonly users: number;
  readonly groups: { readonly grace: number; readonly waiting: number; readonly current: number };
  /** Requests of each quiet day measured (days 9 to 14 at most), and the most of them. */
  readonly perDay: readonly number[];
  readonly max: number;
  /** What the most expensive quiet day spent them on. */
  readonly calls: Counts;
  /** Anything the rotator did on a quiet day (should be nothing). */
  readonly actedOn: readonly string[];
  /** The ledger items of the account (what a consistent read of the whole records reads) after the last day. */
  readonly ledgerItems: number;
  readonly ledgerBytes: number;
  /** The same items in the screening index (what the scheduled planner's Query reads). */
  readonly indexBytes: number;
}

/**
 * The account of the quiet days (see quietDays) after its days 0 to 8: reviews in the ledger, nothing
 * due on day 9 (the organization figure plans it from there).
 */
export async function quietAccount(
  latency: LatencyModel,
  users: number,
  { eventfulOnly = false } = {},
): Promise<{ world: BenchAccount; groups: QuietDays['groups'] }> {
  const world = account(latency);
  const random = prng(7);
  const groups = { grace: 0, waiting: 0, current: 0 };
  for (let index = 0; index < users; index++) {
    const share = index % 10;
    if (share < 4) {
      world.addUser(userName(index), [{ ageDays: 80, lastUsedDaysAgo: 0 }]);
      groups.waiting++;
    } else if (share < 8) {
      world.addUser(userName(index), [{ ageDays: 72, lastUsedDaysAgo: 0 }]);
      groups.grace++;
    } else {
      world.addUser(userName(index), [{ ageDays: Math.floor(random() * 50), lastUsedDaysAgo: 0 }]);
      groups.current++;
    }
  }
  const eventful = new Set([0, 4, 7, 8]);
  for (let index = 0; index <= 8; index++) {
    if (eventfulOnly && !eventful.has(index)) {
      world.goToDay(START, index);
      world.workloadsUseTheirKeys();
      continue;
    }
    await day(world, index);
  }
  return { world, groups };
}

/**
 * An account where, on days 9 to 14, nothing is due: 40% of the users rotated on day 0 (their
 * workloads switched on day 1; old keys deactivated on day 7, to be deleted on day 21), 40% warned
 * on day 4 and rotated on day 8 (in their grace until day 15), 20% with young keys. With `eventfulOnly`
 * the schedule runs only on the days something is due before the quiet ones (the workloads still
 * work every day), which changes nothing that the quiet days see and saves the bench time.
 */
export async function quietDays(
  latency: LatencyModel,
  users: number,
  { eventfulOnly = false, lastQuietDay = 14 } = {},
): Promise<QuietDays> {
  const { world, groups } = await quietAccount(latency, users, { eventfulOnly });
  const perDay: number[] = [];
  const actedOn: string[] = [];
  let calls: Counts = new Map();
  for (let index = 9; index <= lastQuietDay; index++) {
    const run = await day(world, index);
    const total = sum(run.calls);
    if (total > Math.max(-1, ...perDay)) calls = run.calls;
    perDay.push(total);
    for (const user of run.drain.processed) actedOn.push(...user.performed);
  }
  const items = [...world.ledger.items.values()];
  return {
    users,
    groups,
    perDay,
    max: Math.max(...perDay),
    calls,
    actedOn,
    ledgerItems: items.length,
    ledgerBytes: items.reduce((bytes, item) => bytes + Buffer.byteLength(item), 0),
    indexBytes: items.reduce(
      (bytes, item) =>
        bytes + screeningItemBytes(JSON.parse(item) as { accountId: string; userName: string }),
      0,
    ),
  };
}

/** A neglected account of 250 users (keys 0 to 199 days old) on its first run, then the day after. */
export async function dayAfterFirstRun(latency: LatencyModel, users = 250) {
  const world = account(latency);
  const random = prng(42);
  for (let index = 0; index < users; index++) {
    world.addUser(userName(index), [{ ageDays: Math.floor(random() * 200), lastUsedDaysAgo: 0 }]);
  }
  const first = await day(world, 0);
  const next = await day(world, 1);
  return {
    users,
    firstDay: tally(first.drain.audited),
    nextDay: tally(next.drain.audited),
    calls: sum(next.calls),
    plannerMs: next.planner.ms,
    breakdown: next.calls,
  };
}

// ---------------------------------------------------------------------------------------------
// 2. One key's lifecycle (a user's first, and the next one: the steady state), and 5. the ledger
// writes of each phase of its rotation

export interface LifecycleDay {
  readonly day: number;
  /** The account's requests that day, detection included. */
  readonly calls: number;
  /** Requests beyond the control account's that day. */
  readonly extra: number;
  /** What the rotator did to the lifecycle's user (audit actions, notices left out). */
  readonly performed: readonly string[];
}

/** Thirty daily runs of the lifecycle account, from the day the user's key is warned of. */
export interface LifecycleWindow {
  readonly firstDay: number;
  readonly lastDay: number;
  /** Requests beyond what the control account (detection alone) spends over the same days. */
  readonly extra: number;
  /** The same by `service:Operation`. */
  readonly breakdown: ReadonlyMap<string, number>;
  /** The same by the port method that sent them and `service:Operation` (`ledger.save dynamodb:PutItem`). */
  readonly byPort: ReadonlyMap<string, number>;
  /** Days on which the user was acted on or anything beyond the detection was spent. */
  readonly days: readonly LifecycleDay[];
  /** The rotator's requests on the day of the rotation, in order. */
  readonly rotationLog: readonly LoggedCall[];
  /** Ledger writes of user records beyond the control's, on each day the user was acted on. */
  readonly ledgerWrites: readonly {
    readonly day: number;
    readonly performed: string;
    readonly writes: number;
  }[];
}

/**
 * What the first lifecycle costs and the next one does not: the owner's topic and subscription, and
 * the user's secret. `first - steady` by port and operation, each entry in one class.
 */
export interface OneOffCosts {
  /** Once per owner address (shared by every user it owns): topic, attributes, subscription, confirmation. */
  readonly perOwner: readonly OneOffEntry[];
  /** Once per user: its secret and the secret's policy, and its owner looked up before its record knew them. */
  readonly perUser: readonly OneOffEntry[];
  /** Anything else that differs (none expected). */
  readonly other: readonly OneOffEntry[];
}

export interface OneOffEntry {
  readonly via: string;
  readonly op: string;
  readonly calls: number;
}

export interface Lifecycle {
  /** The user's first lifecycle: its key found 76 days old on day 0, owner not yet subscribed. */
  readonly first: LifecycleWindow;
  /**
   * The next lifecycle of the same user: the key the service created on the first rotation, warned
   * of 76 days later; owner subscribed and confirmed, secret in place. Undefined if it was never
   * warned of within the days run.
   */
  readonly steady?: LifecycleWindow;
  /** The days between the two windows: nothing is due, so nothing beyond detection is expected. */
  readonly between?: { readonly firstDay: number; readonly lastDay: number; readonly extra: number };
  readonly oneOff?: OneOffCosts;
  /** The control account's requests a day over the first window (detection alone). */
  readonly detectionPerDay: number;
}

const LIFECYCLE_USER = 'payments-app';
const NEIGHBOURS = 9;
/** Days of a lifecycle window: warned, rotated 4 days later, deactivated 7 after, deleted 14 after. */
const WINDOW_DAYS = 30;
/** The next lifecycle's warning is looked for until this day. */
const LAST_LIFECYCLE_DAY = 200;

/**
 * The lifecycle account: the user whose key is `ageDays` old (no key: the control account, whose
 * user never has anything due), and neighbours whose keys are 22 to 38 days old on day 0: young for
 * the whole first window, and old enough that their own lifecycles (warned at 76 days, deleted 25
 * days later) fall between the user's two windows, so that each window sees the user alone. The
 * control account has the same neighbours, so their work cancels out between the windows too.
 */
function lifecycleAccount(latency: LatencyModel, ageDays: number | undefined): BenchAccount {
  const world = account(latency);
  world.addUser(LIFECYCLE_USER, ageDays === undefined ? [] : [{ ageDays, lastUsedDaysAgo: 0 }]);
  for (let index = 0; index < NEIGHBOURS; index++) {
    world.addUser(userName(index), [{ ageDays: 22 + index * 2, lastUsedDaysAgo: 0 }]);
  }
  return world;
}

const WRITES = new Set(['dynamodb:PutItem', 'dynamodb:UpdateItem']);
const USER_RECORD_WRITE = /^ledger\.(save|releaseLock)$/;

interface DayOfLifecycle extends LifecycleDay {
  /** The control account's requests that day (detection alone). */
  readonly controlCalls: number;
  readonly breakdown: ReadonlyMap<string, number>;
  readonly byPort: ReadonlyMap<string, number>;
  readonly writes: number;
  readonly drainLog: readonly LoggedCall[];
}

/** Requests of a log slice by `via op`. */
function byPortOf(log: readonly LoggedCall[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const call of log)
    counts.set(`${call.via} ${call.op}`, (counts.get(`${call.via} ${call.op}`) ?? 0) + 1);
  return counts;
}

/** `a - b` by key, zeros left out. */
function minus(a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>): Map<string, number> {
  const diff = new Map<string, number>();
  for (const key of new Set([...a.keys(), ...b.keys()])) {
    const value = (a.get(key) ?? 0) - (b.get(key) ?? 0);
    if (value !== 0) diff.set(key, value);
  }
  return diff;
}

function plus(into: Map<string, number>, counts: ReadonlyMap<string, number>): void {
  for (const [key, value] of counts) {
    const next = (into.get(key) ?? 0) + value;
    if (next === 0) into.delete(key);
    else into.set(key, next);
  }
}

/** One scheduled day of the lifecycle account, and of its control account, compared. */
async function lifecycleDay(
  world: BenchAccount,
  control: BenchAccount,
  index: number,
): Promise<DayOfLifecycle> {
  const worldLog = world.meter.log!;
  const controlLog = control.meter.log!;
  const logStart = worldLog.length;
  const controlStart = controlLog.length;
  const before = world.meter.counts();
  world.goToDay(START, index);
  world.workloadsUseTheirKeys();
  await world.planner();
  const drainStart = worldLog.length;
  const drain = await world.drain(ROTATOR_CONCURRENCY, BATCH_SIZE);
  const calls = world.meter.since(before);
  const controlRun = await day(control, index);
  const log = worldLog.slice(logStart);
  const controlDay = controlLog.slice(controlStart);
  const userWrites = (entries: readonly LoggedCall[]) =>
    entries.filter((call) => WRITES.has(call.op) && USER_RECORD_WRITE.test(call.via)).length;
  const breakdown = minus(calls, controlRun.calls);
  return {
    day: index,
    calls: sum(calls),
    extra: sum(breakdown),
    performed: drain.auditedBy
      .filter((entry) => entry.userName === LIFECYCLE_USER && entry.action !== 'notice.sent')
      .map((entry) => entry.action),
    controlCalls: sum(controlRun.calls),
    breakdown,
    byPort: minus(byPortOf(log), byPortOf(controlDay)),
    writes: userWrites(log) - userWrites(controlDay),
    drainLog: worldLog.slice(drainStart),
  };
}

function lifecycleWindow(days: readonly DayOfLifecycle[]): LifecycleWindow {
  const breakdown = new Map<string, number>();
  const byPort = new Map<string, number>();
  for (const entry of days) {
    plus(breakdown, entry.breakdown);
    plus(byPort, entry.byPort);
  }
  const rotated = days.find((entry) => entry.performed.includes('key.rotated'));
  return {
    firstDay: days[0]!.day,
    lastDay: days.at(-1)!.day,
    extra: sum(breakdown),
    breakdown,
    byPort,
    days: days
      .filter((entry) => entry.performed.length > 0 || entry.extra !== 0)
      .map(({ day: index, calls, extra, performed }) => ({ day: index, calls, extra, performed })),
    rotationLog: rotated?.drainLog ?? [],
    ledgerWrites: days
      .filter((entry) => entry.performed.length > 0 || entry.writes !== 0)
      .map((entry) => ({
        day: entry.day,
        performed: entry.performed.join(', ') || '(none)',
        writes: entry.writes,
      })),
  };
}

/** The ports whose requests are set up once per owner address (their topic and its subscription). */
const PER_OWNER_PORTS = new Set([
  'notifier.ensureSubscribed',
  'ledger.recordOwnerSubscription',
  'notifier.subscriptionState',
]);
/** ...and once per user: its secret and its policy, its owner's subscription looked up. */
const PER_USER_PORTS = new Set(['vault.store', 'ledger.findOwnerSubscription']);

/** What the first lifecycle spends and the steady state does not, by class (see OneOffCosts). */
export function oneOffCosts(
  first: ReadonlyMap<string, number>,
  steady: ReadonlyMap<string, number>,
): OneOffCosts {
  const classes = { perOwner: [] as OneOffEntry[], perUser: [] as OneOffEntry[], other: [] as OneOffEntry[] };
  for (const [key, calls] of [...minus(first, steady)].sort(([a], [b]) => a.localeCompare(b))) {
    const [via = '', op = ''] = key.split(' ');
    const entry = { via, op, calls };
    if (PER_OWNER_PORTS.has(via)) classes.perOwner.push(entry);
    else if (PER_USER_PORTS.has(via)) classes.perUser.push(entry);
    else classes.other.push(entry);
  }
  return classes;
}

function recordBytes(world: BenchAccount, user: string): number {
  const record = world.ledger.peek(ACCOUNT_ID, user);
  return record ? Buffer.byteLength(JSON.stringify(record)) : 0;
}

/** The size of the user's item in the screening index. */
function indexItemBytes(world: BenchAccount, user: string): number {
  const record = world.ledger.peek(ACCOUNT_ID, user);
  return record ? screeningItemBytes(record) : 0;
}

/**
 * One key from its warning to its deletion, daily runs: warned on day 0 (76 days old), the owner
 * confirms the subscription, rotated on day 4, the workload switches to the new key the next day,
 * old key deactivated on day 11 (grace 7 days), deleted on day 25 (14 days after). Then the runs go
 * on every day until the next lifecycle of the same user, the key the service created on day 4,
 * has had its 30 days from its own warning (about day 80): the steady state, which every key goes
 * through every ~80 days. Each day is measured against the control account (the same neighbours,
 * the user without a key: detection alone), so the difference is the user's.
 */
export async function lifecycle(latency: LatencyModel): Promise<Lifecycle> {
  const world = lifecycleAccount(latency, 76);
  const control = lifecycleAccount(latency, undefined);
  world.meter.log = [];
  control.meter.log = [];
  const days: DayOfLifecycle[] = [];
  let nextWarned: number | undefined;
  for (let index = 0; index <= LAST_LIFECYCLE_DAY; index++) {
    const today = await lifecycleDay(world, control, index);
    days.push(today);
    if (nextWarned === undefined && index >= WINDOW_DAYS && today.performed.includes('key.warned'))
      nextWarned = index;
    if (nextWarned !== undefined && index === nextWarned + WINDOW_DAYS - 1) break;
  }
  const first = lifecycleWindow(days.slice(0, WINDOW_DAYS));
  // Over the first window, where the neighbours have nothing due either.
  const detectionPerDay =
    days.slice(0, WINDOW_DAYS).reduce((total, entry) => total + entry.controlCalls, 0) / WINDOW_DAYS;
  if (nextWarned === undefined) {
    return { first, detectionPerDay };
  }
  const steady = lifecycleWindow(days.slice(nextWarned, nextWarned + WINDOW_DAYS));
  const gap = days.slice(WINDOW_DAYS, nextWarned);
  return {
    first,
    steady,
    between: {
      firstDay: WINDOW_DAYS,
      lastDay: nextWarned - 1,
      extra: gap.reduce((total, entry) => total + entry.extra, 0),
    },
    oneOff: oneOffCosts(first.byPort, steady.byPort),
    detectionPerDay,
  };
}

export interface LedgerGrowth {
  /** At the end of each lifecycle (the day its old key was deleted): the record's size and contents. */
  readonly lifecycles: readonly {
    readonly day: number;
    readonly bytes: number;
    /** The size of its item in the screening index. */
    readonly indexBytes: number;
    readonly history: number;
    readonly rotations: number;
  }[];
  /** Scheduled runs it took (the days on which the user's review said something could be due). */
  readonly runs: number;
}

/**
 * How one user's ledger record grows with its history: one user, one key after another, lifecycle
 * after lifecycle, until the record stops growing (the history and the list of rotations both at
 * their caps). The schedule runs on the days the user's review says something can be due (the
 * planner skips the user on every other day anyway), or every day where there is no review.
 */
export async function ledgerGrowth(latency: LatencyModel, maxLifecycles = 30): Promise<LedgerGrowth> {
  const world = account(latency);
  world.addUser(LIFECYCLE_USER, [{ ageDays: 76, lastUsedDaysAgo: 0 }]);
  const lifecycles: { day: number; bytes: number; indexBytes: number; history: number; rotations: number }[] =
    [];
  const start = new Date(START).getTime();
  let runs = 0;
  for (let index = 0; lifecycles.length < maxLifecycles && index < maxLifecycles * 120;) {
    world.goToDay(START, index);
    const run = await world.day(ROTATOR_CONCURRENCY, BATCH_SIZE);
    runs++;
    const record = world.ledger.peek(ACCOUNT_ID, LIFECYCLE_USER);
    if (record && run.drain.auditedBy.some((entry) => entry.action === 'key.deleted')) {
      lifecycles.push({
        day: index,
        bytes: recordBytes(world, LIFECYCLE_USER),
        indexBytes: indexItemBytes(world, LIFECYCLE_USER),
        history: record.history.length,
        rotations: record.rotations.length,
      });
      const [previous, last] = lifecycles.slice(-2);
      // Stopped growing: the history and the rotations kept were both capped a lifecycle ago.
      if (previous && last && previous.history === last.history && previous.rotations === last.rotations)
        break;
    }
    const due = record?.review ? Math.ceil((new Date(record.review.due).getTime() - start) / 86_400_000) : 0;
    index = Math.max(index + 1, due);
  }
  return { lifecycles, runs };
}

export interface RotationPhases {
  readonly lockAndIntent: number;
  readonly stored: number;
  readonly completionOutboxRelease: number;
  readonly outboxCleared: number;
  /** Writes of the user's record outside those four phases (none expected). */
  readonly other: number;
  /** The rotation's requests in order, ledger writes marked. */
  readonly sequence: readonly string[];
}

/**
 * Conditional writes of the user's ledger record in each phase of one rotation, from the rotator's
 * requests on the day of the rotation: before CreateAccessKey (lock and intent), between storing the
 * key and verifying it (stored), between the last promote and the first notice (completion, outbox;
 * a lock release counts here wherever it comes), after the first notice (outbox cleared).
 */
export function rotationPhases(log: readonly LoggedCall[]): RotationPhases {
  const firstIndex = (op: string) => log.findIndex((call) => call.op === op);
  const lastIndex = (op: string) => log.map((call) => call.op).lastIndexOf(op);
  const created = firstIndex('iam:CreateAccessKey');
  const stored = firstIndex('secretsmanager:PutSecretValue');
  const verified = firstIndex('sts:GetCallerIdentity');
  const promoted = lastIndex('secretsmanager:UpdateSecretVersionStage');
  const announced = firstIndex('sns:Publish');
  const phases = { lockAndIntent: 0, stored: 0, completionOutboxRelease: 0, outboxCleared: 0, other: 0 };
  const sequence: string[] = [];
  log.forEach((call, index) => {
    const write = WRITES.has(call.op) && USER_RECORD_WRITE.test(call.via);
    sequence.push(write ? `${call.op} (${call.via.replace('ledger.', '')})` : call.op);
    if (!write) return;
    if (call.via === 'ledger.releaseLock') phases.completionOutboxRelease++;
    else if (created >= 0 && index < created) phases.lockAndIntent++;
    else if (stored >= 0 && index > stored && (verified < 0 || index < verified)) phases.stored++;
    else if (promoted >= 0 && index > promoted && (announced < 0 || index < announced))
      phases.completionOutboxRelease++;
    else if (announced >= 0 && index > announced) phases.outboxCleared++;
    else phases.other++;
  });
  return { ...phases, sequence };
}

// ---------------------------------------------------------------------------------------------
// 3. First deployment into a neglected account

function neglectedAccount(latency: LatencyModel, users: number, plannerTimeoutMs?: number): BenchAccount {
  const world = account(latency, plannerTimeoutMs);
  for (let index = 0; index < users; index++) {
    // Every key overdue: 91 to 200 days old, in use.
    world.addUser(userName(index), [{ ageDays: 91 + (index % 110), lastUsedDaysAgo: 0 }]);
  }
  world.workloadsUseTheirKeys();
  return world;
}

/**
 * The same planning run with the planner's timeout cut to `timeoutMs`, so that it cannot finish in
 * one invocation: does it checkpoint and continue, and queue every user once, never cut off?
 */
export async function plannerCheckpoints(latency: LatencyModel, timeoutMs: number, users = 5000) {
  const world = neglectedAccount(latency, users, timeoutMs);
  const planner = await world.planner();
  const queuedUsers = new Set<string>();
  let queuedTwice = 0;
  for (const message of world.queue.receive(Number.MAX_SAFE_INTEGER)) {
    if (queuedUsers.has(message.userName)) queuedTwice++;
    queuedUsers.add(message.userName);
  }
  return { users, timeoutMs, planner, queuedUsers: queuedUsers.size, queuedTwice };
}

export async function firstDeployment(latency: LatencyModel, users = 5000) {
  const world = neglectedAccount(latency, users);
  const planner = await world.planner();
  const drain = await world.drain(ROTATOR_CONCURRENCY, BATCH_SIZE);
  const rotated = drain.processed.filter((user) => user.performed.includes('rotate')).length;
  return {
    users,
    /** The first invocation (the target: everything queued in it, in under 60 s). */
    first: planner.invocations[0]!,
    planner,
    drain,
    rotated,
    concurrency: ROTATOR_CONCURRENCY,
    batchSize: BATCH_SIZE,
  };
}

// ---------------------------------------------------------------------------------------------
// 4. keyrot run --apply

/** The CLI wired to a bench account, as connect/forWriting wire it to a deployed stack. */
function cliWiring(world: BenchAccount): Wiring {
  const resources = {
    table: 'ledger',
    topicArn: `arn:aws:sns:eu-west-1:${ACCOUNT_ID}:notices`,
    secretPrefix: SECRET_PREFIX,
    kmsKeyArn: `arn:aws:kms:eu-west-1:${ACCOUNT_ID}:key/1234`,
    settingsJson: '{}',
    adminRoleArn: `arn:aws:iam::${ACCOUNT_ID}:role/secrets-admin`,
    rotatorRoleArn: `arn:aws:iam::${ACCOUNT_ID}:role/iam-key-rotation-rotator`,
    secretReaderArns: [],
    opsTopicArn: `arn:aws:sns:eu-west-1:${ACCOUNT_ID}:ops`,
  };
  return {
    connect: (options) =>
      Promise.resolve({
        accountId: ACCOUNT_ID,
        caller: {
          account: ACCOUNT_ID,
          arn: `arn:aws:sts::${ACCOUNT_ID}:assumed-role/secrets-admin/operator`,
        },
        clock: world.meter.clock(world.clock),
        settings: settingsFor(options, resources),
        resources,
        iam: meteredIam(world.iam, world.meter),
        ledger: meteredLedger(world.ledger, world.meter),
      }),
    forWriting: (connection) => ({
      ...connection,
      secretPrefix: SECRET_PREFIX,
      verifier: meteredVerifier(world.verifier, world.meter),
      vault: meteredVault(world.vault, world.meter),
      notifier: meteredNotifier(world.notifier, world.meter, DEPLOYED_NOTIFIER),
    }),
  };
}

export interface CliRun {
  readonly concurrency: number | 'none';
  readonly ms: number;
  readonly calls: number;
  readonly code: number;
  readonly summary: string;
}

/** `keyrot run --apply --concurrency N` on `users` users of which `dueShare` have a key due. */
export async function cliRun(
  latency: LatencyModel,
  concurrency: number,
  users = 5000,
  dueShare = 0.1,
): Promise<CliRun> {
  const build = () => {
    const world = account(latency);
    const random = prng(11);
    const due = Math.round(users * dueShare);
    for (let index = 0; index < users; index++) {
      const ageDays = index < due ? 80 + Math.floor(random() * 9) : Math.floor(random() * 71);
      world.addUser(userName(index), [{ ageDays, lastUsedDaysAgo: 0 }]);
    }
    world.workloadsUseTheirKeys();
    return world;
  };
  const run = async (world: BenchAccount, argv: string[]) => {
    let stdout = '';
    let stderr = '';
    const io = {
      stdout: { write: (text: string) => (stdout += text) },
      stderr: { write: (text: string) => (stderr += text) },
      isTTY: false,
    };
    const start = world.time.now;
    const before = world.meter.total;
    const code = await main(argv, io, cliWiring(world));
    return { code, stdout, stderr, ms: world.time.now - start, calls: world.meter.total - before };
  };
  let world = build();
  let result = await run(world, ['run', '--apply', '--concurrency', String(concurrency)]);
  let used: number | 'none' = concurrency;
  if (result.code === 1 && result.stderr.includes('unknown option --concurrency')) {
    // Before issue 9 the CLI had no --concurrency: one user at a time.
    world = build();
    result = await run(world, ['run', '--apply']);
    used = 'none';
  }
  const summary = /(\d+ user\(s\) done, \d+ failed)/.exec(result.stdout)?.[1] ?? result.stderr.trim();
  return { concurrency: used, ms: result.ms, calls: result.calls, code: result.code, summary };
}

// ---------------------------------------------------------------------------------------------
// 6. The planner's memory

export async function plannerMemory(latency: LatencyModel, users = 5000) {
  const world = account(latency);
  for (let index = 0; index < users; index++) {
    // Two keys each: the active one overdue, an old inactive one waiting to be deleted.
    world.addUser(userName(index), [
      { ageDays: 200, status: 'Inactive', lastUsedDaysAgo: 120 },
      { ageDays: 95, lastUsedDaysAgo: 0 },
    ]);
  }
  world.workloadsUseTheirKeys();
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const baseline = process.memoryUsage().heapUsed;
  let peak = baseline;
  let samples = 0;
  world.meter.onCall = () => {
    samples++;
    const used = process.memoryUsage().heapUsed;
    if (used > peak) peak = used;
  };
  const planner = await world.planner();
  world.meter.onCall = undefined;
  peak = Math.max(peak, process.memoryUsage().heapUsed);
  return {
    users,
    baseline,
    peak,
    samples,
    gcExposed: gc !== undefined,
    queued: planner.queued,
    calls: planner.calls,
    timedOut: planner.timedOut,
  };
}
