import type { AccessKey, UserSnapshot } from '../domain/model';
import { planUser, type PolicyInput } from '../domain/policy';
import type { IamDirectory } from '../ports';

export interface ReadUserOptions {
  /**
   * Read when each key was last used (one GetAccessKeyLastUsed per key). Without it the keys carry
   * no last-used date: see {@link lastUseMatters} for when the policy needs one. @default true
   */
  readonly lastUse?: boolean;
}

/** Live state of one user: details with tags, keys, and (by default) when each key was last used. */
export async function readUser(
  iam: IamDirectory,
  userName: string,
  { lastUse = true }: ReadUserOptions = {},
): Promise<UserSnapshot> {
  const [details, keys] = await Promise.all([iam.getUser(userName), iam.listAccessKeys(userName)]);
  const user: UserSnapshot = {
    userName: details.userName,
    arn: details.arn,
    path: details.path,
    tags: details.tags,
    keys: keys.map((key) => usedAt(key, undefined)),
  };
  return lastUse ? withLastUse(iam, user) : user;
}

/** The snapshot with each key's last use read from IAM (the keys given, or all of them). */
export async function withLastUse(
  iam: IamDirectory,
  user: UserSnapshot,
  keyIds: readonly string[] = user.keys.map((key) => key.accessKeyId),
): Promise<UserSnapshot> {
  const keys: AccessKey[] = [];
  for (const key of user.keys) {
    if (!keyIds.includes(key.accessKeyId)) {
      keys.push(key);
      continue;
    }
    keys.push(usedAt(key, await iam.getAccessKeyLastUsed(key.accessKeyId)));
  }
  return { ...user, keys };
}

/** The key with this last use (none: never used, as far as IAM knows). */
function usedAt(key: AccessKey, lastUsedDate: Date | undefined): AccessKey {
  const { accessKeyId, status, createDate } = key;
  return lastUsedDate
    ? { accessKeyId, status, createDate, lastUsedDate }
    : { accessKeyId, status, createDate };
}

/**
 * Whether the policy's answer for a user read without last-used dates could depend on them. The
 * rules only ever ask whether a key was used since some time (a later use can only make that true),
 * so the true answer lies between two extremes: every key never used, and every key used just now.
 * When the plans for both are the same (actions, their reasons included), last use changes nothing
 * and is not read: a user in a grace period, say, or a key that is only due by age. When they differ
 * (two active keys past the grace, a key reaping may take), it is read.
 */
export function lastUseMatters(input: PolicyInput): boolean {
  const planned = (lastUsedDate: Date | undefined) => {
    const keys = input.user.keys.map((key) => usedAt(key, lastUsedDate));
    const plan = planUser({ ...input, user: { ...input.user, keys } });
    return JSON.stringify([plan.actions, plan.findings]);
  };
  return planned(undefined) !== planned(input.now);
}
