/**
 * keyrot repairs before it exits (issue 12): a rotation or retirement whose outcome is unknown (the
 * fakes' "after" faults: the effect happens, the answer is lost; or "before" faults and throttling)
 * is repaired by the same `run --apply` or `rotate --apply`, so that I1 and I2 hold with no second
 * run. A user that cannot be repaired is named with what it leaves behind, and the exit code is 1.
 * Everything goes through the CLI's main().
 */
import { MAX_RETRIES, RETRY_BACKOFF_MS } from '../../../cli/repair';
import { secretNameFor } from '../../../lambda/domain/naming';
import type { FaultKind } from '../../fakes/faults';
import type { FakeKey } from '../../fakes/iam';
import { findSecrets, injectAt, secretLossProblems, unrecoverableKeyProblems } from '../../fakes/invariants';
import { SECRET_PREFIX, World } from '../../fakes/world';
import { CliRun, keyrot, worldWiring } from './harness';
import { CliOrganization, MemberFake } from './org-harness';

const OWNER = { 'key-rotation:owner': 'alice@example.com' };
/** A fault that stays: every call of the op fails, however often the CLI retries. */
const FOREVER = 1_000;

interface Account {
  readonly world: World;
  /** Alice's 85-day key, which her workload uses every day: due for rotation. */
  readonly old: FakeKey;
}

function account({ ageDays = 85, lastUsedDaysAgo = 0 } = {}): Account {
  const world = new World({ start: '2026-03-01T09:00:00Z' });
  // A credential report exists already: the planner waits for none (only the CLI's backoff sleeps).
  world.iam.reportGenerationPolls = 0;
  world.iam.addUser('alice', { tags: OWNER });
  const old = world.iam.addKey('alice', { ageDays, lastUsedDaysAgo });
  return { world, old };
}

interface RunJson {
  readonly outcomes: {
    readonly userName: string;
    readonly status: string;
    readonly attempts: number;
    readonly repaired: boolean;
    readonly performed: { kind: string; keyId?: string; newKeyId?: string }[];
  }[];
  readonly failures: {
    readonly userName: string;
    readonly error: { name: string; message: string };
    readonly attempts: number;
    readonly leftBehind: { kind: string; keyId?: string; message: string }[];
  }[];
}

/** No secret CreateAccessKey returned appears in anything the CLI printed (I4). */
function expectNoSecretIn(run: CliRun, issued: readonly string[]): void {
  expect(issued.length).toBeGreaterThan(0);
  expect(findSecrets([run.stdout, run.stderr], issued)).toEqual([]);
}

/** Alice's keys the service created that still exist. */
function createdKeys(world: World): FakeKey[] {
  return world.iam
    .apiCreatedKeys()
    .filter(({ user }) => user.userName === 'alice')
    .map(({ key }) => key);
}

/** The end state of one completed rotation of alice, after ONE invocation. */
function expectRotatedOnce(
  { world, old }: Account,
  { repeatedNoticeAllowed }: { repeatedNoticeAllowed: boolean },
) {
  // I1: no key without its stored secret, none that no intent covers; AWSCURRENT holds a working key.
  expect(secretLossProblems(world)).toEqual([]);
  expect(unrecoverableKeyProblems(world)).toEqual([]);
  // I2: the old key is still active and usable (its grace has only begun).
  expect(world.iam.findKey(old.accessKeyId)?.status).toBe('Active');
  expect(world.iam.use(old)).toBe(true);
  // Exactly one new key, stored as AWSCURRENT.
  const created = createdKeys(world);
  expect(created).toHaveLength(1);
  const fresh = created[0]!;
  expect(world.vault.readStage(world.secretName('alice'))).toEqual({
    accessKeyId: fresh.accessKeyId,
    secretAccessKey: fresh.secretAccessKey,
    UserName: 'alice',
  });
  // Nothing in flight, nothing waiting to be sent, recorded once.
  const record = world.ledger.peek(world.accountId, 'alice')!;
  expect(record.inFlight).toBeUndefined();
  expect(record.outbox).toEqual([]);
  expect(record.rotations.map(({ oldKeyId, newKeyId }) => ({ oldKeyId, newKeyId }))).toEqual([
    { oldKeyId: old.accessKeyId, newKeyId: fresh.accessKeyId },
  ]);
  // The owner is told, once unless SNS took a notice whose removal from the outbox was lost.
  const rotated = world.notifier.published.filter(
    (notice) => notice.userName === 'alice' && notice.event === 'key.rotated',
  );
  expect(rotated.length).toBeGreaterThanOrEqual(1);
  expect(rotated.length).toBeLessThanOrEqual(repeatedNoticeAllowed ? 2 : 1);
  expect(new Set(rotated.map((notice) => notice.dedupeId)).size).toBe(1);
  expect(rotated[0]?.details).toMatchObject({ oldKeyId: old.accessKeyId, newKeyId: fresh.accessKeyId });
}

/** Every write of a rotation (dynamodb:Save: lock + intent, completed + notice, cleared + unlocked). */
const ROTATION_WRITES: readonly [op: string, occurrence: number][] = [
  ['iam:CreateAccessKey', 1],
  ['secretsmanager:Store', 1],
  ['secretsmanager:Promote', 1],
  ['sns:Publish', 1],
  ['sns:Subscribe', 1],
  ['dynamodb:RecordOwnerSubscription', 1],
  ['dynamodb:Save', 1],
  ['dynamodb:Save', 2],
  ['dynamodb:Save', 3],
];
const KINDS: readonly FaultKind[] = ['timeout-after', 'timeout-before', 'throttle'];
const CASES = ROTATION_WRITES.flatMap(([op, occurrence]) =>
  KINDS.map((kind) => [op, occurrence, kind] as const),
);

/** The owner's subscription is best effort: its failure never fails the rotation, so nothing needs repair. */
const BEST_EFFORT = new Set(['sns:Subscribe', 'dynamodb:RecordOwnerSubscription']);

/** SNS took the notice but its removal from the outbox was not recorded: it goes out again. */
function noticeMayRepeat(op: string, occurrence: number, kind: FaultKind): boolean {
  if (op === 'sns:Publish') return kind === 'timeout-after';
  return op === 'dynamodb:Save' && occurrence === 3 && kind !== 'timeout-after';
}

describe.each([
  ['run --apply', 'run --apply'],
  ['rotate --user alice --apply', 'rotate --user alice --apply'],
])('%s repairs a rotation whose outcome is unknown, in the same invocation', (_name, command) => {
  test('a clean rotation makes exactly the writes the table below fails', async () => {
    const acc = account();

    const run = await keyrot(command, worldWiring(acc.world));

    expect(run.code).toBe(0);
    for (const [op, occurrence] of ROTATION_WRITES) {
      expect(acc.world.faults.count(op)).toBeGreaterThanOrEqual(occurrence);
    }
    expect(acc.world.faults.count('dynamodb:Save')).toBe(3);
    expectRotatedOnce(acc, { repeatedNoticeAllowed: false });
  });

  test.each(CASES)('%s (call %i) %s: I1 and I2 hold after one invocation', async (op, occurrence, kind) => {
    const acc = account();
    injectAt(acc.world.faults, op, kind, occurrence);

    const run = await keyrot(command, worldWiring(acc.world));

    expect(run.stdout).not.toContain('FAILED');
    expect(run.code).toBe(0);
    expectRotatedOnce(acc, { repeatedNoticeAllowed: noticeMayRepeat(op, occurrence, kind) });
    if (BEST_EFFORT.has(op)) {
      expect(run.stderr).not.toContain('repaired');
    } else {
      expect(run.stderr).toMatch(
        new RegExp(`^keyrot: warning: alice: \\w+Error: ${op}: .*; repaired on attempt 2$`, 'm'),
      );
    }
    expectNoSecretIn(run, acc.world.iam.issuedSecrets);
  });

  test('--json says the user was repaired and in how many attempts; the table shows the rotation', async () => {
    const acc = account();
    acc.world.faults.inject('iam:CreateAccessKey', 'timeout-after');

    const run = await keyrot(`${command} --json`, worldWiring(acc.world));

    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout) as RunJson;
    expect(result.failures).toEqual([]);
    expect(result.outcomes).toEqual([
      expect.objectContaining({ userName: 'alice', status: 'done', attempts: 2, repaired: true }),
    ]);
    const fresh = createdKeys(acc.world)[0]!;
    expect(result.outcomes[0]!.performed).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'rotate', keyId: acc.old.accessKeyId, newKeyId: fresh.accessKeyId }),
      ]),
    );
    expectRotatedOnce(acc, { repeatedNoticeAllowed: false });
  });

  test('a lock the failed attempt could not release does not refuse its own retry (same holder)', async () => {
    const acc = account();
    acc.world.faults.inject('iam:CreateAccessKey', 'timeout-after');
    acc.world.faults.inject('dynamodb:ReleaseLock', 'timeout-before');

    const run = await keyrot(command, worldWiring(acc.world));

    expect(run.stderr).toContain('could not release the user lock');
    expect(run.code).toBe(0);
    expectRotatedOnce(acc, { repeatedNoticeAllowed: false });
    expect(run.stderr).toMatch(
      /^keyrot: warning: alice: TransientServiceError: iam:CreateAccessKey: .*; repaired on attempt 2$/m,
    );
  });

  test('a rotation finished by the first attempt whose last answer was lost is reported as rotated', async () => {
    const acc = account();
    injectAt(acc.world.faults, 'dynamodb:Save', 'timeout-after', 3);

    const run = await keyrot(command, worldWiring(acc.world));

    expect(run.code).toBe(0);
    const fresh = createdKeys(acc.world)[0]!;
    expect(run.stdout).toMatch(
      new RegExp(
        `alice\\s+done\\s+rotate\\s+${acc.old.accessKeyId}\\s+${fresh.accessKeyId}\\s+completed by an earlier attempt`,
      ),
    );
    expect(run.stderr).toMatch(
      /^keyrot: warning: alice: TransientServiceError: dynamodb:Save: .*; repaired on attempt 2$/m,
    );
  });
});

describe('what cannot be repaired is named, with what to do (exit 1)', () => {
  test('a key whose secret cannot be stored nor the key deleted: named with the delete command; retries bounded', async () => {
    const acc = account();
    const { world, old } = acc;
    world.faults.inject('secretsmanager:Store', 'timeout-before', FOREVER);
    world.faults.inject('iam:DeleteAccessKey', 'timeout-before', FOREVER);

    const run = await keyrot('run --apply', worldWiring(world));

    expect(run.code).toBe(1);
    const created = createdKeys(world);
    expect(created).toHaveLength(1);
    const orphan = created[0]!.accessKeyId;
    expect(run.stdout).toMatch(/^FAILED alice: TransientServiceError: /m);
    expect(run.stderr).toContain(
      `keyrot: left behind for alice: key ${orphan} of alice exists but its secret was never stored; nobody can use it. ` +
        `The next run deletes it, or delete it now: aws iam delete-access-key --user-name alice --access-key-id ${orphan}\n`,
    );
    // Bounded: one key created, the first attempt and MAX_RETRIES more, with their backoff only.
    expect(world.faults.count('iam:CreateAccessKey')).toBe(1);
    expect(world.faults.count('iam:DeleteAccessKey')).toBe(1 + MAX_RETRIES);
    expect(world.clock.slept).toBe(2_000 + 4_000 + 8_000);
    expect(RETRY_BACKOFF_MS).toEqual([2_000, 4_000, 8_000]);
    // What is left is what the next run repairs (the intent covers the key); nobody is cut off.
    expect(unrecoverableKeyProblems(world)).toEqual([]);
    expect(world.ledger.peek(world.accountId, 'alice')?.inFlight?.phase).toBe('intent');
    expect(world.iam.findKey(old.accessKeyId)?.status).toBe('Active');
    expect(world.iam.use(old)).toBe(true);
    expect(run.stdout).toContain('0 user(s) done, 1 failed');
    expectNoSecretIn(run, world.iam.issuedSecrets);
  });

  test('--json: failures carry attempts and leftBehind (unstored-key with its id)', async () => {
    const { world } = account();
    world.faults.inject('secretsmanager:Store', 'timeout-before', FOREVER);
    world.faults.inject('iam:DeleteAccessKey', 'timeout-before', FOREVER);

    const run = await keyrot('run --apply --json', worldWiring(world));

    expect(run.code).toBe(1);
    const orphan = createdKeys(world)[0]!.accessKeyId;
    const result = JSON.parse(run.stdout) as RunJson;
    expect(result.outcomes).toEqual([]);
    expect(result.failures).toEqual([
      {
        userName: 'alice',
        error: expect.objectContaining({ name: 'TransientServiceError' }) as unknown,
        attempts: 1 + MAX_RETRIES,
        leftBehind: [
          {
            kind: 'unstored-key',
            keyId: orphan,
            message: expect.stringContaining(
              `aws iam delete-access-key --user-name alice --access-key-id ${orphan}`,
            ) as unknown,
          },
        ],
      },
    ]);
  });

  test('a retry that fails for good stops the retries: CreateAccessKey timed out, then DeleteAccessKey denied', async () => {
    const { world, old } = account();
    world.faults.inject('iam:CreateAccessKey', 'timeout-after');
    world.faults.inject('iam:DeleteAccessKey', 'access-denied', FOREVER);

    const run = await keyrot('rotate --user alice --apply --json', worldWiring(world));

    expect(run.code).toBe(1);
    const orphan = createdKeys(world)[0]!.accessKeyId;
    const result = JSON.parse(run.stdout) as RunJson;
    expect(result.failures).toEqual([
      expect.objectContaining({
        userName: 'alice',
        error: expect.objectContaining({ name: 'AccessDeniedError' }) as unknown,
        attempts: 2,
        leftBehind: [expect.objectContaining({ kind: 'unstored-key', keyId: orphan })],
      }),
    ]);
    expect(run.stderr).toContain(
      `keyrot: left behind for alice: key ${orphan} of alice exists but its secret was never stored`,
    );
    expect(run.stderr).toMatch(/keyrot: failed: iam:DeleteAccessKey: not authorized\n$/);
    expect(world.clock.slept).toBe(2_000);
    expect(unrecoverableKeyProblems(world)).toEqual([]);
    expect(world.iam.findKey(old.accessKeyId)?.status).toBe('Active');
    expectNoSecretIn(run, world.iam.issuedSecrets);
  });

  test('a stored key that STS never accepts: the unfinished rotation is named; the old key stays', async () => {
    const { world, old } = account();
    // IAM never propagates the new key within the verification's 120 s.
    world.verifier.propagationMs = 24 * 3_600_000;

    const run = await keyrot('run --apply', worldWiring(world));

    expect(run.code).toBe(1);
    const fresh = createdKeys(world)[0]!.accessKeyId;
    expect(run.stdout).toMatch(/^FAILED alice: VerificationError: /m);
    expect(run.stderr).toContain(
      `keyrot: left behind for alice: new key ${fresh} of alice is stored in ${world.secretName('alice')} (AWSPENDING) ` +
        `but not yet verified and made current; the old key ${old.accessKeyId} stays active and in use. ` +
        'The next run (or keyrot run --apply) verifies and finishes it\n',
    );
    expect(secretLossProblems(world).filter((problem) => !problem.includes('AWSCURRENT'))).toEqual([]);
    expect(world.iam.use(old)).toBe(true);
    expectNoSecretIn(run, world.iam.issuedSecrets);
  });

  test('notices SNS never takes and a lock the run cannot release are named; the rotation itself is done', async () => {
    const { world, old } = account();
    world.faults.inject('sns:Publish', 'timeout-before', FOREVER);
    world.faults.inject('dynamodb:ReleaseLock', 'timeout-before', FOREVER);

    const run = await keyrot('run --apply --json', worldWiring(world));

    expect(run.code).toBe(1);
    const result = JSON.parse(run.stdout) as RunJson;
    const lock = world.ledger.peek(world.accountId, 'alice')!.lock!;
    expect(result.failures).toEqual([
      expect.objectContaining({
        userName: 'alice',
        attempts: 1 + MAX_RETRIES,
        leftBehind: [
          {
            kind: 'undelivered-notices',
            message:
              '1 notice(s) about alice not delivered (key.rotated to alice@example.com); the next run delivers them',
          },
          {
            kind: 'lock',
            message:
              `alice stays locked by this run (${lock.holder}) until ${lock.until}: ` +
              'the schedule and other keyrot runs skip the user until then',
          },
        ],
      }),
    ]);
    expect(run.stderr).toContain('keyrot: left behind for alice: 1 notice(s) about alice not delivered');
    // The rotation is complete (I1, I2): only its notice waits.
    expect(secretLossProblems(world)).toEqual([]);
    expect(world.iam.use(old)).toBe(true);
    expect(world.ledger.peek(world.accountId, 'alice')?.inFlight).toBeUndefined();
  });

  test('when what is left cannot be read either, it says so and what to run', async () => {
    const { world } = account();
    world.faults.inject('dynamodb:Load', 'throttle', FOREVER);

    const run = await keyrot('run --apply --json', worldWiring(world));

    expect(run.code).toBe(1);
    const result = JSON.parse(run.stdout) as RunJson;
    expect(result.failures).toEqual([
      expect.objectContaining({
        userName: 'alice',
        attempts: 1 + MAX_RETRIES,
        leftBehind: [
          {
            kind: 'unchecked',
            message:
              'what the failed rotation of alice left behind could not be checked (ThrottledError: dynamodb:Load: Rate exceeded); ' +
              'run keyrot plan to see its keys and any rotation in flight (the next run --apply finishes it)',
          },
        ],
      }),
    ]);
  });

  test('access denied on CreateAccessKey is not retried, and leaves nothing behind', async () => {
    const { world } = account();
    world.faults.inject('iam:CreateAccessKey', 'access-denied');

    const run = await keyrot('run --apply --json', worldWiring(world));

    expect(run.code).toBe(1);
    const result = JSON.parse(run.stdout) as RunJson;
    expect(result.failures).toEqual([
      {
        userName: 'alice',
        error: { name: 'AccessDeniedError', message: 'iam:CreateAccessKey: not authorized' },
        attempts: 1,
        leftBehind: [],
      },
    ]);
    expect(world.faults.count('iam:CreateAccessKey')).toBe(1);
    expect(world.clock.slept).toBe(0);
    expect(run.stderr).not.toContain('left behind');
  });

  test('a lock held by another run is not retried', async () => {
    const { world } = account();
    world.ledger.items.set(
      `${world.accountId}#alice`,
      JSON.stringify({
        accountId: world.accountId,
        userName: 'alice',
        version: 1,
        lock: { holder: 'rotator/request-1', until: '2026-03-01T09:10:00.000Z' },
        rotations: [],
        inactiveSince: {},
        warnedKeys: {},
        reactivatedSeen: {},
        notices: {},
        outbox: [],
        history: [],
      }),
    );

    const run = await keyrot('run --apply --json', worldWiring(world));

    expect(run.code).toBe(1);
    const result = JSON.parse(run.stdout) as RunJson;
    expect(result.failures).toEqual([
      expect.objectContaining({ userName: 'alice', attempts: 1, leftBehind: [] }),
    ]);
    expect(world.clock.slept).toBe(0);
  });
});

/**
 * Alice rotated 8 days ago, her old key (81 days old then, last used the day before) unused since:
 * its deactivation is due (graceDays 7), well before the hard limit (maxKeyAgeDays 90).
 */
async function deactivationDue(): Promise<Account & { fresh: FakeKey }> {
  const acc = account({ ageDays: 81, lastUsedDaysAgo: 1 });
  await acc.world.rotate('alice');
  const fresh = createdKeys(acc.world)[0]!;
  acc.world.clock.advanceDays(8);
  acc.world.iam.use(fresh);
  return { ...acc, fresh };
}

/** Then deactivated, and inactive for 15 days: its deletion is due (deleteAfterDays 14). */
async function deletionDue(): Promise<Account & { fresh: FakeKey }> {
  const acc = await deactivationDue();
  await acc.world.runDay();
  expect(acc.world.iam.findKey(acc.old.accessKeyId)?.status).toBe('Inactive');
  acc.world.clock.advanceDays(15);
  return acc;
}

describe('run --apply repairs a retirement whose outcome is unknown', () => {
  const writes = (iamOp: string) =>
    [
      [iamOp, 1],
      ['sns:Publish', 1],
      ['dynamodb:Save', 1],
      ['dynamodb:Save', 2],
      ['dynamodb:Save', 3],
    ].flatMap(([op, occurrence]) => KINDS.map((kind) => [op as string, occurrence as number, kind] as const));

  test.each(writes('iam:UpdateAccessKey'))(
    'deactivation: %s (call %i of this run) %s',
    async (op, occurrence, kind) => {
      const { world, old } = await deactivationDue();
      const before = world.faults.count(op);
      injectAt(world.faults, op, kind, before + occurrence);

      const run = await keyrot('run --apply', worldWiring(world));

      expect(run.stdout).not.toContain('FAILED');
      expect(run.code).toBe(0);
      expect(world.iam.findKey(old.accessKeyId)?.status).toBe('Inactive');
      const record = world.ledger.peek(world.accountId, 'alice')!;
      expect(record.inactiveSince[old.accessKeyId]).toBeDefined();
      expect(record.outbox).toEqual([]);
      const notices = world.notifier.published.filter(
        (notice) => notice.event === 'key.deactivated' && notice.details.keyId === old.accessKeyId,
      );
      expect(notices.length).toBeGreaterThanOrEqual(1);
      expect(new Set(notices.map((notice) => notice.dedupeId)).size).toBe(1);
      expect(run.stderr).toMatch(/; repaired on attempt 2$/m);
    },
  );

  test.each(writes('iam:DeleteAccessKey'))(
    'deletion: %s (call %i of this run) %s',
    async (op, occurrence, kind) => {
      const { world, old } = await deletionDue();
      const before = world.faults.count(op);
      injectAt(world.faults, op, kind, before + occurrence);

      const run = await keyrot('run --apply', worldWiring(world));

      expect(run.stdout).not.toContain('FAILED');
      expect(run.code).toBe(0);
      expect(world.iam.findKey(old.accessKeyId)).toBeUndefined();
      const record = world.ledger.peek(world.accountId, 'alice')!;
      expect(record.inactiveSince[old.accessKeyId]).toBeUndefined();
      expect(record.outbox).toEqual([]);
      const notices = world.notifier.published.filter(
        (notice) => notice.event === 'key.deleted' && notice.details.keyId === old.accessKeyId,
      );
      expect(notices.length).toBeGreaterThanOrEqual(1);
      expect(new Set(notices.map((notice) => notice.dedupeId)).size).toBe(1);
      expect(run.stderr).toMatch(/; repaired on attempt 2$/m);
    },
  );
});

describe('a retirement that cannot be confirmed is named', () => {
  test('a deactivation IAM never answers: unconfirmed-retirement with the key, the key as IAM shows it', async () => {
    const { world, old } = await deactivationDue();
    world.faults.inject('iam:UpdateAccessKey', 'timeout-before', FOREVER);

    const run = await keyrot('run --apply --json', worldWiring(world));

    expect(run.code).toBe(1);
    const result = JSON.parse(run.stdout) as RunJson;
    expect(result.failures).toEqual([
      expect.objectContaining({
        userName: 'alice',
        attempts: 1 + MAX_RETRIES,
        leftBehind: expect.arrayContaining([
          {
            kind: 'unconfirmed-retirement',
            keyId: old.accessKeyId,
            message:
              `deactivation of key ${old.accessKeyId} of alice was sent to IAM but its answer was lost (IAM shows it Active); ` +
              'the next run checks IAM and records and announces it, or does it again',
          },
        ]) as unknown,
      }),
    ]);
    // Never announced while unconfirmed; the key is as IAM has it.
    expect(world.notifier.published.filter((notice) => notice.event === 'key.deactivated')).toEqual([]);
    expect(world.iam.findKey(old.accessKeyId)?.status).toBe('Active');
  });
});

describe('organization mode', () => {
  function withAlice(member: MemberFake): MemberFake {
    member.iam.reportGenerationPolls = 0;
    member.iam.addUser('alice', { tags: OWNER });
    member.iam.addKey('alice', { ageDays: 85, lastUsedDaysAgo: 0 });
    return member;
  }

  function organization() {
    const org = new CliOrganization();
    const a = withAlice(org.addMember(org.organization.rootId, { name: 'dev' }));
    const b = withAlice(org.addMember(org.organization.rootId, { name: 'prod' }));
    return { org, a, b };
  }

  interface OrgJson {
    readonly accounts: { accountId: string; outcomes: RunJson['outcomes']; failures: RunJson['failures'] }[];
  }

  test('a lost CreateAccessKey answer in one member account is repaired by the same run --org --apply', async () => {
    const { org, a, b } = organization();
    a.faults.inject('iam:CreateAccessKey', 'timeout-after');

    const run = await keyrot('run --apply --org --json', org.wiring());

    expect(run.code).toBe(0);
    const document = JSON.parse(run.stdout) as OrgJson;
    const of = (member: MemberFake) =>
      document.accounts.find((account) => account.accountId === member.accountId)!;
    expect(of(a).outcomes).toEqual([
      expect.objectContaining({ userName: 'alice', status: 'done', attempts: 2, repaired: true }),
    ]);
    expect(of(b).outcomes).toEqual([
      expect.objectContaining({ userName: 'alice', status: 'done', attempts: 1, repaired: false }),
    ]);
    expect(run.stderr).toMatch(
      new RegExp(
        `^keyrot: warning: ${a.accountId}/alice: TransientServiceError: iam:CreateAccessKey: .*; repaired on attempt 2$`,
        'm',
      ),
    );
    for (const member of [a, b]) {
      expect(secretLossProblems(memberView(org, member))).toEqual([]);
      const created = member.iam.apiCreatedKeys().map(({ key }) => key);
      expect(created).toHaveLength(1);
      expect(
        member.vault.readStage(secretNameFor(SECRET_PREFIX, member.accountId, 'alice'))?.accessKeyId,
      ).toBe(created[0]!.accessKeyId);
      expect(org.central.ledger.peek(member.accountId, 'alice')?.inFlight).toBeUndefined();
    }
    expectNoSecretIn(run, [...a.iam.issuedSecrets, ...b.iam.issuedSecrets]);
  });

  test('what cannot be repaired is named with its account and the member role', async () => {
    const { org, a, b } = organization();
    a.faults.inject('secretsmanager:Store', 'timeout-before', FOREVER);
    a.faults.inject('iam:DeleteAccessKey', 'timeout-before', FOREVER);

    const run = await keyrot('run --apply --org', org.wiring());

    expect(run.code).toBe(1);
    const orphan = a.iam.apiCreatedKeys()[0]!.key.accessKeyId;
    expect(run.stdout).toContain(`FAILED ${a.accountId}/alice: TransientServiceError`);
    expect(run.stderr).toContain(
      `keyrot: left behind for ${a.accountId}/alice: key ${orphan} of alice in account ${a.accountId} ` +
        '(as the member role iam-key-rotation-member) exists but its secret was never stored',
    );
    expect(run.stderr).toContain(
      `delete it now in account ${a.accountId} (as the member role iam-key-rotation-member): ` +
        `aws iam delete-access-key --user-name alice --access-key-id ${orphan}`,
    );
    expect(unrecoverableKeyProblems(memberView(org, a))).toEqual([]);
    // The other account is done as usual.
    expect(b.iam.apiCreatedKeys()).toHaveLength(1);
    expect(run.stdout).toContain(`account ${b.accountId} (prod): 1 user(s) done, 0 failed`);
    expectNoSecretIn(run, [...a.iam.issuedSecrets, ...b.iam.issuedSecrets]);
  });

  test('rotate --accounts X --apply repairs too', async () => {
    const { org, a } = organization();
    a.faults.inject('secretsmanager:Promote', 'timeout-before');

    const run = await keyrot(`rotate --user alice --accounts ${a.accountId} --apply`, org.wiring());

    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(
      /^keyrot: warning: alice: TransientServiceError: secretsmanager:Promote: .*; repaired on attempt 2$/m,
    );
    expect(secretLossProblems(memberView(org, a))).toEqual([]);
  });
});

/** A member account as the invariant checks read it: its IAM and vault, the central ledger. */
function memberView(org: CliOrganization, member: MemberFake) {
  return {
    iam: member.iam,
    vault: member.vault,
    ledger: org.central.ledger,
    accountId: member.accountId,
    secretName: (userName: string) => secretNameFor(SECRET_PREFIX, member.accountId, userName),
  };
}
