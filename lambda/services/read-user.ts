import type { AccessKey, UserSnapshot } from '../domain/model';
import type { IamDirectory } from '../ports';

/** Live state of one user: details with tags, keys, and when each key was last used. */
export async function readUser(iam: IamDirectory, userName: string): Promise<UserSnapshot> {
  const [details, keys] = await Promise.all([iam.getUser(userName), iam.listAccessKeys(userName)]);
  const withUse: AccessKey[] = [];
  for (const key of keys) {
    const lastUsedDate = await iam.getAccessKeyLastUsed(key.accessKeyId);
    withUse.push(lastUsedDate ? { ...key, lastUsedDate } : { ...key });
  }
  return {
    userName: details.userName,
    arn: details.arn,
    path: details.path,
    tags: details.tags,
    keys: withUse,
  };
}
