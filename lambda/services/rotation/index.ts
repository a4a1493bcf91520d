/**
 * Rotate one user: load the ledger record, refuse if another run holds the user's lock, read live
 * state, finish any half-done work, decide with the pure policy, act, record, notify. Every step is
 * safe to repeat (I5): a second run after a crash or a redelivery finds the ledger and IAM in a state
 * it knows how to continue from.
 *
 *   index.ts             this: load, lock check, live read, plan, dispatch, outcome; dry runs
 *   unit-of-work.ts      the context of one user: staged ledger changes, writes, lock, audit, outcome
 *   rotate.ts            the rotation protocol, step by step:
 *     create-and-store.ts    lock + intent, CreateAccessKey, AWSPENDING (phase `stored`: if it stops)
 *     verify.ts              STS signed with the key as stored
 *     promote.ts             AWSPENDING -> AWSCURRENT
 *     announce.ts            completed + notice; then, for every unit: published, cleared, unlocked
 *   repair.ts            resuming a rotation left half-done
 *   retire.ts            deactivate, enforce, reap, delete, make room
 *   housekeeping.ts      ledger marks and notices that change nothing in IAM
 *   outbox.ts            delivering notices; owners' own topics
 *
 * Cost: a user with nothing due and an unchanged review costs one GetItem and the live read; each
 * phase of a change costs one conditional ledger write (see unit-of-work.ts).
 */
import { KeyRotationError, LockHeldError, NoSuchUserError } from '../../domain/errors';
import { emptyLedger, type UserLedger, type UserSnapshot } from '../../domain/model';
import { PlannedAction, planUser, UserPlan } from '../../domain/policy';
import { audit, describeError } from '../audit';
import { readUser } from '../read-user';
import { finishUnit } from './announce';
import * as housekeeping from './housekeeping';
import { repair } from './repair';
import { deactivate, deleteKey, dropPendingRetirements } from './retire';
import { rotate } from './rotate';
import {
  DEFAULT_ROTATION_OPTIONS,
  RotateUserRequest,
  RotationDeps,
  UnitOfWork,
  UserOutcome,
} from './unit-of-work';

export {
  DEFAULT_ROTATION_OPTIONS,
  type PerformedAction,
  type RotateUserRequest,
  type RotationDeps,
  type RotationOptions,
  type UserOutcome,
} from './unit-of-work';

/** Rotates (or, with `dryRun`, plans) one user. Throws on failure so that the message is retried. */
export async function rotateUser(request: RotateUserRequest, deps: RotationDeps): Promise<UserOutcome> {
  if (request.dryRun) return planOnly(request, deps);
  const options = { ...DEFAULT_ROTATION_OPTIONS, ...deps.options };
  const record = await deps.ledger.load(request.accountId, request.userName);
  refuseIfLocked(record, deps.holderId, deps.clock.now());
  const unit = new UnitOfWork(
    request,
    deps,
    options,
    record ?? emptyLedger(request.accountId, request.userName),
  );
  try {
    return await carryOut(unit);
  } catch (error) {
    audit(deps.logger, {
      action: 'rotation.failed',
      accountId: request.accountId,
      userName: request.userName,
      reason: describeError(error).message,
      error: describeError(error),
      dryRun: false,
      outcome: 'failure',
    });
    await unit.releaseAfterFailure();
    throw error;
  }
}

/** Another run is working on the user and its lease has not run out: nothing is done or written. */
function refuseIfLocked(record: UserLedger | undefined, holder: string, now: Date): void {
  const lock = record?.lock;
  if (lock && lock.holder !== holder && new Date(lock.until).getTime() > now.getTime()) {
    throw new LockHeldError(`user ${record.userName} is locked by ${lock.holder} until ${lock.until}`);
  }
}

async function carryOut(unit: UnitOfWork): Promise<UserOutcome> {
  let live = await unit.readAndPlan();
  if (!live) return userGone(unit);
  if (live.plan.actions.some((action) => action.kind === 'resume')) {
    await repair(unit, live.user);
    live = await unit.readAndPlan();
    if (!live) return userGone(unit);
  }
  const { user, plan } = live;
  try {
    if (plan.findings.length > 0) housekeeping.reportFindings(unit, plan, user);
    for (const action of plan.actions) await carryOutAction(unit, action, plan, user);
    await finishUnit(unit, { plan });
  } catch (error) {
    // Deleted while we worked on it: its keys went with it; nothing to retry.
    if (!(error instanceof NoSuchUserError)) throw error;
    return userGone(unit, plan);
  }
  const acted = unit.performed.length > 0 || plan.actions.length > 0;
  return unit.outcome(acted ? 'done' : 'nothing-due', plan);
}

async function carryOutAction(
  unit: UnitOfWork,
  action: PlannedAction,
  plan: UserPlan,
  user: UserSnapshot,
): Promise<void> {
  const context = unit.noticeContext(plan, user);
  switch (action.kind) {
    case 'resume':
      // Handled before planning; a resume still due here means the repair did not converge.
      throw new KeyRotationError(`rotation of ${unit.userName} could not be resumed: ${action.reason}`);
    case 'forget':
      return housekeeping.forget(unit, action);
    case 'track-inactive':
      return housekeeping.trackInactive(unit, action);
    case 'note-reactivated':
      return housekeeping.noteReactivated(unit, action, context);
    case 'warn':
      return housekeeping.warn(unit, action, plan, user);
    case 'postpone':
      return housekeeping.postpone(unit, action, context, user);
    case 'conflict':
      return housekeeping.reportConflict(unit, action, context);
    case 'delete':
    case 'make-room':
      return deleteKey(unit, action, context);
    case 'deactivate':
    case 'enforce':
    case 'reap':
      return deactivate(unit, action, context);
    case 'rotate':
      return rotate(unit, action, plan, user);
  }
}

/** The user no longer exists: drop any rotation in flight (its keys went with it), deliver notices. */
async function userGone(unit: UnitOfWork, plan?: UserPlan): Promise<UserOutcome> {
  unit.log('rotation.skipped', 'skipped', { reason: 'the IAM user no longer exists' });
  if (unit.record.inFlight) {
    unit.stage((record) => ({ ...record, inFlight: undefined }), {
      action: 'rotation.abandoned',
      detail: 'user deleted during the rotation; its keys went with it',
    });
  }
  // A deactivation or deletion whose answer was lost: moot, the keys went with the user.
  if (unit.record.outbox.some((entry) => entry.awaits)) unit.stage(dropPendingRetirements);
  unit.user = undefined;
  await finishUnit(unit);
  return unit.outcome('user-gone', plan);
}

/** A dry run: the plan a real run would carry out, from the same reads, writing nothing (I6). */
async function planOnly(request: RotateUserRequest, deps: RotationDeps): Promise<UserOutcome> {
  const { accountId, userName } = request;
  const record = await deps.ledger.load(accountId, userName);
  let user: UserSnapshot;
  try {
    user = await readUser(deps.iam, userName);
  } catch (error) {
    if (error instanceof NoSuchUserError)
      return { accountId, userName, dryRun: true, status: 'user-gone', performed: [] };
    throw error;
  }
  const plan = planUser({
    user,
    ledger: record,
    now: deps.clock.now(),
    settings: deps.settings,
    forceRotation: request.forceRotation,
  });
  for (const action of plan.actions) {
    audit(deps.logger, {
      action: 'user.planned',
      accountId,
      userName,
      ...actionKeys(action),
      planned: action.kind,
      reason: action.reason,
      dryRun: true,
      outcome: 'planned',
    });
  }
  return {
    accountId,
    userName,
    dryRun: true,
    status: plan.actions.length > 0 ? 'planned' : 'nothing-due',
    plan,
    performed: [],
  };
}

function actionKeys(action: PlannedAction): { keyId?: string; newKeyId?: string } {
  if ('keyId' in action) {
    return 'replacementKeyId' in action
      ? { keyId: action.keyId, newKeyId: action.replacementKeyId }
      : { keyId: action.keyId };
  }
  if ('keyIds' in action) return { keyId: action.keyIds.join(',') };
  return {};
}
