/**
 * Notices: delivery of the outbox, and the owners' own topics (subscription and reachability). A
 * notice is queued in the ledger with the state it reports (UnitOfWork.queueNotice) and published
 * afterwards, so that a crash in between delivers it on the next run (at least once; each notice
 * carries a stable dedupe id).
 */
import type { UserSnapshot } from '../../domain/model';
import type { UserPlan } from '../../domain/policy';
import { DEFAULT_OWNER } from '../../domain/tags';
import { isoDay } from '../../domain/time';
import type { OwnerSubscription } from '../../ports';
import { describeError } from '../audit';
import type { UnitOfWork } from './unit-of-work';

/** A confirmed owner subscription is trusted this long before SNS is asked again (owners may unsubscribe). */
const CONFIRMED_TRUST_MS = 30 * 24 * 3_600_000;
/** SNS confirmation links are valid for three days: an owner is not asked again sooner. */
const RESUBSCRIBE_AFTER_MS = 3 * 24 * 3_600_000;

/**
 * Publishes every notice in the outbox as stored, in order, and stages their removal: the caller
 * writes it (the unit's last write). A notice SNS took whose removal is never written goes out again.
 */
export async function deliverNotices(unit: UnitOfWork): Promise<void> {
  for (const pending of [...unit.record.outbox]) {
    const reachable = await reachableOwners(unit, pending.notification.recipients);
    const { undeliveredOwners } = await unit.deps.notifier.publish(pending.notification, reachable);
    unit.stage((record) => ({
      ...record,
      outbox: record.outbox.filter((entry) => entry.id !== pending.id),
    }));
    unit.log('notice.sent', 'success', {
      reason: pending.notification.subject,
      event: pending.notification.event,
      owner: pending.notification.owner,
      ...(undeliveredOwners.length > 0 ? { undeliveredOwners } : {}),
    });
  }
}

/**
 * Subscribes the owners, each to a topic of their own, once: the ledger remembers who is subscribed,
 * so nobody pages through SNS subscriptions to find out. A refused address or a throttled call must
 * not hold up a rotation (the key would age past the limit): the default recipients and the
 * operators are told, naming the owner (at most once a day per user and address), and the owner's
 * notices reach the default recipients until a later attempt succeeds.
 */
export async function subscribeOwners(
  unit: UnitOfWork,
  plan: Pick<UserPlan, 'owner'>,
  user: UserSnapshot,
): Promise<void> {
  if (!unit.options.subscribeOwners) return;
  for (const address of plan.owner.recipients) {
    if (address === DEFAULT_OWNER) continue;
    try {
      if (await findSubscription(unit, address)) continue;
      const subscription = await unit.deps.notifier.ensureSubscribed(address);
      await recordSubscription(unit, { ...subscription, subscribedAt: unit.now().toISOString() });
    } catch (error) {
      reportSubscriptionFailure(unit, plan, user, address, error);
    }
  }
}

/** The owner's recorded subscription, looked up in the ledger at most once per unit of work. */
async function findSubscription(unit: UnitOfWork, address: string): Promise<OwnerSubscription | undefined> {
  const key = address.toLowerCase();
  if (unit.subscriptions.has(key)) return unit.subscriptions.get(key);
  const found = await unit.deps.ledger.findOwnerSubscription(address);
  unit.subscriptions.set(key, found);
  return found;
}

async function recordSubscription(unit: UnitOfWork, subscription: OwnerSubscription): Promise<void> {
  await unit.deps.ledger.recordOwnerSubscription(subscription);
  unit.subscriptions.set(subscription.owner.toLowerCase(), subscription);
}

/**
 * The recipients that will receive a notice on their own topic: subscribed and confirmed. The
 * default recipients get the copy of every other owner, so that nobody is left unaware. Best effort:
 * a failed look-up only sends that owner's copy to the default recipients.
 */
async function reachableOwners(unit: UnitOfWork, recipients: readonly string[]): Promise<string[]> {
  if (!(unit.options.ownerTopics ?? unit.options.subscribeOwners)) return [...recipients];
  const reachable: string[] = [];
  for (const address of recipients) {
    if (address === DEFAULT_OWNER) continue;
    try {
      if (await ownerReachable(unit, address)) reachable.push(address);
    } catch (error) {
      unit.deps.logger.warn(
        'could not tell whether the owner is subscribed; the default recipients get the notice',
        {
          owner: address,
          error: describeError(error),
        },
      );
    }
  }
  return reachable;
}

async function ownerReachable(unit: UnitOfWork, address: string): Promise<boolean> {
  const { notifier } = unit.deps;
  const known = await findSubscription(unit, address);
  if (!known) return false;
  const now = unit.now();
  const since = (iso: string): number => now.getTime() - new Date(iso).getTime();
  if (known.confirmedAt && since(known.confirmedAt) < CONFIRMED_TRUST_MS) return true;
  const state = await notifier.subscriptionState(address);
  if (state === 'confirmed') {
    await recordSubscription(unit, { ...known, confirmedAt: now.toISOString() });
    return true;
  }
  if (state === 'none' && unit.options.subscribeOwners && since(known.subscribedAt) >= RESUBSCRIBE_AFTER_MS) {
    // Never confirmed in time, unsubscribed, or the topic was deleted: ask the owner again.
    const again = await notifier.ensureSubscribed(address);
    await recordSubscription(unit, { ...again, subscribedAt: now.toISOString() });
    unit.log('owner.resubscribed', 'success', {
      reason: `${address} had no confirmed subscription; a new confirmation e-mail was sent`,
      owner: address,
    });
  }
  return false;
}

/** Queues the notice of a failed subscription for the default recipients and operators, once a day. */
function reportSubscriptionFailure(
  unit: UnitOfWork,
  plan: Pick<UserPlan, 'owner'>,
  user: UserSnapshot,
  address: string,
  error: unknown,
): void {
  const problem = describeError(error).message;
  unit.subscriptionFailures.push(address);
  unit.log('owner.unsubscribed', 'failure', {
    reason: `${address} could not be subscribed: ${problem}`,
    owner: address,
    error: describeError(error),
  });
  const mark = `subscribe-failed:${address}`;
  const today = isoDay(unit.now());
  if (unit.record.notices[mark] === today) return;
  unit.stage((record) => ({ ...record, notices: { ...record.notices, [mark]: today } }));
  unit.queueNotice(
    { ...unit.noticeContext(plan, user), owner: DEFAULT_OWNER, recipients: [DEFAULT_OWNER] },
    { event: 'owner.subscription-failed', address, problem },
    `${unit.accountId}/${unit.userName}/subscribe-failed/${address}/${today}`,
  );
}
