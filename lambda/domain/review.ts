/**
 * The review: what the rotator last saw of a user's keys, and the first day on which the policy
 * could have anything to do for them. The planner skips a user while the credential report shows the
 * same keys and that day has not come, so that users in a grace period or waiting for deletion cost
 * no live reads. Pure: no I/O, no clock.
 */
import type { AccessKey, KeyReview } from './model';
import { planUser, type PlannedAction, type PolicyInput, type UserPlan } from './policy';
import { deletionDate } from './policy/rules/inactive-keys';
import { rotationPairOf } from './policy/rules/key-pair';
import { reapDate, rotationDate, warningDate } from './policy/rules/one-active-key';
import { situationOf } from './policy/situation';
import type { RotationSettings } from './settings';
import { dayStartAfter } from './time';

/**
 * How long a user with no date of its own (a foreign pair already reported, an exemption without
 * expiry, no keys, out of scope) is left alone at most: a removed exemption tag or changed tags
 * (which the credential report does not show) are then seen within this many days.
 */
export const RECHECK_DAYS = 30;

/**
 * How long an exempt user is left alone at most: the exemption tag may be removed by hand at any time,
 * and the credential report does not show tags, so an exempt user with a record is looked at weekly.
 */
export const EXEMPT_RECHECK_DAYS = 7;

/**
 * The settings a due day depends on, as a short string: a review recorded under other settings says
 * nothing about today's. Pure (a 32-bit FNV-1a hash of the settings' JSON, enough to tell a change).
 */
export function settingsDigest(settings: RotationSettings): string {
  const relevant = JSON.stringify([
    settings.rotateAfterDays,
    settings.warnDays,
    settings.graceDays,
    settings.maxKeyAgeDays,
    settings.deleteAfterDays,
    settings.reapUnusedDays ?? null,
    settings.exemptionTag,
    settings.ownerTag,
    settings.includePaths,
    settings.excludePaths,
  ]);
  let hash = 0x811c9dc5;
  for (let i = 0; i < relevant.length; i++) {
    hash ^= relevant.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(36);
}

/** One key as both the credential report and a live read can describe it. */
export interface KeySlotLike {
  readonly active: boolean;
  /** Undefined for an empty report slot, which is ignored. */
  readonly createDate?: Date;
}

/**
 * A user's active keys in a form both the credential report and a live read produce: each key's
 * creation time (to the second, as the report has it), sorted. Key ids are absent from the report,
 * so keys are told apart by creation time. Inactive keys are left out: AWS documents the report's
 * `access_key_N_last_rotated` as N/A when the user has no active key in that slot, so the report may
 * not show them at all. A key deactivated, reactivated, created or deleted while active changes the
 * fingerprint; an inactive key deleted by hand is found on the review's day (its deletion date at
 * the latest).
 */
export function keysFingerprint(slots: readonly KeySlotLike[]): string {
  return slots
    .flatMap((slot) =>
      slot.active && slot.createDate ? [`${slot.createDate.toISOString().slice(0, 19)}Z:A`] : [],
    )
    .sort()
    .join(',');
}

/** {@link keysFingerprint} of live keys. */
export function fingerprintOfKeys(keys: readonly AccessKey[]): string {
  return keysFingerprint(
    keys.map((key) => ({ active: key.status === 'Active', createDate: key.createDate })),
  );
}

/**
 * The review to record for a user: the keys as they are, and the first UTC day start on which
 * {@link planUser} could return an action, given these keys and this ledger. Never later than the
 * truth: dates that depend on a key's last use are computed from the last use known now, and a later
 * use only moves them later. Key-age dates (warn, rotate, grace end, enforce, delete, reap) are exact
 * and not capped; only users with no such date are looked at again after {@link RECHECK_DAYS}.
 * An operator's forced rotation is not a scheduled event and is ignored here. `seenAt` is when the
 * keys were read live (the start of the read): a credential report generated before then shows
 * nothing newer.
 */
export function nextReview(input: PolicyInput, seenAt: Date = input.now): KeyReview {
  const due = nextDueDate({ ...input, forceRotation: undefined });
  return {
    keys: fingerprintOfKeys(input.user.keys),
    due: due.toISOString(),
    seenAt: seenAt.toISOString(),
    settings: settingsDigest(input.settings),
  };
}

function nextDueDate(input: PolicyInput): Date {
  const { ledger, now, settings } = input;
  const today = dayStartAfter(now, 0);
  const recheck = dayStartAfter(now, RECHECK_DAYS);
  const plan = planUser(input);
  const pending = plan.actions.filter((action) => !settled(action, input));
  if (pending.length > 0 || unreportedFindings(plan, input)) return today;
  // Our unfinished business always yields `resume`, handled above; from here on nothing is in flight.
  // Out of scope: the planner drops the user by path before it looks at the review, so a due day of
  // today costs nothing, and a user moved back into scope is planned at once.
  if (!plan.inScope) return today;
  if (plan.exemption?.applies) {
    // The exemption ends the day after `until`; the tag may also be removed by hand at any time.
    const weekly = dayStartAfter(now, EXEMPT_RECHECK_DAYS);
    return plan.exemption.until ? earliest([dayStartAfter(plan.exemption.until, 1), weekly]) : weekly;
  }

  const situation = situationOf(input);
  const dates: Date[] = [];
  // Deletion of each tracked inactive key (an untracked one would have been tracked now).
  for (const key of situation.inactive) {
    const since = ledger?.inactiveSince[key.accessKeyId];
    if (since !== undefined) dates.push(deletionDate(since, settings));
  }
  if (situation.active.length === 1) {
    const key = situation.active[0]!;
    const reap = reapDate(situation, key);
    if (reap) dates.push(reap);
    dates.push(rotationDate(situation, key));
    if (settings.warnDays > 0 && ledger?.warnedKeys[key.accessKeyId] === undefined) {
      dates.push(warningDate(situation, key));
    }
  }
  const pair = rotationPairOf(situation);
  if (pair) {
    // In grace (else an action, or a reminder sent today, would have been found above).
    dates.push(pair.graceEnd);
    // Postponed with today's reminder sent: the next reminder (or the enforcement) is due tomorrow.
    if (plan.actions.some((action) => action.kind === 'postpone')) dates.push(dayStartAfter(now, 1));
  }
  // A foreign pair already reported has no date of its own: the recheck applies.

  const future = dates.filter((date) => date.getTime() > now.getTime());
  return future.length > 0 ? earliest(future) : recheck;
}

/** An action the rotator would carry out as a no-op: the notice it sends is already recorded. */
function settled(action: PlannedAction, { ledger, now }: PolicyInput): boolean {
  if (action.kind === 'conflict') return ledger?.notices[`conflict:${action.keyIds.join(',')}`] !== undefined;
  if (action.kind === 'postpone') {
    return ledger?.notices[`postponed:${action.keyId}`] === now.toISOString().slice(0, 10);
  }
  return false;
}

/** Tag findings not yet reported (the rotator reports them once per distinct set). */
function unreportedFindings(plan: UserPlan, { ledger }: PolicyInput): boolean {
  return plan.findings.length > 0 && ledger?.notices[`tags:${plan.findings.join('|')}`] === undefined;
}

function earliest(dates: readonly Date[]): Date {
  return dates.reduce((a, b) => (b.getTime() < a.getTime() ? b : a));
}
