/**
 * Phase `stored` is written only when a rotation stops between the store and the completion (the
 * vault tells a later run that the key was stored), or at once when the lock's lease is nearly over
 * (the fence: a run that may have been overtaken must not verify and promote without a ledger write
 * proving it still holds the user).
 */
import type { UserLedger } from '../../../lambda/domain/model';
import { STORED_FENCE_MS } from '../../../lambda/services/rotation/create-and-store';
import { beforeCall, secretLossProblems } from '../../fakes/invariants';
import { World } from '../../fakes/world';

const OWNER = { 'key-rotation:owner': 'alice@example.com' };
const LEASE_MS = 15 * 60_000;

function world(): World {
  const created = new World();
  created.iam.addUser('alice', { tags: OWNER });
  created.iam.addKey('alice', { ageDays: 85, lastUsedDaysAgo: 0 });
  return created;
}

/** The phase of every record of alice written from now on. */
function phasesWritten(target: World): (string | null)[] {
  const phases: (string | null)[] = [];
  const set = target.ledger.items.set.bind(target.ledger.items);
  target.ledger.items.set = (key: string, value: string) => {
    if (key.endsWith('#alice')) phases.push((JSON.parse(value) as UserLedger).inFlight?.phase ?? null);
    return set(key, value);
  };
  return phases;
}

const record = (target: World) => target.ledger.peek(target.accountId, 'alice')!;

test('a clean rotation: intent, then the completion; the history still says when the key was stored', async () => {
  const target = world();
  const phases = phasesWritten(target);

  await target.rotate('alice');

  expect(phases).toEqual(['intent', null, null]);
  expect(record(target).history.map((entry) => entry.action)).toEqual([
    'rotation.started',
    'rotation.stored',
    'key.rotated',
  ]);
  expect(record(target).inFlight).toBeUndefined();
});

test('a failure between the store and the completion writes phase stored; the rerun finishes that key', async () => {
  const target = world();
  target.faults.inject('secretsmanager:Promote', 'access-denied');
  const phases = phasesWritten(target);

  await expect(target.rotate('alice')).rejects.toThrow('not authorized');
  const [stored] = target.iam.apiCreatedKeys().map(({ key }) => key);

  expect(phases).toEqual(['intent', 'stored', 'stored']); // the last: the lock released after the failure
  expect(record(target).inFlight).toMatchObject({ phase: 'stored', newKeyId: stored!.accessKeyId });

  target.clock.advance(LEASE_MS + 60_000);
  await target.rotate('alice');

  expect(target.iam.issuedSecrets).toHaveLength(1);
  expect(record(target).rotations.map((rotation) => rotation.newKeyId)).toEqual([stored!.accessKeyId]);
  expect(secretLossProblems(target)).toEqual([]);
});

test('when that write fails too, the intent stays and the rerun adopts the key it finds in the vault', async () => {
  const target = world();
  target.verifier.propagationMs = Number.POSITIVE_INFINITY;
  beforeCall(target.faults, 'sts:GetCallerIdentity', 1, () =>
    target.faults.inject('dynamodb:Save', 'throttle'),
  );

  await expect(target.rotate('alice')).rejects.toThrow('was not accepted by STS');
  const [stored] = target.iam.apiCreatedKeys().map(({ key }) => key);
  expect(record(target).inFlight).toMatchObject({ phase: 'intent' });
  expect(
    target.logger.lines.filter(
      (line) => line.message === 'could not record the stored key; the next run finds it in the vault',
    ),
  ).toHaveLength(1);

  target.verifier.propagationMs = 8_000;
  target.clock.advance(LEASE_MS + 60_000);
  await target.rotate('alice');

  expect(target.iam.issuedSecrets).toHaveLength(1); // no second key
  expect(record(target).rotations.map((rotation) => rotation.newKeyId)).toEqual([stored!.accessKeyId]);
  expect(record(target).history.map((entry) => entry.action)).toContain('rotation.recovered');
  expect(secretLossProblems(target)).toEqual([]);
});

test('the fence: a store that returns with little of the lease left writes phase stored before verifying', async () => {
  const target = world();
  beforeCall(target.faults, 'secretsmanager:Store', 1, () => {
    target.clock.advance(LEASE_MS - STORED_FENCE_MS + 1_000); // the run stalls before the store
  });
  const phases = phasesWritten(target);
  const calls = target.faults.calls;

  await target.rotate('alice');

  expect(phases).toEqual(['intent', 'stored', null, null]);
  // The write comes between the store and the first verification.
  const store = calls.indexOf('secretsmanager:Store');
  expect(calls.slice(store + 1, store + 2)).toEqual(['dynamodb:Save']);
});

/*
 * Why the fence: run 1 stalls before its store past its lease. Run 2 takes over, finds the intent and
 * run 1's new key, which it does not find in the vault (not stored yet, never used): an orphan, which
 * it deletes. Run 1's store lands between run 2's look and the deletion. Without a write between the
 * store and the promote, run 1 would verify its key (still there) and make it AWSCURRENT, just before
 * run 2 deletes it: the secret owners read would hold a deleted key until a later rotation.
 */
test('a run overtaken between its store and its promote never makes a key being deleted AWSCURRENT', async () => {
  const target = world();
  let run1: Promise<unknown> = Promise.resolve();
  let run2: Promise<unknown> = Promise.resolve();
  let run2Looked: () => void = () => undefined;
  const run2HasLooked = new Promise<void>((resolve) => (run2Looked = resolve));
  let first = '';
  beforeCall(target.faults, 'secretsmanager:Store', 1, async () => {
    first = target.iam.apiCreatedKeys()[0]!.key.accessKeyId;
    target.clock.advance(LEASE_MS + 60_000); // run 1 stalls before its store, past its lease
    run2 = target.rotate('alice').catch((error: unknown) => error);
    await run2HasLooked; // run 2 has looked in the vault and is about to delete run 1's key
  });
  beforeCall(target.faults, 'iam:DeleteAccessKey', 1, async () => {
    run2Looked();
    await run1; // run 1 stores its key and goes as far as it goes before run 2 deletes the key
    target.verifier.propagationMs = Number.POSITIVE_INFINITY; // run 2's own new key is never accepted
  });

  run1 = target.rotate('alice').catch((error: unknown) => error);
  await run1;
  await run2;

  expect(first).not.toBe('');
  expect(target.iam.findKey(first)).toBeUndefined(); // run 2 deleted it
  const current = target.vault.readStage(target.secretName('alice'));
  // Nothing was made current (run 2's key is unverified): above all, never the deleted key.
  expect(current?.accessKeyId).not.toBe(first);
  expect(current).toBeUndefined();
  expect(target.faults.calls.filter((call) => call === 'secretsmanager:Promote')).toEqual([]);

  // The next run completes a rotation as ever.
  target.verifier.propagationMs = 8_000;
  target.clock.advance(LEASE_MS + 60_000);
  await target.rotate('alice');
  expect(secretLossProblems(target)).toEqual([]);
  expect(record(target).rotations).toHaveLength(1);
});
