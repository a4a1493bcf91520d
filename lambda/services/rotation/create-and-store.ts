/**
 * Create and store: the first step of a rotation (Secrets Manager's createSecret and setSecret in
 * one). The secret exists only in CreateAccessKey's response until the vault has it, so:
 *
 * 1. the secret is checked (ours, not scheduled for deletion, not rotated by Secrets Manager) with
 *    one DescribeSecret, which the store then reuses;
 * 2. the intent is recorded with the lock in one write, before the key exists (I1): a crash at any
 *    instant after it is found and repaired by the next run (repair.ts);
 * 3. CreateAccessKey, then the store (AWSPENDING, the policy settled before the value exists);
 * 4. phase `stored`: from here a later run verifies and finishes rather than creating another key.
 *    The vault already tells a later run so: a run that finds the intent and a new key whose secret
 *    is in the vault adopts that key (repair.ts), whatever stopped this one after the store. So the
 *    phase is written only when this run stops before completing (rotate.ts: verification failed,
 *    or another error before the completion), not on the way to a completion that records it anyway,
 *    with one exception, the fence: if the lock's lease has less than STORED_FENCE_MS left when the
 *    store returns, the phase is written at once, as the next step (see below).
 *
 * A key that could not be stored is deleted again at once; if that fails too, the intent stays and
 * the next run deletes it.
 *
 * Why the fence. A run that took over (after the lease) and found the intent deletes a new key that
 * it does not find in the vault (never stored, so surely an orphan). If this run's store lands after
 * that look, and this run went on to verify and promote without a ledger write in between, it could
 * make a key being deleted AWSCURRENT. A store that returned with more than STORED_FENCE_MS of the
 * lease left took effect before any other run may take the lock (it must see the lease expired on its
 * own clock; clocks are assumed to agree within that margin, as the lease itself assumes), so the
 * run that takes over finds the key in the vault and adopts it instead. With less left, the write of
 * phase `stored` is the check: conditional on the version, it fails if another run has taken the lock
 * meanwhile, and this run stops before verifying anything.
 */
import { KeyRotationError, TransientServiceError } from '../../domain/errors';
import type { AccessKey, NewAccessKey, UserSnapshot } from '../../domain/model';
import type { PlannedAction, UserPlan } from '../../domain/policy';
import { DEFAULT_OWNER } from '../../domain/tags';
import type { SecretDescription, SecretRef } from '../../ports';
import { describeError } from '../audit';
import { subscribeOwners } from './outbox';
import type { UnitOfWork } from './unit-of-work';

/**
 * Below this much of the lock's lease left when the store returns, phase `stored` is written at once
 * (the fence, above). A rotation reaches the store seconds after taking the lock; the lease is 15 min.
 */
export const STORED_FENCE_MS = 5 * 60_000;

/** A new key as stored, and the secret as the store left it (for promote). */
export interface StoredNewKey {
  readonly newKey: Pick<AccessKey, 'accessKeyId' | 'createDate'>;
  readonly secret: SecretDescription;
  /** Phase `stored` is in the ledger already (the fence); otherwise it is written only if the rotation stops. */
  readonly recorded: boolean;
}

/** Steps 1-4 above; undefined if the secret is refused (nothing was created). */
export async function createAndStore(
  unit: UnitOfWork,
  action: Extract<PlannedAction, { kind: 'rotate' }>,
  plan: UserPlan,
  user: UserSnapshot,
): Promise<StoredNewKey | undefined> {
  const ref = unit.secretRef(user);
  const existing = await unit.deps.vault.describe(ref);
  if (existing && (!existing.managedByUs || existing.pendingDeletion)) {
    refuseSecret(
      unit,
      ref,
      user,
      plan,
      existing.managedByUs ? 'is scheduled for deletion; restore it first' : undefined,
    );
    return undefined;
  }
  if (existing?.rotationEnabled) {
    // Its rotation function would move AWSCURRENT/AWSPENDING under our feet (and could overwrite
    // the key owners read): nothing is written until someone turns it off.
    refuseSecret(
      unit,
      ref,
      user,
      plan,
      `has Secrets Manager rotation turned on, which moves the same staging labels as this service; turn it off (aws secretsmanager cancel-rotate-secret --secret-id ${ref.name}) and the next run rotates`,
      'rotation-enabled',
    );
    return undefined;
  }
  // The keys as they are now (an inactive key deleted to make room is gone): any other is ours.
  const keysBefore = (unit.user ?? user).keys.map((key) => key.accessKeyId);
  await subscribeOwners(unit, plan, user);
  const startedAt = unit.now().toISOString();
  // I1: the intent is durable before the only copy of a secret comes into existence.
  unit.stage(
    (record) => ({
      ...record,
      inFlight: { oldKeyId: action.keyId, keysBefore, phase: 'intent', startedAt, reason: action.reason },
    }),
    { action: 'rotation.started', keyId: action.keyId, detail: action.reason },
  );
  await unit.write({ lock: true });
  unit.log('rotation.started', 'success', { keyId: action.keyId, reason: action.reason });

  const created = await createKey(unit);
  let stored;
  try {
    stored = await unit.deps.vault.store(ref, created, existing ?? 'absent');
  } catch (error) {
    await discardUnstoredKey(unit, created.accessKeyId, error);
    throw error;
  }
  if (stored.omittedReaders.length > 0)
    reportOmittedReaders(unit, ref, created.accessKeyId, stored.omittedReaders);
  const newKey = { accessKeyId: created.accessKeyId, createDate: created.createDate };
  unit.user = unit.user && {
    ...unit.user,
    keys: [...unit.user.keys, { ...newKey, status: 'Active' }],
  };
  // The history says when the key was stored, written with the next write (the completion, or the
  // phase below).
  unit.stage((record) => record, {
    action: 'rotation.stored',
    keyId: newKey.accessKeyId,
    detail: `new key stored in ${ref.name}`,
  });
  const recorded = leaseLeftMs(unit) <= STORED_FENCE_MS;
  if (recorded) await recordStored(unit, newKey.accessKeyId);
  return { newKey, secret: stored.secret, recorded };
}

/** Writes phase `stored` with the new key (and whatever is staged). */
export async function recordStored(unit: UnitOfWork, newKeyId: string): Promise<void> {
  unit.stage((record) => ({ ...record, inFlight: { ...record.inFlight!, phase: 'stored', newKeyId } }));
  await unit.write();
}

/** How long the lock this unit holds has to run (0 when it holds none). */
function leaseLeftMs(unit: UnitOfWork): number {
  const lock = unit.record.lock;
  if (!unit.locked || !lock || lock.holder !== unit.deps.holderId) return 0;
  return new Date(lock.until).getTime() - unit.now().getTime();
}

async function createKey(unit: UnitOfWork): Promise<NewAccessKey> {
  try {
    return await unit.deps.iam.createAccessKey(unit.userName);
  } catch (error) {
    // Refused outright (denied, limit, throttled after retries): no key exists, so the intent is
    // closed now rather than left for a later run to interpret. A timeout may have created a key:
    // that intent stays, and the next run looks for the key.
    if (error instanceof KeyRotationError && !(error instanceof TransientServiceError)) {
      unit.stage((record) => ({ ...record, inFlight: undefined }), {
        action: 'rotation.rolled-back',
        detail: `CreateAccessKey failed (${describeError(error).name}); no key was created`,
      });
      await unit.write();
    }
    throw error;
  }
}

/** The secret could not be stored, so nobody can ever use the new key: delete it (I1). */
async function discardUnstoredKey(unit: UnitOfWork, newKeyId: string, cause: unknown): Promise<void> {
  try {
    await unit.deps.iam.deleteAccessKey(unit.userName, newKeyId);
    unit.stage((record) => ({ ...record, inFlight: undefined }), {
      action: 'rotation.rolled-back',
      keyId: newKeyId,
      detail: `secret could not be stored (${describeError(cause).name}); the new key was deleted`,
    });
    await unit.write();
    unit.log('rotation.recovered', 'failure', {
      newKeyId,
      reason: 'the secret could not be stored; the new key was deleted again and the old key left as it was',
      error: describeError(cause),
    });
  } catch (cleanupError) {
    // The intent stays in the ledger; the next run deletes the key (it is not in the vault).
    unit.deps.logger.warn('could not delete the unstored key yet; the next run will', {
      userName: unit.userName,
      newKeyId,
      error: describeError(cleanupError),
    });
  }
}

/**
 * A principal named for the secret's policy (the admin role, a reader, or one in an operator's
 * statement) does not exist, so Secrets Manager would refuse the policy: the key was stored without
 * it and the rotation goes on (the user reads their key). The finding is logged here and counted by
 * the handler, whose metric alarms to operators.
 */
export function reportOmittedReaders(
  unit: UnitOfWork,
  ref: SecretRef,
  newKeyId: string,
  omittedReaders: readonly string[],
): void {
  unit.secretReadersOmitted.push(...omittedReaders.filter((arn) => !unit.secretReadersOmitted.includes(arn)));
  const one = omittedReaders.length === 1;
  unit.log('secret.reader-omitted', 'failure', {
    newKeyId,
    reason:
      `${omittedReaders.join(', ')} ${one ? 'does' : 'do'} not exist, so ${one ? 'it was' : 'they were'} left out of the policy of ${ref.name}. ` +
      'A role or user of secretAdminRoleArn or secretReaderArns cannot read the key until it exists: create it (or change the prop and redeploy) and a later store names it again. ' +
      "A unique ID (AROA..., AIDA...) is a deleted role or user that an operator's statement named: it was removed from that statement",
    secretName: ref.name,
    omittedReaders,
  });
}

/** The secret cannot take the key: nothing is created, and the default recipients are told once. */
function refuseSecret(
  unit: UnitOfWork,
  ref: SecretRef,
  user: UserSnapshot,
  plan: UserPlan,
  problem?: string,
  kind?: 'rotation-enabled',
): void {
  const reason = problem
    ? `the secret ${ref.name} ${problem}`
    : `a secret named ${ref.name} exists that this service did not create; it will not be overwritten`;
  unit.log('rotation.skipped', 'skipped', { reason });
  unit.performed.push({ kind: 'refused', detail: reason });
  const mark = kind ? `secret:${kind}:${ref.name}` : `secret:${ref.name}`;
  if (unit.record.notices[mark] !== undefined) return;
  unit.stage((record) => ({ ...record, notices: { ...record.notices, [mark]: unit.now().toISOString() } }));
  unit.queueNotice(
    { ...unit.noticeContext(plan, user), owner: DEFAULT_OWNER, recipients: [DEFAULT_OWNER] },
    { event: 'secret.conflict', reason },
    `${unit.accountId}/${unit.userName}/secret-conflict${kind ? `/${kind}` : ''}`,
  );
}
