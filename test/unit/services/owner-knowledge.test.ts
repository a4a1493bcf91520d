/**
 * The user's record remembers what the rotator last learned of its owners' subscriptions, so that a
 * day with a notice need not read the owner's item in every new container; the owner's item stays
 * the truth shared by every user, read whenever the record's copy could be out of date.
 */
import { emptyLedger, type UserLedger } from '../../../lambda/domain/model';
import { knownSubscriptions } from '../../../lambda/services/rotation/outbox';
import { World } from '../../fakes/world';

const OWNER_TAG = 'key-rotation:owner';
const OWNER = 'owner@example.com';
const DEFAULT = 'security@example.com';
const DAY_MS = 86_400_000;

function worldWithUser(ageDays = 76, owner = OWNER): World {
  const world = new World({ notifier: { defaultRecipients: [DEFAULT] } });
  world.iam.addUser('svc', { tags: { [OWNER_TAG]: owner } });
  world.iam.addKey('svc', { ageDays });
  return world;
}

/** Calls of `op` made while `run` runs. */
async function callsOf(world: World, ops: readonly string[], run: () => Promise<unknown>) {
  const from = world.faults.calls.length;
  await run();
  const calls = world.faults.calls.slice(from);
  return Object.fromEntries(ops.map((op) => [op, calls.filter((call) => call === op).length]));
}

const LOOKUP = 'dynamodb:FindOwnerSubscription';
const STATE = 'sns:GetTopicAttributes';
const SAVE = 'dynamodb:Save';

/** The owner subscribed and confirmed in SNS, and their item as given (as other users' runs left it). */
async function ownerOnRecord(world: World, item: { subscribedAt: Date; confirmedAt?: Date }) {
  const { topicArn } = await world.notifier.ensureSubscribed(OWNER);
  world.notifier.confirmAll();
  await world.ledger.recordOwnerSubscription({
    owner: OWNER,
    topicArn,
    subscribedAt: item.subscribedAt.toISOString(),
    ...(item.confirmedAt ? { confirmedAt: item.confirmedAt.toISOString() } : {}),
  });
  return topicArn;
}

/** A record of the user that knows the owner as given (written by an earlier run). */
async function recordKnowing(
  world: World,
  topicArn: string,
  known: { subscribedAt: Date; confirmedAt?: Date },
): Promise<void> {
  const record = {
    ...emptyLedger(world.accountId, 'svc'),
    ownerSubscriptions: {
      [OWNER]: {
        topicArn,
        subscribedAt: known.subscribedAt.toISOString(),
        ...(known.confirmedAt ? { confirmedAt: known.confirmedAt.toISOString() } : {}),
      },
    },
  } as UserLedger;
  await world.ledger.save(record);
}

const daysAgo = (world: World, days: number) => new Date(world.clock.now().getTime() - days * DAY_MS);

describe("a key's lifecycle: the owner's item is read only until the user's record knows a confirmation", () => {
  test('warned, rotated (confirmation seen), deactivated and deleted: two look-ups, and no write more', async () => {
    const world = worldWithUser();

    const warned = await callsOf(world, [LOOKUP, STATE, SAVE], () => world.rotate('svc')); // day 0
    world.notifier.confirmAll();
    world.clock.advanceDays(4);
    const rotated = await callsOf(world, [LOOKUP, STATE, SAVE], () => world.rotate('svc')); // day 4
    world.clock.advanceDays(7);
    const deactivated = await callsOf(world, [LOOKUP, STATE, SAVE], () => world.rotate('svc')); // day 11
    world.clock.advanceDays(14);
    const deleted = await callsOf(world, [LOOKUP, STATE, SAVE], () => world.rotate('svc')); // day 25

    // Day 0: nobody on record; day 4: the record knows a request, not yet a confirmation.
    expect(warned).toEqual({ [LOOKUP]: 1, [STATE]: 1, [SAVE]: 2 });
    expect(rotated).toEqual({ [LOOKUP]: 1, [STATE]: 1, [SAVE]: 3 });
    // Days 11 and 25: the record knows the confirmation of day 4: neither the item nor SNS is asked.
    expect(deactivated).toEqual({ [LOOKUP]: 0, [STATE]: 0, [SAVE]: 3 });
    expect(deleted).toEqual({ [LOOKUP]: 0, [STATE]: 0, [SAVE]: 3 });
    expect(world.notifier.inbox(OWNER).map((notice) => notice.event)).toEqual([
      'key.rotated',
      'key.deactivated',
      'key.deleted',
    ]);
    const item = world.ledger.ownerSubscriptions.get(OWNER)!;
    expect(knownSubscriptions(world.ledger.peek(world.accountId, 'svc')!)).toEqual({
      [OWNER]: { topicArn: item.topicArn, subscribedAt: item.subscribedAt, confirmedAt: item.confirmedAt },
    });
  });
});

describe("the record's copy stands in for the owner's item only while it cannot be out of date", () => {
  test('a confirmation the record saw 10 days ago: reachable, without reading the item', async () => {
    const world = worldWithUser();
    const topicArn = await ownerOnRecord(world, {
      subscribedAt: daysAgo(world, 40),
      confirmedAt: daysAgo(world, 10),
    });
    await recordKnowing(world, topicArn, {
      subscribedAt: daysAgo(world, 40),
      confirmedAt: daysAgo(world, 10),
    });

    const calls = await callsOf(world, [LOOKUP, STATE, 'sns:Subscribe'], () => world.rotate('svc'));

    expect(calls).toEqual({ [LOOKUP]: 0, [STATE]: 0, 'sns:Subscribe': 0 });
    expect(world.notifier.inbox(OWNER).map((notice) => notice.event)).toEqual(['key.expiring']);
  });

  test('a confirmation the record saw 40 days ago: the item is read, and its later confirmation (by another user) used and remembered', async () => {
    const world = worldWithUser();
    const topicArn = await ownerOnRecord(world, {
      subscribedAt: daysAgo(world, 60),
      confirmedAt: daysAgo(world, 2),
    });
    await recordKnowing(world, topicArn, {
      subscribedAt: daysAgo(world, 60),
      confirmedAt: daysAgo(world, 40),
    });

    const calls = await callsOf(world, [LOOKUP, STATE], () => world.rotate('svc'));

    expect(calls).toEqual({ [LOOKUP]: 1, [STATE]: 0 });
    expect(world.notifier.inbox(OWNER).map((notice) => notice.event)).toEqual(['key.expiring']);
    expect(knownSubscriptions(world.ledger.peek(world.accountId, 'svc')!)[OWNER]?.confirmedAt).toBe(
      daysAgo(world, 2).toISOString(),
    );
  });

  test('a confirmation 40 days old everywhere: SNS is asked, as the monthly check always did', async () => {
    const world = worldWithUser();
    const old = { subscribedAt: daysAgo(world, 60), confirmedAt: daysAgo(world, 40) };
    const topicArn = await ownerOnRecord(world, old);
    await recordKnowing(world, topicArn, old);

    const calls = await callsOf(world, [LOOKUP, STATE], () => world.rotate('svc'));

    expect(calls).toEqual({ [LOOKUP]: 1, [STATE]: 1 });
    const now = world.clock.now().toISOString();
    expect(world.ledger.ownerSubscriptions.get(OWNER)?.confirmedAt).toBe(now);
    expect(knownSubscriptions(world.ledger.peek(world.accountId, 'svc')!)[OWNER]?.confirmedAt).toBe(now);
  });

  test("a request the record saw yesterday, confirmed since in another user's run: the item says so, SNS is not asked", async () => {
    const world = worldWithUser();
    const topicArn = await ownerOnRecord(world, {
      subscribedAt: daysAgo(world, 1),
      confirmedAt: daysAgo(world, 0.5),
    });
    await recordKnowing(world, topicArn, { subscribedAt: daysAgo(world, 1) });

    const calls = await callsOf(world, [LOOKUP, STATE, 'sns:Subscribe'], () => world.rotate('svc'));

    // Recorded (a request of yesterday): nobody subscribes again; reachable: the item is read once.
    expect(calls).toEqual({ [LOOKUP]: 1, [STATE]: 0, 'sns:Subscribe': 0 });
    expect(world.notifier.inbox(OWNER).map((notice) => notice.event)).toEqual(['key.expiring']);
  });

  test('a request the record saw 5 days ago and never confirmed: the item and SNS decide, and the owner is asked again', async () => {
    const world = worldWithUser();
    const topicArn = await ownerOnRecord(world, { subscribedAt: daysAgo(world, 5) });
    await recordKnowing(world, topicArn, { subscribedAt: daysAgo(world, 5) });
    world.notifier.unsubscribe(OWNER); // SNS dropped the unconfirmed subscription

    const calls = await callsOf(world, [LOOKUP, STATE, 'sns:Subscribe'], () => world.rotate('svc'));

    expect(calls).toEqual({ [LOOKUP]: 1, [STATE]: 1, 'sns:Subscribe': 1 });
    expect(world.logger.audits('owner.resubscribed')).toHaveLength(1);
    expect(world.notifier.inbox(DEFAULT).map((notice) => notice.event)).toEqual(['key.expiring']);
    const now = world.clock.now().toISOString();
    expect(knownSubscriptions(world.ledger.peek(world.accountId, 'svc')!)[OWNER]).toEqual({
      topicArn: expect.any(String) as unknown,
      subscribedAt: now,
    });
  });

  test('an owner the user no longer has is forgotten', async () => {
    const world = worldWithUser();
    const topicArn = await ownerOnRecord(world, {
      subscribedAt: daysAgo(world, 40),
      confirmedAt: daysAgo(world, 10),
    });
    await recordKnowing(world, topicArn, {
      subscribedAt: daysAgo(world, 40),
      confirmedAt: daysAgo(world, 10),
    });
    world.iam.users.get('svc')!.tags[OWNER_TAG] = 'new-owner@example.com';

    await world.rotate('svc');

    expect(Object.keys(knownSubscriptions(world.ledger.peek(world.accountId, 'svc')!))).toEqual([
      'new-owner@example.com',
    ]);
  });
});
