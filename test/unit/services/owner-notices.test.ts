/**
 * Owner notices at the scale of a real account: thousands of owners, each with a topic of their own,
 * subscriptions remembered in the ledger, and no owner ever left unaware: until an owner has a
 * confirmed subscription, the default recipients get that owner's copy.
 */
import { FILTER_POLICIES_PER_TOPIC } from '../../fakes/notifier';
import { World } from '../../fakes/world';

const OWNER_TAG = 'key-rotation:owner';
const DEFAULT = 'security@example.com';
const OPS = 'cloud-ops@example.com';

function worldWith(owners: number, options: { ownerTopics?: boolean; ageDays?: number } = {}): World {
  const world = new World({
    notifier: { defaultRecipients: [DEFAULT], opsRecipients: [OPS], ownerTopics: options.ownerTopics },
  });
  for (let index = 0; index < owners; index++) {
    world.iam.addUser(`svc-${index}`, { tags: { [OWNER_TAG]: `owner-${index}@example.com` } });
    // Warning day by default: the owner is subscribed four days before the rotation.
    world.iam.addKey(`svc-${index}`, { ageDays: options.ageDays ?? 76 });
  }
  return world;
}

async function runEveryUser(world: World, owners: number): Promise<void> {
  for (let index = 0; index < owners; index++) await world.rotate(`svc-${index}`);
}

function events(notices: readonly { event: string; userName: string }[]): string[] {
  return notices.map((notice) => `${notice.event} ${notice.userName}`);
}

describe('owner notices for 1,000 distinct owners', () => {
  const OWNERS = 1_000;

  test('each owner gets a topic of their own; once confirmed, they receive their rotation there', async () => {
    const world = worldWith(OWNERS);

    await runEveryUser(world, OWNERS); // day 76: warned and subscribed
    world.notifier.confirmAll(); // the owners click the link in SNS's confirmation e-mail
    world.clock.advanceDays(4);
    await runEveryUser(world, OWNERS); // day 80: rotated

    expect(world.notifier.subscribed.size).toBe(OWNERS);
    expect(world.ledger.ownerSubscriptions.size).toBe(OWNERS);
    const missed = Array.from({ length: OWNERS }, (_, index) => index).filter(
      (index) =>
        events(world.notifier.inbox(`owner-${index}@example.com`)).join() !== `key.rotated svc-${index}`,
    );
    expect(missed).toEqual([]);
    // The warnings went out while the subscriptions were still pending: the default recipients got
    // each owner's copy, saying why, so that nobody was left unaware.
    const forDefault = world.notifier.inbox(DEFAULT);
    expect(forDefault.map((notice) => notice.event)).toEqual(Array(OWNERS).fill('key.expiring'));
    expect(forDefault[0]?.recipients).toEqual(['owner-0@example.com', 'default']);
    expect(world.notifier.opsMessages).toEqual([]);
  });

  test('the ledger remembers subscriptions: SNS is asked once per owner to confirm, then not at all', async () => {
    const world = worldWith(OWNERS);
    await runEveryUser(world, OWNERS); // day 76
    world.notifier.confirmAll();
    world.clock.advanceDays(4);
    await runEveryUser(world, OWNERS); // day 80: rotation, confirmation seen and recorded
    const afterRotation = {
      subscribe: world.faults.count('sns:Subscribe'),
      state: world.faults.count('sns:GetTopicAttributes'),
    };

    world.clock.advanceDays(7);
    await runEveryUser(world, OWNERS); // day 87: old keys deactivated, owners told

    expect(afterRotation).toEqual({ subscribe: OWNERS, state: 2 * OWNERS });
    expect(world.faults.count('sns:Subscribe')).toBe(OWNERS);
    expect(world.faults.count('sns:GetTopicAttributes')).toBe(2 * OWNERS);
    expect(world.notifier.inbox('owner-7@example.com').map((notice) => notice.event)).toEqual([
      'key.rotated',
      'key.deactivated',
    ]);
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

describe('an owner who cannot be reached on their own topic', () => {
  test('a refused subscription: default recipients and the ops topic are told, the rotation goes on', async () => {
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
    expect(events(world.notifier.inbox(DEFAULT))).toEqual([
      'owner.subscription-failed svc-0',
      'key.expiring svc-0',
      'owner.subscription-failed svc-0',
      'key.rotated svc-0',
    ]);
    expect(world.notifier.inbox(DEFAULT)[0]?.subject).toContain('owner-0@example.com');
    expect(world.logger.audits('owner.unsubscribed')).toHaveLength(2);
    expect(world.ledger.ownerSubscriptions.size).toBe(0);
  });

  test('the failure is reported once a day per user and address, however often it is retried', async () => {
    const world = worldWith(1, { ageDays: 80 }); // rotation day, first seen today
    world.faults.inject('sns:Subscribe', 'throttle', 2);
    world.faults.inject('iam:CreateAccessKey', 'access-denied', 1);

    await expect(world.rotate('svc-0')).rejects.toThrow('not authorized'); // the message is retried
    await world.rotate('svc-0');

    expect(world.notifier.opsMessages.map((notice) => notice.event)).toEqual(['owner.subscription-failed']);
    expect(world.iam.users.get('svc-0')!.keys).toHaveLength(2);
    expect(events(world.notifier.inbox(DEFAULT))).toEqual([
      'owner.subscription-failed svc-0',
      'key.rotated svc-0',
    ]);
  });

  test('a subscription whose answer was lost (topic made, not recorded) still leaves nobody unaware', async () => {
    const world = worldWith(1);
    world.faults.inject('sns:Subscribe', 'timeout-after', 1);

    await world.rotate('svc-0'); // warning day: SNS subscribed the owner, the service never heard
    world.notifier.confirmAll();
    world.clock.advanceDays(4);
    await world.rotate('svc-0'); // rotation day: subscribed again (idempotent), now recorded

    expect(world.ledger.ownerSubscriptions.has('owner-0@example.com')).toBe(true);
    expect(events(world.notifier.inbox(DEFAULT))).toContain('key.expiring svc-0');
    expect(events(world.notifier.inbox('owner-0@example.com'))).toEqual(['key.rotated svc-0']);
  });

  test('a key first seen past the rotation age: the owner is still confirming, the default recipients are told', async () => {
    const world = worldWith(1, { ageDays: 200 });

    await world.rotate('svc-0');

    expect(world.notifier.subscribed.has('owner-0@example.com')).toBe(true);
    expect(world.notifier.inbox('owner-0@example.com')).toEqual([]);
    const [copy] = world.notifier.inbox(DEFAULT);
    expect(copy?.event).toBe('key.rotated');
    expect(copy?.text).toBe(world.notifier.published[0]?.text); // same notice; the note is the adapter's
    expect(copy?.recipients).toEqual(['owner-0@example.com', 'default']);
  });

  test('an owner who never confirms is asked again once the link has expired, and never silenced', async () => {
    const world = worldWith(1);
    await world.rotate('svc-0'); // day 76: subscription pending
    world.clock.advanceDays(4);
    await world.rotate('svc-0'); // day 80: still pending
    world.notifier.unsubscribe('owner-0@example.com'); // SNS drops the unconfirmed subscription
    world.clock.advanceDays(7);

    await world.rotate('svc-0'); // day 87: the old key is deactivated and the owner told

    expect(world.faults.count('sns:Subscribe')).toBe(2);
    expect(world.logger.audits('owner.resubscribed')).toHaveLength(1);
    expect(events(world.notifier.inbox(DEFAULT))).toEqual([
      'key.expiring svc-0',
      'key.rotated svc-0',
      'key.deactivated svc-0',
    ]);
    world.notifier.confirmAll();
    world.clock.advanceDays(14);
    await world.rotate('svc-0'); // day 101: deleted; the owner has confirmed the new link
    expect(events(world.notifier.inbox('owner-0@example.com'))).toEqual(['key.deleted svc-0']);
  });

  test('an owner who unsubscribes is asked again at the monthly check and reached through the default recipients', async () => {
    const world = worldWith(1);
    await world.rotate('svc-0');
    world.notifier.confirmAll();
    world.clock.advanceDays(4);
    await world.rotate('svc-0'); // day 80: confirmed and recorded
    world.notifier.unsubscribe('owner-0@example.com');
    world.clock.advanceDays(34); // past the 30 days a confirmation is trusted

    await world.rotate('svc-0'); // day 114: the old key is deactivated, the owner told

    expect(world.logger.audits('owner.resubscribed')).toHaveLength(1);
    expect(events(world.notifier.inbox(DEFAULT)).slice(-1)).toEqual(['key.deactivated svc-0']);
    expect(events(world.notifier.inbox('owner-0@example.com'))).toEqual(['key.rotated svc-0']);
  });
});
