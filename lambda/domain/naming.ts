/** Names derived from users and accounts. Pure. */

const SECRET_PREFIX = /^[A-Za-z0-9/_+=.@-]{1,200}$/;

/** Problems with a secret prefix, for validation at synth time and cold start. */
export function secretPrefixProblem(prefix: unknown): string | undefined {
  if (
    typeof prefix !== 'string' ||
    !SECRET_PREFIX.test(prefix) ||
    prefix.startsWith('/') ||
    prefix.endsWith('/')
  ) {
    return `secretPrefix must be 1-200 characters of letters, digits and /_+=.@- without a leading or trailing "/" (got ${JSON.stringify(prefix)})`;
  }
  return undefined;
}

/**
 * `<prefix>/<accountId>/<userName>`. IAM user names may contain ",", which secret names may not;
 * it is written as "=2C". The secret's tags record the exact user name, so a collision is detected.
 */
export function secretNameFor(prefix: string, accountId: string, userName: string): string {
  return `${prefix}/${accountId}/${userName.replace(/,/g, '=2C')}`;
}

/**
 * The Secrets Manager ClientRequestToken (= version id) for a key: deterministic, so storing the same
 * key twice is a no-op, and the stored key ids can be read from the version ids without the values.
 * Access key ids are 16+ characters, so the token meets the 32-character minimum.
 */
export function secretVersionToken(accessKeyId: string): string {
  return `${TOKEN_PREFIX}${accessKeyId}`;
}

/** The access key id a version token was made from, or undefined if it is not one of ours. */
export function accessKeyIdFromToken(token: string): string | undefined {
  return token.startsWith(TOKEN_PREFIX) ? token.slice(TOKEN_PREFIX.length) : undefined;
}

const TOKEN_PREFIX = 'iam-key-rotation-';

/**
 * The version a new secret is created with. Secrets Manager makes a secret's first version
 * AWSCURRENT whatever labels are asked for, so a new secret starts with this placeholder (it holds
 * no key); the first key is then stored as AWSPENDING and becomes AWSCURRENT only once verified.
 */
export const PLACEHOLDER_VERSION = {
  token: 'keyrot-placeholder-no-key-stored-yet',
  value: '{"status":"no access key stored yet: iam-key-rotation stores the first key after verifying it"}',
} as const;

/** Tags that mark a secret as created by this service for one user; without them it is never overwritten. */
export const SECRET_TAGS = {
  managed: 'iam-key-rotation:managed',
  /** Value `<accountId>/<userName>`. */
  user: 'iam-key-rotation:user',
} as const;

/** SNS topic names: 1-256 of letters, digits, `_` and `-`. */
const TOPIC_NAME_MAX = 256;

/**
 * Name prefix of the per-owner notification topics, derived from the secret prefix:
 * `iam-key-rotation` → `iam-key-rotation-owner-<6 hex>-`. The hash of the exact prefix keeps two
 * deployments apart even when their prefixes read the same as topic names (`a/b` and `a-b`), and
 * keeps one deployment's grant (`<prefix>*`) from reaching another's topics (`a` and `a-owner-x`).
 */
export function ownerTopicPrefixFor(secretPrefix: string): string {
  return `${secretPrefix.replace(/[^A-Za-z0-9_-]/g, '-')}-owner-${fnv1a32(secretPrefix).slice(0, 6)}-`;
}

/**
 * The topic of one owner: `<prefix><readable address>-<hash>`. The readable part lets an operator
 * find a topic in the console; the hash (64 bits of the exact address) keeps two addresses that read
 * the same (`a.b@x.com`, `a-b@x.com`) apart. Deterministic, so the topic's ARN is known without a call.
 */
export function ownerTopicName(prefix: string, address: string): string {
  const exact = address.toLowerCase();
  const hash = fnv1a32(exact) + fnv1a32([...exact].reverse().join(''));
  const readable = exact.replace('@', '_at_').replace(/[^a-z0-9_-]/g, '-');
  const room = Math.max(0, TOPIC_NAME_MAX - prefix.length - hash.length - 1);
  const slug = readable.slice(0, room);
  return slug ? `${prefix}${slug}-${hash}` : `${prefix}${hash}`;
}

/** `arn:<partition>:sns:<region>:<account>:<name>` of a topic next to `siblingTopicArn`. */
export function topicArnBeside(siblingTopicArn: string, topicName: string): string {
  const parts = siblingTopicArn.split(':');
  return [...parts.slice(0, 5), topicName].join(':');
}

/** FNV-1a, 32 bits, as 8 hex digits: a stable, dependency-free hash for names (not for security). */
function fnv1a32(text: string): string {
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, '0');
}
