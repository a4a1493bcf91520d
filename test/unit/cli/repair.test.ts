/**
 * keyrot repairs before it exits (issue 12): a rotation or retirement whose outcome is unknown (the
 * fakes' "after" faults: the effect happens, the answer is lost; or "before" faults and throttling)
 * is repaired by the same `run --apply` or `rotate --apply`, so that I1 and I2 hold with no second
 * run. A user that cannot be repaired is named with what it leaves behind, and the exit code is 1.
 * Everything goes through the CLI's main().
 */
import { MAX_RETRIES, RETRY_BACKOFF_MS } from '../../../cli/repair';
import { emptyLedger, UserLedger } from '../../../lambda/domain/model';
import { secretNameFor } from '../../../lambda/domain/naming';
import type { FaultKind } from '../../fakes/faults';
import type { FakeKey } from '../../fakes/iam';
import {
  beforeCall,
  findSecrets,
  injectAt,
  secretLossProblems,
  unrecoverableKeyProblems,
} from '../../fakes/invariants';
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
    readonly performed: { kind: string; keyId?: string; newKeyId?: string; detail: string }[];
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

  test('a lock held by another run is not retried, and is named as locked-by-other', async () => {
    const { world } = account();
    seedAlice(world, { lock: { holder: 'rotator/request-1', until: '2026-03-01T09:10:00.000Z' } });

    const run = await keyrot('run --apply --json', worldWiring(world));

    expect(run.code).toBe(1);
    const result = JSON.parse(run.stdout) as RunJson;
    expect(result.failures).toEqual([
      {
        userName: 'alice',
        error: {
          name: 'LockHeldError',
          message: 'user alice is locked by rotator/request-1 until 2026-03-01T09:10:00.000Z',
        },
        attempts: 1,
        leftBehind: [lockedByOther('rotator/request-1', '2026-03-01T09:10:00.000Z')],
      },
    ]);
    expect(world.clock.slept).toBe(0);
  });
});

/** Alice's ledger record as an earlier or another run left it (the store as it holds it: version 1). */
function seedAlice(world: World, fields: Partial<UserLedger>): void {
  world.ledger.items.set(
    `${world.accountId}#alice`,
    JSON.stringify({ ...emptyLedger(world.accountId, 'alice'), version: 1, ...fields }),
  );
}

/** The one thing named when another run holds alice: its lock, and nothing of its work. */
function lockedByOther(holder: string, until: string) {
  return {
    kind: 'locked-by-other',
    message: expect.stringContaining(`alice is locked by ${holder} until ${until}`) as unknown,
  };
}

describe('what another run holds is left to it: locked-by-other, never its key to delete', () => {
  /**
   * The rotator (request-1) holds alice's lock and is mid-rotation: its intent is recorded and IAM
   * has its new key, whose secret it has not stored yet.
   */
  async function anotherRunMidRotation() {
    const acc = account();
    const { world, old } = acc;
    const until = '2026-03-01T09:10:00.000Z';
    const theirs = await world.iam.createAccessKey('alice');
    seedAlice(world, {
      lock: { holder: 'rotator/request-1', until },
      inFlight: {
        phase: 'intent',
        oldKeyId: old.accessKeyId,
        keysBefore: [old.accessKeyId],
        startedAt: world.clock.now().toISOString(),
        reason: 'x',
      },
    });
    return { ...acc, theirs, until };
  }

  test.each(['run --apply --json', 'rotate --user alice --apply --json'])(
    '%s: one locked-by-other entry, no unstored-key nor delete command; their key untouched',
    async (command) => {
      const { world, old, theirs, until } = await anotherRunMidRotation();

      const run = await keyrot(command, worldWiring(world));

      expect(run.code).toBe(1);
      const result = JSON.parse(run.stdout) as RunJson;
      expect(result.failures).toEqual([
        {
          userName: 'alice',
          error: expect.objectContaining({ name: 'LockHeldError' }) as unknown,
          attempts: 1,
          leftBehind: [lockedByOther('rotator/request-1', until)],
        },
      ]);
      expect(run.stderr).toContain(
        `keyrot: left behind for alice: alice is locked by rotator/request-1 until ${until}`,
      );
      expect(`${run.stdout}${run.stderr}`).not.toContain('delete-access-key');
      expect(`${run.stdout}${run.stderr}`).not.toContain('unstored-key');
      // Nothing of theirs was touched: their key, their intent, their lock.
      expect(world.faults.count('iam:DeleteAccessKey')).toBe(0);
      expect(world.faults.count('dynamodb:Save')).toBe(0);
      expect(world.iam.findKey(theirs.accessKeyId)?.status).toBe('Active');
      expect(world.iam.findKey(old.accessKeyId)?.status).toBe('Active');
      const record = world.ledger.peek(world.accountId, 'alice')!;
      expect(record.lock?.holder).toBe('rotator/request-1');
      expect(record.inFlight?.phase).toBe('intent');
      expect(world.clock.slept).toBe(0);
      expectNoSecretIn(run, world.iam.issuedSecrets);
    },
  );

  test('a run that failed on its own, whose lock another run took meanwhile: locked-by-other, not our orphan', async () => {
    const { world } = account();
    world.faults.inject('secretsmanager:Store', 'timeout-before', FOREVER);
    world.faults.inject('iam:DeleteAccessKey', 'timeout-before', FOREVER);
    // During the last attempt our lease runs out (a long hang) and the rotator takes the user.
    const until = new Date(Date.parse('2026-03-01T09:00:00Z') + 60 * 60_000);
    beforeCall(world.faults, 'iam:DeleteAccessKey', 1 + MAX_RETRIES, async () => {
      world.clock.advance(20 * 60_000);
      await world.ledger.acquireLock(world.accountId, 'alice', 'rotator/request-7', world.clock.now(), until);
    });

    const run = await keyrot('run --apply --json', worldWiring(world));

    expect(run.code).toBe(1);
    const result = JSON.parse(run.stdout) as RunJson;
    expect(result.failures).toEqual([
      {
        userName: 'alice',
        error: expect.objectContaining({ name: 'TransientServiceError' }) as unknown,
        attempts: 1 + MAX_RETRIES,
        leftBehind: [lockedByOther('rotator/request-7', until.toISOString())],
      },
    ]);
    expect(run.stderr).not.toContain('delete-access-key');
  });
});

describe('a key under our failed intent that is not surely its orphan: foreign-key, no delete command', () => {
  /**
   * Alice's record holds an intent (no lock) started `startedMinutesAgo` ago; a key not in keysBefore
   * exists. Every attempt fails at its first write (the repair's lock), so the intent stays.
   */
  async function intentWithNewKey({ startedMinutesAgo, used }: { startedMinutesAgo: number; used: boolean }) {
    const acc = account();
    const { world, old } = acc;
    const created = await world.iam.createAccessKey('alice');
    if (used) expect(world.iam.use(created)).toBe(true);
    seedAlice(world, {
      inFlight: {
        phase: 'intent',
        oldKeyId: old.accessKeyId,
        keysBefore: [old.accessKeyId],
        startedAt: new Date(world.clock.now().getTime() - startedMinutesAgo * 60_000).toISOString(),
        reason: 'x',
      },
    });
    world.faults.inject('dynamodb:Save', 'throttle', FOREVER);
    return { ...acc, created };
  }

  test.each([
    ['created 10 minutes after the intent (outside its window)', { startedMinutesAgo: 10, used: false }],
    ['created within the window but already used', { startedMinutesAgo: 0, used: true }],
  ])('%s', async (_name, setup) => {
    const { world, created } = await intentWithNewKey(setup);

    const run = await keyrot('run --apply --json', worldWiring(world));

    expect(run.code).toBe(1);
    const result = JSON.parse(run.stdout) as RunJson;
    expect(result.failures).toEqual([
      expect.objectContaining({
        userName: 'alice',
        attempts: 1 + MAX_RETRIES,
        leftBehind: [
          {
            kind: 'foreign-key',
            keyId: created.accessKeyId,
            message: expect.stringContaining(`key ${created.accessKeyId} of alice`) as unknown,
          },
        ],
      }),
    ]);
    expect(`${run.stdout}${run.stderr}`).not.toContain('delete-access-key');
    expect(run.stderr).toContain(`keyrot: left behind for alice: key ${created.accessKeyId} of alice`);
    expect(world.faults.count('iam:DeleteAccessKey')).toBe(0);
    expect(world.iam.findKey(created.accessKeyId)?.status).toBe('Active');
    expectNoSecretIn(run, world.iam.issuedSecrets);
  });

  test('the same key created within the window and never used is our orphan: unstored-key with the delete command', async () => {
    const { world, created } = await intentWithNewKey({ startedMinutesAgo: 0, used: false });

    const run = await keyrot('run --apply --json', worldWiring(world));

    expect(run.code).toBe(1);
    const result = JSON.parse(run.stdout) as RunJson;
    expect(result.failures[0]?.leftBehind).toEqual([
      {
        kind: 'unstored-key',
        keyId: created.accessKeyId,
        message: expect.stringContaining(
          `aws iam delete-access-key --user-name alice --access-key-id ${created.accessKeyId}`,
        ) as unknown,
      },
    ]);
  });
});

describe('a rotation intent without a live new key: rotation-intent', () => {
  test('CreateAccessKey never gets through: the intent (no new key) is named as harmless', async () => {
    const { world, old } = account();
    world.faults.inject('iam:CreateAccessKey', 'timeout-before', FOREVER);

    const run = await keyrot('run --apply --json', worldWiring(world));

    expect(run.code).toBe(1);
    const result = JSON.parse(run.stdout) as RunJson;
    expect(result.failures).toEqual([
      {
        userName: 'alice',
        error: { name: 'TransientServiceError', message: 'iam:CreateAccessKey: timed out' },
        attempts: 1 + MAX_RETRIES,
        leftBehind: [
          {
            kind: 'rotation-intent',
            keyId: old.accessKeyId,
            message: `a rotation of alice (replacing ${old.accessKeyId}) was started but no new key exists; harmless: the next run closes it`,
          },
        ],
      },
    ]);
    expect(world.faults.count('iam:CreateAccessKey')).toBe(1 + MAX_RETRIES);
    expect(createdKeys(world)).toEqual([]);
    expect(world.iam.use(old)).toBe(true);
    expect(secretLossProblems(world)).toEqual([]);
    expect(unrecoverableKeyProblems(world)).toEqual([]);
  });

  test('phase stored whose new key no longer exists: named with that key; the next run rotates again', async () => {
    const { world, old } = account();
    const gone = 'AKIAFAKEGONE00000001';
    seedAlice(world, {
      inFlight: {
        phase: 'stored',
        oldKeyId: old.accessKeyId,
        keysBefore: [old.accessKeyId],
        newKeyId: gone,
        startedAt: world.clock.now().toISOString(),
        reason: 'x',
      },
    });
    // Every attempt fails at its first write (the repair's lock), after loading the record.
    world.faults.inject('dynamodb:Save', 'throttle', FOREVER);

    const run = await keyrot('run --apply --json', worldWiring(world));

    expect(run.code).toBe(1);
    const result = JSON.parse(run.stdout) as RunJson;
    expect(result.failures).toEqual([
      {
        userName: 'alice',
        error: { name: 'ThrottledError', message: 'dynamodb:Save: Rate exceeded' },
        attempts: 1 + MAX_RETRIES,
        leftBehind: [
          {
            kind: 'rotation-intent',
            keyId: gone,
            message:
              `a rotation of alice (replacing ${old.accessKeyId}) recorded key ${gone} as stored, ` +
              'but that key no longer exists; the next run closes the rotation and rotates again',
          },
        ],
      },
    ]);
    expect(world.iam.use(old)).toBe(true);
  });
});

describe('on a terminal, the repair pass is announced', () => {
  test('run --apply says how many users it repairs and how long it may wait; not off a terminal', async () => {
    const onTerminal = account();
    onTerminal.world.faults.inject('iam:CreateAccessKey', 'timeout-after');
    const offTerminal = account();
    offTerminal.world.faults.inject('iam:CreateAccessKey', 'timeout-after');

    const shown = await keyrot('run --apply', worldWiring(onTerminal.world), true);
    const piped = await keyrot('run --apply', worldWiring(offTerminal.world));

    expect(shown.code).toBe(0);
    expect(shown.stderr).toContain(
      'keyrot: 1 user(s) failed with an unknown outcome; repairing (up to 3 more attempts, 2 s, 4 s, 8 s apart)\n',
    );
    expect(piped.code).toBe(0);
    expect(piped.stderr).not.toContain('repairing');
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

/**
 * Alice rotated 10 days ago, and her workload still signs with the old key: it is 91 days old, past
 * maxKeyAgeDays (90) and the grace (7): it is deactivated in use (enforced).
 */
async function enforcementDue(): Promise<Account & { fresh: FakeKey }> {
  const acc = account({ ageDays: 81, lastUsedDaysAgo: 0 });
  await acc.world.rotate('alice');
  const fresh = createdKeys(acc.world)[0]!;
  acc.world.clock.advanceDays(10);
  acc.world.iam.use(fresh);
  expect(acc.world.iam.use(acc.old)).toBe(true);
  return { ...acc, fresh };
}

/** The end state of the retirement of alice's old key after ONE invocation, her fresh key current. */
function expectRetiredOnce(
  { world, old, fresh }: Account & { fresh: FakeKey },
  expected: { event: string; gone: boolean; repeatedNoticeAllowed: boolean },
): void {
  // I1: every key the service created is stored; AWSCURRENT holds a working key.
  expect(secretLossProblems(world)).toEqual([]);
  expect(unrecoverableKeyProblems(world)).toEqual([]);
  // I2: the fresh key is active, usable, and what the vault hands out.
  expect(world.iam.findKey(fresh.accessKeyId)?.status).toBe('Active');
  expect(world.iam.use(fresh)).toBe(true);
  expect(world.vault.readStage(world.secretName('alice'))?.accessKeyId).toBe(fresh.accessKeyId);
  // The old key is as the retirement leaves it, and the ledger says so.
  const record = world.ledger.peek(world.accountId, 'alice')!;
  if (expected.gone) {
    expect(world.iam.findKey(old.accessKeyId)).toBeUndefined();
    expect(record.inactiveSince[old.accessKeyId]).toBeUndefined();
  } else {
    expect(world.iam.findKey(old.accessKeyId)?.status).toBe('Inactive');
    expect(world.iam.use(old)).toBe(false);
    expect(record.inactiveSince[old.accessKeyId]).toBeDefined();
  }
  // Nothing pending, nothing in flight, the lock released.
  expect(record.outbox).toEqual([]);
  expect(record.inFlight).toBeUndefined();
  expect(record.lock).toBeUndefined();
  // Announced once, unless SNS took the notice and its removal from the outbox was lost.
  const notices = world.notifier.published.filter(
    (notice) => notice.event === expected.event && notice.details.keyId === old.accessKeyId,
  );
  expect(notices.length).toBeGreaterThanOrEqual(1);
  expect(notices.length).toBeLessThanOrEqual(expected.repeatedNoticeAllowed ? 2 : 1);
  expect(new Set(notices.map((notice) => notice.dedupeId)).size).toBe(1);
}

/** `run --apply --json` repaired alice on its second attempt, and said so on stderr. */
function expectRepairedOnAttempt2(run: CliRun, op: string): RunJson['outcomes'][number] {
  expect(run.code).toBe(0);
  const result = JSON.parse(run.stdout) as RunJson;
  expect(result.failures).toEqual([]);
  expect(result.outcomes).toEqual([
    expect.objectContaining({ userName: 'alice', attempts: 2, repaired: true }),
  ]);
  expect(run.stderr).toMatch(
    new RegExp(`^keyrot: warning: alice: \\w+Error: ${op}: .*; repaired on attempt 2$`, 'm'),
  );
  return result.outcomes[0]!;
}

const RETIREMENTS = [
  {
    name: 'deactivation',
    setup: deactivationDue,
    iamOp: 'iam:UpdateAccessKey',
    event: 'key.deactivated',
    gone: false,
  },
  { name: 'deletion', setup: deletionDue, iamOp: 'iam:DeleteAccessKey', event: 'key.deleted', gone: true },
] as const;

/** Every write of a retirement: the pending change with the lock, the IAM call, recorded, published, cleared. */
const RETIREMENT_CASES = RETIREMENTS.flatMap((retirement) =>
  (
    [
      [retirement.iamOp, 1],
      ['sns:Publish', 1],
      ['dynamodb:Save', 1],
      ['dynamodb:Save', 2],
      ['dynamodb:Save', 3],
    ] as const
  ).flatMap(([op, occurrence]) =>
    KINDS.map((kind) => ({
      ...retirement,
      op,
      occurrence,
      kind,
      label: `${retirement.name}: ${op} (call ${occurrence} of this run) ${kind}`,
    })),
  ),
);

describe('run --apply repairs a retirement whose outcome is unknown', () => {
  test.each(RETIREMENTS)(
    '$name: a clean run makes exactly the three writes the table below fails',
    async (retirement) => {
      const acc = await retirement.setup();
      const saves = acc.world.faults.count('dynamodb:Save');

      const run = await keyrot('run --apply', worldWiring(acc.world));

      expect(run.code).toBe(0);
      expect(acc.world.faults.count('dynamodb:Save') - saves).toBe(3);
      expectRetiredOnce(acc, { ...retirement, repeatedNoticeAllowed: false });
    },
  );

  test.each(RETIREMENT_CASES)('$label', async ({ setup, op, occurrence, kind, event, gone }) => {
    const acc = await setup();
    injectAt(acc.world.faults, op, kind, acc.world.faults.count(op) + occurrence);

    const run = await keyrot('run --apply --json', worldWiring(acc.world));

    const outcome = expectRepairedOnAttempt2(run, op);
    expectRetiredOnce(acc, { event, gone, repeatedNoticeAllowed: noticeMayRepeat(op, occurrence, kind) });
    // The retirement is in the outcome once, whichever attempt did or recorded it: when the first
    // attempt had recorded it (its answer, or a later write's, lost), as done by that attempt.
    const retired = outcome.performed.filter(
      (action) => action.kind === (gone ? 'delete' : 'deactivate') && action.keyId === acc.old.accessKeyId,
    );
    expect(retired).toHaveLength(1);
    const recordedByFirst =
      op === 'sns:Publish' ||
      (op === 'dynamodb:Save' && (occurrence === 3 || (occurrence === 2 && kind === 'timeout-after')));
    expect(retired[0]!.detail.includes('completed by an earlier attempt')).toBe(recordedByFirst);
  });
});

describe('run --apply repairs an enforced or reaped deactivation whose answer was lost', () => {
  test('enforce: UpdateAccessKey timed out after taking effect: Inactive, inactiveSince, key.enforced once', async () => {
    const acc = await enforcementDue();
    injectAt(
      acc.world.faults,
      'iam:UpdateAccessKey',
      'timeout-after',
      acc.world.faults.count('iam:UpdateAccessKey') + 1,
    );

    const run = await keyrot('run --apply --json', worldWiring(acc.world));

    const outcome = expectRepairedOnAttempt2(run, 'iam:UpdateAccessKey');
    expect(outcome.performed).toEqual(
      expect.arrayContaining([expect.objectContaining({ kind: 'enforce', keyId: acc.old.accessKeyId })]),
    );
    expectRetiredOnce(acc, { event: 'key.enforced', gone: false, repeatedNoticeAllowed: false });
    // Announced as enforced (in use at the hard limit), not as an unused key's deactivation.
    expect(acc.world.notifier.published.filter((notice) => notice.event === 'key.deactivated')).toEqual([]);
  });

  test('reap (reapUnusedDays from the stack settings): UpdateAccessKey timed out after taking effect', async () => {
    // Bob's only key, 40 days old, unused for 35: reaped under reapUnusedDays 30; not due for rotation.
    const world = new World({ start: '2026-03-01T09:00:00Z' });
    world.iam.reportGenerationPolls = 0;
    world.iam.addUser('bob', { tags: { 'key-rotation:owner': 'bob@example.com' } });
    const idle = world.iam.addKey('bob', { ageDays: 40, lastUsedDaysAgo: 35 });
    world.faults.inject('iam:UpdateAccessKey', 'timeout-after');
    const resources = {
      table: 'ledger',
      topicArn: 'topic',
      secretPrefix: SECRET_PREFIX,
      kmsKeyArn: 'key',
      settingsJson: JSON.stringify({ reapUnusedDays: 30 }),
    };

    const run = await keyrot('run --apply --json', worldWiring(world, resources));

    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout) as RunJson;
    expect(result.failures).toEqual([]);
    expect(result.outcomes).toEqual([
      expect.objectContaining({ userName: 'bob', status: 'done', attempts: 2, repaired: true }),
    ]);
    expect(result.outcomes[0]!.performed).toEqual(
      expect.arrayContaining([expect.objectContaining({ kind: 'reap', keyId: idle.accessKeyId })]),
    );
    expect(world.iam.findKey(idle.accessKeyId)?.status).toBe('Inactive');
    const record = world.ledger.peek(world.accountId, 'bob')!;
    expect(record.inactiveSince[idle.accessKeyId]).toBeDefined();
    expect(record.outbox).toEqual([]);
    expect(record.lock).toBeUndefined();
    expect(world.notifier.published.filter((notice) => notice.event === 'key.reaped')).toEqual([
      expect.objectContaining({
        userName: 'bob',
        details: expect.objectContaining({ keyId: idle.accessKeyId }) as unknown,
      }),
    ]);
    expect(world.iam.apiCreatedKeys()).toEqual([]);
  });
});

/**
 * Alice's 85-day key is due, and she has an inactive key besides (her previous one, switched off by
 * hand, not in the ledger): only two keys fit, so it is deleted first to make room (make-room).
 */
function makeRoomDue(): Account & { inactive: FakeKey } {
  const acc = account();
  const inactive = acc.world.iam.addKey('alice', { ageDays: 200, status: 'Inactive', lastUsedDaysAgo: 120 });
  return { ...acc, inactive };
}

/** The make-room deletion's writes: pending with the lock, the delete, recorded (before the rotation's intent). */
const MAKE_ROOM_WRITES: readonly [op: string, occurrence: number][] = [
  ['iam:DeleteAccessKey', 1],
  ['dynamodb:Save', 1],
  ['dynamodb:Save', 2],
];

describe.each([
  ['run --apply', 'run --apply --json'],
  ['rotate --user alice --apply', 'rotate --user alice --apply --json'],
])('%s repairs a deletion to make room whose outcome is unknown, then rotates', (_name, command) => {
  test('a clean run deletes the inactive key first, then rotates', async () => {
    const acc = makeRoomDue();

    const run = await keyrot(command, worldWiring(acc.world));

    expect(run.code).toBe(0);
    const deletes = acc.world.faults.calls.indexOf('iam:DeleteAccessKey');
    const saves = acc.world.faults.calls.flatMap((call, index) => (call === 'dynamodb:Save' ? [index] : []));
    // The pending deletion (with the lock) is written before the delete, the deletion recorded after it.
    expect(saves[0]!).toBeLessThan(deletes);
    expect(saves[1]!).toBeGreaterThan(deletes);
    expect(acc.world.faults.calls.indexOf('iam:CreateAccessKey')).toBeGreaterThan(saves[1]!);
    expectMadeRoomAndRotated(acc);
  });

  test.each(
    MAKE_ROOM_WRITES.flatMap(([op, occurrence]) => KINDS.map((kind) => [op, occurrence, kind] as const)),
  )(
    '%s (call %i) %s: the inactive key gone, one new key current, after one invocation',
    async (op, occurrence, kind) => {
      const acc = makeRoomDue();
      injectAt(acc.world.faults, op, kind, occurrence);

      const run = await keyrot(command, worldWiring(acc.world));

      expectRepairedOnAttempt2(run, op);
      expectMadeRoomAndRotated(acc);
      expectNoSecretIn(run, acc.world.iam.issuedSecrets);
    },
  );
});

function expectMadeRoomAndRotated(acc: Account & { inactive: FakeKey }): void {
  const { world, inactive } = acc;
  expect(world.iam.findKey(inactive.accessKeyId)).toBeUndefined();
  expect(world.iam.users.get('alice')?.keys).toHaveLength(2);
  expectRotatedOnce(acc, { repeatedNoticeAllowed: false });
  const record = world.ledger.peek(world.accountId, 'alice')!;
  expect(record.lock).toBeUndefined();
  expect(record.inactiveSince[inactive.accessKeyId]).toBeUndefined();
  const deleted = world.notifier.published.filter(
    (notice) => notice.event === 'key.deleted' && notice.details.keyId === inactive.accessKeyId,
  );
  expect(deleted).toHaveLength(1);
}

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
