/**
 * The rotation protocol, step by step, each safe to repeat (as the steps of Secrets Manager's own
 * rotation are: createSecret, setSecret, testSecret, finishSecret):
 *
 *   create and store (create-and-store.ts)  intent + lock -> CreateAccessKey -> AWSPENDING -> `stored`
 *   verify (verify.ts)                      STS signed with the key as stored
 *   promote (promote.ts)                    AWSPENDING -> AWSCURRENT
 *   announce (announce.ts)                  completed + notice queued -> published -> cleared, unlocked
 *
 * A run that stops anywhere leaves the ledger in phase `intent` or `stored`, and the next run
 * repairs it (repair.ts): it deletes a key that was never stored, or verifies, promotes and
 * announces the one that was. Ledger writes: lock + intent, stored, completed + notice, cleared +
 * review + unlocked; one per phase.
 */
import type { AccessKey, UserSnapshot } from '../../domain/model';
import type { PlannedAction, UserPlan } from '../../domain/policy';
import type { SecretDescription } from '../../ports';
import { announceRotation } from './announce';
import { createAndStore } from './create-and-store';
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
  await finishStoredRotation(unit, plan, user, stored.newKey, oldKey, stored.secret);
}

/** From phase `stored`: prove the stored key works, make it current, announce it. */
export async function finishStoredRotation(
  unit: UnitOfWork,
  plan: Pick<UserPlan, 'owner'>,
  user: UserSnapshot,
  newKey: Pick<AccessKey, 'accessKeyId' | 'createDate'>,
  oldKey: AccessKey | undefined,
  secret?: SecretDescription,
): Promise<void> {
  const ref = unit.secretRef(user);
  const attempts = await verifyStoredKey(unit, ref, user, newKey.accessKeyId);
  await promoteVerifiedKey(unit, ref, newKey.accessKeyId, secret);
  await announceRotation(unit, plan, user, newKey, oldKey, attempts);
}
