/**
 * The scenarios behind each figure of `npm run bench` (see run.ts for how they are printed). Every
 * figure counts the AWS requests the real adapters would send (aws-calls.ts) and computes modelled
 * time (virtual-time.ts); nothing waits for real.
 */
import { KEY_ROTATION_DEFAULTS } from '../lib/constructs/key-rotation-props';
import { PLANNER_TIMEOUT, ROTATOR_BATCH_SIZE, ROTATOR_TIMEOUT } from '../lib/constructs/key-rotation';
import { settingsFor } from '../cli/connect';
import { main, Wiring } from '../cli/main';
import { DEPLOYED_NOTIFIER, LatencyModel } from './aws-calls';
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
const START = '2026-01-01T02:00:00Z';

/** Deterministic pseudo-random numbers, so that runs are comparable. */
function prng(seed: number): () => number {
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
  /** The ledger items of the account (what the planner's Query reads) after the last day. */
  readonly ledgerItems: number;
  readonly ledgerBytes: number;
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
// 2. One key's lifecycle, and 5. the ledger writes of each phase of its rotation

export interface LifecycleDay {
  readonly day: number;
  readonly calls: number;
  readonly performed: readonly string[];
}

export interface Lifecycle {
  /** Requests beyond what the same account spends on detection alone, over the 30 days. */
  readonly extra: number;
  readonly breakdown: ReadonlyMap<string, number>;
  readonly days: readonly LifecycleDay[];
  readonly detectionPerDay: number;
  /** The rotator's requests on the day of the rotation, in order. */
  readonly rotationLog: readonly LoggedCall[];
  /** Ledger writes of the user's record on each day something happened, by day. */
  readonly ledgerWrites: readonly {
    readonly day: number;
    readonly performed: string;
    readonly writes: number;
  }[];
}

const LIFECYCLE_USER = 'payments-app';
const NEIGHBOURS = 9;

/** The lifecycle account: the user whose key is `ageDays` old, and neighbours with young keys. */
function lifecycleAccount(latency: LatencyModel, ageDays: number): BenchAccount {
  const world = account(latency);
  world.addUser(LIFECYCLE_USER, [{ ageDays, lastUsedDaysAgo: 0 }]);
  for (let index = 0; index < NEIGHBOURS; index++) {
    world.addUser(userName(index), [{ ageDays: 5 + index * 3, lastUsedDaysAgo: 0 }]);
  }
  return world;
}

const WRITES = new Set(['dynamodb:PutItem', 'dynamodb:UpdateItem']);
const USER_RECORD_WRITE = /^ledger\.(save|releaseLock)$/;

/**
 * One key from its warning (76 days old) to its deletion, daily runs for 30 days: warned on day 0,
 * owner confirms the subscription, rotated on day 4, the workload switches to the new key the next
 * day, old key deactivated on day 11 (grace 7 days), deleted on day 25 (14 days after). Measured
 * against the same account with the key young (detection alone), so the difference is the lifecycle's.
 */
export async function lifecycle(latency: LatencyModel): Promise<Lifecycle> {
  const world = lifecycleAccount(latency, 76);
  const control = lifecycleAccount(latency, 10);
  world.meter.log = [];
  const days: LifecycleDay[] = [];
  const ledgerWrites: { day: number; performed: string; writes: number }[] = [];
  let rotationLog: LoggedCall[] = [];
  const totalBefore = world.meter.counts();
  const controlBefore = control.meter.counts();
  for (let index = 0; index < 30; index++) {
    const logStart = world.meter.log.length;
    world.goToDay(START, index);
    world.workloadsUseTheirKeys();
    const before = world.meter.total;
    await world.planner();
    const drainStart = world.meter.log.length;
    const drain = await world.drain(ROTATOR_CONCURRENCY, BATCH_SIZE);
    const performed = drain.audited.filter((action) => action !== 'notice.sent');
    days.push({ day: index, calls: world.meter.total - before, performed });
    const log = world.meter.log.slice(logStart);
    const writes = log.filter((call) => WRITES.has(call.op) && USER_RECORD_WRITE.test(call.via)).length;
    if (performed.length > 0 || writes > 0) {
      ledgerWrites.push({ day: index, performed: performed.join(', ') || '(none)', writes });
    }
    if (performed.includes('key.rotated')) rotationLog = world.meter.log.slice(drainStart);
    await day(control, index);
  }
  const total = world.meter.since(totalBefore);
  const detection = control.meter.since(controlBefore);
  const breakdown = new Map<string, number>();
  for (const op of new Set([...total.keys(), ...detection.keys()])) {
    const extra = (total.get(op) ?? 0) - (detection.get(op) ?? 0);
    if (extra !== 0) breakdown.set(op, extra);
  }
  return {
    extra: sum(total) - sum(detection),
    breakdown,
    days,
    detectionPerDay: sum(detection) / 30,
    rotationLog,
    ledgerWrites,
  };
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
