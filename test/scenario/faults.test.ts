/**
 * Fault injection over a rotation (I1, I2, I5, I7). Every call a clean scheduled run makes is made to
 * fail in every way the fakes know; after a restart and a rerun past the lock's lease, the account
 * must end exactly as a clean run leaves it: one new key, stored, verified and announced once, the
 * old key still working, nothing done twice, and the exempt user untouched.
 */
import { LockHeldError, VerificationError } from '../../lambda/domain/errors';
import type { FaultKind } from '../fakes/faults';
import type { FakeKey } from '../fakes/iam';
import {
  beforeCall,
  injectAt,
  secretLossProblems,
  storedKey,
  unrecoverableKeyProblems,
  userFingerprint,
} from '../fakes/invariants';
import { World } from '../fakes/world';

const KINDS: readonly FaultKind[] = [
  'throttle',
  'access-denied',
  'timeout-before',
  'timeout-after',
  'crash-after',
];

/** The lock's lease is 15 minutes; a rerun after a crash waits it out. */
const PAST_THE_LEASE_MS = 16 * 60_000;

/**
 * Every call of a clean scheduled run (plan, then rotate alice; bob is exempt). test.each needs its
 * table before any test runs, so the recording is written down here and the first test proves it is
 * still what a clean run does: if the services change their calls, update this list.
 */
const CLEAN_RUN_CALLS: readonly string[] = [
  // planAccount: decides from the ledger and the credential report alone, and queues alice and bob
  'dynamodb:Query',
  'iam:GenerateCredentialReport', // STARTED
  'iam:GenerateCredentialReport', // COMPLETE
  'iam:GetCredentialReport',
  // rotateUser(alice)
  'dynamodb:Load', // her record (none yet): no other run holds her lock
  'iam:GetUser',
  'iam:ListAccessKeys', // one key, due by age: when it was last used changes nothing, so it is not read
  'secretsmanager:DescribeSecret', // no secret yet; the store reuses this answer
  'dynamodb:FindOwnerSubscription', // not subscribed yet...
  'sns:Subscribe', // ...so her own topic is created and she is subscribed
  'dynamodb:RecordOwnerSubscription',
  'dynamodb:Save', // lock + intent
  'iam:CreateAccessKey',
  'secretsmanager:Store', // phase `stored` is not written: the vault tells a rerun (written only if the rotation stops)
  'secretsmanager:GetSecretValue',
  'sts:GetCallerIdentity', // after 5 s: not yet propagated...
  'sts:GetCallerIdentity', // ...4 s later: accepted
  'secretsmanager:Promote', // the verified key becomes AWSCURRENT
  'dynamodb:Save', // rotated, notice in the outbox (still locked)
  'sns:GetTopicAttributes', // is she reachable on her own topic? Not confirmed yet: the default recipients get her copy
  'sns:Publish',
  'dynamodb:Save', // outbox emptied, review recorded, lock released
  // rotateUser(bob): exempt, so nothing is done and nothing written
  'dynamodb:Load',
  'iam:GetUser',
  'iam:ListAccessKeys',
];

const CLEAN_RUN_OPS: readonly string[] = [...new Set(CLEAN_RUN_CALLS)];

interface Account {
  readonly world: World;
  /** Alice's 85-day key, which her workload keeps using every day. */
  readonly old: FakeKey;
  /** Bob (exempt) as IAM holds him before anything runs. */
  readonly bobBefore: string;
}

function account(): Account {
  const world = new World();
  world.iam.addUser('alice', { tags: { 'key-rotation:owner': 'alice@example.com' } });
  const old = world.iam.addKey('alice', { ageDays: 85, lastUsedDaysAgo: 0 });
  world.iam.addUser('bob', { tags: { 'key-rotation:exempt': 'legacy system' } });
  world.iam.addKey('bob', { ageDays: 85, lastUsedDaysAgo: 3 });
  return { world, old, bobBefore: userFingerprint(world, 'bob') };
}

/** One scheduled run; every error it ends with (the plan's, or a user's). */
async function runDay(world: World): Promise<unknown[]> {
  try {
    const day = await world.runDay();
    return day.failures.map((failure) => failure.error);
  } catch (error) {
    return [error];
  }
}

/** The process restarts; later runs (past the lease) until one ends without error, at most 3. */
async function rerunUntilClean({ world, old }: Account): Promise<void> {
  const errors: unknown[] = [];
  for (let rerun = 1; rerun <= 3; rerun++) {
    world.faults.restart();
    world.clock.advance(PAST_THE_LEASE_MS);
    expect(world.iam.use(old)).toBe(true); // the workload, between runs
    const failed = await runDay(world);
    if (failed.length === 0) return;
    errors.push(...failed);
  }
  throw new Error(`no clean run after 3 reruns: ${errors.map(String).join('; ')}`);
}

/** What may be true between a failed run and its rerun: nothing lost, nobody cut off. */
function expectSafeMidway({ world, old }: Account): void {
  expect(unrecoverableKeyProblems(world)).toEqual([]);
  expect(world.iam.findKey(old.accessKeyId)?.status).toBe('Active');
}

/** The end state of one completed rotation of alice, whatever happened on the way. */
function expectRotatedOnce(
  acc: Account,
  options: { repeatedNoticeAllowed: boolean; subscriptionMayFail?: boolean },
): void {
  const { world, old } = acc;
  const now = world.clock.now();

  // I1: no key without its stored secret; AWSCURRENT holds a working key's secret.
  expect(secretLossProblems(world)).toEqual([]);

  // I2: the old key still works (the grace has not passed); exactly one new key, current and verified.
  expect(world.iam.findKey(old.accessKeyId)).toMatchObject({ status: 'Active', createDate: old.createDate });
  expect(world.iam.use(old)).toBe(true);
  const created = world.iam
    .apiCreatedKeys()
    .filter(({ user }) => user.userName === 'alice')
    .map(({ key }) => key);
  expect(created).toHaveLength(1);
  const fresh = created[0]!;
  expect(fresh.status).toBe('Active');
  expect(world.vault.readStage(world.secretName('alice'))).toEqual({
    accessKeyId: fresh.accessKeyId,
    secretAccessKey: fresh.secretAccessKey,
    UserName: 'alice',
  });
  // The fake STS records a use only when it accepts the key: the new key was proven to work.
  expect(fresh.lastUsedDate).toBeDefined();
  expect(fresh.lastUsedDate!.getTime() - fresh.createDate.getTime()).toBeGreaterThanOrEqual(
    world.verifier.propagationMs,
  );

  // I5: nothing done twice, nothing left in flight.
  expect(world.iam.users.get('alice')!.keys.map((key) => key.accessKeyId)).toEqual([
    old.accessKeyId,
    fresh.accessKeyId,
  ]);
  const record = world.ledger.peek(world.accountId, 'alice')!;
  expect(record.rotations.map(({ oldKeyId, newKeyId }) => ({ oldKeyId, newKeyId }))).toEqual([
    { oldKeyId: old.accessKeyId, newKeyId: fresh.accessKeyId },
  ]);
  expect(record.history.filter((entry) => entry.action === 'key.rotated')).toHaveLength(1);
  expect(record.inFlight).toBeUndefined();
  expect(record.outbox).toEqual([]);
  if (record.lock) expect(new Date(record.lock.until).getTime()).toBeLessThanOrEqual(now.getTime());
  const aboutAlice = world.notifier.published.filter((notice) => notice.userName === 'alice');
  // A failed subscription never stops the rotation; it is reported (once that day) instead.
  const subscriptionFailures = aboutAlice.filter((notice) => notice.event === 'owner.subscription-failed');
  expect(subscriptionFailures).toHaveLength(options.subscriptionMayFail ? subscriptionFailures.length : 0);
  expect(subscriptionFailures.length).toBeLessThanOrEqual(1);
  const notices = aboutAlice.filter((notice) => notice.event !== 'owner.subscription-failed');
  expect(new Set(notices.map((notice) => notice.event))).toEqual(new Set(['key.rotated']));
  expect(notices[0]?.details).toMatchObject({ oldKeyId: old.accessKeyId, newKeyId: fresh.accessKeyId });
  // A repeat must be the same notice, so that a subscriber can drop it.
  expect(new Set(notices.map((notice) => notice.dedupeId)).size).toBe(1);
  if (options.repeatedNoticeAllowed) {
    // At-least-once delivery: SNS took the notice but the run died before the outbox was emptied.
    expect(notices.length).toBeGreaterThanOrEqual(1);
    expect(notices.length).toBeLessThanOrEqual(2);
  } else {
    expect(notices).toHaveLength(1);
  }

  // I7: the exempt user is exactly as before, and nothing was written or sent about him.
  expect(userFingerprint(world, 'bob')).toBe(acc.bobBefore);
  expect(world.ledger.peek(world.accountId, 'bob')).toBeUndefined();
  expect(world.notifier.published.filter((notice) => notice.userName === 'bob')).toEqual([]);
  expect(world.vault.secrets.has(world.secretName('bob'))).toBe(false);
}

/** The owner's subscription is best effort: its failure is reported, and the rotation goes on. */
const SUBSCRIPTION_OPS = new Set([
  'dynamodb:FindOwnerSubscription',
  'sns:GetTopicAttributes',
  'sns:Subscribe',
  'dynamodb:RecordOwnerSubscription',
]);

/** SNS accepted the notice but its removal from the outbox was not recorded: it goes out again. */
function publishMayRepeat(callIndex: number, kind: FaultKind): boolean {
  const op = CLEAN_RUN_CALLS[callIndex];
  if (op === 'sns:Publish') return kind === 'timeout-after' || kind === 'crash-after';
  const afterPublish = op === 'dynamodb:Save' && CLEAN_RUN_CALLS[callIndex - 1] === 'sns:Publish';
  return afterPublish && (kind === 'throttle' || kind === 'access-denied' || kind === 'timeout-before');
}

test('a clean run makes exactly the calls the fault tables cover, and satisfies the invariants', async () => {
  const acc = account();

  const errors = await runDay(acc.world);

  expect(errors).toEqual([]);
  expect(acc.world.faults.calls).toEqual(CLEAN_RUN_CALLS);
  expect([...new Set(acc.world.faults.calls)]).toEqual(CLEAN_RUN_OPS);
  expectRotatedOnce(acc, { repeatedNoticeAllowed: false });
  await rerunUntilClean(acc); // a later run changes nothing
  expectRotatedOnce(acc, { repeatedNoticeAllowed: false });
});

describe('every op of a rotation fails once (its first call)', () => {
  const cases = CLEAN_RUN_OPS.flatMap((op) => KINDS.map((kind) => [op, kind] as const));

  test.each(cases)('%s: %s', async (op, kind) => {
    const acc = account();
    acc.world.faults.inject(op, kind, 1);

    await runDay(acc.world); // may fail: that is the point

    expectSafeMidway(acc);
    await rerunUntilClean(acc);
    expectRotatedOnce(acc, {
      repeatedNoticeAllowed: publishMayRepeat(CLEAN_RUN_CALLS.indexOf(op), kind),
      subscriptionMayFail: SUBSCRIPTION_OPS.has(op),
    });
  });
});

describe('every call of a rotation fails once (any call, not only the first of its op)', () => {
  const cases = CLEAN_RUN_CALLS.flatMap((op, index) => {
    const occurrence = CLEAN_RUN_CALLS.slice(0, index + 1).filter((call) => call === op).length;
    return KINDS.map((kind) => [index + 1, op, occurrence, kind] as const);
  });

  test.each(cases)('call %i (%s #%i): %s', async (callNumber, op, occurrence, kind) => {
    const acc = account();
    injectAt(acc.world.faults, op, kind, occurrence);

    await runDay(acc.world);

    // The faulted call was reached (the injection happens just before it).
    expect(acc.world.faults.calls.filter((call) => call === op).length).toBeGreaterThanOrEqual(occurrence);
    expectSafeMidway(acc);
    await rerunUntilClean(acc);
    expectRotatedOnce(acc, {
      repeatedNoticeAllowed: publishMayRepeat(callNumber - 1, kind),
      subscriptionMayFail: SUBSCRIPTION_OPS.has(op),
    });
  });
});

describe('interrupted rotations are repaired by the next run', () => {
  test('crash right after CreateAccessKey: the unstored key is deleted and a fresh rotation completes', async () => {
    const acc = account();
    const { world } = acc;
    world.faults.inject('iam:CreateAccessKey', 'crash-after');

    await expect(world.rotate('alice')).rejects.toThrow('simulated crash after iam:CreateAccessKey');

    // The secret of this key is lost for good; the intent recorded before creating it covers it.
    const [orphan] = world.iam.apiCreatedKeys().map(({ key }) => key);
    expect(orphan).toBeDefined();
    expect(storedKey(world, 'alice', orphan!.accessKeyId)).toBeUndefined();
    expect(world.ledger.peek(world.accountId, 'alice')?.inFlight).toMatchObject({
      phase: 'intent',
      oldKeyId: acc.old.accessKeyId,
    });

    world.faults.restart();
    world.clock.advance(PAST_THE_LEASE_MS);
    const outcome = await world.rotate('alice');

    expect(outcome.status).toBe('done');
    expect(world.iam.findKey(orphan!.accessKeyId)).toBeUndefined();
    expect(world.iam.issuedSecrets).toHaveLength(2);
    expect(world.iam.apiCreatedKeys().map(({ key }) => key.accessKeyId)).not.toContain(orphan!.accessKeyId);
    expect(world.ledger.peek(world.accountId, 'alice')?.history).toContainEqual(
      expect.objectContaining({
        action: 'rotation.recovered',
        detail: 'the key created by the interrupted rotation was deleted',
      }),
    );
    expectRotatedOnce(acc, { repeatedNoticeAllowed: false });
  });

  test('crash right after the secret is stored: the rerun adopts that key instead of creating another', async () => {
    const acc = account();
    const { world } = acc;
    world.faults.inject('secretsmanager:Store', 'crash-after');

    await expect(world.rotate('alice')).rejects.toThrow('simulated crash after secretsmanager:Store');
    const [stored] = world.iam.apiCreatedKeys().map(({ key }) => key);
    expect(world.vault.readStage(world.secretName('alice'), 'AWSPENDING')?.accessKeyId).toBe(
      stored!.accessKeyId,
    );
    expect(world.vault.readStage(world.secretName('alice'))).toBeUndefined(); // not current before verification
    expect(world.ledger.peek(world.accountId, 'alice')?.inFlight?.phase).toBe('intent');

    world.faults.restart();
    world.clock.advance(PAST_THE_LEASE_MS);
    await world.rotate('alice');

    expect(world.iam.issuedSecrets).toHaveLength(1); // no second CreateAccessKey
    expect(world.ledger.peek(world.accountId, 'alice')?.rotations).toEqual([
      expect.objectContaining({ newKeyId: stored!.accessKeyId }),
    ]);
    expectRotatedOnce(acc, { repeatedNoticeAllowed: false });
  });

  test('STS never accepts the key: the run fails, the old key is untouched, a later run verifies and completes', async () => {
    const acc = account();
    const { world } = acc;
    world.verifier.propagationMs = Number.POSITIVE_INFINITY;

    const failure = await world.rotate('alice').then(
      () => undefined,
      (error: unknown) => error,
    );

    expect(failure).toBeInstanceOf(VerificationError);
    expect((failure as VerificationError).retryable).toBe(true);
    expect(world.iam.findKey(acc.old.accessKeyId)).toMatchObject({ status: 'Active' });
    expect(world.iam.use(acc.old)).toBe(true);
    const [pending] = world.iam.apiCreatedKeys().map(({ key }) => key);
    expect(world.vault.readStage(world.secretName('alice'), 'AWSPENDING')?.accessKeyId).toBe(
      pending!.accessKeyId,
    );
    expect(world.vault.readStage(world.secretName('alice'))).toBeUndefined(); // unverified: never current
    expect(world.ledger.peek(world.accountId, 'alice')).toMatchObject({
      inFlight: { phase: 'stored', newKeyId: pending!.accessKeyId },
      rotations: [],
    });
    expect(world.notifier.published).toEqual([]); // nothing is announced before it is proven

    world.verifier.propagationMs = 8_000;
    world.clock.advance(60 * 60_000);
    await rerunUntilClean(acc);

    expect(world.iam.issuedSecrets).toHaveLength(1); // the stored key was verified, not replaced
    expectRotatedOnce(acc, { repeatedNoticeAllowed: false });
  });
});

describe('serialised (I5)', () => {
  test('a lock held by another holder: LockHeldError and nothing changed; after its lease, the rotation runs', async () => {
    const acc = account();
    const { world } = acc;
    const now = world.clock.now();
    await world.ledger.acquireLock(
      world.accountId,
      'alice',
      'someone-else',
      now,
      new Date(now.getTime() + 15 * 60_000),
    );
    const iamBefore = world.iam.snapshot();
    const ledgerBefore = [...world.ledger.items.entries()];

    await expect(world.rotate('alice')).rejects.toBeInstanceOf(LockHeldError);
    const day = await world.runDay();

    expect(day.failures.map((failure) => failure.error)).toEqual([expect.any(LockHeldError)]);
    expect(world.iam.snapshot()).toBe(iamBefore);
    expect(world.iam.issuedSecrets).toEqual([]);
    expect(world.vault.secrets.size).toBe(0);
    expect(world.notifier.published).toEqual([]);
    expect([...world.ledger.items.entries()]).toEqual(ledgerBefore);

    await rerunUntilClean(acc);
    expectRotatedOnce(acc, { repeatedNoticeAllowed: false });
  });

  test('two runs started together: one rotates, the other is turned away by the lock', async () => {
    const acc = account();
    const { world } = acc;

    const results = await Promise.allSettled([world.rotate('alice'), world.rotate('alice')]);

    expect(results.map((result) => result.status).sort()).toEqual(['fulfilled', 'rejected']);
    const rejected = results.find((result) => result.status === 'rejected');
    expect(rejected?.reason).toBeInstanceOf(LockHeldError);
    expectRotatedOnce(acc, { repeatedNoticeAllowed: false });
  });

  test('a second run starting while the first verifies the new key changes nothing', async () => {
    const acc = account();
    const { world } = acc;
    let second: Promise<unknown> | undefined;
    beforeCall(world.faults, 'sts:GetCallerIdentity', 2, () => {
      second = world.rotate('alice').then(
        () => 'finished',
        (error: unknown) => error,
      );
    });

    await world.rotate('alice');

    expect(await second).toBeInstanceOf(LockHeldError);
    expectRotatedOnce(acc, { repeatedNoticeAllowed: false });
  });

  test('the schedule and the CLI on the same user at once, then a redelivered message', async () => {
    const acc = account();
    const { world } = acc;

    await Promise.allSettled([world.runDay(), world.rotate('alice'), world.rotate('alice')]);
    world.clock.advance(PAST_THE_LEASE_MS);
    const redelivered = await world.rotate('alice');

    expect(redelivered.status).toBe('nothing-due');
    expectRotatedOnce(acc, { repeatedNoticeAllowed: false });
  });
});

/*
 * A run that outlives its lease (a suspended CLI process, say) must not undo the new lock holder's
 * work: run 1 stalls between CreateAccessKey and Store; run 2 takes the lock, deletes run 1's unstored
 * key and completes a rotation with another key. Run 1 then stores its (deleted) key, but only as
 * AWSPENDING: AWSCURRENT moves only after verification, and run 1's ledger write fails first.
 */
test('a run that outlives its lease must not leave a deleted key as AWSCURRENT', async () => {
  const acc = account();
  const { world } = acc;
  let takeover: Promise<unknown> = Promise.resolve();
  beforeCall(world.faults, 'secretsmanager:Store', 1, async () => {
    world.clock.advance(PAST_THE_LEASE_MS); // run 1 stalls with its new key not yet stored
    takeover = world.rotate('alice');
    await takeover;
  });

  const first = await world.rotate('alice').then(
    () => undefined,
    (error: unknown) => error,
  );
  await expect(takeover).resolves.toMatchObject({ status: 'done' });
  expect(first).toBeDefined(); // run 1 cannot finish: the ledger moved on
  await rerunUntilClean(acc);

  const announced = world.ledger.peek(world.accountId, 'alice')!.rotations[0]!.newKeyId;
  expect(world.vault.readStage(world.secretName('alice'))?.accessKeyId).toBe(announced);
  expect(secretLossProblems(world)).toEqual([]);
});

describe('the checks themselves', () => {
  test('catch a key without its stored secret, and a repeated rotation notice', async () => {
    const acc = account();
    await runDay(acc.world);
    acc.world.iam.addUser('carol');
    await acc.world.iam.createAccessKey('carol'); // created, never stored

    expect(secretLossProblems(acc.world)).toEqual([expect.stringContaining('carol: key AKIAFAKE')]);
    expect(unrecoverableKeyProblems(acc.world)).toHaveLength(1);
    acc.world.iam.users.delete('carol');
    expectRotatedOnce(acc, { repeatedNoticeAllowed: false });
    acc.world.notifier.published.push({ ...acc.world.notifier.published[0]! });
    expect(() => expectRotatedOnce(acc, { repeatedNoticeAllowed: false })).toThrow();
  });

  test('catch a change to the exempt user', async () => {
    const acc = account();
    await runDay(acc.world);
    acc.world.iam.users.get('bob')!.keys[0]!.status = 'Inactive';

    expect(() => expectRotatedOnce(acc, { repeatedNoticeAllowed: false })).toThrow();
  });
});
