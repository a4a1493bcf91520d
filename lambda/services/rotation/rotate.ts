/**
 * The rotation protocol, step by step, each safe to repeat (as the steps of Secrets Manager's own
 * rotation are: createSecret, setSecret, testSecret, finishSecret):
 *
 *   create and store (create-and-store.ts)  intent + lock -> CreateAccessKey -> AWSPENDING
 *   verify (verify.ts)                      STS signed with the key as stored
 *   promote (promote.ts)                    AWSPENDING -> AWSCURRENT
 *   announce (announce.ts)                  completed + notice queued -> published -> cleared, unlocked
 *
 * A run that stops anywhere leaves the ledger in phase `intent` or `stored`, and the next run
 * repairs it (repair.ts): it deletes a key that was never stored, or verifies, promotes and
 * announces the one that was (in phase `intent`, the vault tells it which). Ledger writes: lock +
 * intent, completed + notice, cleared + review + unlocked; phase `stored` only when the rotation
 * stops between the store and the completion (or as the fence of create-and-store.ts).
 */
import type { AccessKey, UserSnapshot } from '../../domain/model';
import type { PlannedAction, UserPlan } from '../../domain/policy';
import type { SecretDescription } from '../../ports';
import { announceRotation } from './announce';
import { describeError } from '../audit';
import { createAndStore, recordStored } from './create-and-store';
import { promoteVerifiedKey } from './promote';
import type { UnitOfWork } from './unit-of-work';
import { verifyStoredKey } from './verify';

export async function rotate(
  unit: UnitOfWork,
  action: Extract<PlannedAction, { kind: 'rotate' }>,
  plan: UserPlan,
  user: UserSnapshot,
): Promise<void> {
  const stored = await createAndStore(unit, action, plan, user);
  if (!stored) return; // refused: nothing was created
  const oldKey = user.keys.find((key) => key.accessKeyId === action.keyId);
  await finishStoredRotation(unit, plan, user, stored.newKey, oldKey, {
    secret: stored.secret,
    recordStoredOnFailure: !stored.recorded,
  });
}

/**
 * From phase `stored`: prove the stored key works, make it current, announce it. With
 * `recordStoredOnFailure` (a key just stored, phase `stored` not written yet), a failure before the
 * completion writes the phase, so that the next run verifies again rather than looking for the key
 * in the vault; best effort: if that write fails too, the vault still tells the next run.
 */
export async function finishStoredRotation(
  unit: UnitOfWork,
  plan: Pick<UserPlan, 'owner'>,
  user: UserSnapshot,
  newKey: Pick<AccessKey, 'accessKeyId' | 'createDate'>,
  oldKey: AccessKey | undefined,
  {
    secret,
    recordStoredOnFailure = false,
  }: { secret?: SecretDescription; recordStoredOnFailure?: boolean } = {},
): Promise<void> {
  const ref = unit.secretRef(user);
  let attempts: number;
  try {
    attempts = await verifyStoredKey(unit, ref, user, newKey.accessKeyId);
    await promoteVerifiedKey(unit, ref, newKey.accessKeyId, secret);
  } catch (error) {
    if (recordStoredOnFailure) await recordStoredAfterFailure(unit, newKey.accessKeyId, error);
    throw error;
  }
  await announceRotation(unit, plan, user, newKey, oldKey, attempts);
}

async function recordStoredAfterFailure(unit: UnitOfWork, newKeyId: string, cause: unknown): Promise<void> {
  try {
    await recordStored(unit, newKeyId);
  } catch (error) {
    unit.deps.logger.warn('could not record the stored key; the next run finds it in the vault', {
      userName: unit.userName,
      newKeyId,
      error: describeError(error),
      cause: describeError(cause),
    });
  }
}
