/**
 * Owner notices at the scale of a real account: thousands of owners, each with a topic of their own,
 * subscriptions remembered in the ledger, and a failed subscription that never silences an owner.
 */
import { World } from '../../fakes/world';
import { FILTER_POLICIES_PER_TOPIC } from '../../fakes/notifier';

const OWNER_TAG = 'key-rotation:owner';
const DEFAULT = 'security@example.com';
const OPS = 'cloud-ops@example.com';

function worldWith(owners: number, options: { ownerTopics?: boolean } = {}): World {
  const world = new World({
    notifier: { defaultRecipients: [DEFAULT], opsRecipients: [OPS], ownerTopics: options.ownerTopics },
  });
  for (let index = 0; index < owners; index++) {
    world.iam.addUser(`svc-${index}`, { tags: { [OWNER_TAG]: `owner-${index}@example.com` } });
    world.iam.addKey(`svc-${index}`, { ageDays: 76 }); // warning day: the owner is subscribed
  }
  return world;
}

async function runEveryUser(world: World, owners: number): Promise<void> {
  for (let index = 0; index < owners; index++) await world.rotate(`svc-${index}`);
}

describe('owner notices for 1,000 distinct owners', () => {
  const OWNERS = 1_000;

  test('every owner is subscribed to a topic of their own and receives their warning and rotation', async () => {
    const world = worldWith(OWNERS);

    await runEveryUser(world, OWNERS);
    world.clock.advanceDays(4);
    await runEveryUser(world, OWNERS);

    expect(world.notifier.subscribed.size).toBe(OWNERS);
    expect(world.ledger.ownerSubscriptions.size).toBe(OWNERS);
    for (const index of [0, 199, 200, 201, 500, 999]) {
      const inbox = world.notifier.inbox(`owner-${index}@example.com`);
      expect([index, inbox.map((notice) => `${notice.event} ${notice.userName}`)]).toEqual([
        index,
        [`key.expiring svc-${index}`, `key.rotated svc-${index}`],
      ]);
    }
    // Nobody is left out, and the default recipients were not needed.
    const silenced = Array.from({ length: OWNERS }, (_, index) => `owner-${index}@example.com`).filter(
      (address) => world.notifier.inbox(address).length !== 2,
    );
    expect(silenced).toEqual([]);
    expect(world.notifier.inbox(DEFAULT)).toEqual([]);
    expect(world.notifier.opsMessages).toEqual([]);
  });

  test('the ledger remembers subscriptions: later notices cost no subscription call at all', async () => {
    const world = worldWith(OWNERS);
    await runEveryUser(world, OWNERS);
    const subscribeCalls = world.faults.count('sns:Subscribe');

    world.clock.advanceDays(4);
    await runEveryUser(world, OWNERS);

    expect(subscribeCalls).toBe(OWNERS);
    expect(world.faults.count('sns:Subscribe')).toBe(OWNERS); // rotation day: none more
    // One ledger read per owner per user with work, never a scan of the topic's subscriptions.
    expect(world.faults.count('dynamodb:FindOwnerSubscription')).toBe(2 * OWNERS);
  });

  test('filtered subscriptions on one topic (the old design) would silence every owner past 200', async () => {
    const world = worldWith(250, { ownerTopics: false });

    await runEveryUser(world, 250);

    // The same service, with owners filtered on the notification topic: SNS refuses the 201st
    // filter policy, and the default recipients' own filter already holds one. The owners past the
    // quota are not forgotten: the default recipients and operators are told, naming each one.
    const fitted = FILTER_POLICIES_PER_TOPIC - 1;
    expect(world.notifier.subscribed.size).toBe(fitted);
    const failures = world.notifier.opsMessages.filter(
      (notice) => notice.event === 'owner.subscription-failed',
    );
    expect(failures).toHaveLength(250 - fitted);
    expect(failures[0]?.details).toMatchObject({ address: `owner-${fitted}@example.com` });
    expect(
      world.notifier.inbox(DEFAULT).filter((notice) => notice.event === 'owner.subscription-failed'),
    ).toHaveLength(250 - fitted);
  });
});

describe('an owner who cannot be subscribed', () => {
  test('the default recipients and the ops topic are told, naming the owner; the rotation goes on', async () => {
    const world = worldWith(1);
    world.faults.inject('sns:Subscribe', 'access-denied', 10);

    await world.rotate('svc-0'); // warning day
    world.clock.advanceDays(4);
    await world.rotate('svc-0'); // rotation day

    const keys = world.iam.users.get('svc-0')!.keys;
    expect(keys).toHaveLength(2); // rotated all the same
    expect(world.vault.readStage(world.secretName('svc-0'))?.accessKeyId).toBe(keys[1]!.accessKeyId);
    const toOps = world.notifier.opsMessages.map((notice) => [notice.event, notice.details.address]);
    expect(toOps).toEqual([
      ['owner.subscription-failed', 'owner-0@example.com'],
      ['owner.subscription-failed', 'owner-0@example.com'], // a new day, a new reminder
    ]);
    // The owner's own notices reach the default recipients instead of nobody.
    const forDefault = world.notifier.inbox(DEFAULT).map((notice) => notice.event);
    expect(forDefault).toEqual([
      'owner.subscription-failed',
      'key.expiring',
      'owner.subscription-failed',
      'key.rotated',
    ]);
    expect(world.notifier.inbox(DEFAULT)[0]?.subject).toContain('owner-0@example.com');
    expect(world.logger.audits('owner.unsubscribed')).toHaveLength(2);
    expect(world.ledger.ownerSubscriptions.size).toBe(0);
  });

  test('the failure is reported once a day per user and address, however often it is retried', async () => {
    const world = worldWith(0);
    world.iam.addUser('svc-0', { tags: { [OWNER_TAG]: 'owner-0@example.com' } });
    world.iam.addKey('svc-0', { ageDays: 80 }); // rotation day, first seen today
    world.faults.inject('sns:Subscribe', 'throttle', 2);
    world.faults.inject('iam:CreateAccessKey', 'access-denied', 1);

    await expect(world.rotate('svc-0')).rejects.toThrow('not authorized'); // the message is retried
    await world.rotate('svc-0');

    expect(world.notifier.opsMessages.map((notice) => notice.event)).toEqual(['owner.subscription-failed']);
    expect(world.iam.users.get('svc-0')!.keys).toHaveLength(2);
    expect(world.notifier.inbox(DEFAULT).map((notice) => notice.event)).toEqual([
      'owner.subscription-failed',
      'key.rotated',
    ]);
  });
});
