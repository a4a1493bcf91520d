import { LockHeldError } from '../../../lambda/domain/errors';
import type { UserLedger } from '../../../lambda/domain/model';
import { fingerprintOfKeys, settingsDigest } from '../../../lambda/domain/review';
import { MS_PER_DAY } from '../../../lambda/domain/time';
import { rotateUser } from '../../../lambda/services/rotate-user';
import { beforeCall } from '../../fakes/invariants';
import { World } from '../../fakes/world';

const OWNER = { 'key-rotation:owner': 'alice@example.com' };

function keysOf(world: World, user: string) {
  return world.iam.users.get(user)!.keys.map((key) => ({ id: key.accessKeyId, status: key.status }));
}

describe('rotateUser', () => {
  test('warns once, subscribing the owner, then rotates on the day', async () => {
    const world = new World();
    world.iam.addUser('alice', { tags: OWNER });
    const key = world.iam.addKey('alice', { ageDays: 76 });

    await world.rotate('alice');
    await world.rotate('alice'); // same day again: no second warning
    world.clock.advanceDays(1);
    await world.rotate('alice');

    expect(world.notifier.events('alice')).toEqual(['key.expiring']);
    expect(world.notifier.subscribed).toEqual(new Set(['alice@example.com']));
    expect(world.notifier.published[0]).toMatchObject({
      owner: 'alice@example.com',
      subject: 'Access key of alice will be rotated on 2026-01-05',
      details: { keyId: key.accessKeyId, rotateOn: '2026-01-05', secretName: world.secretName('alice') },
    });
    world.clock.advanceDays(3);
    await world.rotate('alice');
    expect(world.notifier.events('alice')).toEqual(['key.expiring', 'key.rotated']);
    expect(keysOf(world, 'alice')).toHaveLength(2);
  });

  test('verifies the new key as stored, retrying while IAM propagates it', async () => {
    const world = new World();
    world.verifier.propagationMs = 12_000;
    world.iam.addUser('alice', { tags: OWNER });
    world.iam.addKey('alice', { ageDays: 80 });

    await world.rotate('alice');

    // The first attempt after 5 s (IAM needs a moment), then 4 s and 8 s later: accepted at 17 s >= 12 s.
    expect(world.clock.slept).toBe(17_000);
    expect(world.faults.count('sts:GetCallerIdentity')).toBe(3);
    expect(world.logger.audits('key.rotated')[0]).toMatchObject({ verifyAttempts: 3, outcome: 'success' });
    const newKey = world.iam.users.get('alice')!.keys[1]!;
    expect(newKey.lastUsedDate).toBeDefined(); // STS saw the key
  });

  test('a key that STS never accepts leaves the rotation stored but unannounced; the old key stays', async () => {
    const world = new World({ rotationOptions: { verifyTimeoutMs: 30_000 } });
    world.verifier.propagationMs = 10 * MS_PER_DAY;
    world.iam.addUser('alice', { tags: OWNER });
    const old = world.iam.addKey('alice', { ageDays: 80 });

    await expect(world.rotate('alice')).rejects.toThrow('was not accepted by STS within 30 s');

    expect(world.ledger.peek(world.accountId, 'alice')?.inFlight).toMatchObject({ phase: 'stored' });
    expect(world.notifier.published).toEqual([]);
    expect(world.iam.findKey(old.accessKeyId)?.status).toBe('Active');
    expect(world.ledger.peek(world.accountId, 'alice')?.lock).toBeUndefined();
  });

  test('deletes the inactive key to make room, then rotates', async () => {
    const world = new World();
    world.iam.addUser('alice', { tags: OWNER });
    const inactive = world.iam.addKey('alice', { ageDays: 200, status: 'Inactive' });
    const active = world.iam.addKey('alice', { ageDays: 81 });

    const outcome = await world.rotate('alice');

    expect(outcome.performed.map((action) => action.kind)).toEqual(['delete', 'rotate']);
    const keys = keysOf(world, 'alice');
    expect(keys.map((key) => key.id)).not.toContain(inactive.accessKeyId);
    expect(keys[0]).toEqual({ id: active.accessKeyId, status: 'Active' });
    expect(keys).toHaveLength(2);
    expect(world.notifier.events('alice')).toEqual(['key.deleted', 'key.rotated']);
  });

  test('after the grace: deactivates an unused old key; the delete clock starts then', async () => {
    const world = new World();
    world.iam.addUser('alice', { tags: OWNER });
    const old = world.iam.addKey('alice', { ageDays: 80, lastUsedDaysAgo: 1 });
    await world.rotate('alice');

    world.clock.advanceDays(6);
    await world.rotate('alice');
    expect(world.iam.findKey(old.accessKeyId)?.status).toBe('Active'); // day 6 of 7

    world.clock.advanceDays(1);
    await world.rotate('alice');
    expect(world.iam.findKey(old.accessKeyId)?.status).toBe('Inactive');
    expect(world.ledger.peek(world.accountId, 'alice')?.inactiveSince[old.accessKeyId]).toBe(
      world.clock.now().toISOString(),
    );

    world.clock.advanceDays(13);
    await world.rotate('alice');
    expect(world.iam.findKey(old.accessKeyId)).toBeDefined();
    world.clock.advanceDays(1);
    await world.rotate('alice');
    expect(world.iam.findKey(old.accessKeyId)).toBeUndefined();
    expect(world.notifier.events('alice')).toEqual(['key.rotated', 'key.deactivated', 'key.deleted']);
  });

  test('an old key still in use is postponed with one reminder a day, then enforced at the hard limit', async () => {
    const world = new World();
    world.iam.addUser('alice', { tags: OWNER });
    const old = world.iam.addKey('alice', { ageDays: 80 });
    await world.rotate('alice');
    for (let day = 1; day <= 10; day++) {
      world.clock.advanceDays(1);
      world.iam.use(old); // the workload never switches
      await world.rotate('alice');
      await world.rotate('alice'); // a second run the same day sends no second reminder
    }
    expect(world.notifier.events('alice')).toEqual([
      'key.rotated',
      'key.deactivation-postponed', // day 7 (key 87 days old)
      'key.deactivation-postponed',
      'key.deactivation-postponed',
      'key.enforced', // day 10 (key 90 days old)
    ]);
    expect(world.iam.findKey(old.accessKeyId)?.status).toBe('Inactive');
    expect(world.notifier.published[1]?.details).toMatchObject({ enforceOn: '2026-01-11' });
  });

  test('a key reactivated by hand gets one more grace period, then follows the rules again', async () => {
    const world = new World();
    world.iam.addUser('alice', { tags: OWNER });
    const old = world.iam.addKey('alice', { ageDays: 80 });
    await world.rotate('alice');
    world.clock.advanceDays(7);
    await world.rotate('alice');
    expect(world.iam.findKey(old.accessKeyId)?.status).toBe('Inactive');

    world.clock.advanceDays(1);
    world.iam.findKey(old.accessKeyId)!.status = 'Active'; // somebody needed it back
    world.iam.use(old);
    await world.rotate('alice');
    expect(world.iam.findKey(old.accessKeyId)?.status).toBe('Active');
    expect(world.notifier.events('alice').at(-1)).toBe('key.reactivated');

    world.clock.advanceDays(6);
    world.iam.use(old);
    await world.rotate('alice');
    expect(world.iam.findKey(old.accessKeyId)?.status).toBe('Active');
    world.clock.advanceDays(1);
    world.iam.use(old);
    await world.rotate('alice');
    // Grace over again, key 96 days old and in use: enforced.
    expect(world.iam.findKey(old.accessKeyId)?.status).toBe('Inactive');
    expect(world.notifier.events('alice').at(-1)).toBe('key.enforced');
  });

  test('two active keys not created by the service: one notice, nothing changed, however often it runs', async () => {
    const world = new World();
    world.iam.addUser('alice', { tags: OWNER });
    world.iam.addKey('alice', { ageDays: 120 });
    world.iam.addKey('alice', { ageDays: 100 });
    const before = world.iam.snapshot();

    for (let day = 0; day < 3; day++) {
      await world.rotate('alice');
      world.clock.advanceDays(1);
    }

    expect(world.iam.snapshot()).toBe(before);
    expect(world.notifier.events('alice')).toEqual(['keys.conflict']);
    expect(world.logger.audits('keys.conflict')).toHaveLength(3);
  });

  test('reaping unused keys is opt-in and deactivates, never deletes at once', async () => {
    const off = new World();
    off.iam.addUser('idle');
    off.iam.addKey('idle', { ageDays: 50 });
    await off.rotate('idle');
    expect(keysOf(off, 'idle')[0]?.status).toBe('Active');

    const on = new World({ settings: { reapUnusedDays: 45 } });
    on.iam.addUser('idle');
    on.iam.addKey('idle', { ageDays: 50 });
    on.iam.addUser('busy');
    on.iam.addKey('busy', { ageDays: 50, lastUsedDaysAgo: 2 });
    await on.rotate('idle');
    await on.rotate('busy');
    expect(keysOf(on, 'idle')[0]?.status).toBe('Inactive');
    expect(keysOf(on, 'busy')[0]?.status).toBe('Active');
    expect(on.notifier.events('idle')).toEqual(['key.reaped']);
  });

  test('a user with no active key is never given one', async () => {
    const world = new World();
    world.iam.addUser('disabled');
    const key = world.iam.addKey('disabled', { ageDays: 300, status: 'Inactive' });

    await world.rotate('disabled');
    world.clock.advanceDays(14);
    await world.rotate('disabled');

    expect(world.iam.users.get('disabled')!.keys).toEqual([]);
    expect(world.iam.apiCreatedKeys()).toEqual([]);
    expect(world.logger.audits('key.deleted')[0]).toMatchObject({ keyId: key.accessKeyId });
  });

  test('an operator can rotate a young key now (a leaked key); grace and exemptions still apply', async () => {
    const world = new World();
    world.iam.addUser('alice', { tags: OWNER });
    const leaked = world.iam.addKey('alice', { ageDays: 3 });
    world.iam.addUser('vendor', { tags: { 'key-rotation:exempt': 'appliance' } });
    const vendorKey = world.iam.addKey('vendor', { ageDays: 3 });
    const request = {
      accountId: world.accountId,
      dryRun: false,
      forceRotation: 'leaked key reported by operator',
    };

    const outcome = await rotateUser({ ...request, userName: 'alice' }, world.rotationDeps());
    await rotateUser({ ...request, userName: 'vendor' }, world.rotationDeps());

    expect(outcome.performed.map((action) => [action.kind, action.keyId])).toEqual([
      ['rotate', leaked.accessKeyId],
    ]);
    expect(outcome.performed[0]?.detail).toBe('leaked key reported by operator (key is 3 days old)');
    expect(world.iam.findKey(leaked.accessKeyId)?.status).toBe('Active'); // the grace applies
    expect(world.iam.users.get('vendor')!.keys.map((key) => key.accessKeyId)).toEqual([
      vendorKey.accessKeyId,
    ]);
    // A plain run the same day does not rotate again.
    await world.rotate('alice');
    expect(world.iam.users.get('alice')!.keys).toHaveLength(2);
  });

  test('a key an operator creates by hand after a refused CreateAccessKey is never taken for our orphan', async () => {
    const world = new World();
    world.iam.addUser('alice', { tags: OWNER });
    const old = world.iam.addKey('alice', { ageDays: 85 });
    world.faults.inject('iam:CreateAccessKey', 'access-denied');

    await expect(world.rotate('alice')).rejects.toThrow('not authorized');
    world.clock.advance(5 * 60_000);
    const byHand = world.iam.addKey('alice', { ageDays: 0 }); // the operator's own key
    world.clock.advance(90 * 60_000); // the message comes back
    await world.rotate('alice');

    expect(world.iam.findKey(byHand.accessKeyId)).toBeDefined();
    expect(world.iam.findKey(old.accessKeyId)?.status).toBe('Active');
    // Two active keys the service did not pair: reported, nothing deleted (I3).
    expect(world.notifier.events('alice')).toEqual(['keys.conflict']);
  });

  test('after a crash mid-CreateAccessKey, a key that has signed requests is not our orphan', async () => {
    const world = new World();
    world.iam.addUser('alice', { tags: OWNER });
    world.iam.addKey('alice', { ageDays: 85 });
    world.faults.inject('iam:CreateAccessKey', 'timeout-before'); // unknown outcome: the intent stays
    await expect(world.rotate('alice')).rejects.toThrow('timed out');
    const someoneElses = world.iam.addKey('alice', { ageDays: 0 });
    world.iam.use(someoneElses);
    world.clock.advance(16 * 60_000);

    await world.rotate('alice');

    expect(world.iam.findKey(someoneElses.accessKeyId)?.status).toBe('Active');
    expect(world.ledger.peek(world.accountId, 'alice')?.inFlight).toBeUndefined();
  });

  test('an owner address SNS refuses does not hold up the rotation', async () => {
    const world = new World();
    world.iam.addUser('alice', { tags: OWNER });
    world.iam.addKey('alice', { ageDays: 85 });
    world.faults.inject('sns:Subscribe', 'access-denied');

    const outcome = await world.rotate('alice');

    expect(outcome.performed.map((action) => action.kind)).toEqual(['rotate']);
    expect(outcome.subscriptionFailures).toEqual(['alice@example.com']);
    expect(world.notifier.events('alice')).toEqual(['owner.subscription-failed', 'key.rotated']);
    expect(world.logger.audits('owner.unsubscribed')[0]).toMatchObject({
      outcome: 'failure',
      owner: 'alice@example.com',
    });
  });

  test('after a crash, a new key found in the vault is adopted even if it was used or created late', async () => {
    const world = new World();
    world.iam.addUser('alice', { tags: OWNER });
    world.iam.addKey('alice', { ageDays: 85 });
    world.faults.inject('secretsmanager:Store', 'crash-after');
    await expect(world.rotate('alice')).rejects.toThrow('simulated crash after secretsmanager:Store');
    world.faults.restart();
    const stored = world.iam.apiCreatedKeys()[0]!.key;
    stored.lastUsedDate = world.clock.now(); // it signed a request (say, a verification) before the crash
    world.clock.advance(30 * 60_000);

    await world.rotate('alice');

    expect(world.iam.users.get('alice')!.keys.map((key) => key.accessKeyId)).toContain(stored.accessKeyId);
    expect(world.iam.apiCreatedKeys()).toHaveLength(1); // no second key was created
    expect(world.vault.readStage(world.secretName('alice'))?.accessKeyId).toBe(stored.accessKeyId);
    expect(
      world.ledger.peek(world.accountId, 'alice')?.rotations.map((rotation) => rotation.newKeyId),
    ).toEqual([stored.accessKeyId]);
  });
});

describe('one conditional ledger write per phase, and no call the work does not need', () => {
  /** Every record the ledger stored, in order (as written, lock included). */
  function recordWrites(world: World): UserLedger[] {
    const written: UserLedger[] = [];
    const items = world.ledger.items;
    const set = items.set.bind(items);
    items.set = (key: string, value: string) => {
      written.push(JSON.parse(value) as UserLedger);
      return set(key, value);
    };
    return written;
  }

  const callsFrom = (world: World, from: number) => world.faults.calls.slice(from);

  test('a rotation: lock + intent, rotated + notice, cleared + review + unlocked; one DescribeSecret', async () => {
    const world = new World();
    world.iam.addUser('alice', { tags: OWNER });
    const old = world.iam.addKey('alice', { ageDays: 85, lastUsedDaysAgo: 0 });
    const writes = recordWrites(world);

    await world.rotate('alice');

    expect(
      writes.map((record) => ({
        phase: record.inFlight?.phase ?? null,
        locked: record.lock !== undefined,
        outbox: record.outbox.map((entry) => entry.notification.event),
        rotations: record.rotations.length,
        review: record.review !== undefined,
      })),
    ).toEqual([
      { phase: 'intent', locked: true, outbox: [], rotations: 0, review: false },
      // No phase `stored` on the way to the completion: the vault tells a rerun (create-and-store.ts).
      { phase: null, locked: true, outbox: ['key.rotated'], rotations: 1, review: false },
      { phase: null, locked: false, outbox: [], rotations: 1, review: true },
    ]);
    expect(world.faults.count('dynamodb:AcquireLock') + world.faults.count('dynamodb:ReleaseLock')).toBe(0);
    expect(world.faults.count('iam:GetAccessKeyLastUsed')).toBe(0);
    expect(world.vault.sdkCalls.filter((call) => call === 'DescribeSecret')).toHaveLength(1);
    // The review: her two keys, and nothing to do before the grace ends (7 days after today).
    const fresh = world.iam.users.get('alice')!.keys[1]!;
    expect(writes.at(-1)?.review).toEqual({
      keys: fingerprintOfKeys([
        { accessKeyId: old.accessKeyId, status: 'Active', createDate: old.createDate },
        { accessKeyId: fresh.accessKeyId, status: 'Active', createDate: fresh.createDate },
      ]),
      due: '2026-01-08T00:00:00.000Z',
      // When her keys were read live: the start of the unit, before the rotation's own sleeps.
      seenAt: '2026-01-01T02:00:00.000Z',
      settings: settingsDigest(world.settings),
    });
  });

  test('two runs resuming the same undelivered notices: only one publishes them', async () => {
    const world = new World();
    world.iam.addUser('alice', { tags: OWNER });
    world.iam.addKey('alice', { ageDays: 85 });
    // The rotation completes but SNS does not answer: the notice stays in the outbox.
    world.faults.inject('sns:Publish', 'timeout-before');
    await expect(world.rotate('alice')).rejects.toThrow();
    world.faults.restart();
    world.clock.advance(16 * 60_000); // past the dead run's lease
    expect(world.ledger.peek(world.accountId, 'alice')!.outbox).toHaveLength(1);

    const results = await Promise.allSettled([world.rotate('alice'), world.rotate('alice')]);

    const rotated = world.notifier.published.filter((notice) => notice.event === 'key.rotated');
    expect(rotated).toHaveLength(1);
    expect(results.filter((result) => result.status === 'fulfilled').length).toBeGreaterThanOrEqual(1);
    expect(world.ledger.peek(world.accountId, 'alice')!.outbox).toEqual([]);
  });

  test('a deactivation: lock with the pending change and its notice, the change recorded, cleared + review + unlocked', async () => {
    const world = new World();
    world.iam.addUser('alice', { tags: OWNER });
    world.iam.addKey('alice', { ageDays: 85 });
    await world.rotate('alice');
    world.clock.advanceDays(7);
    const writes = recordWrites(world);
    const from = world.faults.calls.length;

    const outcome = await world.rotate('alice');

    expect(outcome.performed.map((action) => action.kind)).toEqual(['deactivate']);
    expect(
      writes.map((record) => [
        record.lock !== undefined,
        record.outbox.length,
        record.outbox.some((entry) => entry.awaits !== undefined),
        Object.keys(record.inactiveSince).length,
      ]),
    ).toEqual([
      [true, 1, true, 0], // the lock and the pending change with its notice, before UpdateAccessKey
      [true, 1, false, 1], // deactivated: recorded, the notice released for delivery
      [false, 0, false, 1], // published: cleared, unlocked
    ]);
    expect(callsFrom(world, from).filter((call) => call.startsWith('dynamodb:'))).toEqual([
      'dynamodb:Load',
      'dynamodb:Save',
      'dynamodb:Save',
      'dynamodb:FindOwnerSubscription',
      'dynamodb:Save',
    ]);
    // Two active keys past the grace: whether the old one was used since decides, so it is read.
    expect(callsFrom(world, from).filter((call) => call === 'iam:GetAccessKeyLastUsed')).toHaveLength(2);
  });

  test('a warning: the notice with the mark (and the lock), then cleared; nothing else', async () => {
    const world = new World();
    world.iam.addUser('alice', { tags: OWNER });
    world.iam.addKey('alice', { ageDays: 76 });
    const writes = recordWrites(world);

    await world.rotate('alice');

    expect(world.faults.count('dynamodb:Save')).toBe(2);
    expect(writes.map((record) => [Object.keys(record.warnedKeys).length, record.outbox.length])).toEqual([
      [1, 1],
      [1, 0],
    ]);
    expect(writes.at(-1)?.review?.due).toBe('2026-01-05T00:00:00.000Z'); // the rotation day
  });

  test('ledger-only work (an inactive key seen for the first time): one write, no lock', async () => {
    const world = new World();
    world.iam.addUser('alice', { tags: OWNER });
    world.iam.addKey('alice', { ageDays: 100, status: 'Inactive' });
    world.iam.addKey('alice', { ageDays: 20 });
    const writes = recordWrites(world);

    await world.rotate('alice');

    expect(writes).toHaveLength(1);
    expect(writes[0]!.lock).toBeUndefined();
    expect(writes[0]!.outbox).toEqual([]);
    expect(Object.keys(writes[0]!.inactiveSince)).toHaveLength(1);
    expect(writes[0]!.review?.due).toBe('2026-01-15T00:00:00.000Z'); // deleted 14 days from now
  });

  test('nothing due: the review alone is written when it changed, and nothing at all when it did not', async () => {
    const world = new World();
    world.iam.addUser('alice', { tags: OWNER });
    world.iam.addKey('alice', { ageDays: 10 });

    await world.rotate('alice');
    const afterFirst = world.faults.count('dynamodb:Save');
    const outcome = await world.rotate('alice');

    expect(afterFirst).toBe(1);
    expect(world.ledger.peek(world.accountId, 'alice')?.review?.due).toBe('2026-03-08T00:00:00.000Z'); // the warning, at age 76
    expect(outcome.status).toBe('nothing-due');
    expect(world.faults.count('dynamodb:Save')).toBe(1);
  });

  test('an exempt user the service has no record of: nothing written (I7)', async () => {
    const world = new World();
    world.iam.addUser('bob', { tags: { 'key-rotation:exempt': 'legacy' } });
    world.iam.addKey('bob', { ageDays: 120 });

    const outcome = await world.rotate('bob');

    expect(outcome.status).toBe('nothing-due');
    expect(world.ledger.peek(world.accountId, 'bob')).toBeUndefined();
    expect(world.faults.writes()).toEqual([]);
  });

  test('a lock another run holds: LockHeldError after one read, nothing else called', async () => {
    const world = new World();
    world.iam.addUser('alice', { tags: OWNER });
    world.iam.addKey('alice', { ageDays: 85 });
    const now = world.clock.now();
    await world.ledger.acquireLock(
      world.accountId,
      'alice',
      'other-run',
      now,
      new Date(now.getTime() + 60_000),
    );
    const from = world.faults.calls.length;

    await expect(world.rotate('alice')).rejects.toBeInstanceOf(LockHeldError);

    expect(callsFrom(world, from)).toEqual(['dynamodb:Load']);
  });

  test('a lock taken by another run between the load and the first write: LockHeldError, no key created', async () => {
    const world = new World();
    world.iam.addUser('alice', { tags: OWNER });
    world.iam.addKey('alice', { ageDays: 85 });
    beforeCall(world.faults, 'dynamodb:Save', 1, async () => {
      const now = world.clock.now();
      await world.ledger.acquireLock(
        world.accountId,
        'alice',
        'other-run',
        now,
        new Date(now.getTime() + 60_000),
      );
    });

    const error = await world.rotate('alice').then(
      () => undefined,
      (thrown: unknown) => thrown,
    );

    expect(error).toBeInstanceOf(LockHeldError);
    expect(world.iam.apiCreatedKeys()).toEqual([]);
    expect(world.ledger.peek(world.accountId, 'alice')?.lock?.holder).toBe('other-run');
  });

  test('a dry run reads every last use (it displays them); the rotator only those that decide', async () => {
    const world = new World();
    world.iam.addUser('alice', { tags: OWNER });
    world.iam.addKey('alice', { ageDays: 85, lastUsedDaysAgo: 1 });

    const dry = await world.rotate('alice', true);
    const readByDryRun = world.faults.count('iam:GetAccessKeyLastUsed');
    const real = await world.rotate('alice');

    expect(readByDryRun).toBe(1);
    expect(dry.plan?.keys[0]?.lastUsedDate).toBeDefined();
    expect(world.faults.count('iam:GetAccessKeyLastUsed')).toBe(1);
    expect(real.plan?.actions).toEqual(dry.plan?.actions);
  });
});
