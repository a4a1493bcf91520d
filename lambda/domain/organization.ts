/**
 * Organization-wide rotation: which accounts of an AWS Organization the service covers. Pure: the
 * settings, their validation, and the selection of accounts from what discovery found. Discovery
 * itself (the Organizations calls) is services/discover-accounts.ts.
 */
import { ConfigError } from './errors';
import { likelyName } from './names';

/** How the central deployment calls CloudFormation StackSets: from the management account or as a delegated admin. */
export type CallAs = 'SELF' | 'DELEGATED_ADMIN';

/**
 * The organization settings with every default applied, validated (see
 * {@link resolveOrganizationSettings}): what the central functions read. Set through the
 * `organization` prop of the KeyRotation construct (`KeyRotationOrganizationProps`), where each is
 * optional.
 */
export interface OrganizationSettings {
  /**
   * Name of the role every member account holds for the central functions: an IAM role name (1-64
   * letters, digits or `+=,.@_-`).
   * @default 'iam-key-rotation-member'
   */
  readonly memberRoleName: string;
  /**
   * OU or root ids (`ou-…`, `r-…`) whose accounts are covered, at any depth. Empty: the whole
   * organization. Cannot be combined with `accounts`.
   * @default [] (the whole organization)
   */
  readonly includeOus: readonly string[];
  /**
   * OU ids (`ou-…`) whose accounts are never covered, at any depth (wins over an include). Not a root:
   * that would exclude every account.
   * @default []
   */
  readonly excludeOus: readonly string[];
  /**
   * An explicit list of account ids (12 digits, as strings) instead of discovery. Empty: discover.
   * @default [] (discover)
   */
  readonly accounts: readonly string[];
  /**
   * Account ids (12 digits, as strings) never covered: never planned; a rotation in flight there is
   * only finished.
   * @default []
   */
  readonly excludeAccounts: readonly string[];
  /**
   * Account tags an account must carry to be covered: every key must be present, with one of the
   * listed values (an empty list: any value). Keys of 1-128 characters not starting with `aws:`,
   * values of up to 256. Empty: no tag filter.
   * @default {} (no tag filter)
   */
  readonly accountTags: Readonly<Record<string, readonly string[]>>;
  /**
   * How the central deployment calls CloudFormation StackSets: `SELF` from the management account,
   * `DELEGATED_ADMIN` from an account registered as a delegated administrator for StackSets.
   * @default 'SELF'
   */
  readonly callAs: CallAs;
  /**
   * Accounts planned at the same time: the planning queue's event source MaximumConcurrency, a whole
   * number from 2 to 1000 (Lambda's limits).
   * @default 10
   */
  readonly planConcurrency: number;
}

export const DEFAULT_ORGANIZATION_SETTINGS: OrganizationSettings = {
  memberRoleName: 'iam-key-rotation-member',
  includeOus: [],
  excludeOus: [],
  accounts: [],
  excludeAccounts: [],
  accountTags: {},
  callAs: 'SELF',
  planConcurrency: 10,
};

/** Lambda's limits on an SQS event source's MaximumConcurrency. */
export const MIN_PLAN_CONCURRENCY = 2;
export const MAX_PLAN_CONCURRENCY = 1000;

/** Organizations API patterns (API reference, Parent and Child ids). */
export const OU_ID = /^ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}$/;
export const ROOT_ID = /^r-[0-9a-z]{4,32}$/;
export const ACCOUNT_ID = /^\d{12}$/;
/** IAM role names: 1-64 of letters, digits and +=,.@_- */
const ROLE_NAME = /^[\w+=,.@-]{1,64}$/;
/** Organizations tag keys: 1-128 characters; values 0-256. */
const MAX_TAG_KEY = 128;
const MAX_TAG_VALUE = 256;

const SETTING = 'organization';

function describe(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

function idList(
  name: string,
  value: unknown,
  valid: (id: string) => boolean,
  example: string,
  problems: string[],
): string[] {
  if (!Array.isArray(value)) {
    problems.push(`${SETTING}.${name} must be a list such as [${example}] (got ${describe(value)})`);
    return [];
  }
  const ids: string[] = [];
  for (const id of value as unknown[]) {
    if (typeof id === 'number') {
      problems.push(
        `${SETTING}.${name} entry ${id} must be written as a string ("${String(id).padStart(12, '0')}"?): a number loses an account id's leading zeros`,
      );
    } else if (typeof id !== 'string' || !valid(id)) {
      problems.push(
        `${SETTING}.${name} entry ${describe(id)} is not valid: expected an id such as ${example}`,
      );
    } else if (!ids.includes(id)) {
      ids.push(id);
    }
  }
  return ids;
}

const isParentId = (id: string) => OU_ID.test(id) || ROOT_ID.test(id);
const isAccountId = (id: string) => ACCOUNT_ID.test(id);
const PARENT_EXAMPLE = '"ou-ab12-cdef3456" (an OU) or "r-ab12" (a root)';
const ACCOUNT_EXAMPLE = '"123456789012" (12 digits)';

function tagFilter(value: unknown, problems: string[]): Record<string, readonly string[]> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    problems.push(
      `${SETTING}.accountTags must be an object of tag key to value(s), such as {"environment": ["prod", "staging"]} (got ${describe(value)})`,
    );
    return {};
  }
  const filter: Record<string, readonly string[]> = {};
  for (const [key, wanted] of Object.entries(value as Record<string, unknown>)) {
    if (key.length === 0 || key.length > MAX_TAG_KEY || key.startsWith('aws:')) {
      problems.push(
        `${SETTING}.accountTags key ${describe(key)} is not an Organizations tag key (1-${MAX_TAG_KEY} characters, not starting with "aws:")`,
      );
      continue;
    }
    const values = typeof wanted === 'string' ? [wanted] : wanted;
    if (!Array.isArray(values) || values.some((v) => typeof v !== 'string' || v.length > MAX_TAG_VALUE)) {
      problems.push(
        `${SETTING}.accountTags.${key} must be a tag value or a list of them (up to ${MAX_TAG_VALUE} characters; [] for any value) (got ${describe(wanted)})`,
      );
      continue;
    }
    filter[key] = [...new Set(values as string[])];
  }
  return filter;
}

/**
 * Merges `input` over the defaults and validates it. Throws a {@link ConfigError} naming every
 * problem (as `organization.<setting>`) and what to change, with the likely setting for a misspelt one.
 */
export function resolveOrganizationSettings(input: unknown = {}): OrganizationSettings {
  const problems: string[] = [];
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new ConfigError([
      `${SETTING} must be an object of settings such as {"includeOus": ["ou-ab12-cdef3456"]} (got ${describe(input)})`,
    ]);
  }
  const known = Object.keys(DEFAULT_ORGANIZATION_SETTINGS);
  const given: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(input as Record<string, unknown>)) {
    if (known.includes(key)) {
      if (value !== undefined) given[key] = value;
      continue;
    }
    const likely = likelyName(key, known);
    problems.push(
      likely
        ? `${SETTING}.${key} is not a setting: did you mean ${likely}?`
        : `${SETTING}.${key} is not a setting; the settings are ${known.join(', ')}`,
    );
  }
  const merged = { ...DEFAULT_ORGANIZATION_SETTINGS, ...given } as Record<string, unknown>;

  const memberRoleName = merged.memberRoleName;
  if (typeof memberRoleName !== 'string' || !ROLE_NAME.test(memberRoleName)) {
    problems.push(
      `${SETTING}.memberRoleName must be an IAM role name (1-64 letters, digits or +=,.@_-) (got ${describe(memberRoleName)})`,
    );
  }
  const includeOus = idList('includeOus', merged.includeOus, isParentId, PARENT_EXAMPLE, problems);
  const excludeOus = idList('excludeOus', merged.excludeOus, isParentId, PARENT_EXAMPLE, problems);
  const accounts = idList('accounts', merged.accounts, isAccountId, ACCOUNT_EXAMPLE, problems);
  const excludeAccounts = idList(
    'excludeAccounts',
    merged.excludeAccounts,
    isAccountId,
    ACCOUNT_EXAMPLE,
    problems,
  );
  const accountTags = tagFilter(merged.accountTags, problems);
  if (merged.callAs !== 'SELF' && merged.callAs !== 'DELEGATED_ADMIN') {
    const likely =
      typeof merged.callAs === 'string' ? likelyName(merged.callAs, ['SELF', 'DELEGATED_ADMIN']) : undefined;
    problems.push(
      `${SETTING}.callAs must be "SELF" (the management account) or "DELEGATED_ADMIN" (got ${describe(merged.callAs)}${likely ? `: did you mean "${likely}"?` : ''})`,
    );
  }
  const concurrency = merged.planConcurrency;
  if (
    typeof concurrency !== 'number' ||
    !Number.isInteger(concurrency) ||
    concurrency < MIN_PLAN_CONCURRENCY ||
    concurrency > MAX_PLAN_CONCURRENCY
  ) {
    problems.push(
      `${SETTING}.planConcurrency must be a whole number from ${MIN_PLAN_CONCURRENCY} to ${MAX_PLAN_CONCURRENCY} (Lambda's limits on an SQS event source's MaximumConcurrency) (got ${describe(concurrency)})`,
    );
  }

  if (accounts.length > 0 && includeOus.length > 0) {
    problems.push(
      `${SETTING}.accounts replaces discovery, so includeOus does not apply: give one of accounts or includeOus`,
    );
  }
  for (const id of includeOus.filter((ou) => excludeOus.includes(ou))) {
    problems.push(`${SETTING}: ${id} is in both includeOus and excludeOus; remove it from one`);
  }
  for (const id of accounts.filter((account) => excludeAccounts.includes(account))) {
    problems.push(`${SETTING}: account ${id} is in both accounts and excludeAccounts; remove it from one`);
  }
  for (const id of excludeOus.filter((ou) => ROOT_ID.test(ou))) {
    problems.push(
      `${SETTING}.excludeOus names the root ${id}, which excludes every account; remove it (or the organization settings)`,
    );
  }

  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze({
    memberRoleName: memberRoleName as string,
    includeOus,
    excludeOus,
    accounts,
    excludeAccounts,
    accountTags,
    callAs: merged.callAs as CallAs,
    planConcurrency: concurrency as number,
  });
}

/** An account as Organizations lists it. `state` is the `State` field (`Status` is being retired). */
export interface MemberAccount {
  /** The account id (12 digits). */
  readonly id: string;
  /** The account's name in Organizations. */
  readonly name: string;
  /** ACTIVE, SUSPENDED, PENDING_ACTIVATION, PENDING_CLOSURE, CLOSED, or UNKNOWN when not given. */
  readonly state: string;
}

/** An account with what discovery learnt about it. */
export interface DiscoveredAccount extends MemberAccount {
  /** The account's tags in Organizations, key to value. */
  readonly tags: Readonly<Record<string, string>>;
  /**
   * The root and OU ids the account is known to be under, outermost first, ending with its direct
   * parent; as far as discovery walked (empty when it listed the account without walking).
   */
  readonly parents: readonly string[];
}

export type SkipReason =
  | 'excluded-account'
  | 'excluded-ou'
  | 'outside-included-ous'
  | 'not-active'
  | 'tags-not-matched'
  | 'not-in-organization';

/** An account not covered, and why. */
export interface SkippedAccount {
  /** The account id (12 digits). */
  readonly accountId: string;
  /**
   * The account's name in Organizations.
   * @default - not known (an account listed in `accounts` that discovery did not find)
   */
  readonly name?: string;
  /** Which rule left the account out (the first that applies). */
  readonly reason: SkipReason;
  /** Says why in words, for logs and reports. */
  readonly detail: string;
}

/** The accounts found, split into those covered and those not. */
export interface AccountSelection {
  /** The accounts covered, in the order found. */
  readonly selected: readonly DiscoveredAccount[];
  /** The accounts not covered, each with its reason, in the order found. */
  readonly skipped: readonly SkippedAccount[];
}

/** Selection settings: the organization settings that decide which accounts are covered. */
export type SelectionSettings = Pick<
  OrganizationSettings,
  'includeOus' | 'excludeOus' | 'excludeAccounts' | 'accountTags'
>;

/** Why the account is not covered, or undefined if it is. The first rule that applies wins. */
export function skipReason(
  account: DiscoveredAccount,
  settings: SelectionSettings,
): Omit<SkippedAccount, 'accountId' | 'name'> | undefined {
  if (settings.excludeAccounts.includes(account.id)) {
    return { reason: 'excluded-account', detail: 'listed in excludeAccounts' };
  }
  const excludedOu = account.parents.find((parent) => settings.excludeOus.includes(parent));
  if (excludedOu !== undefined) {
    return { reason: 'excluded-ou', detail: `under ${excludedOu}, listed in excludeOus` };
  }
  if (
    settings.includeOus.length > 0 &&
    !account.parents.some((parent) => settings.includeOus.includes(parent))
  ) {
    return { reason: 'outside-included-ous', detail: `not under any of ${settings.includeOus.join(', ')}` };
  }
  if (account.state !== 'ACTIVE') {
    return { reason: 'not-active', detail: `state ${account.state}, not ACTIVE` };
  }
  for (const [key, values] of Object.entries(settings.accountTags)) {
    const value = account.tags[key];
    if (value === undefined) return { reason: 'tags-not-matched', detail: `no tag ${key}` };
    if (values.length > 0 && !values.includes(value)) {
      return {
        reason: 'tags-not-matched',
        detail: `tag ${key} is ${JSON.stringify(value)}, not one of ${values.map((v) => JSON.stringify(v)).join(', ')}`,
      };
    }
  }
  return undefined;
}

/** Splits the accounts found into those covered and those not, each with its reason. Order is kept. */
export function selectAccounts(
  accounts: readonly DiscoveredAccount[],
  settings: SelectionSettings,
): AccountSelection {
  const selected: DiscoveredAccount[] = [];
  const skipped: SkippedAccount[] = [];
  for (const account of accounts) {
    const why = skipReason(account, settings);
    if (why) skipped.push({ accountId: account.id, name: account.name, ...why });
    else selected.push(account);
  }
  return { selected, skipped };
}
