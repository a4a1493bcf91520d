/**
 * Repair of half-done work left by a crash, a timeout or a redelivery: the ledger says where the
 * earlier run stopped, and IAM and the vault say what it had done.
 *
 * - Phase `intent`: CreateAccessKey may or may not have run. A new key whose secret is in the vault
 *   is ours and is adopted (phase `stored`). Any other new key is deleted only if it is surely our
 *   orphan: created within the window of the intent and never used (its secret never left our
 *   process). Otherwise the intent is closed and the policy rotates again.
 * - Phase `stored`: the key is verified, promoted and announced as a fresh rotation would be.
 * - A deactivation or deletion whose answer was lost (a pending retirement in the outbox) is settled
 *   from IAM: recorded and announced if IAM shows it done, else dropped (retire.ts).
 * - Notices left in the outbox are delivered.
 *
 * The lock is taken first (one write): a repair changes IAM or the vault. It leaves the lock held,
 * since the unit then plans afresh and carries on.
 */
import { NoSuchKeyError } from '../../domain/errors';
import type { AccessKey, RotationInFlight, UserSnapshot } from '../../domain/model';
import { resolveOwner } from '../../domain/tags';
import { withLastUse } from '../read-user';
import { finishUnit } from './announce';
import { reportOmittedReaders } from './create-and-store';
import { settlePendingRetirements } from './retire';
import { finishStoredRotation } from './rotate';
import type { UnitOfWork } from './unit-of-work';

/** How long after recording an intent CreateAccessKey can still take effect (SDK retries included). */
const ORPHAN_WINDOW_MS = 5 * 60_000;

/**
 * Whether a key found after the intent is surely the orphan of that rotation: created within the
 * intent's window and never used (its secret never left our process). A key created later, or one
 * that has signed a request, is somebody else's and is never touched (I3).
 */
export function isOrphanOf(
  inFlight: Pick<RotationInFlight, 'startedAt' | 'keysBefore'>,
  key: Pick<AccessKey, 'accessKeyId' | 'createDate' | 'lastUsedDate'>,
): boolean {
  const started = new Date(inFlight.startedAt).getTime();
  const created = key.createDate.getTime();
  return (
    !inFlight.keysBefore.includes(key.accessKeyId) &&
    created >= started - 60_000 &&
    created <= started + ORPHAN_WINDOW_MS &&
    key.lastUsedDate === undefined
  );
}

export async function repair(unit: UnitOfWork, user: UserSnapshot): Promise<void> {
  const inFlight = unit.record.inFlight;
  if (inFlight) await unit.takeLock();
  if (inFlight?.phase === 'intent') await repairIntent(unit, user, inFlight);
  const current = unit.record.inFlight;
  if (current?.phase === 'stored') await repairStored(unit, user, current);
  settlePendingRetirements(unit, unit.user ?? user);
  await finishUnit(unit, { release: false });
}

async function repairIntent(unit: UnitOfWork, live: UserSnapshot, inFlight: RotationInFlight): Promise<void> {
  const { iam, vault } = unit.deps;
  const newIds = live.keys
    .filter((key) => !inFlight.keysBefore.includes(key.accessKeyId))
    .map((key) => key.accessKeyId);
  // Whether a new key has signed a request decides whether it may be ours.
  const user = newIds.length > 0 ? await withLastUse(iam, live, newIds) : live;
  const newKeys = user.keys.filter((key) => newIds.includes(key.accessKeyId));
  const ref = unit.secretRef(user);
  const described = newKeys.length > 0 ? await vault.describe(ref) : undefined;
  const stored = new Set(
    described?.managedByUs ? described.versions.map((version) => version.accessKeyId) : [],
  );
  // A new key whose secret is in our vault is ours, whenever it was created or used: adopt it.
  const adopted = newKeys.find((key) => stored.has(key.accessKeyId));
  // Anything else is deleted only if it is surely our orphan (isOrphanOf).
  const candidates = newKeys.filter((key) => key !== adopted && isOrphanOf(inFlight, key));
  for (const key of candidates) {
    const reason = 'created by an interrupted rotation whose secret was never stored; nobody can use it';
    try {
      await iam.deleteAccessKey(unit.userName, key.accessKeyId);
    } catch (error) {
      if (!(error instanceof NoSuchKeyError)) throw error;
    }
    unit.user = unit.user && {
      ...unit.user,
      keys: unit.user.keys.filter((candidate) => candidate.accessKeyId !== key.accessKeyId),
    };
    unit.log('key.deleted', 'success', { keyId: key.accessKeyId, reason });
    unit.performed.push({ kind: 'recovered', keyId: key.accessKeyId, detail: reason });
  }
  if (adopted) {
    const newKeyId = adopted.accessKeyId;
    unit.stage((record) => ({ ...record, inFlight: { ...record.inFlight!, phase: 'stored', newKeyId } }), {
      action: 'rotation.recovered',
      keyId: newKeyId,
      detail: 'new key found stored in the vault; continuing',
    });
    await unit.write();
    return;
  }
  const detail =
    candidates.length === 0
      ? 'no key was created by the interrupted rotation'
      : 'the key created by the interrupted rotation was deleted';
  unit.stage((record) => ({ ...record, inFlight: undefined }), { action: 'rotation.recovered', detail });
  await unit.write();
  unit.log('rotation.recovered', 'success', {
    keyId: inFlight.oldKeyId,
    reason: `${detail}; rotating again`,
  });
}

async function repairStored(unit: UnitOfWork, user: UserSnapshot, inFlight: RotationInFlight): Promise<void> {
  const newKey = user.keys.find((key) => key.accessKeyId === inFlight.newKeyId);
  if (!newKey) {
    const detail = `new key ${inFlight.newKeyId} no longer exists (deleted by hand?); the rotation is abandoned`;
    unit.stage((record) => ({ ...record, inFlight: undefined }), { action: 'rotation.recovered', detail });
    await unit.write();
    unit.log('rotation.recovered', 'success', { keyId: inFlight.oldKeyId, reason: detail });
    return;
  }
  unit.log('rotation.recovered', 'success', {
    keyId: inFlight.oldKeyId,
    newKeyId: inFlight.newKeyId,
    reason: 'continuing from the stored phase',
  });
  // The policy written at the store names the rotator role of that time: after a redeploy it would
  // deny this one the value (verify) and its labels (promote), and no later run could finish.
  // Settled first; a no-op when current.
  const ref = unit.secretRef(user);
  const { omittedReaders } = await unit.deps.vault.settlePolicy(ref);
  if (omittedReaders.length > 0) reportOmittedReaders(unit, ref, newKey.accessKeyId, omittedReaders);
  const plan = { owner: resolveOwner(user.tags, unit.deps.settings.ownerTag) };
  const oldKey = user.keys.find((key) => key.accessKeyId === inFlight.oldKeyId);
  await finishStoredRotation(unit, plan, user, newKey, oldKey);
}
