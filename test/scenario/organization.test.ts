/**
 * Organization mode end to end on the fakes: the dispatcher, the planning queue, the planners and
 * the rotators of the real services over an organization of member accounts, each with its own IAM
 * and Secrets Manager, and member roles that fail as STS does.
 *
 * The organization (account names; `*` = selected):
 *
 *   root
 *   ├── Workloads (included)
 *   │   ├── prod-a *
 *   │   ├── Prod
 *   │   │   ├── prod-b *
 *   │   │   └── Payments
 *   │   │       └── payments *
 *   │   └── Sandbox (excluded OU)
 *   │       └── sandbox
 *   ├── Shared (included)
 *   │   ├── shared-services *
 *   │   └── log-archive (excluded account)
 *   └── outside (under the root only: not in an included OU)
 *
 * Every account holds users of the same names, so that a secret written to the wrong account, or a
 * ledger record filed under the wrong one, shows.
 */
import { inspect } from 'node:util';
import { METRIC, PLANNING_MAX_RECEIVE_COUNT } from '../../lambda/contract';
import { MemberRoleAccessDeniedError, MemberSessionUnavailableError } from '../../lambda/domain/errors';
import type { KeyCredentials } from '../../lambda/domain/model';
import { ActionKind, KEY_CHANGING_ACTIONS } from '../../lambda/domain/policy';
import { daysBetween } from '../../lambda/domain/time';
import type { FakeKey } from '../fakes/iam';
import { findSecrets, secretLossProblems, storedKey, unrecoverableKeyProblems } from '../fakes/invariants';
import { AccessFailure, MemberAccount, OrgDay, OrgWorld } from '../fakes/org-world';

const OWNER_TAG = 'key-rotation:owner';
const EXEMPT_TAG = 'key-rotation:exempt';
const PAST_THE_LEASE_MS = 16 * 60_000;

interface Org {
  readonly world: OrgWorld;
  /** Selected accounts, by name. */
  readonly selected: ReadonlyMap<string, MemberAccount>;
  /** Accounts the run must never touch, by name. */
  readonly untouched: ReadonlyMap<string, MemberAccount>;
}

/** The organization of the header; `populate` seeds each account's users. */
function organization(populate: (member: MemberAccount) => void): Org {
  const world = new OrgWorld();
  const workloads = world.addOu();
  const prod = world.addOu(workloads);
  const payments = world.addOu(prod);
  const sandbox = world.addOu(workloads);
  const shared = world.addOu();
  const accounts = {
    'prod-a': world.addAccount(workloads, { name: 'prod-a' }),
    'prod-b': world.addAccount(prod, { name: 'prod-b' }),
    payments: world.addAccount(payments, { name: 'payments' }),
    sandbox: world.addAccount(sandbox, { name: 'sandbox' }),
    'shared-services': world.addAccount(shared, { name: 'shared-services' }),
    'log-archive': world.addAccount(shared, { name: 'log-archive' }),
    outside: world.addAccount(undefined, { name: 'outside' }),
  };
  world.configure({
    includeOus: [workloads, shared],
    excludeOus: [sandbox],
    excludeAccounts: [accounts['log-archive'].accountId],
  });
  for (const member of Object.values(accounts)) populate(member);
  const pick = (names: string[]) =>
    new Map(names.map((name) => [name, accounts[name as keyof typeof accounts]]));
  return {
    world,
    selected: pick(['prod-a', 'prod-b', 'payments', 'shared-services']),
    untouched: pick(['sandbox', 'log-archive', 'outside']),
  };
}

/** One user with an 85-day key in use (rotated at once) and one with a fresh key (nothing due). */
function dueUsers(member: MemberAccount): void {
  member.iam.addUser('svc-app', { tags: { [OWNER_TAG]: 'app-team@example.com' } });
  member.iam.addKey('svc-app', { ageDays: 85, lastUsedDaysAgo: 0 });
  member.iam.addUser('svc-fresh', { tags: { [OWNER_TAG]: 'app-team@example.com' } });
  member.iam.addKey('svc-fresh', { ageDays: 10, lastUsedDaysAgo: 0 });
}

/** The key the service created for a user, with the secret CreateAccessKey returned. */
function createdKey(member: MemberAccount, userName: string): FakeKey | undefined {
  return member.iam.users.get(userName)?.keys.find((key) => key.createdByApi);
}

/** Every secret value stored in the account's vault, as text. */
function storedValues(member: MemberAccount): string[] {
  return [...member.vault.secrets.values()].flatMap((secret) =>
    [...secret.versions.values()].map((version) => version.value),
  );
}

/** The ledger's records (users and account runs) as stored, for before/after comparisons. */
function ledgerState(world: OrgWorld): string {
  return JSON.stringify({
    users: [...world.ledger.items.entries()].sort(),
    accountRuns: [...world.ledger.accountRuns.entries()].sort(),
    owners: [...world.ledger.ownerSubscriptions.entries()].sort(),
  });
}

// ---------------------------------------------------------------------------------------------------

describe('a first run over the organization', () => {
  let org: Org;
  let day: OrgDay;
  const before = new Map<string, string>();

  beforeAll(async () => {
    org = organization(dueUsers);
    for (const [name, member] of org.untouched) before.set(name, member.iam.snapshot());
    day = await org.world.runDay();
  });

  test('dispatches the selected accounts only, with the reason for each left out', () => {
    const ids = (names: Iterable<string>) =>
      [...names].map((name) => org.selected.get(name) ?? org.untouched.get(name)!).map((m) => m.accountId);
    expect(day.dispatch.selected.map((account) => account.accountId).sort()).toEqual(
      ids(org.selected.keys()).sort(),
    );
    expect(day.dispatch.queued).toBe(4);
    const reasons = Object.fromEntries(day.dispatch.skipped.map((s) => [s.accountId, s.reason]));
    expect(reasons[org.untouched.get('sandbox')!.accountId]).toBe('excluded-ou');
    expect(reasons[org.untouched.get('log-archive')!.accountId]).toBe('excluded-account');
    expect(day.deadLetters).toEqual([]);
  });

  test('rotates the due key in every selected account, its secret in that account only', () => {
    for (const [name, member] of org.selected) {
      const created = createdKey(member, 'svc-app');
      expect([name, created?.status]).toEqual([name, 'Active']);
      // Stored in its own account's vault, as AWSCURRENT, with its own secret.
      expect(storedKey(member, 'svc-app', created!.accessKeyId)?.SecretAccessKey).toBe(
        created!.secretAccessKey,
      );
      expect(member.vault.readStage(member.secretName('svc-app'))?.accessKeyId).toBe(created!.accessKeyId);
      expect(member.vault.canRead(member.secretName('svc-app'), member.iam.users.get('svc-app')!.arn)).toBe(
        true,
      );
      // In no other account's vault.
      for (const other of org.world.members.values()) {
        if (other === member) continue;
        expect(storedValues(other).filter((value) => value.includes(created!.secretAccessKey))).toEqual([]);
        expect(other.vault.secrets.has(member.secretName('svc-app'))).toBe(false);
      }
      // The old key keeps working through the grace; the fresh user is left alone.
      expect(member.iam.users.get('svc-app')!.keys.map((key) => key.status)).toEqual(['Active', 'Active']);
      expect(member.iam.users.get('svc-fresh')!.keys).toHaveLength(1);
      expect(secretLossProblems(member)).toEqual([]);
    }
  });

  test('reads or changes nothing in excluded accounts, and opens one session per selected account', () => {
    for (const [name, member] of org.untouched) {
      expect([name, member.faults.calls]).toEqual([name, []]);
      expect(member.iam.snapshot()).toBe(before.get(name));
      expect(member.vault.secrets.size).toBe(0);
      expect(org.world.ledger.peekAccountRun(member.accountId)).toBeUndefined();
      expect(org.world.ledger.peek(member.accountId, 'svc-app')).toBeUndefined();
    }
    for (const [name, member] of org.selected) {
      expect([name, member.faults.count('sts:AssumeRole')]).toEqual([name, 1]);
      expect([name, member.faults.count('iam:CreateAccessKey')]).toEqual([name, 1]);
    }
    expect(org.world.access.sessions).toEqual(
      [...org.selected.values()].map((member) => ({ accountId: member.accountId, runId: day.runId })),
    );
  });

  test('files every ledger record, account run and notice under its own account', async () => {
    for (const [name, member] of org.selected) {
      const record = org.world.ledger.peek(member.accountId, 'svc-app');
      expect([name, record?.accountId]).toEqual([name, member.accountId]);
      expect(record?.history.some((entry) => entry.action === 'key.rotated')).toBe(true);
      expect(record?.lock).toBeUndefined();
      expect(record?.inFlight).toBeUndefined();
      expect(org.world.ledger.peekAccountRun(member.accountId)).toMatchObject({
        accountId: member.accountId,
        runId: day.runId,
        status: 'planned',
        dryRun: false,
        consecutiveFailures: 0,
        lastPlannedAt: day.runId,
      });
    }
    expect((await org.world.ledger.listAccountRuns()).map((run) => run.accountId).sort()).toEqual(
      [...org.selected.values()].map((member) => member.accountId).sort(),
    );
    const rotated = org.world.notifier.published.filter((notice) => notice.event === 'key.rotated');
    expect(rotated.map((notice) => [notice.accountId, notice.userName]).sort()).toEqual(
      [...org.selected.values()].map((member) => [member.accountId, 'svc-app']).sort(),
    );
    for (const notice of rotated) {
      expect(notice.text).toContain(org.world.member(notice.accountId).secretName('svc-app'));
    }
    expect(org.world.notifier.opsMessages.filter((n) => n.event === 'account.unreachable')).toEqual([]);
    expect(org.world.logger.audits('rotation.failed')).toEqual([]);
  });

  test('the next run opens new sessions for its own run id and rotates nothing again (I5)', async () => {
    org.world.clock.advanceDays(1);
    const next = await org.world.runDay();
    expect(next.runId).not.toBe(day.runId);
    for (const member of org.selected.values()) {
      expect(member.iam.apiCreatedKeys()).toHaveLength(1);
      expect(member.faults.count('sts:AssumeRole')).toBe(2);
    }
    for (const [name, member] of org.untouched) expect([name, member.faults.calls]).toEqual([name, []]);
  });
});

// ---------------------------------------------------------------------------------------------------

describe('a long planning run continues through the planning queue', () => {
  test('each continuation plans the users after the last one handled, and every user is rotated', async () => {
    const org = organization((member) => {
      for (const name of ['svc-a', 'svc-b', 'svc-c', 'svc-d', 'svc-e']) {
        member.iam.addUser(name, { tags: { [OWNER_TAG]: 'app-team@example.com' } });
        member.iam.addKey(name, { ageDays: 85, lastUsedDaysAgo: 0 });
      }
    });
    const day = await org.world.runDay({ usersPerPlannerInvocation: 2 });

    const prodA = org.selected.get('prod-a')!;
    const deliveries = day.accounts.get(prodA.accountId)!.deliveries;
    expect(deliveries.map((outcome) => outcome.status)).toEqual(['planned', 'planned', 'planned']);
    const continuations = org.world.planningQueue.sent.filter(
      (message) => message.accountId === prodA.accountId && message.startAfter !== undefined,
    );
    expect(continuations.map((message) => [message.startAfter, message.plannedAt])).toEqual([
      ['svc-b', day.runId],
      ['svc-d', day.runId],
    ]);
    for (const member of org.selected.values()) {
      expect(
        member.iam
          .apiCreatedKeys()
          .map(({ user }) => user.userName)
          .sort(),
      ).toEqual(['svc-a', 'svc-b', 'svc-c', 'svc-d', 'svc-e']);
      // One session for the whole run, continuations included.
      expect(member.faults.count('sts:AssumeRole')).toBe(1);
    }
    for (const member of org.untouched.values()) expect(member.faults.calls).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------

describe('120 days of daily runs over the organization', () => {
  const DAYS = 120;
  const MAX_KEY_AGE = 90;

  interface Workload {
    readonly member: MemberAccount;
    readonly userName: string;
    credentials: KeyCredentials;
  }

  /** Per account: keys aging from several starting ages, an exempt user and a foreign pair (I3). */
  function population(member: MemberAccount): void {
    for (const age of [0, 30, 60, 79]) {
      member.iam.addUser(`svc-${age}`, { tags: { [OWNER_TAG]: `team-${age}@example.com` } });
      member.iam.addKey(`svc-${age}`, { ageDays: age, lastUsedDaysAgo: 0 });
    }
    member.iam.addUser('vendor', { tags: { [EXEMPT_TAG]: 'vendor appliance' } });
    member.iam.addKey('vendor', { ageDays: 150, lastUsedDaysAgo: 1 });
    member.iam.addUser('svc-pair', { tags: { [OWNER_TAG]: 'pair@example.com' } });
    member.iam.addKey('svc-pair', { ageDays: 100, lastUsedDaysAgo: 2 });
    member.iam.addKey('svc-pair', { ageDays: 20, lastUsedDaysAgo: 1 });
  }
  const UNTOUCHABLE = ['vendor', 'svc-pair'];

  const keysOf = (member: MemberAccount, userName: string) =>
    JSON.stringify(
      member.iam.users.get(userName)!.keys.map((key) => [key.accessKeyId, key.status, key.createDate]),
    );

  let org: Org;
  const violations: string[] = [];
  const rotations = new Map<string, number>();
  let announcedChanges = 0;

  beforeAll(async () => {
    org = organization(population);
    const { world } = org;
    const workloads: Workload[] = [...org.selected.values()].flatMap((member) =>
      [0, 30, 60, 79].map((age) => {
        const key = member.iam.users.get(`svc-${age}`)!.keys[0]!;
        return { member, userName: `svc-${age}`, credentials: key };
      }),
    );
    const untouchedKeys = new Map<string, string>();
    for (const member of world.members.values()) {
      for (const name of UNTOUCHABLE) untouchedKeys.set(`${member.name}/${name}`, keysOf(member, name));
    }
    const outsideBefore = [...org.untouched.values()].map((member) => member.iam.snapshot());

    for (let d = 0; d < DAYS; d++) {
      // Workloads read the secret's AWSCURRENT (after the previous day's run), then sign a request (I2).
      for (const workload of workloads) {
        const current = workload.member.vault.readStage(workload.member.secretName(workload.userName));
        if (current) workload.credentials = current;
        if (!workload.member.iam.use(workload.credentials)) {
          violations.push(`day ${d}: ${workload.member.name}/${workload.userName}: workload cut off`);
        }
      }

      // I6: a dry run of the organization writes nothing anywhere and announces what the run does.
      const ledgerBefore = ledgerState(world);
      const published = world.notifier.published.length;
      const writesBefore = new Map([...world.members].map(([id, member]) => [id, member.writes().length]));
      const dry = await world.runDay({ dryRun: true });
      for (const member of world.members.values()) {
        const writes = member.writes().slice(writesBefore.get(member.accountId));
        if (writes.length > 0)
          violations.push(`day ${d}: dry run wrote ${writes.join(', ')} in ${member.name}`);
      }
      if (ledgerState(world) !== ledgerBefore) violations.push(`day ${d}: dry run wrote to the ledger`);
      if (world.notifier.published.length !== published) violations.push(`day ${d}: dry run published`);

      const run = await world.runDay();
      for (const member of org.selected.values()) {
        const announced = (dry.accounts.get(member.accountId)?.plans ?? []).flatMap((plan) =>
          plan.users.flatMap((user) =>
            user.actions.flatMap((action) =>
              KEY_CHANGING_ACTIONS.has(action.kind) && 'keyId' in action
                ? [`${user.userName} ${action.kind === 'make-room' ? 'delete' : action.kind} ${action.keyId}`]
                : [],
            ),
          ),
        );
        const account = run.accounts.get(member.accountId);
        const done = (account?.outcomes ?? []).flatMap((outcome) =>
          outcome.performed
            .filter((action) => KEY_CHANGING_ACTIONS.has(action.kind as ActionKind))
            .map((action) => `${outcome.userName} ${action.kind} ${action.keyId}`),
        );
        announcedChanges += done.length;
        if (JSON.stringify(announced.sort()) !== JSON.stringify(done.sort())) {
          violations.push(
            `day ${d}: ${member.name}: dry run said ${JSON.stringify(announced)}, run did ${JSON.stringify(done)}`,
          );
        }
        for (const failure of account?.failures ?? []) {
          violations.push(`day ${d}: ${member.name}/${failure.userName}: ${String(failure.error)}`);
        }
        if (account?.deliveries.some((outcome) => outcome.status !== 'planned')) {
          violations.push(`day ${d}: ${member.name} was not planned`);
        }
        const rotated = (account?.outcomes ?? []).flatMap((outcome) =>
          outcome.performed.filter((action) => action.kind === 'rotate'),
        );
        rotations.set(member.name, (rotations.get(member.name) ?? 0) + rotated.length);
        checkAccount(member, d);
      }
      for (const [name, keys] of untouchedKeys) {
        const [accountName, userName] = name.split('/') as [string, string];
        const member = [...world.members.values()].find((m) => m.name === accountName)!;
        if (keysOf(member, userName) !== keys) violations.push(`day ${d}: ${name} changed (I7, I3)`);
      }
      world.clock.advanceDays(1);
    }
    [...org.untouched.values()].forEach((member, index) => {
      if (member.iam.snapshot() !== outsideBefore[index]) violations.push(`${member.name} was changed`);
      if (member.faults.calls.length > 0) violations.push(`${member.name} was called`);
    });

    function checkAccount(member: MemberAccount, d: number): void {
      // I1 in every account.
      for (const problem of [...secretLossProblems(member), ...unrecoverableKeyProblems(member)]) {
        violations.push(`day ${d}: ${member.name}: ${problem}`);
      }
      for (const user of member.iam.users.values()) {
        // I5: nothing half-done or locked after a run.
        const record = world.ledger.peek(member.accountId, user.userName);
        if (record && (record.inFlight || record.outbox.length > 0 || record.lock)) {
          violations.push(`day ${d}: ${member.name}/${user.userName}: ledger left ${JSON.stringify(record)}`);
        }
        // No active key reaches the maximum age (the untouchable users aside).
        if (UNTOUCHABLE.includes(user.userName)) continue;
        for (const key of user.keys) {
          const age = daysBetween(key.createDate, world.clock.now());
          if (key.status === 'Active' && age >= MAX_KEY_AGE) {
            violations.push(`day ${d}: ${member.name}/${user.userName}: active key ${age} days old`);
          }
        }
      }
      // The workloads' keys still work after the run (I2: the grace holds).
      for (const workload of workloads.filter((w) => w.member === member)) {
        const key = member.iam.findKey(workload.credentials.accessKeyId);
        if (key?.status !== 'Active') {
          violations.push(`day ${d}: ${member.name}/${workload.userName}: its key was deactivated`);
        }
      }
    }
  });

  test('I1, I2, I3, I5, I6 and I7 hold in every account on every day', () => {
    expect(violations).toEqual([]);
  });

  test('every account rotates on its own schedule: ages 0, 30, 60, 79 give six rotations in 120 days', () => {
    // svc-0 on day 80, svc-30 on day 50, svc-60 on days 20 and 100, svc-79 on days 1 and 81.
    expect(Object.fromEntries(rotations)).toEqual({
      'prod-a': 6,
      'prod-b': 6,
      payments: 6,
      'shared-services': 6,
    });
    expect(announcedChanges).toBeGreaterThan(4 * 6);
    const rotatedNotices = org.world.notifier.published.filter((n) => n.event === 'key.rotated');
    for (const member of org.selected.values()) {
      expect(rotatedNotices.filter((n) => n.accountId === member.accountId)).toHaveLength(6);
    }
    for (const member of org.untouched.values()) {
      expect(org.world.notifier.published.filter((n) => n.accountId === member.accountId)).toEqual([]);
    }
  });
});

// ---------------------------------------------------------------------------------------------------

describe('an account that cannot be reached', () => {
  interface Case {
    readonly mode: AccessFailure;
    readonly error: string;
    readonly retryable: boolean;
  }
  const CASES: readonly Case[] = [
    { mode: 'no-role', error: 'MemberRoleAccessDeniedError', retryable: false },
    { mode: 'denied', error: 'MemberRoleAccessDeniedError', retryable: false },
    { mode: 'throttled', error: 'MemberSessionUnavailableError', retryable: true },
    { mode: 'suspended', error: 'MemberRoleAccessDeniedError', retryable: false },
  ];

  test.each(CASES)(
    '$mode: the others complete, it is recorded and named to operators, and the run after the fix completes it',
    async ({ mode, error, retryable }) => {
      const org = organization(dueUsers);
      const { world } = org;
      const victim = org.selected.get('payments')!;
      const victimBefore = victim.iam.snapshot();
      world.access.fail(victim.accountId, mode);

      // Day 1: the account fails; the others are rotated.
      const day1 = await world.runDay();
      for (const [name, member] of org.selected) {
        if (member === victim) continue;
        expect([name, createdKey(member, 'svc-app')?.status]).toEqual([name, 'Active']);
        expect(secretLossProblems(member)).toEqual([]);
      }
      expect(victim.iam.snapshot()).toBe(victimBefore);
      expect(victim.vault.secrets.size).toBe(0);
      expect(victim.faults.calls.filter((op) => op !== 'sts:AssumeRole')).toEqual([]);

      const deliveries = day1.accounts.get(victim.accountId)!.deliveries;
      // Retryable: SQS delivers it again up to the maximum; on the last delivery the planner consumes
      // it (recorded, counted, told to operators; the next run tries again), so nothing reaches the
      // dead-letter queue. Otherwise it is consumed at once.
      expect(deliveries).toHaveLength(retryable ? PLANNING_MAX_RECEIVE_COUNT : 1);
      expect(deliveries.map((outcome) => outcome.status === 'failed' && outcome.notified)).toEqual(
        retryable ? [false, false, true] : [true],
      );
      expect(day1.accounts.get(victim.accountId)!.redelivered).toBe(
        retryable ? PLANNING_MAX_RECEIVE_COUNT - 1 : 0,
      );
      expect(day1.deadLetters).toEqual([]);
      // The alarm's metric counts the account once, on the delivery that gave up; retries apart.
      expect(world.metricTotal(METRIC.accountFailures)).toBe(1);
      expect(world.metricTotal(METRIC.accountFailures, victim.accountId)).toBe(1);
      expect(world.metricTotal(METRIC.accountRetries)).toBe(retryable ? PLANNING_MAX_RECEIVE_COUNT - 1 : 0);
      const last = deliveries[deliveries.length - 1]!;
      expect(last).toMatchObject({ status: 'failed', retryable, consecutiveFailures: 1 });
      expect(last.status === 'failed' && last.error).toBeInstanceOf(
        retryable ? MemberSessionUnavailableError : MemberRoleAccessDeniedError,
      );
      expect(world.ledger.peekAccountRun(victim.accountId)).toMatchObject({
        accountId: victim.accountId,
        runId: day1.runId,
        status: 'failed',
        retryable,
        consecutiveFailures: 1,
        error: { name: error },
      });
      expect(world.ledger.peekAccountRun(victim.accountId)?.lastPlannedAt).toBeUndefined();

      const notices = world.notifier.opsMessages.filter((notice) => notice.event === 'account.unreachable');
      expect(notices).toHaveLength(1);
      expect(notices[0]).toMatchObject({
        accountId: victim.accountId,
        toOperators: true,
        dedupeId: `account.unreachable/${victim.accountId}/${day1.runId}`,
        details: { accountId: victim.accountId, errorName: error, retryable, roleArn: victim.roleArn },
      });
      expect(notices[0]!.text).toContain(victim.roleArn);
      for (const member of org.selected.values()) {
        if (member === victim) continue;
        expect(world.ledger.peekAccountRun(member.accountId)).toMatchObject({
          status: 'planned',
          consecutiveFailures: 0,
        });
      }

      // Day 2: still failing. A suspended account is now listed as SUSPENDED: discovery skips it.
      world.clock.advanceDays(1);
      const day2 = await world.runDay();
      if (mode === 'suspended') {
        expect(day2.dispatch.skipped).toContainEqual(
          expect.objectContaining({ accountId: victim.accountId, reason: 'not-active' }),
        );
        // No longer covered: finished from the ledger alone (nothing of ours unfinished there), left.
        expect(day2.dispatch.finishing.map((account) => account.accountId)).toEqual([victim.accountId]);
        expect(day2.accounts.get(victim.accountId)!.deliveries).toEqual([
          expect.objectContaining({ status: 'finishing', left: true, messages: [] }),
        ]);
        expect(world.ledger.peekAccountRun(victim.accountId)).toMatchObject({
          runId: day2.runId,
          status: 'left',
        });
        expect(victim.faults.count('sts:AssumeRole')).toBe(1);
      } else {
        expect(world.ledger.peekAccountRun(victim.accountId)).toMatchObject({
          runId: day2.runId,
          status: 'failed',
          consecutiveFailures: 2,
        });
        const second = world.notifier.opsMessages.filter((n) => n.event === 'account.unreachable');
        expect(second).toHaveLength(2);
        expect(second[1]!.details.consecutiveFailures).toBe(2);
        expect(second[1]!.dedupeId).toBe(`account.unreachable/${victim.accountId}/${day2.runId}`);
      }
      expect(victim.iam.snapshot()).toBe(victimBefore);

      // Day 3: fixed (role deployed, trust repaired, STS calm, account reinstated): completed.
      world.access.clear(victim.accountId);
      world.clock.advanceDays(1);
      const noticesBefore = world.notifier.opsMessages.length;
      const day3 = await world.runDay();
      expect(day3.accounts.get(victim.accountId)!.deliveries.map((o) => o.status)).toEqual(['planned']);
      const created = createdKey(victim, 'svc-app');
      expect(created?.status).toBe('Active');
      expect(storedKey(victim, 'svc-app', created!.accessKeyId)?.SecretAccessKey).toBe(
        created!.secretAccessKey,
      );
      expect(secretLossProblems(victim)).toEqual([]);
      expect(world.ledger.peekAccountRun(victim.accountId)).toMatchObject({
        runId: day3.runId,
        status: 'planned',
        consecutiveFailures: 0,
        lastPlannedAt: day3.runId,
      });
      expect(world.notifier.opsMessages.slice(noticesBefore)).toEqual([]);
      // The others were rotated on day 1 and nothing more was done to them.
      for (const member of org.selected.values()) expect(member.iam.apiCreatedKeys()).toHaveLength(1);
    },
  );

  test('a throttle that passes before SQS gives up: planned on the redelivery, nobody paged', async () => {
    const org = organization(dueUsers);
    const victim = org.selected.get('prod-b')!;
    org.world.access.fail(victim.accountId, 'throttled', 1);

    const day = await org.world.runDay();

    const deliveries = day.accounts.get(victim.accountId)!.deliveries;
    expect(deliveries.map((outcome) => outcome.status)).toEqual(['failed', 'planned']);
    expect(deliveries[0]).toMatchObject({ retryable: true, notified: false });
    expect(createdKey(victim, 'svc-app')?.status).toBe('Active');
    expect(org.world.ledger.peekAccountRun(victim.accountId)).toMatchObject({
      status: 'planned',
      consecutiveFailures: 0,
    });
    expect(org.world.notifier.opsMessages).toEqual([]);
    expect(day.deadLetters).toEqual([]);
  });

  test('a throttled IAM call inside the account is retried by SQS in the same session; a denied one is told', async () => {
    const org = organization(dueUsers);
    const throttled = org.selected.get('prod-a')!;
    const denied = org.selected.get('payments')!;
    throttled.faults.inject('iam:GetCredentialReport', 'throttle', 1);
    // The member role lacks a permission (a member stack of an older version, say).
    denied.faults.inject('iam:GenerateCredentialReport', 'access-denied', 1);

    const day = await org.world.runDay();

    expect(day.accounts.get(throttled.accountId)!.deliveries.map((o) => o.status)).toEqual([
      'failed',
      'planned',
    ]);
    expect(throttled.faults.count('sts:AssumeRole')).toBe(1);
    expect(createdKey(throttled, 'svc-app')?.status).toBe('Active');
    expect(day.accounts.get(denied.accountId)!.deliveries).toEqual([
      expect.objectContaining({ status: 'failed', retryable: false, notified: true }),
    ]);
    expect(createdKey(denied, 'svc-app')).toBeUndefined();
    expect(org.world.notifier.opsMessages.map((notice) => [notice.event, notice.accountId])).toEqual([
      ['account.unreachable', denied.accountId],
    ]);
    expect(org.world.ledger.peekAccountRun(denied.accountId)).toMatchObject({
      status: 'failed',
      retryable: false,
      error: { name: 'AccessDeniedError' },
    });
  });

  test('two accounts failing in different ways are each recorded and named; the rest complete', async () => {
    const org = organization(dueUsers);
    const noRole = org.selected.get('prod-a')!;
    const suspended = org.selected.get('shared-services')!;
    org.world.access.fail(noRole.accountId, 'no-role');
    org.world.access.fail(suspended.accountId, 'suspended');

    await org.world.runDay();

    const named = org.world.notifier.opsMessages
      .filter((notice) => notice.event === 'account.unreachable')
      .map((notice) => notice.accountId)
      .sort();
    expect(named).toEqual([noRole.accountId, suspended.accountId].sort());
    expect(org.world.organization.accounts.get(suspended.accountId)?.state).toBe('SUSPENDED');
    for (const name of ['prod-b', 'payments']) {
      expect(createdKey(org.selected.get(name)!, 'svc-app')?.status).toBe('Active');
    }
  });
});

// ---------------------------------------------------------------------------------------------------

describe('an account excluded while a rotation is in flight there (I1, I7)', () => {
  test('the rotation is finished by the next runs, nothing else is changed there, and the account ends left', async () => {
    const org = organization(dueUsers);
    const { world } = org;
    const victim = org.selected.get('prod-b')!;
    const oldKey = victim.iam.users.get('svc-app')!.keys[0]!;
    const freshBefore = JSON.stringify(victim.iam.users.get('svc-fresh')!.keys);

    // Day 1: the rotator dies right after iam:CreateAccessKey in the account: the new key exists, its
    // secret (the response) died with the process; the ledger holds the intent.
    victim.faults.inject('iam:CreateAccessKey', 'crash-after');
    const day1 = await world.runDay();
    expect(day1.accounts.get(victim.accountId)!.failures.map((failure) => failure.userName)).toEqual([
      'svc-app',
    ]);
    expect(victim.iam.apiCreatedKeys()).toHaveLength(1);
    expect(world.ledger.peek(victim.accountId, 'svc-app')?.inFlight).toMatchObject({ phase: 'intent' });
    victim.faults.restart();
    world.access.restart();

    // A redeploy excludes the account.
    world.configure({
      ...world.organizationSettings,
      excludeAccounts: [...world.organizationSettings.excludeAccounts, victim.accountId],
    });

    // Day 2: not covered any more, but its last run is recorded: a finish-only planning message; the
    // planner opens nothing there and queues the user with the rotation in flight; the rotator finishes it.
    world.clock.advanceDays(1);
    const day2 = await world.runDay();
    expect(day2.dispatch.selected.map((account) => account.accountId)).not.toContain(victim.accountId);
    expect(day2.dispatch.finishing).toEqual([
      { accountId: victim.accountId, lastStatus: 'planned', lastRunId: day1.runId },
    ]);
    const account2 = day2.accounts.get(victim.accountId)!;
    expect(account2.deliveries).toEqual([expect.objectContaining({ status: 'finishing', left: false })]);
    expect(account2.failures).toEqual([]);
    expect(day2.workMessages.filter((message) => message.accountId === victim.accountId)).toEqual([
      expect.objectContaining({ userName: 'svc-app', finishOnly: true, plannedActions: ['resume'] }),
    ]);
    expect(world.ledger.peekAccountRun(victim.accountId)).toMatchObject({
      runId: day2.runId,
      status: 'finishing',
    });

    // I1 holds: the orphan key is gone (or stored), and no rotation was started again (I7): the old
    // key alone, active; the other user untouched; nothing in the vault; no notice about the account.
    expect(secretLossProblems(victim)).toEqual([]);
    expect(unrecoverableKeyProblems(victim)).toEqual([]);
    expect(victim.iam.users.get('svc-app')!.keys).toEqual([oldKey]);
    expect(oldKey.status).toBe('Active');
    expect(JSON.stringify(victim.iam.users.get('svc-fresh')!.keys)).toBe(freshBefore);
    expect(victim.faults.count('iam:CreateAccessKey')).toBe(1);
    expect(victim.vault.secrets.size).toBe(0);
    expect(world.ledger.peek(victim.accountId, 'svc-app')?.inFlight).toBeUndefined();
    expect(world.notifier.published.filter((notice) => notice.accountId === victim.accountId)).toEqual([]);

    // Day 3: nothing unfinished any more: recorded left, without opening the account.
    world.clock.advanceDays(1);
    const callsBefore = victim.faults.calls.length;
    const day3 = await world.runDay();
    expect(day3.accounts.get(victim.accountId)!.deliveries).toEqual([
      expect.objectContaining({ status: 'finishing', left: true, messages: [] }),
    ]);
    expect(world.ledger.peekAccountRun(victim.accountId)).toMatchObject({
      runId: day3.runId,
      status: 'left',
    });

    // Day 4: left accounts are no longer sent anything.
    world.clock.advanceDays(1);
    const day4 = await world.runDay();
    expect(day4.dispatch.finishing).toEqual([]);
    expect(day4.accounts.has(victim.accountId)).toBe(false);
    expect(victim.faults.calls.slice(callsBefore)).toEqual([]);
    expect(victim.iam.users.get('svc-app')!.keys).toEqual([oldKey]);
    // The other accounts went on as usual.
    for (const [name, member] of org.selected) {
      if (member === victim) continue;
      expect([name, createdKey(member, 'svc-app')?.status]).toEqual([name, 'Active']);
    }
  });

  test('its member role deleted with the exclusion: failed and reported naming the user, nothing else changes; once the role is back, the rotation is finished and the account ends left', async () => {
    const org = organization(dueUsers);
    const { world } = org;
    const victim = org.selected.get('prod-b')!;
    const oldKey = victim.iam.users.get('svc-app')!.keys[0]!;

    // Day 1: the rotator dies right after iam:CreateAccessKey: an active new key whose secret is lost.
    victim.faults.inject('iam:CreateAccessKey', 'crash-after');
    const day1 = await world.runDay();
    expect(day1.accounts.get(victim.accountId)!.failures.map((failure) => failure.userName)).toEqual([
      'svc-app',
    ]);
    const orphan = createdKey(victim, 'svc-app')!;
    expect(orphan.status).toBe('Active');
    victim.faults.restart();
    world.access.restart();

    // A redeploy excludes the account, and its member role goes with it (a stack deleted by hand, or
    // a StackSet that filtered the account out: what this service's StackSet no longer does).
    world.configure({
      ...world.organizationSettings,
      excludeAccounts: [...world.organizationSettings.excludeAccounts, victim.accountId],
    });
    world.access.fail(victim.accountId, 'no-role');
    const iamBefore = victim.iam.snapshot();
    const userRecordBefore = JSON.stringify(world.ledger.peek(victim.accountId, 'svc-app'));
    const callsBefore = victim.faults.calls.length;

    // Days 2 and 3: the finish-only pass cannot open the account: an account failure like any other,
    // counted run after run, told to the operators with the user whose work is unfinished.
    const failedDays: OrgDay[] = [];
    for (const count of [1, 2]) {
      world.clock.advanceDays(1);
      const day = await world.runDay();
      failedDays.push(day);
      expect(day.dispatch.finishing.map((account) => account.accountId)).toEqual([victim.accountId]);
      expect(day.accounts.get(victim.accountId)!.deliveries).toEqual([
        expect.objectContaining({
          status: 'failed',
          retryable: false,
          consecutiveFailures: count,
          notified: true,
        }),
      ]);
      expect(day.workMessages.filter((message) => message.accountId === victim.accountId)).toEqual([]);
      expect(world.ledger.peekAccountRun(victim.accountId)).toMatchObject({
        runId: day.runId,
        status: 'failed',
        consecutiveFailures: count,
        unfinishedUsers: ['svc-app'],
        error: { name: 'MemberRoleAccessDeniedError' },
      });
    }
    const notices = world.notifier.opsMessages.filter((notice) => notice.accountId === victim.accountId);
    expect(notices.map((notice) => [notice.event, notice.dedupeId, notice.details.unfinishedUsers])).toEqual(
      failedDays.map((day) => [
        'account.unreachable',
        `account.unreachable/${victim.accountId}/${day.runId}`,
        'svc-app',
      ]),
    );
    expect(notices[1]!.text).toContain('unfinished for these users: svc-app');
    expect(notices[1]!.text).toContain('failed 2 runs in a row');
    expect(
      world.metrics.filter(
        (doc) => doc[METRIC.accountFailures] !== undefined && doc.AccountId === victim.accountId,
      ),
    ).toHaveLength(2);
    // Nothing else changed: only the refused AssumeRoles in the account, its keys as they were (the
    // orphan still active), the user's record (the rotation in flight) as it was.
    expect(victim.faults.calls.slice(callsBefore)).toEqual(['sts:AssumeRole', 'sts:AssumeRole']);
    expect(victim.iam.snapshot()).toBe(iamBefore);
    expect(JSON.stringify(world.ledger.peek(victim.accountId, 'svc-app'))).toBe(userRecordBefore);
    expect(world.ledger.peek(victim.accountId, 'svc-app')?.inFlight).toMatchObject({ phase: 'intent' });

    // An operator deploys the plain member stack in the account again: the role is back.
    world.access.clear(victim.accountId);

    // Day 4: the account is opened, the rotation in flight finished (I1), nothing else done (I7).
    world.clock.advanceDays(1);
    const day4 = await world.runDay();
    expect(day4.accounts.get(victim.accountId)!.deliveries).toEqual([
      expect.objectContaining({ status: 'finishing', left: false }),
    ]);
    expect(day4.accounts.get(victim.accountId)!.failures).toEqual([]);
    expect(day4.workMessages.filter((message) => message.accountId === victim.accountId)).toEqual([
      expect.objectContaining({ userName: 'svc-app', finishOnly: true }),
    ]);
    // The finishing record carries the two failures (the work was only queued, not yet done).
    expect(world.ledger.peekAccountRun(victim.accountId)).toMatchObject({
      runId: day4.runId,
      status: 'finishing',
      consecutiveFailures: 2,
      unfinishedUsers: ['svc-app'],
    });
    expect(secretLossProblems(victim)).toEqual([]);
    expect(unrecoverableKeyProblems(victim)).toEqual([]);
    expect(victim.iam.users.get('svc-app')!.keys).toEqual([oldKey]);
    expect(oldKey.status).toBe('Active');
    expect(victim.faults.count('iam:CreateAccessKey')).toBe(1);
    expect(world.ledger.peek(victim.accountId, 'svc-app')?.inFlight).toBeUndefined();
    expect(world.notifier.opsMessages.filter((notice) => notice.accountId === victim.accountId)).toHaveLength(
      2,
    );

    // Day 5: nothing unfinished: left, the count reset; no more notices.
    world.clock.advanceDays(1);
    const day5 = await world.runDay();
    expect(day5.accounts.get(victim.accountId)!.deliveries).toEqual([
      expect.objectContaining({ status: 'finishing', left: true }),
    ]);
    expect(world.ledger.peekAccountRun(victim.accountId)).toMatchObject({
      runId: day5.runId,
      status: 'left',
      consecutiveFailures: 0,
    });
    expect(world.notifier.opsMessages.filter((notice) => notice.accountId === victim.accountId)).toHaveLength(
      2,
    );
  });
});

// ---------------------------------------------------------------------------------------------------

describe('a dry run of the organization (I6)', () => {
  test('only reads in every account, records and publishes nothing, and reports the work due', async () => {
    const org = organization(dueUsers);
    const { world } = org;
    // An unreachable account in a dry run is reported in the outcome, not recorded or notified.
    const unreachable = org.selected.get('payments')!;
    world.access.fail(unreachable.accountId, 'denied');
    const ledgerBefore = ledgerState(world);
    const snapshots = new Map([...world.members].map(([id, member]) => [id, member.iam.snapshot()]));

    const day = await world.runDay({ dryRun: true });

    for (const member of world.members.values()) {
      expect([member.name, member.writes()]).toEqual([member.name, []]);
      expect(member.iam.snapshot()).toBe(snapshots.get(member.accountId));
      expect(member.vault.secrets.size).toBe(0);
    }
    expect(ledgerState(world)).toBe(ledgerBefore);
    expect(world.ledger.accountRuns.size).toBe(0);
    expect(world.notifier.published).toEqual([]);
    expect(world.notifier.opsMessages).toEqual([]);
    expect(world.faults.writes()).toEqual(
      world.faults.writes().filter((op) => op === 'iam:GenerateCredentialReport'),
    );

    for (const [name, member] of org.selected) {
      const account = day.accounts.get(member.accountId)!;
      if (member === unreachable) {
        expect(account.deliveries).toEqual([
          expect.objectContaining({ status: 'failed', retryable: false, notified: false }),
        ]);
        continue;
      }
      // It read the account (the report, the users), and found the rotation a real run would do.
      expect([name, member.faults.count('iam:GetCredentialReport') > 0]).toEqual([name, true]);
      const due = account.plans.flatMap((plan) =>
        plan.users.flatMap((user) => user.actions.map((action) => `${user.userName} ${action.kind}`)),
      );
      expect([name, due]).toEqual([name, expect.arrayContaining(['svc-app rotate'])]);
      expect(account.outcomes.every((outcome) => outcome.performed.length === 0)).toBe(true);
    }
    for (const [name, member] of org.untouched) expect([name, member.faults.calls]).toEqual([name, []]);
  });
});

// ---------------------------------------------------------------------------------------------------

describe('no secret leaves the member vaults (I4)', () => {
  function describeThrown(error: unknown): string[] {
    const texts: string[] = [];
    for (let current: unknown = error, depth = 0; current !== undefined && depth < 5; depth++) {
      texts.push(inspect(current, { depth: 6 }));
      if (current instanceof Error) {
        texts.push(String(current), current.message, current.stack ?? '', JSON.stringify(current));
        current = current.cause;
      } else {
        current = undefined;
      }
    }
    return texts;
  }

  test('rotations, failures and dry runs in member accounts put no secret in any output', async () => {
    const seeded: FakeKey[] = [];
    const org = organization((member) => {
      member.iam.addUser('svc-app', { tags: { [OWNER_TAG]: 'app-team@example.com' } });
      seeded.push(member.iam.addKey('svc-app', { ageDays: 78, lastUsedDaysAgo: 0 }));
      member.iam.addUser('svc-old', { tags: { [OWNER_TAG]: 'not an address' } });
      seeded.push(member.iam.addKey('svc-old', { ageDays: 300, status: 'Inactive' }));
      seeded.push(member.iam.addKey('svc-old', { ageDays: 84, lastUsedDaysAgo: 1 }));
    });
    const { world } = org;
    const captured: string[] = [];
    const items = world.ledger.items;
    const set = items.set.bind(items);
    items.set = (key: string, value: string) => {
      captured.push(value);
      return set(key, value);
    };
    const runs = world.ledger.accountRuns;
    const setRun = runs.set.bind(runs);
    runs.set = (key: string, value: string) => {
      captured.push(value);
      return setRun(key, value);
    };
    const capture = (day: OrgDay) => {
      captured.push(JSON.stringify(day.dispatch), JSON.stringify(day.workMessages));
      for (const account of day.accounts.values()) {
        captured.push(JSON.stringify(account.plans), JSON.stringify(account.outcomes));
        for (const outcome of account.deliveries) {
          if (outcome.status === 'failed') captured.push(...describeThrown(outcome.error));
        }
        for (const failure of account.failures) captured.push(...describeThrown(failure.error));
      }
    };

    world.access.fail(org.selected.get('prod-b')!.accountId, 'throttled');
    for (let d = 0; d < 30; d++) {
      if (d === 5) world.access.clear(org.selected.get('prod-b')!.accountId);
      if (d === 2) {
        // A rotation in one account fails after its key was created and stored; the next run repairs it.
        org.selected.get('payments')!.faults.inject('secretsmanager:Promote', 'timeout-before', 1);
      }
      capture(await world.runDay({ dryRun: true }));
      capture(await world.runDay());
      world.clock.advance(PAST_THE_LEASE_MS);
      world.clock.advanceDays(1);
    }

    const issued = [...world.members.values()].flatMap((member) => member.iam.issuedSecrets);
    // Each selected account rotated both users (svc-old's key after deleting its inactive one).
    expect(issued.length).toBeGreaterThanOrEqual(8);
    // Errors are part of the search: the member session's and the failed rotation's.
    expect(captured.some((text) => text.includes('MemberSessionUnavailableError'))).toBe(true);
    expect(captured.some((text) => text.includes('TransientServiceError'))).toBe(true);
    const events = new Set(world.notifier.events());
    for (const event of [
      'key.rotated',
      'key.deactivated',
      'key.deleted',
      'tags.invalid',
      'account.unreachable',
    ]) {
      expect([event, events.has(event)]).toEqual([event, true]);
    }

    const corpus = [
      ...captured,
      ...world.logger.printed,
      ...world.notifier.published.map((notice) => JSON.stringify(notice)),
      ...world.notifier.opsMessages.map((notice) => JSON.stringify(notice)),
      ...world.planningQueue.sent.map((message) => JSON.stringify(message)),
      ...world.workQueue.messages.map((message) => JSON.stringify(message)),
      ...world.ledger.items.values(),
      ...world.ledger.accountRuns.values(),
    ];
    const secrets = [...issued, ...seeded.map((key) => key.secretAccessKey)];
    expect(findSecrets(corpus, secrets)).toEqual([]);
    // The search would find one: the vaults do hold them.
    const payments = org.selected.get('payments')!;
    expect(findSecrets(storedValues(payments), payments.iam.issuedSecrets)).not.toEqual([]);
  });
});
