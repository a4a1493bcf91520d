/**
 * Discovery: which accounts of the organization one run covers, and why each other account is not.
 *
 * - `accounts` given: those, checked against ListAccounts (an id the organization does not have is
 *   reported, not planned).
 * - `includeOus` given: every account under them at any depth, walked with ListChildren (OUs) and
 *   ListAccountsForParent, breadth first, without recursion and without a depth limit; an OU seen
 *   twice in one walk is not walked again, so the walk ends whatever the tree looks like.
 * - otherwise: ListAccounts.
 * Then the selection rules of domain/organization.ts: excluded accounts, excluded OUs at any depth
 * (each excluded OU is walked to learn which accounts are under it, unless an include walk already
 * passed through it), `State` ACTIVE, and the account-tag filter (tags read only for the accounts
 * still in the running).
 */
import { OrganizationAccountNotFoundError, OrganizationParentNotFoundError } from '../domain/errors';
import {
  type DiscoveredAccount,
  type MemberAccount,
  type OrganizationSettings,
  selectAccounts,
  type SkippedAccount,
} from '../domain/organization';
import type { OrganizationDirectory } from '../ports';

export type DiscoverySettings = Pick<
  OrganizationSettings,
  'includeOus' | 'excludeOus' | 'accounts' | 'excludeAccounts' | 'accountTags'
>;

export interface AccountDiscovery {
  /** The accounts to plan, by account id. */
  readonly selected: readonly DiscoveredAccount[];
  /** Every other account met (and every listed one not found), with the reason, by account id. */
  readonly skipped: readonly SkippedAccount[];
  /** Included OUs the organization does not have: their accounts (if any) are not covered. */
  readonly missingOus: readonly string[];
}

interface Found {
  readonly account: MemberAccount;
  /** From the walk's start down to the account's direct parent. */
  readonly parents: readonly string[];
}

/** Every account under `start`, at any depth, and the OUs the walk passed through. */
async function walk(
  directory: OrganizationDirectory,
  start: string,
): Promise<{ found: Map<string, Found>; visited: Set<string> }> {
  const found = new Map<string, Found>();
  const visited = new Set<string>();
  const pending: { id: string; path: string[] }[] = [{ id: start, path: [start] }];
  for (let next = pending.shift(); next; next = pending.shift()) {
    if (visited.has(next.id)) continue;
    visited.add(next.id);
    for (const account of await directory.listAccountsForParent(next.id)) {
      found.set(account.id, { account, parents: next.path });
    }
    for (const child of await directory.listChildOus(next.id)) {
      if (!visited.has(child)) pending.push({ id: child, path: [...next.path, child] });
    }
  }
  return { found, visited };
}

/**
 * Keeps the longer of two known ancestries: both end at the account's parent (Organizations is a
 * tree), so the longer one holds the other and reaches higher.
 */
function merge(into: Map<string, Found>, from: Map<string, Found>, onlyKnown: boolean): void {
  for (const [id, entry] of from) {
    const known = into.get(id);
    if (known === undefined ? !onlyKnown : entry.parents.length > known.parents.length) into.set(id, entry);
  }
}

const byAccountId = <T extends { readonly id?: string; readonly accountId?: string }>(a: T, b: T): number =>
  (a.id ?? a.accountId ?? '').localeCompare(b.id ?? b.accountId ?? '');

export async function discoverAccounts(
  directory: OrganizationDirectory,
  settings: DiscoverySettings,
): Promise<AccountDiscovery> {
  const base = new Map<string, Found>();
  const skipped: SkippedAccount[] = [];
  const missingOus: string[] = [];
  const walked = new Set<string>();

  if (settings.includeOus.length > 0) {
    for (const ou of settings.includeOus) {
      try {
        const { found, visited } = await walk(directory, ou);
        merge(base, found, false);
        for (const id of visited) walked.add(id);
      } catch (error) {
        // One included OU gone (deleted, or a typo) leaves the others covered; the caller reports it.
        if (!(error instanceof OrganizationParentNotFoundError)) throw error;
        missingOus.push(ou);
      }
    }
  } else {
    const listed = await directory.listAccounts();
    const wanted = settings.accounts.length > 0 ? new Set(settings.accounts) : undefined;
    for (const account of listed) {
      if (!wanted || wanted.has(account.id)) base.set(account.id, { account, parents: [] });
    }
    for (const id of settings.accounts) {
      if (!base.has(id)) {
        skipped.push({
          accountId: id,
          reason: 'not-in-organization',
          detail: 'listed in accounts, but ListAccounts does not return it',
        });
      }
    }
  }

  // Excluded OUs fail closed: an excluded OU that cannot be walked (gone, or a typo) throws
  // OrganizationParentNotFoundError rather than let its accounts be rotated.
  for (const ou of settings.excludeOus) {
    if (walked.has(ou)) continue; // its accounts already carry it in their ancestry
    const { found } = await walk(directory, ou);
    merge(base, found, true);
  }

  const accounts: DiscoveredAccount[] = [...base.values()].map(({ account, parents }) => ({
    ...account,
    tags: {},
    parents,
  }));
  const screened = selectAccounts(accounts, { ...settings, accountTags: {} });
  skipped.push(...screened.skipped);
  let selected = screened.selected;

  if (Object.keys(settings.accountTags).length > 0) {
    const tagged: DiscoveredAccount[] = [];
    for (const account of selected) {
      try {
        tagged.push({ ...account, tags: await directory.accountTags(account.id) });
      } catch (error) {
        if (!(error instanceof OrganizationAccountNotFoundError)) throw error;
        skipped.push({
          accountId: account.id,
          name: account.name,
          reason: 'not-in-organization',
          detail: 'left the organization while its tags were read',
        });
      }
    }
    const filtered = selectAccounts(tagged, settings);
    selected = filtered.selected;
    skipped.push(...filtered.skipped);
  }

  return {
    selected: [...selected].sort(byAccountId),
    skipped: skipped.sort(byAccountId),
    missingOus,
  };
}
