/**
 * Notices: delivery of the outbox, and the owners' own topics (subscription and reachability). A
 * notice is queued in the ledger with the state it reports (UnitOfWork.queueNotice) and published
 * afterwards, so that a crash in between delivers it on the next run (at least once; each notice
 * carries a stable dedupe id).
 */
import type { UserLedger, UserSnapshot } from '../../domain/model';
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
 * What the rotator last learned of each of the user's owners' subscriptions (address in lower case
 * -> as recorded in the owner's own item), kept in the user's ledger record and written with the
 * unit's own writes, so that a new container need not read the owner's item on every notice. The
 * owner's item stays the truth shared by every user; the record's copy stands in for it only while
 * it cannot be out of date in a way that matters (see `trusted`).
 */
export type KnownSubscriptions = Readonly<Record<string, Omit<OwnerSubscription, 'owner'>>>;

/** The user record with the owners' subscriptions it knows (a field of the record, optional). */
export type RecordWithSubscriptions = UserLedger & { readonly ownerSubscriptions?: KnownSubscriptions };

export function knownSubscriptions(record: UserLedger): KnownSubscriptions {
  return (record as RecordWithSubscriptions).ownerSubscriptions ?? {};
}

/**
 * What a lookup needs to know: whether a subscription is recorded at all (before subscribing an
 * owner), or whether the owner is reachable on their own topic (before publishing).
 */
type Need = 'recorded' | 'reachable';

/**
 * Whether the user's record answers for the owner's item. The item only ever moves forward: once
 * written it is never removed, a confirmation is only replaced by a later one, and it loses its
 * confirmation only when an owner is asked again, which happens only once no confirmation of the
 * last CONFIRMED_TRUST_MS is on record. So:
 * - a confirmation the record saw within CONFIRMED_TRUST_MS is one the item holds too, or a later
 *   one: the owner is reachable and recorded, as the item would say;
 * - a subscription the record saw requested within RESUBSCRIBE_AFTER_MS is recorded (nobody asks the
 *   owner again sooner); whether it is confirmed by now is the item's to say (another user's run may
 *   have seen the confirmation), so reachability asks the item.
 * Anything older, or an owner the record does not know, is read from the item, as before.
 */
function trusted(known: Omit<OwnerSubscription, 'owner'>, now: Date, need: Need): boolean {
  const since = (iso: string): number => now.getTime() - new Date(iso).getTime();
  if (known.confirmedAt && since(known.confirmedAt) < CONFIRMED_TRUST_MS) return true;
  return need === 'recorded' && since(known.subscribedAt) < RESUBSCRIBE_AFTER_MS;
}

/** Stages what was learned of an owner's subscription in the user's record (rides with the unit's next write). */
function remember(unit: UnitOfWork, subscription: OwnerSubscription): void {
  const address = subscription.owner.toLowerCase();
  const known = knownSubscriptions(unit.record)[address];
  const learned = {
    topicArn: subscription.topicArn,
    subscribedAt: subscription.subscribedAt,
    ...(subscription.confirmedAt ? { confirmedAt: subscription.confirmedAt } : {}),
  };
  if (
    known?.topicArn === learned.topicArn &&
    known.subscribedAt === learned.subscribedAt &&
    known.confirmedAt === learned.confirmedAt
  ) {
    return;
  }
  unit.stage((record): RecordWithSubscriptions => ({
    ...record,
    ownerSubscriptions: { ...knownSubscriptions(record), [address]: learned },
  }));
}

/** Owners the user no longer has are forgotten (the record keeps only its current owners). */
function forgetOtherOwners(unit: UnitOfWork, recipients: readonly string[]): void {
  const current = new Set(recipients.map((address) => address.toLowerCase()));
  const known = knownSubscriptions(unit.record);
  if (Object.keys(known).every((address) => current.has(address))) return;
  unit.stage((record): RecordWithSubscriptions => ({
    ...record,
    ownerSubscriptions: Object.fromEntries(
      Object.entries(knownSubscriptions(record)).filter(([address]) => current.has(address)),
    ),
  }));
}

/**
 * Publishes every notice in the outbox as stored, in order, and stages their removal: the caller
 * writes it (the unit's last write). A notice SNS took whose removal is never written goes out again.
 */
export async function deliverNotices(unit: UnitOfWork): Promise<void> {
  for (const pending of [...unit.record.outbox]) {
    // Reports a change IAM has not been seen to make: never announced before it is (retire.ts).
    if (pending.awaits) continue;
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
  forgetOtherOwners(unit, plan.owner.recipients);
  for (const address of plan.owner.recipients) {
    if (address === DEFAULT_OWNER) continue;
    try {
      if (await findSubscription(unit, address, 'recorded')) continue;
      const subscription = await unit.deps.notifier.ensureSubscribed(address);
      await recordSubscription(unit, { ...subscription, subscribedAt: unit.now().toISOString() });
    } catch (error) {
      reportSubscriptionFailure(unit, plan, user, address, error);
    }
  }
}

/**
 * The owner's recorded subscription: from the user's own record while it can answer for the owner's
 * item (see `trusted`), else from the item, looked up at most once per unit of work and remembered
 * in the user's record.
 */
async function findSubscription(
  unit: UnitOfWork,
  address: string,
  need: Need,
): Promise<OwnerSubscription | undefined> {
  const key = address.toLowerCase();
  if (unit.subscriptions.has(key)) return unit.subscriptions.get(key);
  const known = knownSubscriptions(unit.record)[key];
  if (known && trusted(known, unit.now(), need)) return { owner: key, ...known };
  const found = await unit.deps.ledger.findOwnerSubscription(address);
  unit.subscriptions.set(key, found);
  if (found) remember(unit, found);
  return found;
}

async function recordSubscription(unit: UnitOfWork, subscription: OwnerSubscription): Promise<void> {
  await unit.deps.ledger.recordOwnerSubscription(subscription);
  unit.subscriptions.set(subscription.owner.toLowerCase(), subscription);
  remember(unit, subscription);
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
  const known = await findSubscription(unit, address, 'reachable');
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
