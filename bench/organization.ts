/**
 * Figure 7 of `npm run bench`: organization mode at scale (issue 10, "Scale (bench)"). An organization
 * of 1,000 member accounts of mixed sizes (SIZE_CLASSES, shuffled with a fixed seed), planned once a
 * day at the default planConcurrency:
 *
 * - the dispatcher runs for real (dispatchAccounts over a FakeOrganization of 1,000 accounts, every
 *   Organizations page, the Query pages of the ledger's 1,000 account-run records (the steady state:
 *   every account planned the day before) and SendMessageBatch charged), which gives the time each planning message
 *   becomes available;
 * - one account of each size class is planned for real (planMemberAccount through FakeAccountAccess,
 *   the account's metered IAM, the metered central ledger and work queue), on a steady-state day
 *   (the account of figure 1's quiet days, planned and rotated before: reviews in the ledger, nothing
 *   due) and on a first day (no ledger yet, FIRST_DAY_DUE_SHARE of the users with a key due);
 * - the 1,000-account day is composed from those per-size measurements: each account's planner takes
 *   its size class's measured time, and the planners are scheduled over the planning queue with at
 *   most planConcurrency at once (schedulePlanners).
 *
 * Requests are counted as in the rest of the bench (aws-calls.ts for the single-account ports;
 * ORG_CALLS below for the organization's own: AssumeRole, Organizations' list pages, the account-run
 * record) and time is modelled, never waited for.
 */
import { LEDGER_ACCOUNT_PARTITION, PLANNING_MESSAGE_VERSION, type PlanningMessage } from '../lambda/contract';
import {
  type MemberAccount as DirectoryAccount,
  resolveOrganizationSettings,
} from '../lambda/domain/organization';
import { loadPlannerConfig } from '../lambda/handlers/runtime';
import type {
  AccountAccess,
  AccountPorts,
  AccountRunLedger,
  AccountRunRecord,
  Logger,
  OrganizationDirectory,
  PlanningQueue,
  RotationLedger,
} from '../lambda/ports';
import { dispatchAccounts } from '../lambda/services/dispatch-accounts';
import { planMemberAccount } from '../lambda/services/plan-member-account';
import { DEFAULT_PLAN_OPTIONS } from '../lambda/services/plan-account';
import { PLANNER_TIMEOUT, ROTATOR_TIMEOUT } from '../lib/constructs/key-rotation';
import { FakeIam } from '../test/fakes/iam';
import type { FakeLedger } from '../test/fakes/ledger';
import { FakeOrganization } from '../test/fakes/organization';
import { FakeAccountAccess, MemberAccount, OrgWorld } from '../test/fakes/org-world';
import { FakeVault } from '../test/fakes/vault';
import { ACCOUNT_ID, BenchAccount } from './account';
import { LatencyModel, queryPages, SQS } from './aws-calls';
import { LAMBDA_ENV } from './bundles';
import { prng, quietAccount, START } from './figures';
import { ApiMeter, Counts, LoggedCall, meteredIam, meteredLedger, meteredVault } from './meter';
import { VirtualTime } from './virtual-time';

/** Organizations' List* calls return at most 20 items a page (MaxResults' maximum; the adapter leaves the default). */
export const ORGANIZATIONS_PAGE_SIZE = 20;

function times(op: string, count: number): string[] {
  return Array.from({ length: count }, () => op);
}

function pages(items: number, perPage: number): number {
  return Math.max(1, Math.ceil(items / perPage));
}

/**
 * The requests of organization mode's own ports: MemberAccountAccess (one AssumeRole per account
 * and run, the session reused by every port), OrganizationsAdapter (one request per page, at least
 * one: the SDK paginators) and DynamoLedger's account runs.
 */
export const ORG_CALLS = {
  assumeRole: () => ['sts:AssumeRole'],
  listAccounts: (accounts: number) =>
    times('organizations:ListAccounts', pages(accounts, ORGANIZATIONS_PAGE_SIZE)),
  listChildren: (ous: number) => times('organizations:ListChildren', pages(ous, ORGANIZATIONS_PAGE_SIZE)),
  listAccountsForParent: (accounts: number) =>
    times('organizations:ListAccountsForParent', pages(accounts, ORGANIZATIONS_PAGE_SIZE)),
  /** An account's tags (at most 50) fit one page. */
  listTagsForResource: () => ['organizations:ListTagsForResource'],
  lastAccountRun: () => ['dynamodb:GetItem'],
  recordAccountRun: () => ['dynamodb:PutItem'],
  /** The dispatcher's Query of the account-run partition: one per page (1 MB of records a page), at least one. */
  listAccountRuns: (records: readonly AccountRunRecord[]) =>
    times(
      'dynamodb:Query',
      queryPages(records.reduce((bytes, record) => bytes + accountRunItemBytes(record), 0)),
    ),
} as const;

/**
 * DynamoDB's size of an account-run item, near enough: its JSON as DynamoLedger stores it (the
 * partition and sort keys, then the record's other fields), as the bench sizes the users' records.
 */
export function accountRunItemBytes(record: AccountRunRecord): number {
  const { accountId, ...rest } = record;
  return Buffer.byteLength(JSON.stringify({ pk: LEDGER_ACCOUNT_PARTITION, sk: accountId, ...rest }));
}

// ---------------------------------------------------------------------------------------------
// The organization's accounts

export interface SizeClass {
  /** IAM users in an account of this class. */
  readonly users: number;
  /** The share of the organization's accounts in it. */
  readonly share: number;
}

/**
 * Most accounts small (workload accounts with a handful of users), a long tail of large ones (shared
 * services, legacy accounts): of 1,000 accounts, 400 of 10 users, 250 of 50, 200 of 200, 100 of
 * 1,000, 40 of 2,500 and 10 of 5,000 (306,500 users in all).
 */
export const SIZE_CLASSES: readonly SizeClass[] = [
  { users: 10, share: 0.4 },
  { users: 50, share: 0.25 },
  { users: 200, share: 0.2 },
  { users: 1000, share: 0.1 },
  { users: 2500, share: 0.04 },
  { users: 5000, share: 0.01 },
];

export const SIZE_SEED = 1010;

/**
 * The users of each of `count` accounts, in account-id order: each class gets its share of the
 * accounts (largest remainders, so that the counts add up to `count`), then the accounts are shuffled
 * (Fisher-Yates with a seeded generator), so that the same seed always gives the same organization.
 */
export function accountSizes(
  count: number,
  classes: readonly SizeClass[] = SIZE_CLASSES,
  seed = SIZE_SEED,
): number[] {
  const total = classes.reduce((sum, size) => sum + size.share, 0);
  if (classes.length === 0 || Math.abs(total - 1) > 1e-9)
    throw new Error(`the shares of the size classes must add up to 1 (got ${total})`);
  const exact = classes.map((size) => size.share * count);
  const counts = exact.map(Math.floor);
  const byRemainder = exact
    .map((value, index) => ({ index, remainder: value - Math.floor(value) }))
    .sort((a, b) => b.remainder - a.remainder || a.index - b.index);
  for (let left = count - counts.reduce((sum, n) => sum + n, 0), next = 0; left > 0; left--, next++) {
    const index = byRemainder[next % byRemainder.length]!.index;
    counts[index] = counts[index]! + 1;
  }
  const sizes = classes.flatMap((size, index) => Array.from({ length: counts[index]! }, () => size.users));
  const random = prng(seed);
  for (let index = sizes.length - 1; index > 0; index--) {
    const other = Math.floor(random() * (index + 1));
    [sizes[index], sizes[other]] = [sizes[other]!, sizes[index]!];
  }
  return sizes;
}

// ---------------------------------------------------------------------------------------------
// The planners' schedule

export interface PlannerJob {
  /** Modelled ms at which its planning message is in the queue. */
  readonly release: number;
  /** Modelled ms its planner invocation takes. */
  readonly duration: number;
}

export interface PlannerSchedule {
  /** When the last planner finishes (modelled ms from the dispatcher's start). */
  readonly makespan: number;
  readonly starts: readonly number[];
  readonly ends: readonly number[];
  /** The most planners running at one time. */
  readonly peak: number;
  /** The longest a message waited in the queue for a free planner. */
  readonly longestWait: number;
}

/**
 * A discrete-event schedule of the planning queue: messages are taken in queue order (by release
 * time, then as sent), each by the first planner free at or after its release, at most `concurrency`
 * at once (the event source's MaximumConcurrency). What Lambda's poller adds (polling, scaling up,
 * cold starts) is not modelled.
 */
export function schedulePlanners(jobs: readonly PlannerJob[], concurrency: number): PlannerSchedule {
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new Error(`concurrency must be a whole number of at least 1 (got ${concurrency})`);
  const order = jobs.map((_, index) => index).sort((a, b) => jobs[a]!.release - jobs[b]!.release || a - b);
  const free: number[] = Array.from({ length: Math.min(concurrency, Math.max(1, jobs.length)) }, () => 0);
  const starts = new Array<number>(jobs.length).fill(0);
  const ends = new Array<number>(jobs.length).fill(0);
  let longestWait = 0;
  for (const index of order) {
    const job = jobs[index]!;
    let slot = 0;
    for (let candidate = 1; candidate < free.length; candidate++)
      if (free[candidate]! < free[slot]!) slot = candidate;
    const start = Math.max(free[slot]!, job.release);
    starts[index] = start;
    ends[index] = start + job.duration;
    free[slot] = ends[index]!;
    longestWait = Math.max(longestWait, start - job.release);
  }
  // The most at once: ends before starts at the same instant (a planner finishing frees its slot).
  const events = jobs.flatMap((_, index) => [
    { at: starts[index]!, delta: 1 },
    { at: ends[index]!, delta: -1 },
  ]);
  events.sort((a, b) => a.at - b.at || a.delta - b.delta);
  let running = 0;
  let peak = 0;
  for (const event of events) {
    running += event.delta;
    peak = Math.max(peak, running);
  }
  return { makespan: Math.max(0, ...ends), starts, ends, peak, longestWait };
}

// ---------------------------------------------------------------------------------------------
// Composition

/** One planner invocation's requests, by who sent them. */
export interface AccountCalls {
  /** The member role's session (MemberAccountAccess.open). */
  readonly assumeRole: number;
  /** planAccount's requests: what the same account costs in single-account mode. */
  readonly planning: number;
  /** The account-run record in the central ledger (and the last one, read on a failure). */
  readonly accountRecord: number;
  readonly total: number;
  /** planAccount's requests by operation. */
  readonly planningOps: Counts;
}

const ACCOUNT_RECORD_PORTS = new Set(['ledger.recordAccountRun', 'ledger.lastAccountRun']);

/** Splits a planner invocation's request log by the port that sent each request. */
export function composeAccountCalls(log: readonly LoggedCall[]): AccountCalls {
  let assumeRole = 0;
  let accountRecord = 0;
  const planningOps = new Map<string, number>();
  for (const call of log) {
    if (call.via === 'access.open') assumeRole++;
    else if (ACCOUNT_RECORD_PORTS.has(call.via)) accountRecord++;
    else planningOps.set(call.op, (planningOps.get(call.op) ?? 0) + 1);
  }
  const planning = log.length - assumeRole - accountRecord;
  return { assumeRole, planning, accountRecord, total: log.length, planningOps };
}

/** One account of a size class planned for real. */
export interface AccountMeasure {
  readonly users: number;
  /** Modelled ms of the planner invocation. */
  readonly ms: number;
  readonly calls: AccountCalls;
  /** Work messages queued. */
  readonly queued: number;
  /** Planning continued in a new message (ran short of time). */
  readonly continued: boolean;
  /** Modelled ms the planner spent in its own sleeps (waiting for the credential report). */
  readonly sleptMs: number;
}

export interface DispatchMeasure {
  readonly accounts: number;
  /** Modelled ms from the dispatcher's start to its return. */
  readonly ms: number;
  readonly calls: Counts;
  /** Modelled ms at which each account's planning message is in the queue, in the order sent. */
  readonly releases: readonly number[];
}

export interface OrganizationDay {
  /** Dispatcher, then planners over the planning queue: modelled ms from the dispatcher's start. */
  readonly makespan: number;
  readonly schedule: PlannerSchedule;
  /** The longest planner invocation, and the size of its account. */
  readonly longest: { readonly users: number; readonly ms: number };
  readonly plannerCalls: number;
  /** Dispatcher and planners. */
  readonly totalCalls: number;
  /** Planner time summed over the accounts (what planConcurrency divides). */
  readonly plannerBusyMs: number;
  readonly queued: number;
}

/**
 * The organization's day from per-size measurements: account `i` (in the order the dispatcher sent
 * the planning messages, account-id order) has `sizes[i]` users, takes its size class's planner time
 * and requests, and is released when its message was sent.
 */
export function composeOrganization(
  sizes: readonly number[],
  measured: ReadonlyMap<number, AccountMeasure>,
  dispatch: DispatchMeasure,
  concurrency: number,
): OrganizationDay {
  if (dispatch.releases.length !== sizes.length)
    throw new Error(`${sizes.length} accounts but ${dispatch.releases.length} planning messages`);
  const perAccount = sizes.map((users) => {
    const measure = measured.get(users);
    if (!measure) throw new Error(`no measurement for accounts of ${users} users`);
    return measure;
  });
  const schedule = schedulePlanners(
    perAccount.map((measure, index) => ({ release: dispatch.releases[index]!, duration: measure.ms })),
    concurrency,
  );
  const longest = perAccount.reduce((a, b) => (b.ms > a.ms ? b : a));
  const plannerCalls = perAccount.reduce((sum, measure) => sum + measure.calls.total, 0);
  let dispatcherCalls = 0;
  for (const count of dispatch.calls.values()) dispatcherCalls += count;
  return {
    makespan: Math.max(schedule.makespan, dispatch.ms),
    schedule,
    longest: { users: longest.users, ms: longest.ms },
    plannerCalls,
    totalCalls: dispatcherCalls + plannerCalls,
    plannerBusyMs: perAccount.reduce((sum, measure) => sum + measure.ms, 0),
    queued: perAccount.reduce((sum, measure) => sum + measure.queued, 0),
  };
}

// ---------------------------------------------------------------------------------------------
// Measurements on the fakes

const quietLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

/** Organizations over the fake, each call charged its pages. */
function meteredDirectory(organization: FakeOrganization, meter: ApiMeter): OrganizationDirectory {
  const charged = async <T extends readonly unknown[] | Record<string, string>>(
    via: string,
    effect: () => Promise<T>,
    requests: (value: T) => readonly string[],
  ): Promise<T> => {
    const value = await effect();
    await meter.charge(via, requests(value));
    return value;
  };
  return {
    listAccounts: () =>
      charged<DirectoryAccount[]>(
        'directory.listAccounts',
        () => organization.listAccounts(),
        (value) => ORG_CALLS.listAccounts(value.length),
      ),
    listChildOus: (parentId) =>
      charged<string[]>(
        'directory.listChildOus',
        () => organization.listChildOus(parentId),
        (value) => ORG_CALLS.listChildren(value.length),
      ),
    listAccountsForParent: (parentId) =>
      charged<DirectoryAccount[]>(
        'directory.listAccountsForParent',
        () => organization.listAccountsForParent(parentId),
        (value) => ORG_CALLS.listAccountsForParent(value.length),
      ),
    accountTags: (accountId) =>
      charged(
        'directory.accountTags',
        () => organization.accountTags(accountId),
        ORG_CALLS.listTagsForResource,
      ),
  };
}

/** The planning queue (standard SQS): SendMessageBatch per ten, and when each message became available. */
class MeteredPlanningQueue implements PlanningQueue {
  readonly releases: number[] = [];

  constructor(private readonly meter: ApiMeter) {}

  async send(messages: readonly PlanningMessage[]): Promise<void> {
    await this.meter.charge('planningQueue.send', SQS.send(messages.length));
    for (let index = 0; index < messages.length; index++) this.releases.push(this.meter.time.now);
  }
}

export type Discovery = 'list-accounts' | 'ou-walk';

/** OUs under the root, and OUs under each of them: accounts are spread over the leaves. */
const TOP_OUS = 10;
const CHILD_OUS = 5;

/**
 * The dispatcher for real on an organization of `accounts` accounts (10 OUs under the root, 5 under
 * each, the accounts spread evenly over those 50), discovering them with ListAccounts (no includeOus)
 * or by walking the OUs from the root (includeOus: the root).
 */
export async function dispatchOrganization(
  latency: LatencyModel,
  accounts: number,
  discovery: Discovery,
): Promise<DispatchMeasure> {
  const organization = new FakeOrganization();
  const leaves: string[] = [];
  for (let top = 0; top < TOP_OUS; top++) {
    const ou = organization.addOu();
    for (let child = 0; child < CHILD_OUS; child++) leaves.push(organization.addOu(ou));
  }
  for (let index = 0; index < accounts; index++) organization.addAccount(leaves[index % leaves.length]);
  // The steady state: every account was planned by yesterday's run, so the ledger's account-run
  // partition holds one record per account (none being finished); the dispatcher reads them all.
  const yesterday = new Date(Date.parse(START) - 86_400_000).toISOString();
  const runs: AccountRunRecord[] = (await organization.listAccounts()).map(({ id }) => ({
    accountId: id,
    runId: yesterday,
    dryRun: false,
    status: 'planned',
    at: new Date(Date.parse(yesterday) + 60_000).toISOString(),
    queued: 0,
    consecutiveFailures: 0,
    lastPlannedAt: yesterday,
  }));
  const time = new VirtualTime();
  const meter = new ApiMeter(time, latency);
  const queue = new MeteredPlanningQueue(meter);
  const result = await dispatchAccounts(
    { plannedAt: START, dryRun: false },
    {
      directory: meteredDirectory(organization, meter),
      settings: resolveOrganizationSettings(
        discovery === 'ou-walk' ? { includeOus: [organization.rootId] } : {},
      ),
      queue,
      runs: {
        listAccountRuns: async () => {
          await meter.charge('ledger.listAccountRuns', ORG_CALLS.listAccountRuns(runs));
          return runs.map((run) => ({ ...run }));
        },
      },
      logger: quietLogger,
    },
  );
  if (result.queued !== accounts || result.finishing.length > 0)
    throw new Error(
      `the dispatcher queued ${result.queued} of ${accounts} accounts, ${result.finishing.length} finishing`,
    );
  return { accounts, ms: time.now, calls: meter.counts(), releases: queue.releases };
}

/** A member account whose IAM and Secrets Manager are a bench account's (for FakeAccountAccess). */
class BenchMemberAccount extends MemberAccount {
  override readonly iam: FakeIam;
  override readonly vault: FakeVault;

  constructor(world: OrgWorld, bench: BenchAccount) {
    super(
      ACCOUNT_ID,
      'bench',
      `arn:aws:iam::${ACCOUNT_ID}:role/${world.organizationSettings.memberRoleName}`,
      world.faults,
      world.clock,
      world.ledger,
      1,
    );
    this.iam = bench.iam;
    this.vault = bench.vault;
  }
}

/** The member role: AssumeRole charged once per session FakeAccountAccess opens; the ports metered. */
class MeteredAccountAccess implements AccountAccess {
  constructor(
    private readonly access: FakeAccountAccess,
    private readonly meter: ApiMeter,
  ) {}

  async open(accountId: string, runId: string): Promise<AccountPorts> {
    this.meter.checkDeadline();
    const sessions = this.access.sessions.length;
    const refusals = this.access.refusals.length;
    let ports: AccountPorts;
    try {
      ports = await this.access.open(accountId, runId);
    } finally {
      const sent = this.access.sessions.length - sessions + (this.access.refusals.length - refusals);
      if (sent > 0) await this.meter.charge('access.open', ORG_CALLS.assumeRole());
    }
    if (!(ports.iam instanceof FakeIam) || !(ports.vault instanceof FakeVault))
      throw new Error('the bench meters the fakes only');
    return {
      accountId,
      iam: meteredIam(ports.iam, this.meter),
      vault: meteredVault(ports.vault, this.meter),
    };
  }
}

/** The central ledger, account runs included. */
function meteredOrgLedger(ledger: FakeLedger, meter: ApiMeter): RotationLedger & AccountRunLedger {
  return {
    ...meteredLedger(ledger, meter),
    lastAccountRun: async (accountId: string) => {
      const found = await ledger.lastAccountRun(accountId);
      await meter.charge('ledger.lastAccountRun', ORG_CALLS.lastAccountRun());
      return found;
    },
    recordAccountRun: async (record: AccountRunRecord) => {
      await ledger.recordAccountRun(record);
      await meter.charge('ledger.recordAccountRun', ORG_CALLS.recordAccountRun());
    },
    listAccountRuns: () => {
      throw new Error('the planner does not list account runs');
    },
  };
}

/** Planner in organization mode for one message, on a bench account: its modelled time and requests. */
async function planInOrganization(world: BenchAccount): Promise<Omit<AccountMeasure, 'users'>> {
  const org = new OrgWorld({ start: START });
  org.members.set(ACCOUNT_ID, new BenchMemberAccount(org, world));
  const access = new MeteredAccountAccess(new FakeAccountAccess(org), world.meter);
  const config = loadPlannerConfig(LAMBDA_ENV);
  const timeoutMs = PLANNER_TIMEOUT.toMilliseconds();
  const log: LoggedCall[] = [];
  world.meter.log = log;
  const start = world.time.now;
  const slept = world.meter.sleptMs;
  world.meter.startDeadline(timeoutMs);
  try {
    const outcome = await planMemberAccount(
      {
        version: PLANNING_MESSAGE_VERSION,
        accountId: ACCOUNT_ID,
        dryRun: false,
        plannedAt: world.clock.now().toISOString(),
      },
      {
        access,
        ledger: meteredOrgLedger(world.ledger, world.meter),
        queue: world.queue,
        clock: world.meter.clock(world.clock),
        logger: quietLogger,
        settings: config.settings,
        timeLeftMs: () => start + timeoutMs - world.time.now,
        lastAttempt: true,
      },
    );
    if (outcome.status !== 'planned')
      throw new Error(
        `the bench account was not planned: ${String(outcome.status === 'failed' ? outcome.error : outcome.status)}`,
      );
    return {
      ms: world.time.now - start,
      calls: composeAccountCalls(log),
      queued: outcome.plan.messages.length,
      continued: outcome.plan.continueAfter !== undefined,
      sleptMs: world.meter.sleptMs - slept,
    };
  } finally {
    world.meter.clearDeadline();
    world.meter.log = undefined;
  }
}

/** A steady-state day: figure 1's quiet account (planned and rotated on days 0 to 8), planned on day 9. */
export async function steadyAccount(latency: LatencyModel, users: number): Promise<AccountMeasure> {
  const { world } = await quietAccount(latency, users, { eventfulOnly: true });
  world.goToDay(START, 9);
  world.workloadsUseTheirKeys();
  return { users, ...(await planInOrganization(world)) };
}

/** The share of users with a key due on an account's first day. */
export const FIRST_DAY_DUE_SHARE = 0.2;

/**
 * A first day: nothing in the ledger; FIRST_DAY_DUE_SHARE of the users have a key 76 to 119 days old
 * (to be warned of, or overdue), the others a key 0 to 75 days old. `reportStuck`: IAM is still
 * generating the credential report after the planner's wait, which then lists every user live.
 */
export async function firstDayAccount(
  latency: LatencyModel,
  users: number,
  { reportStuck = false } = {},
): Promise<AccountMeasure> {
  const world = new BenchAccount({
    latency,
    start: START,
    plannerTimeoutMs: PLANNER_TIMEOUT.toMilliseconds(),
    rotatorTimeoutMs: ROTATOR_TIMEOUT.toMilliseconds(),
  });
  const random = prng(23);
  // Every fifth user (spread over the name order the planner works in).
  const dueEvery = Math.round(1 / FIRST_DAY_DUE_SHARE);
  for (let index = 0; index < users; index++) {
    const ageDays = index % dueEvery === 0 ? 76 + Math.floor(random() * 44) : Math.floor(random() * 76);
    world.addUser(`user-${String(index).padStart(5, '0')}`, [{ ageDays, lastUsedDaysAgo: 0 }]);
  }
  world.workloadsUseTheirKeys();
  if (reportStuck) world.iam.reportGenerationPolls = 1_000;
  return { users, ...(await planInOrganization(world)) };
}

export interface OrganizationFigures {
  readonly accounts: number;
  readonly concurrency: number;
  readonly sizes: readonly number[];
  readonly dispatch: DispatchMeasure;
  readonly walk: DispatchMeasure;
  readonly steady: ReadonlyMap<number, AccountMeasure>;
  readonly first: ReadonlyMap<number, AccountMeasure>;
  readonly steadyDay: OrganizationDay;
  readonly firstDay: OrganizationDay;
  /** The largest account's first day with the credential report not ready in time. */
  readonly reportStuck: AccountMeasure;
}

export async function organizationFigures(
  latency: LatencyModel,
  accounts = 1000,
): Promise<OrganizationFigures> {
  const concurrency = resolveOrganizationSettings({}).planConcurrency;
  const sizes = accountSizes(accounts);
  const dispatch = await dispatchOrganization(latency, accounts, 'list-accounts');
  const walk = await dispatchOrganization(latency, accounts, 'ou-walk');
  const steady = new Map<number, AccountMeasure>();
  const first = new Map<number, AccountMeasure>();
  for (const { users } of SIZE_CLASSES) {
    steady.set(users, await steadyAccount(latency, users));
    first.set(users, await firstDayAccount(latency, users));
  }
  const largest = Math.max(...SIZE_CLASSES.map((size) => size.users));
  return {
    accounts,
    concurrency,
    sizes,
    dispatch,
    walk,
    steady,
    first,
    steadyDay: composeOrganization(sizes, steady, dispatch, concurrency),
    firstDay: composeOrganization(sizes, first, dispatch, concurrency),
    reportStuck: await firstDayAccount(latency, largest, { reportStuck: true }),
  };
}

// ---------------------------------------------------------------------------------------------
// What run.ts prints

/** A row of run.ts's tables (its Row). */
export interface FigureRow {
  readonly id: string;
  readonly label: string;
  readonly value: number | undefined;
  readonly unit: 'calls' | 's' | 'count';
  readonly target?: { readonly op: '<=' | '<'; readonly value: number };
  readonly note?: string;
}

/** The issue's limit on one planner invocation. */
export const PLANNER_INVOCATION_TARGET_MS = 5 * 60_000;
/** The issue's limit on one account's calls with nothing due: the AssumeRole plus the single-account figure. */
export const QUIET_ACCOUNT_TARGET_CALLS = 6;

const count = (value: number) => value.toLocaleString('en');
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function describeOps(ops: Counts): string {
  return [...ops]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([op, n]) => `${op} ${n}`)
    .join(', ');
}

function describeComposition(calls: AccountCalls): string {
  return `AssumeRole ${calls.assumeRole} + single-account planning ${calls.planning} + account-run record ${calls.accountRecord}`;
}

function dispatcherCalls(dispatch: DispatchMeasure): number {
  let total = 0;
  for (const n of dispatch.calls.values()) total += n;
  return total;
}

export function organizationTitle(figures: OrganizationFigures): string {
  return (
    `7. Organization: ${count(figures.accounts)} member accounts of 10 to 5,000 users, planConcurrency ` +
    `${figures.concurrency} (the default): dispatcher, then planners over the planning queue`
  );
}

export function organizationRows(figures: OrganizationFigures): FigureRow[] {
  const sizes = [...figures.steady.keys()].sort((a, b) => a - b);
  const smallest = figures.steady.get(sizes[0]!)!;
  const largest = figures.steady.get(sizes.at(-1)!)!;
  const { steadyDay, firstDay, reportStuck } = figures;
  return [
    {
      id: 'org.steady.ms',
      label: 'a steady-state day (nothing due): the whole daily run',
      value: steadyDay.makespan,
      unit: 's',
      note: `(${count(steadyDay.totalCalls)} calls; ${count(steadyDay.queued)} users queued)`,
    },
    {
      id: 'org.first.ms',
      label: `a first day (${FIRST_DAY_DUE_SHARE * 100}% of the users with a key due): the whole daily run`,
      value: firstDay.makespan,
      unit: 's',
      note: `(${count(firstDay.totalCalls)} calls; ${count(firstDay.queued)} users queued)`,
    },
    {
      id: 'org.planner.longest.ms',
      label: `the longest planner invocation (first day, ${count(firstDay.longest.users)} users)`,
      value: firstDay.longest.ms,
      unit: 's',
      target: { op: '<', value: PLANNER_INVOCATION_TARGET_MS },
      note: `(steady state: ${seconds(steadyDay.longest.ms)}, ${count(steadyDay.longest.users)} users)`,
    },
    {
      id: 'org.planner.reportStuck.ms',
      label: `  the same account, its credential report not ready in the planner's wait`,
      value: reportStuck.ms,
      unit: 's',
      target: { op: '<', value: PLANNER_INVOCATION_TARGET_MS },
      note: `(users listed live: ${count(reportStuck.calls.total)} calls${reportStuck.continued ? '; continued in a new message' : ''})`,
    },
    {
      id: 'org.quiet.smallest.calls',
      label: `calls per account, nothing due: ${count(smallest.users)} users`,
      value: smallest.calls.total,
      unit: 'calls',
      target: { op: '<=', value: QUIET_ACCOUNT_TARGET_CALLS },
      note: `(${describeComposition(smallest.calls)})`,
    },
    {
      id: 'org.quiet.largest.calls',
      label: `calls per account, nothing due: ${count(largest.users)} users`,
      value: largest.calls.total,
      unit: 'calls',
      target: { op: '<=', value: QUIET_ACCOUNT_TARGET_CALLS },
      note: `(${describeComposition(largest.calls)})`,
    },
    {
      id: 'org.dispatcher.calls',
      label: `dispatcher: calls (ListAccounts, ${ORGANIZATIONS_PAGE_SIZE} a page; account runs, a Query page per 1 MB; SendMessageBatch of 10)`,
      value: dispatcherCalls(figures.dispatch),
      unit: 'calls',
      note: `(${describeOps(figures.dispatch.calls)})`,
    },
    {
      id: 'org.dispatcher.ms',
      label: 'dispatcher: modelled time',
      value: figures.dispatch.ms,
      unit: 's',
    },
    {
      id: 'org.dispatcher.walk.calls',
      label: `dispatcher with includeOus [the root]: calls (an OU walk of ${TOP_OUS * CHILD_OUS + TOP_OUS + 1} OUs)`,
      value: dispatcherCalls(figures.walk),
      unit: 'calls',
      note: `(${describeOps(figures.walk.calls)})`,
    },
    {
      id: 'org.dispatcher.walk.ms',
      label: 'dispatcher with includeOus [the root]: modelled time',
      value: figures.walk.ms,
      unit: 's',
    },
  ];
}

export function organizationNotes(figures: OrganizationFigures): string[] {
  const classes = [...figures.steady.keys()].sort((a, b) => a - b);
  const inClass = (users: number) => figures.sizes.filter((size) => size === users).length;
  const totalUsers = figures.sizes.reduce((sum, users) => sum + users, 0);
  const smallest = figures.steady.get(classes[0]!)!;
  const largest = figures.steady.get(classes.at(-1)!)!;
  const stuck = figures.reportStuck;
  const lines = [
    `  Composed from measured per-size results: one account of each size planned for real (planMemberAccount through ` +
      `FakeAccountAccess, the account's metered IAM, the central metered ledger and work queue), on a steady-state day ` +
      `(figure 1's quiet account: planned and rotated on days 0-8, reviews in the ledger, planned on day 9) and on a first ` +
      `day (empty ledger; every fifth user's key 76-119 days old, to be warned of or overdue, the others' 0-75). The ` +
      `dispatcher runs for real on a fake organization of ${count(figures.accounts)} accounts (10 OUs under the root, 5 under ` +
      `each); each account's planner then takes its size's measured time, and the planners are scheduled over the ` +
      `planning queue: each message, in the order sent, taken by the first free planner once its SendMessageBatch is ` +
      `done, at most planConcurrency at once (makespan from the dispatcher's start). Not modelled: Lambda's SQS poller ` +
      `(polling, scaling up), cold starts, retries; the rotators draining the work queue are not part of this figure.`,
    `  the accounts (seed ${SIZE_SEED}): ${classes.map((users) => `${inClass(users)} of ${count(users)} users`).join(', ')} ` +
      `(${count(totalUsers)} users)`,
    '  per size:        steady state (ms, calls)      first day (ms, calls, users queued)',
  ];
  for (const users of classes) {
    const steady = figures.steady.get(users)!;
    const first = figures.first.get(users)!;
    lines.push(
      `    ${count(users).padStart(5)} users  ${seconds(steady.ms).padStart(8)} ${String(steady.calls.total).padStart(5)}` +
        `               ${seconds(first.ms).padStart(8)} ${String(first.calls.total).padStart(5)} ${count(first.queued).padStart(7)}`,
    );
  }
  const day = (name: string, composed: OrganizationDay) =>
    `  ${name}: planners busy ${seconds(composed.plannerBusyMs)} in all, ${composed.schedule.peak} at once at most, ` +
    `a message waited up to ${seconds(composed.schedule.longestWait)} for a planner; ${count(composed.plannerCalls)} planner calls`;
  lines.push(day('steady state', figures.steadyDay), day('first day', figures.firstDay));
  lines.push(
    `  nothing due, ${count(largest.users)} users: ${describeOps(largest.calls.planningOps)} (the single-account figure: ` +
      `${largest.calls.planning}; a Query page reads at most 1 MB of screening-index items); every account adds the ` +
      `AssumeRole and the account-run record (one PutItem per account and run, which the target's "AssumeRole plus the ` +
      `single-account figure" does not count).`,
    `  of each steady-state planner's ${seconds(smallest.ms)}, ${seconds(smallest.sleptMs)} is waiting for IAM to generate ` +
      `the credential report (one poll in the fake): the day is ~${count(figures.accounts)} accounts x ` +
      `${seconds(smallest.ms)} / ${figures.concurrency} planners at once.`,
    `  when the report is not ready: the planner polls it for ${seconds(stuck.sleptMs)}, then lists every user live (one ` +
      `ListAccessKeys per user, ${DEFAULT_PLAN_OPTIONS.concurrency} users at once): ${describeOps(stuck.calls.planningOps)}; ${seconds(stuck.ms)} for ${count(stuck.users)} ` +
      `users, within the function's ${PLANNER_TIMEOUT.toMinutes()} min timeout (it checkpoints with 60 s left), ` +
      `${stuck.ms < PLANNER_INVOCATION_TARGET_MS ? 'under' : 'over'} the 5 minutes.`,
  );
  return lines;
}
