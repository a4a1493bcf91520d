/**
 * AWS Organizations in memory (the OrganizationDirectory port): one root, OUs nested to any depth,
 * accounts with a `State` and tags, and the errors Organizations answers for an unknown parent or
 * account. Calls go through Faults, so tests count them and inject throttling or access denied.
 */
import {
  OrganizationAccountNotFoundError,
  OrganizationParentNotFoundError,
  OrganizationsNotInUseError,
} from '../../lambda/domain/errors';
import type { MemberAccount } from '../../lambda/domain/organization';
import type { OrganizationDirectory } from '../../lambda/ports';
import { Faults } from './faults';

export interface FakeOrgAccount {
  id: string;
  name: string;
  state: string;
  parentId: string;
  tags: Record<string, string>;
}

export class FakeOrganization implements OrganizationDirectory {
  readonly rootId = 'r-ab12';
  /** OU id → its parent's id. */
  readonly ous = new Map<string, string>();
  readonly accounts = new Map<string, FakeOrgAccount>();
  /** Extra child links (parent → OU ids) that Organizations would never have: for cycle tests. */
  readonly extraChildren = new Map<string, string[]>();
  /** False: the caller's account is in no organization (every call is refused). */
  inUse = true;
  private ouCount = 0;
  private accountCount = 0;

  constructor(readonly faults = new Faults()) {}

  /** Creates an OU under `parentId` (the root by default) and returns its id. */
  addOu(parentId: string = this.rootId): string {
    this.requireParent(parentId);
    this.ouCount++;
    const id = `ou-ab12-${String(this.ouCount).padStart(8, '0')}`;
    this.ous.set(id, parentId);
    return id;
  }

  /** Creates an account under `parentId` and returns its id. */
  addAccount(
    parentId: string = this.rootId,
    options: { state?: string; tags?: Record<string, string>; name?: string } = {},
  ): string {
    this.requireParent(parentId);
    this.accountCount++;
    const id = String(100000000000 + this.accountCount);
    this.accounts.set(id, {
      id,
      name: options.name ?? `account-${this.accountCount}`,
      state: options.state ?? 'ACTIVE',
      parentId,
      tags: { ...options.tags },
    });
    return id;
  }

  private requireParent(parentId: string): void {
    if (parentId !== this.rootId && !this.ous.has(parentId)) {
      throw new OrganizationParentNotFoundError(`${parentId} is not a root or OU of the organization`);
    }
  }

  private requireInUse(op: string): void {
    if (!this.inUse)
      throw new OrganizationsNotInUseError(`${op}: the account is not a member of an organization`);
  }

  private member(account: FakeOrgAccount): MemberAccount {
    return { id: account.id, name: account.name, state: account.state };
  }

  listAccounts(): Promise<MemberAccount[]> {
    return this.faults.around('organizations:ListAccounts', () => {
      this.requireInUse('ListAccounts');
      return [...this.accounts.values()].map((account) => this.member(account));
    });
  }

  listChildOus(parentId: string): Promise<string[]> {
    return this.faults.around('organizations:ListChildren', () => {
      this.requireInUse('ListChildren');
      this.requireParent(parentId);
      const children = [...this.ous].filter(([, parent]) => parent === parentId).map(([id]) => id);
      return [...children, ...(this.extraChildren.get(parentId) ?? [])];
    });
  }

  listAccountsForParent(parentId: string): Promise<MemberAccount[]> {
    return this.faults.around('organizations:ListAccountsForParent', () => {
      this.requireInUse('ListAccountsForParent');
      this.requireParent(parentId);
      return [...this.accounts.values()]
        .filter((account) => account.parentId === parentId)
        .map((account) => this.member(account));
    });
  }

  accountTags(accountId: string): Promise<Record<string, string>> {
    return this.faults.around('organizations:ListTagsForResource', () => {
      this.requireInUse('ListTagsForResource');
      const account = this.accounts.get(accountId);
      if (!account)
        throw new OrganizationAccountNotFoundError(`account ${accountId} is not in the organization`);
      return { ...account.tags };
    });
  }
}
