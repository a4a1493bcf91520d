/**
 * The CLI repairs before it exits (issue 12). A rotation whose outcome is unknown (a timeout, a
 * dropped connection, throttling that outlived the SDK's retries, a key STS did not accept in time)
 * may leave half-done work: a key created whose secret was never stored, a stored key not yet
 * verified, a notice not delivered. The deployed service finishes it within minutes (the message is
 * redelivered); the CLI does the same before it exits: after the pass, each such user is run again
 * through rotateUser, whose first step repairs what the ledger says was left half-done, with backoff
 * and a bound. What a user still failing leaves behind is read back (ledger, IAM, vault) and named,
 * so that an operator who reads exit 1 knows what is in the account and what to do about it.
 */
import { KeyRotationError, LockHeldError, NoSuchUserError } from '../lambda/domain/errors';
import type { AccessKey, PendingNotice, UserLedger } from '../lambda/domain/model';
import { secretNameFor } from '../lambda/domain/naming';
import { describeError } from '../lambda/services/audit';
import { isOrphanOf } from '../lambda/services/rotation/repair';
import {
  PerformedAction,
  RotateUserRequest,
  RotationDeps,
  rotateUser,
  UserOutcome,
} from '../lambda/services/rotate-user';
import { inPool } from './pool';

/** The waits before each retry of a user whose outcome is unknown: at most this many retries. */
export const RETRY_BACKOFF_MS: readonly number[] = [2_000, 4_000, 8_000];
/** How many times a user is run again after its first attempt, at most. */
export const MAX_RETRIES = RETRY_BACKOFF_MS.length;

/**
 * Whether a failure may have left half-done work that another attempt repairs: an engine error that
 * says trying again may succeed. Another run holding the user's lock is not ours to repair, and
 * errors that say no (access denied, a secret that is not ours) would only fail again.
 */
export function unknownOutcome(error: unknown): boolean {
  return error instanceof KeyRotationError && error.retryable && !(error instanceof LockHeldError);
}

export type LeftBehindKind =
  | 'unstored-key'
  | 'unfinished-rotation'
  | 'rotation-intent'
  | 'undelivered-notices'
  | 'unconfirmed-retirement'
  | 'lock'
  | 'locked-by-other'
  | 'foreign-key'
  | 'unchecked';

/** One thing a failed user's rotation left in the account: key ids and names only, never a secret. */
export interface LeftBehind {
  readonly kind: LeftBehindKind;
  readonly keyId?: string;
  readonly message: string;
}

/** Where the user is, as the messages name it. */
export interface Whereabouts {
  readonly accountId: string;
  /** Organization mode: the member role the account is reached through. */
  readonly memberRoleName?: string;
}

/** A user's first attempt in a pass, with the dependencies (the lock holder) every retry reuses. */
export type FirstAttempt = {
  readonly request: RotateUserRequest;
  readonly deps: RotationDeps;
  /** When the first attempt started (the connection's clock). */
  readonly startedAt: Date;
} & ({ readonly outcome: UserOutcome } | { readonly error: unknown });

/** What became of a user after its first attempt and any retries. */
export type UserResult =
  | {
      readonly userName: string;
      readonly outcome: UserOutcome;
      readonly attempts: number;
      /** The failure of the first attempt, when a retry finished the user. */
      readonly repairedFrom?: unknown;
    }
  | {
      readonly userName: string;
      readonly error: unknown;
      readonly attempts: number;
      readonly leftBehind: readonly LeftBehind[];
    };

/** The user's first attempt: the rotation, its failure caught. */
export async function firstAttempt(request: RotateUserRequest, deps: RotationDeps): Promise<FirstAttempt> {
  const startedAt = deps.clock.now();
  try {
    return { request, deps, startedAt, outcome: await rotateUser(request, deps) };
  } catch (error) {
    return { request, deps, startedAt, error };
  }
}

/**
 * After a pass: each user whose first attempt failed with an unknown outcome is run again (same lock
 * holder, so that a lock our failed attempt could not release does not refuse our own retry), after
 * 2, 4 and 8 s (the connection's clock), until it succeeds or fails in a way a retry cannot change.
 * Users retry `concurrency` at once, each one's attempts in turn. A user still failing is inspected
 * for what it leaves behind. Results come back in the order of `attempts`.
 */
export async function settleAttempts(
  attempts: readonly FirstAttempt[],
  concurrency: number,
  where: Whereabouts,
): Promise<UserResult[]> {
  return inPool(attempts, concurrency, async (attempt): Promise<UserResult> => {
    const userName = attempt.request.userName;
    if ('outcome' in attempt) return { userName, outcome: attempt.outcome, attempts: 1 };
    let error = attempt.error;
    let tries = 1;
    for (const waitMs of RETRY_BACKOFF_MS) {
      if (!unknownOutcome(error)) break;
      await attempt.deps.clock.sleep(waitMs);
      tries++;
      try {
        const outcome = await rotateUser(attempt.request, attempt.deps);
        const whole = await withEarlierWork(outcome, attempt.deps, attempt.startedAt);
        return { userName, outcome: whole, attempts: tries, repairedFrom: attempt.error };
      } catch (retryError) {
        error = retryError;
      }
    }
    const leftBehind = await inspectLeftBehind(
      attempt.deps,
      attempt.request.accountId,
      userName,
      where,
      error,
    );
    return { userName, error, attempts: tries, leftBehind };
  });
}

/** History entries of a change to IAM, by the outcome's action kind. */
const RETIREMENT_HISTORY: Readonly<Record<string, PerformedAction['kind']>> = {
  'key.deactivated': 'deactivate',
  'key.enforced': 'enforce',
  'key.reaped': 'reap',
  'key.deleted': 'delete',
};

/**
 * A retry may find the work complete already: an earlier attempt finished a rotation, a deactivation
 * or a deletion, but its answer (or the last write's) was lost. The retry then has nothing to do, and
 * its outcome alone would say the user was not rotated, or show nothing done; the rotations and
 * retirements the ledger records since the first attempt started are added to it (best effort: the
 * outcome as it is if the ledger cannot be read).
 */
async function withEarlierWork(
  outcome: UserOutcome,
  deps: RotationDeps,
  startedAt: Date,
): Promise<UserOutcome> {
  let record: UserLedger | undefined;
  try {
    record = await deps.ledger.load(outcome.accountId, outcome.userName);
  } catch {
    return outcome;
  }
  const since = (iso: string) => new Date(iso).getTime() >= startedAt.getTime();
  const detail = 'completed by an earlier attempt whose answer was lost';
  const rotations: PerformedAction[] = (record?.rotations ?? [])
    .filter((rotation) => since(rotation.rotatedAt))
    .map((rotation) => ({ kind: 'rotate', keyId: rotation.oldKeyId, newKeyId: rotation.newKeyId, detail }));
  const retirements: PerformedAction[] = (record?.history ?? []).flatMap((entry) => {
    const kind = RETIREMENT_HISTORY[entry.action];
    return kind && since(entry.at) ? [{ kind, keyId: entry.keyId, detail }] : [];
  });
  // What this retry did (or settled) is in its outcome already, with its own words.
  const earlier = [...rotations, ...retirements].filter(
    (action) => !outcome.performed.some((done) => done.kind === action.kind && done.keyId === action.keyId),
  );
  if (earlier.length === 0) return outcome;
  return { ...outcome, status: 'done', performed: [...earlier, ...outcome.performed] };
}

/** One user, start to end: rotate --apply. */
export async function rotateWithRepair(
  request: RotateUserRequest,
  deps: RotationDeps,
  where: Whereabouts,
): Promise<UserResult> {
  const [result] = await settleAttempts([await firstAttempt(request, deps)], 1, where);
  return result!;
}

const RETIREMENT_WORDS: Record<NonNullable<PendingNotice['awaits']>['kind'], string> = {
  deactivate: 'deactivation',
  enforce: 'deactivation (enforced)',
  reap: 'deactivation (unused key)',
  delete: 'deletion',
  'make-room': 'deletion (to make room)',
};

/**
 * What the user's failed rotation leaves in the account, read back from the ledger record, the live
 * keys and the vault. Empty when nothing is (a refusal before anything was written). If the reads
 * fail too, one entry says so and what to run.
 */
export async function inspectLeftBehind(
  deps: RotationDeps,
  accountId: string,
  userName: string,
  where: Whereabouts,
  error?: unknown,
): Promise<LeftBehind[]> {
  const inAccount = where.memberRoleName
    ? ` in account ${where.accountId} (as the member role ${where.memberRoleName})`
    : '';
  try {
    const record = await deps.ledger.load(accountId, userName);
    if (!record) return [];
    // Another run holds the user: what is in flight is its work, not ours to name or to undo.
    const lock = record.lock;
    const othersLock =
      lock && lock.holder !== deps.holderId && new Date(lock.until).getTime() > deps.clock.now().getTime();
    if (othersLock || error instanceof LockHeldError) {
      const holder = lock ? `${lock.holder} until ${lock.until}` : 'another run';
      return [
        {
          kind: 'locked-by-other',
          message:
            `${userName}${inAccount} is locked by ${holder}: any rotation in flight is that run's work and is ` +
            'left to it (nothing of this run is left behind); run keyrot plan after it to see the user',
        },
      ];
    }
    return await fromRecord(deps, record, inAccount);
  } catch (error) {
    const { name, message } = describeError(error);
    const accounts = where.memberRoleName ? ` --accounts ${where.accountId}` : '';
    return [
      {
        kind: 'unchecked',
        message:
          `what the failed rotation of ${userName}${inAccount} left behind could not be checked (${name}: ${message}); ` +
          `run keyrot plan${accounts} to see its keys and any rotation in flight (the next run --apply finishes it)`,
      },
    ];
  }
}

async function fromRecord(deps: RotationDeps, record: UserLedger, inAccount: string): Promise<LeftBehind[]> {
  const { userName, accountId } = record;
  const left: LeftBehind[] = [];
  const inFlight = record.inFlight;
  const retirements = record.outbox.filter((entry) => entry.awaits !== undefined);
  // The live keys, when something in the record needs them (the user may be gone: then so are its keys).
  let keys: Omit<AccessKey, 'lastUsedDate'>[] = [];
  let userArn: string | undefined;
  if (inFlight || retirements.length > 0) {
    try {
      userArn = (await deps.iam.getUser(userName)).arn;
      keys = await deps.iam.listAccessKeys(userName);
    } catch (error) {
      if (!(error instanceof NoSuchUserError)) throw error;
    }
  }
  const secretName = secretNameFor(deps.secretPrefix, accountId, userName);
  if (inFlight) {
    const newKeys = keys.filter((key) => !inFlight.keysBefore.includes(key.accessKeyId));
    if (inFlight.phase === 'intent') {
      let stored = new Set<string>();
      if (newKeys.length > 0 && userArn) {
        const described = await deps.vault.describe({ accountId, userName, name: secretName, userArn });
        if (described?.managedByUs)
          stored = new Set(described.versions.map((version) => version.accessKeyId));
      }
      for (const key of newKeys) {
        if (stored.has(key.accessKeyId)) {
          left.push(unfinished(userName, key.accessKeyId, inFlight.oldKeyId, secretName, inAccount));
          continue;
        }
        // The same test the repair deletes by: only a key that is surely this rotation's orphan.
        const lastUsedDate = await deps.iam.getAccessKeyLastUsed(key.accessKeyId);
        if (!isOrphanOf(inFlight, { ...key, ...(lastUsedDate ? { lastUsedDate } : {}) })) {
          left.push({
            kind: 'foreign-key',
            keyId: key.accessKeyId,
            message:
              `key ${key.accessKeyId} of ${userName}${inAccount} appeared during the rotation but was not made by it ` +
              `(created ${key.createDate.toISOString()}${lastUsedDate ? `, last used ${lastUsedDate.toISOString()}` : ''}): ` +
              'it is left alone; the next run closes the rotation and reports the user if it then has two active keys',
          });
          continue;
        }
        left.push({
          kind: 'unstored-key',
          keyId: key.accessKeyId,
          message:
            `key ${key.accessKeyId} of ${userName}${inAccount} exists but its secret was never stored; nobody can use it. ` +
            `The next run deletes it, or delete it now${inAccount}: aws iam delete-access-key --user-name ${userName} --access-key-id ${key.accessKeyId}`,
        });
      }
      if (newKeys.length === 0) {
        left.push({
          kind: 'rotation-intent',
          keyId: inFlight.oldKeyId,
          message:
            `a rotation of ${userName}${inAccount} (replacing ${inFlight.oldKeyId}) was started but no new key exists; ` +
            'harmless: the next run closes it',
        });
      }
    } else if (inFlight.newKeyId && keys.some((key) => key.accessKeyId === inFlight.newKeyId)) {
      left.push(unfinished(userName, inFlight.newKeyId, inFlight.oldKeyId, secretName, inAccount));
    } else {
      left.push({
        kind: 'rotation-intent',
        ...(inFlight.newKeyId ? { keyId: inFlight.newKeyId } : {}),
        message:
          `a rotation of ${userName}${inAccount} (replacing ${inFlight.oldKeyId}) recorded key ${inFlight.newKeyId ?? '(none)'} as stored, ` +
          'but that key no longer exists; the next run closes the rotation and rotates again',
      });
    }
  }
  const notices = record.outbox.filter((entry) => entry.awaits === undefined);
  if (notices.length > 0) {
    const what = notices
      .map(({ notification }) => `${notification.event} to ${notification.recipients.join(' ')}`)
      .join(', ');
    left.push({
      kind: 'undelivered-notices',
      message: `${notices.length} notice(s) about ${userName}${inAccount} not delivered (${what}); the next run delivers them`,
    });
  }
  for (const { awaits } of retirements) {
    if (!awaits) continue;
    const live = keys.find((key) => key.accessKeyId === awaits.keyId);
    const now = live ? `IAM shows it ${live.status}` : 'IAM no longer lists it';
    left.push({
      kind: 'unconfirmed-retirement',
      keyId: awaits.keyId,
      message:
        `${RETIREMENT_WORDS[awaits.kind]} of key ${awaits.keyId} of ${userName}${inAccount} was sent to IAM but its answer was lost (${now}); ` +
        'the next run checks IAM and records and announces it, or does it again',
    });
  }
  const lock = record.lock;
  if (lock && lock.holder === deps.holderId && new Date(lock.until).getTime() > deps.clock.now().getTime()) {
    left.push({
      kind: 'lock',
      message:
        `${userName}${inAccount} stays locked by this run (${lock.holder}) until ${lock.until}: ` +
        'the schedule and other keyrot runs skip the user until then',
    });
  }
  return left;
}

function unfinished(
  userName: string,
  newKeyId: string,
  oldKeyId: string,
  secretName: string,
  inAccount: string,
): LeftBehind {
  return {
    kind: 'unfinished-rotation',
    keyId: newKeyId,
    message:
      `new key ${newKeyId} of ${userName}${inAccount} is stored in ${secretName} (AWSPENDING) but not yet verified and made current; ` +
      `the old key ${oldKeyId} stays active and in use. The next run (or keyrot run --apply) verifies and finishes it`,
  };
}

/** The stderr line of a user a retry finished (none for one done at the first attempt). `label`: user, or account/user. */
export function repairLines(done: Extract<UserResult, { outcome: UserOutcome }>, label: string): string {
  if (done.repairedFrom === undefined) return '';
  const { name, message } = describeError(done.repairedFrom);
  return `keyrot: warning: ${label}: ${name}: ${message}; repaired on attempt ${done.attempts}\n`;
}

/** The stderr lines naming what a failed user leaves behind. `label`: user, or account/user. */
export function leftBehindLines(leftBehind: readonly LeftBehind[], label: string): string {
  return leftBehind.map((item) => `keyrot: left behind for ${label}: ${item.message}\n`).join('');
}

/** The summary line's count of users a retry finished, when there are any. */
export function repairedSuffix(repaired: number): string {
  return repaired > 0 ? `; ${repaired} repaired after a failure (see stderr)` : '';
}

/** The --json form of an outcome, with its attempts and whether a retry finished it. */
export function outcomeJson(result: Extract<UserResult, { outcome: UserOutcome }>) {
  return { ...result.outcome, attempts: result.attempts, repaired: result.repairedFrom !== undefined };
}

/** The --json form of a failure: the error, the attempts, and what it leaves behind. */
export function failureJson(failure: {
  userName: string;
  error: unknown;
  attempts?: number;
  leftBehind?: readonly LeftBehind[];
}) {
  return {
    userName: failure.userName,
    error: describeError(failure.error),
    attempts: failure.attempts ?? 0,
    leftBehind: failure.leftBehind ?? [],
  };
}
