/**
 * Checks of the design's invariants over the fakes' state, and hooks to time faults and
 * interruptions. Checks return a list of problems (empty when the invariant holds) so that a test
 * can `expect(problems).toEqual([])` and see every violation at once, and so that the checks
 * themselves can be tested on a broken state.
 */
import { secretVersionToken } from '../../lambda/domain/naming';
import type { FaultKind, Faults } from './faults';
import type { World } from './world';

/** What the checks read of one account: a World, or one member account of an OrgWorld. */
export type AccountView = Pick<World, 'iam' | 'vault' | 'ledger' | 'accountId' | 'secretName'>;

export interface StoredKey {
  readonly AccessKeyId: string;
  readonly SecretAccessKey: string;
  readonly UserName: string;
  readonly CreateDate: string;
}

/** The vault's copy of one key, read straight from the fake (not a counted call). */
export function storedKey(world: AccountView, userName: string, accessKeyId: string): StoredKey | undefined {
  const version = world.vault.secrets
    .get(world.secretName(userName))
    ?.versions.get(secretVersionToken(accessKeyId));
  return version ? (JSON.parse(version.value) as StoredKey) : undefined;
}

/**
 * I1: every key the service created (and that still exists) has its secret stored and readable, and
 * each user's AWSCURRENT version holds the right secret of a key that exists.
 */
export function secretLossProblems(world: AccountView): string[] {
  const problems: string[] = [];
  for (const { user, key } of world.iam.apiCreatedKeys()) {
    const name = world.secretName(user.userName);
    if (!world.vault.storedKeyIds(name).includes(key.accessKeyId)) {
      problems.push(`${user.userName}: key ${key.accessKeyId} exists but is not stored in ${name}`);
      continue;
    }
    const stored = storedKey(world, user.userName, key.accessKeyId);
    if (stored?.SecretAccessKey !== key.secretAccessKey || stored.UserName !== user.userName) {
      problems.push(`${user.userName}: the stored copy of ${key.accessKeyId} is not the key's secret`);
    }
    const current = world.vault.readStage(name);
    if (!current) {
      problems.push(`${user.userName}: ${name} has no AWSCURRENT version`);
      continue;
    }
    const currentKey = world.iam.findKey(current.accessKeyId);
    if (!currentKey || currentKey.secretAccessKey !== current.secretAccessKey) {
      problems.push(`${user.userName}: AWSCURRENT of ${name} (${current.accessKeyId}) is not a working key`);
    }
  }
  return problems;
}

/** Everything about one IAM user, secrets and last-used dates included, for byte-for-byte comparison. */
export function userFingerprint(world: AccountView, userName: string): string {
  const user = world.iam.users.get(userName);
  return JSON.stringify(user ?? null);
}

/** Runs `hook` just before the `occurrence`-th call (1-based, counted over the world's life) of `op`. */
export function beforeCall(
  faults: Faults,
  op: string,
  occurrence: number,
  hook: () => void | Promise<void>,
): void {
  const original = faults.around.bind(faults);
  let fired = false;
  faults.around = async <T>(name: string, effect: () => T | Promise<T>): Promise<T> => {
    if (!fired && name === op && faults.calls.filter((call) => call === op).length === occurrence - 1) {
      fired = true;
      await hook();
    }
    return original(name, effect);
  };
}

/** Like `faults.inject(op, kind, 1)`, but hits the `occurrence`-th call of `op` instead of the first. */
export function injectAt(faults: Faults, op: string, kind: FaultKind, occurrence: number): void {
  beforeCall(faults, op, occurrence, () => faults.inject(op, kind, 1));
}

/** Where any of `secrets` (or a tell-tale part of one) occurs in `corpus`. */
export function findSecrets(
  corpus: readonly string[],
  secrets: readonly string[],
): { secret: string; needle: string; text: string }[] {
  const hits: { secret: string; needle: string; text: string }[] = [];
  for (const secret of secrets) {
    // The whole secret, and its first half: "masking" that prints part of a secret is a leak too.
    const needles = [...new Set([secret, secret.slice(0, 20)])].filter((needle) => needle.length >= 16);
    for (const text of corpus) {
      const needle = needles.find((candidate) => text.includes(candidate));
      if (needle) hits.push({ secret, needle, text: text.slice(0, 300) });
    }
  }
  return hits;
}

/**
 * The state a crash or a timeout may leave between runs: a key the service created whose secret is
 * not stored is acceptable only while the ledger's intent covers it, so that the next run finds it.
 */
export function unrecoverableKeyProblems(world: AccountView): string[] {
  const problems: string[] = [];
  for (const { user, key } of world.iam.apiCreatedKeys()) {
    if (storedKey(world, user.userName, key.accessKeyId)) continue;
    const inFlight = world.ledger.peek(world.accountId, user.userName)?.inFlight;
    if (inFlight?.phase !== 'intent' || inFlight.keysBefore.includes(key.accessKeyId)) {
      problems.push(
        `${user.userName}: key ${key.accessKeyId} is not stored and no intent in the ledger covers it`,
      );
    }
  }
  return problems;
}
