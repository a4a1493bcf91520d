/**
 * A deactivation or deletion whose answer is lost (retire.ts): the change is written down with its
 * notice before IAM is asked, so that the next run (or the CLI's retry) finds out from IAM whether it
 * happened, and records and announces it exactly once, or plans it again.
 */
import { ThrottledError, TransientServiceError } from '../../../lambda/domain/errors';
import type { FaultKind } from '../../fakes/faults';
import type { FakeKey } from '../../fakes/iam';
import { World } from '../../fakes/world';

const OWNER = { 'key-rotation:owner': 'alice@example.com' };
/** Past the lease of a run that died holding the lock. */
const PAST_THE_LEASE_MS = 16 * 60_000;

/** Alice rotated a week ago (her old key unused since): its deactivation is due today. */
async function deactivationDue(): Promise<{ world: World; old: FakeKey; fresh: string }> {
  const world = new World();
  world.iam.addUser('alice', { tags: OWNER });
  const old = world.iam.addKey('alice', { ageDays: 85 });
  await world.rotate('alice');
  world.clock.advanceDays(7);
  const fresh = world.iam.apiCreatedKeys()[0]!.key.accessKeyId;
  return { world, old, fresh };
}

/** Alice's old key was deactivated 14 days ago: its deletion is due today. */
async function deletionDue(): Promise<{ world: World; old: FakeKey }> {
  const { world, old } = await deactivationDue();
  await world.rotate('alice');
  expect(world.iam.findKey(old.accessKeyId)?.status).toBe('Inactive');
  world.clock.advanceDays(14);
  return { world, old };
}

function notices(world: World, event: string) {
  return world.notifier.published.filter((notice) => notice.event === event);
}

function record(world: World) {
  return world.ledger.peek(world.accountId, 'alice')!;
}

function updates(world: World): number {
  return world.faults.count('iam:UpdateAccessKey');
}

describe('deactivation', () => {
  test('its answer lost: the key is inactive but nothing is said; the next run records and announces it once, as of when it was asked', async () => {
    const { world, old } = await deactivationDue();
    const askedAt = world.clock.now().toISOString();
    world.faults.inject('iam:UpdateAccessKey', 'timeout-after');

    await expect(world.rotate('alice')).rejects.toBeInstanceOf(TransientServiceError);

    expect(world.iam.findKey(old.accessKeyId)?.status).toBe('Inactive');
    expect(notices(world, 'key.deactivated')).toEqual([]); // not announced while unconfirmed
    expect(record(world).outbox).toMatchObject([{ awaits: { kind: 'deactivate', keyId: old.accessKeyId } }]);
    expect(record(world).inactiveSince[old.accessKeyId]).toBeUndefined();

    world.clock.advance(60_000);
    const day = await world.runDay(); // the planner finds the pending change and queues alice

    expect(day.failures).toEqual([]);
    expect(notices(world, 'key.deactivated')).toMatchObject([
      { userName: 'alice', details: { keyId: old.accessKeyId } },
    ]);
    expect(record(world).outbox).toEqual([]);
    expect(record(world).inactiveSince[old.accessKeyId]).toBe(askedAt);
    const recorded = record(world).history.filter((entry) => entry.action === 'key.deactivated');
    expect(recorded).toMatchObject([{ keyId: old.accessKeyId }]);
    expect(recorded[0]!.detail).toContain('its answer was lost; IAM shows it done');
    expect(updates(world)).toBe(1); // not asked again
    expect(record(world).lock).toBeUndefined();
  });

  test.each<[FaultKind, string]>([
    ['timeout-before', 'the request never reached IAM'],
    ['throttle', 'IAM refused it'],
  ])('%s (%s): the key stays active; the next run deactivates it and announces it once', async (kind) => {
    const { world, old } = await deactivationDue();
    world.faults.inject('iam:UpdateAccessKey', kind);

    await expect(world.rotate('alice')).rejects.toBeInstanceOf(
      kind === 'throttle' ? ThrottledError : TransientServiceError,
    );

    expect(world.iam.findKey(old.accessKeyId)?.status).toBe('Active');
    // Kept, even when the last answer says refused (an earlier SDK attempt may have landed): the
    // next run settles it from IAM.
    expect(record(world).outbox.filter((entry) => entry.awaits)).toHaveLength(1);

    await world.rotate('alice');

    expect(world.iam.findKey(old.accessKeyId)?.status).toBe('Inactive');
    expect(notices(world, 'key.deactivated')).toHaveLength(1);
    expect(record(world).outbox).toEqual([]);
    expect(record(world).inactiveSince[old.accessKeyId]).toBeDefined();
    expect(updates(world)).toBe(2);
    {
      const tidied = record(world).history.filter((entry) => entry.action === 'ledger.tidied');
      expect(tidied.map((entry) => entry.detail)).toEqual([expect.stringContaining('IAM does not show')]);
    }
  });

  test('the process dies right after the call: the run after the lease records and announces it', async () => {
    const { world, old } = await deactivationDue();
    world.faults.inject('iam:UpdateAccessKey', 'crash-after');

    await expect(world.rotate('alice')).rejects.toThrow('simulated crash');
    world.faults.restart();
    world.clock.advance(PAST_THE_LEASE_MS);
    await world.runDay();

    expect(world.iam.findKey(old.accessKeyId)?.status).toBe('Inactive');
    expect(notices(world, 'key.deactivated')).toHaveLength(1);
    expect(record(world).outbox).toEqual([]);
    expect(updates(world)).toBe(1);
  });

  test('the user is deleted before the next run: the pending change is dropped, nothing is announced', async () => {
    const { world } = await deactivationDue();
    world.faults.inject('iam:UpdateAccessKey', 'timeout-after');
    await expect(world.rotate('alice')).rejects.toThrow();
    world.iam.users.delete('alice');

    const outcome = await world.rotate('alice');

    expect(outcome.status).toBe('user-gone');
    expect(record(world).outbox).toEqual([]);
    expect(notices(world, 'key.deactivated')).toEqual([]);
  });
});

describe('deletion', () => {
  test('its answer lost: the next run records the deletion and announces it once', async () => {
    const { world, old } = await deletionDue();
    world.faults.inject('iam:DeleteAccessKey', 'timeout-after');

    await expect(world.rotate('alice')).rejects.toBeInstanceOf(TransientServiceError);
    expect(world.iam.findKey(old.accessKeyId)).toBeUndefined();
    expect(notices(world, 'key.deleted')).toEqual([]);

    await world.rotate('alice');

    expect(notices(world, 'key.deleted')).toMatchObject([{ details: { keyId: old.accessKeyId } }]);
    expect(record(world).outbox).toEqual([]);
    expect(record(world).inactiveSince[old.accessKeyId]).toBeUndefined();
    expect(world.faults.count('iam:DeleteAccessKey')).toBe(1);
  });

  test('timed out before reaching IAM: the next run deletes it and announces it once', async () => {
    const { world, old } = await deletionDue();
    world.faults.inject('iam:DeleteAccessKey', 'timeout-before');

    await expect(world.rotate('alice')).rejects.toThrow();
    expect(world.iam.findKey(old.accessKeyId)).toBeDefined();

    await world.rotate('alice');

    expect(world.iam.findKey(old.accessKeyId)).toBeUndefined();
    expect(notices(world, 'key.deleted')).toHaveLength(1);
    expect(record(world).outbox).toEqual([]);
  });
});

test('a notice is never published while the change it reports is unconfirmed (the write after the call fails)', async () => {
  const { world, old } = await deactivationDue();
  // The call succeeds; the write that would record it does not answer.
  const saves = world.faults.count('dynamodb:Save');
  let failed = false;
  const original = world.faults.around.bind(world.faults);
  world.faults.around = async (op, effect) => {
    if (
      op === 'dynamodb:Save' &&
      !failed &&
      world.faults.count('iam:UpdateAccessKey') > 0 &&
      world.faults.count('dynamodb:Save') > saves
    ) {
      failed = true;
      world.faults.inject('dynamodb:Save', 'timeout-before');
    }
    return original(op, effect);
  };

  await expect(world.rotate('alice')).rejects.toBeInstanceOf(TransientServiceError);
  expect(notices(world, 'key.deactivated')).toEqual([]);

  await world.rotate('alice');

  expect(world.iam.findKey(old.accessKeyId)?.status).toBe('Inactive');
  expect(notices(world, 'key.deactivated')).toHaveLength(1);
  expect(record(world).outbox).toEqual([]);
});
