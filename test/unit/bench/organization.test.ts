/** The pure parts of the bench's organization figure: sizes, the planners' schedule, the composition. */
import type { LoggedCall } from '../../../bench/meter';
import {
  AccountMeasure,
  accountSizes,
  composeAccountCalls,
  accountRunItemBytes,
  composeOrganization,
  DispatchMeasure,
  dispatchOrganization,
  ORG_CALLS,
  schedulePlanners,
  SIZE_CLASSES,
} from '../../../bench/organization';

const job = (duration: number, release = 0) => ({ release, duration });

describe('schedulePlanners', () => {
  test('no more planners at once than the concurrency: the makespan follows it', () => {
    const jobs = Array.from({ length: 20 }, () => job(5));

    expect(schedulePlanners(jobs, 1)).toMatchObject({ makespan: 100, peak: 1 });
    expect(schedulePlanners(jobs, 10)).toMatchObject({ makespan: 10, peak: 10 });
    expect(schedulePlanners(jobs, 20)).toMatchObject({ makespan: 5, peak: 20 });
    expect(schedulePlanners(jobs, 50)).toMatchObject({ makespan: 5, peak: 20 });
  });

  test('messages are taken in queue order by the first free planner', () => {
    // Two planners: the long one comes last and starts when the first planner frees up.
    const schedule = schedulePlanners([job(1), job(1), job(1), job(10)], 2);

    expect(schedule.starts).toEqual([0, 0, 1, 1]);
    expect(schedule.ends).toEqual([1, 1, 2, 11]);
    expect(schedule.makespan).toBe(11);
  });

  test('a message is not planned before it was sent; idle planners wait for it', () => {
    const schedule = schedulePlanners([job(3, 0), job(3, 100), job(3, 101)], 10);

    expect(schedule.starts).toEqual([0, 100, 101]);
    expect(schedule.makespan).toBe(104);
    expect(schedule.longestWait).toBe(0);
  });

  test('the longest wait in the queue is reported', () => {
    const schedule = schedulePlanners([job(10, 0), job(10, 2)], 1);

    expect(schedule.starts).toEqual([0, 10]);
    expect(schedule.longestWait).toBe(8);
  });

  test('a planner finishing and another starting at the same instant are not two at once', () => {
    expect(schedulePlanners([job(5), job(5), job(5)], 1).peak).toBe(1);
  });

  test('no jobs: nothing to wait for; a concurrency below 1 is refused', () => {
    expect(schedulePlanners([], 10)).toMatchObject({ makespan: 0, peak: 0 });
    expect(() => schedulePlanners([job(1)], 0)).toThrow(/at least 1/);
    expect(() => schedulePlanners([job(1)], 2.5)).toThrow(/whole number/);
  });
});

describe('accountSizes', () => {
  const tally = (sizes: readonly number[]) => {
    const counts = new Map<number, number>();
    for (const users of sizes) counts.set(users, (counts.get(users) ?? 0) + 1);
    return Object.fromEntries(counts);
  };

  test('1,000 accounts: most small, a long tail of large ones, 10 to 5,000 users', () => {
    const sizes = accountSizes(1000);

    expect(sizes).toHaveLength(1000);
    expect(tally(sizes)).toEqual({ 10: 400, 50: 250, 200: 200, 1000: 100, 2500: 40, 5000: 10 });
    expect(Math.min(...sizes)).toBe(10);
    expect(Math.max(...sizes)).toBe(5000);
  });

  test('the same seed gives the same organization, another seed another order', () => {
    expect(accountSizes(1000, SIZE_CLASSES, 7)).toEqual(accountSizes(1000, SIZE_CLASSES, 7));
    expect(accountSizes(1000, SIZE_CLASSES, 7)).not.toEqual(accountSizes(1000, SIZE_CLASSES, 8));
    // Shuffled: the large accounts are not all at the end.
    expect(accountSizes(1000).slice(0, 500)).toContain(5000);
  });

  test('counts add up to the accounts asked for, by largest remainders', () => {
    const sizes = accountSizes(7, [
      { users: 1, share: 0.5 },
      { users: 2, share: 0.3 },
      { users: 3, share: 0.2 },
    ]);

    // 3.5, 2.1 and 1.4: the 0.5 and the 0.4 remainders get the two accounts left.
    expect(tally(sizes)).toEqual({ 1: 4, 2: 2, 3: 1 });
  });

  test('shares that do not add up to 1 are refused', () => {
    expect(() => accountSizes(10, [{ users: 10, share: 0.5 }])).toThrow(/add up to 1/);
  });
});

const call = (op: string, via: string): LoggedCall => ({ op, via, at: 0 });

describe('composeAccountCalls', () => {
  test('AssumeRole, the single-account planning and the account-run record, told apart by port', () => {
    const calls = composeAccountCalls([
      call('sts:AssumeRole', 'access.open'),
      call('iam:GenerateCredentialReport', 'iam.generateCredentialReport'),
      call('iam:GenerateCredentialReport', 'iam.generateCredentialReport'),
      call('iam:GetCredentialReport', 'iam.getCredentialReport'),
      call('dynamodb:Query', 'ledger.screenAccount'),
      call('dynamodb:Query', 'ledger.screenAccount'),
      call('dynamodb:PutItem', 'ledger.recordAccountRun'),
    ]);

    expect(calls).toMatchObject({ assumeRole: 1, planning: 5, accountRecord: 1, total: 7 });
    expect(Object.fromEntries(calls.planningOps)).toEqual({
      'iam:GenerateCredentialReport': 2,
      'iam:GetCredentialReport': 1,
      'dynamodb:Query': 2,
    });
  });

  test("a user record's PutItem is planning, not the account-run record", () => {
    const calls = composeAccountCalls([
      call('dynamodb:PutItem', 'ledger.save'),
      call('dynamodb:GetItem', 'ledger.lastAccountRun'),
    ]);

    expect(calls).toMatchObject({ assumeRole: 0, planning: 1, accountRecord: 1, total: 2 });
  });
});

describe('ORG_CALLS', () => {
  test('Organizations list calls: one per page of 20, at least one', () => {
    expect(ORG_CALLS.listAccounts(0)).toEqual(['organizations:ListAccounts']);
    expect(ORG_CALLS.listAccounts(20)).toHaveLength(1);
    expect(ORG_CALLS.listAccounts(21)).toHaveLength(2);
    expect(ORG_CALLS.listAccounts(1000)).toHaveLength(50);
    expect(ORG_CALLS.listChildren(5)).toEqual(['organizations:ListChildren']);
    expect(ORG_CALLS.listAccountsForParent(41)).toHaveLength(3);
    expect(ORG_CALLS.assumeRole()).toEqual(['sts:AssumeRole']);
  });

  test("the dispatcher's account-run Query: one per 1 MB of records, at least one", () => {
    const record = (index: number) => ({
      accountId: String(100000000000 + index),
      runId: '2026-01-01T02:00:00.000Z',
      dryRun: false,
      status: 'planned' as const,
      at: '2026-01-01T02:01:00.000Z',
      queued: 0,
      consecutiveFailures: 0,
      lastPlannedAt: '2026-01-01T02:00:00.000Z',
    });
    const bytes = accountRunItemBytes(record(0));
    expect(bytes).toBeGreaterThan(150);
    expect(bytes).toBeLessThan(400);
    expect(ORG_CALLS.listAccountRuns([])).toEqual(['dynamodb:Query']);
    const perPage = Math.floor((1024 * 1024) / bytes);
    const records = (n: number) => Array.from({ length: n }, (_, index) => record(index));
    expect(ORG_CALLS.listAccountRuns(records(1000))).toEqual(['dynamodb:Query']);
    expect(ORG_CALLS.listAccountRuns(records(perPage + 1))).toEqual(['dynamodb:Query', 'dynamodb:Query']);
  });
});

describe('dispatchOrganization', () => {
  test("counts the ledger's account-run Query with the Organizations pages and the sends", async () => {
    const measure = await dispatchOrganization({ iamMs: 100, otherMs: 20 }, 45, 'list-accounts');

    expect([...measure.calls].sort()).toEqual([
      ['dynamodb:Query', 1],
      ['organizations:ListAccounts', 3],
      ['sqs:SendMessageBatch', 5],
    ]);
    expect(measure.ms).toBe((1 + 3 + 5) * 20);
    expect(measure.releases).toHaveLength(45);
  });
});

describe('composeOrganization', () => {
  const measure = (users: number, ms: number, total: number, queued = 0): AccountMeasure => ({
    users,
    ms,
    calls: { assumeRole: 1, planning: total - 2, accountRecord: 1, total, planningOps: new Map() },
    queued,
    continued: false,
    sleptMs: 0,
  });
  const measured = new Map([
    [10, measure(10, 1000, 6)],
    [5000, measure(5000, 3000, 106, 1000)],
  ]);
  const dispatch = (releases: number[]): DispatchMeasure => ({
    accounts: releases.length,
    ms: Math.max(0, ...releases),
    calls: new Map([
      ['organizations:ListAccounts', 1],
      ['sqs:SendMessageBatch', 1],
    ]),
    releases,
  });

  test('each account takes its size class: calls add up, the longest names its size', () => {
    const day = composeOrganization([10, 5000, 10, 10], measured, dispatch([20, 20, 20, 20]), 2);

    expect(day.plannerCalls).toBe(6 * 3 + 106);
    expect(day.totalCalls).toBe(6 * 3 + 106 + 2);
    expect(day.queued).toBe(1000);
    expect(day.longest).toEqual({ users: 5000, ms: 3000 });
    expect(day.plannerBusyMs).toBe(6000);
    // Two planners from 20 ms: 10 and 5000 at once; the two small ones follow the first small one.
    expect(day.schedule.starts).toEqual([20, 20, 1020, 2020]);
    expect(day.makespan).toBe(3020);
  });

  test('an account size without a measurement, or a message short, is refused', () => {
    expect(() => composeOrganization([200], measured, dispatch([0]), 10)).toThrow(/no measurement/);
    expect(() => composeOrganization([10, 10], measured, dispatch([0]), 10)).toThrow(/planning messages/);
  });
});
