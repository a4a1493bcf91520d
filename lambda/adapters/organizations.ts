/** AWS Organizations over the AWS SDK v3: the OrganizationDirectory port (read-only). */
import {
  Account,
  OrganizationsClient,
  paginateListAccounts,
  paginateListAccountsForParent,
  paginateListChildren,
  paginateListTagsForResource,
} from '@aws-sdk/client-organizations';
import {
  KeyRotationError,
  OrganizationAccountNotFoundError,
  OrganizationParentNotFoundError,
  OrganizationsNotInUseError,
} from '../domain/errors';
import type { MemberAccount } from '../domain/organization';
import type { OrganizationDirectory } from '../ports';
import { call } from './aws-errors';
import { SDK_CLIENT_CONFIG } from './sdk-config';

type Specific = Record<string, (message: string) => KeyRotationError>;

// AccessDeniedException and TooManyRequestsException need nothing here: the generic mapping makes
// them AccessDeniedError and ThrottledError (retryable) after the SDK's own retries.
const notInUse: Specific = {
  AWSOrganizationsNotInUseException: (message) =>
    new OrganizationsNotInUseError(`the account is not a member of an organization (${message})`),
};
const noSuchParent = (parentId: string): Specific => ({
  ...notInUse,
  ParentNotFoundException: (message) =>
    new OrganizationParentNotFoundError(`${parentId} is not a root or OU of the organization (${message})`),
});
const noSuchAccount = (accountId: string): Specific => ({
  ...notInUse,
  TargetNotFoundException: (message) =>
    new OrganizationAccountNotFoundError(`account ${accountId} is not in the organization (${message})`),
  AccountNotFoundException: (message) =>
    new OrganizationAccountNotFoundError(`account ${accountId} is not in the organization (${message})`),
});

function memberAccount(account: Account): MemberAccount {
  // State, not Status: Organizations is retiring Status (ACTIVE | SUSPENDED | PENDING_CLOSURE) in
  // favour of State. An account without one is not treated as active.
  return { id: account.Id!, name: account.Name ?? '', state: account.State ?? 'UNKNOWN' };
}

export class OrganizationsAdapter implements OrganizationDirectory {
  constructor(private readonly client: OrganizationsClient = new OrganizationsClient(SDK_CLIENT_CONFIG)) {}

  // The SDK paginators request the next page while NextToken is set, whatever the page held:
  // Organizations' List* calls "can occasionally return an empty set of results even when there are
  // more results available" (API reference).

  async listAccounts(): Promise<MemberAccount[]> {
    const accounts: MemberAccount[] = [];
    await call(
      'organizations:ListAccounts',
      async () => {
        for await (const page of paginateListAccounts({ client: this.client }, {})) {
          for (const account of page.Accounts ?? []) accounts.push(memberAccount(account));
        }
      },
      notInUse,
    );
    return accounts;
  }

  async listChildOus(parentId: string): Promise<string[]> {
    const ous: string[] = [];
    await call(
      'organizations:ListChildren',
      async () => {
        for await (const page of paginateListChildren(
          { client: this.client },
          { ParentId: parentId, ChildType: 'ORGANIZATIONAL_UNIT' },
        )) {
          for (const child of page.Children ?? []) if (child.Id) ous.push(child.Id);
        }
      },
      noSuchParent(parentId),
    );
    return ous;
  }

  async listAccountsForParent(parentId: string): Promise<MemberAccount[]> {
    const accounts: MemberAccount[] = [];
    await call(
      'organizations:ListAccountsForParent',
      async () => {
        for await (const page of paginateListAccountsForParent(
          { client: this.client },
          { ParentId: parentId },
        )) {
          for (const account of page.Accounts ?? []) accounts.push(memberAccount(account));
        }
      },
      noSuchParent(parentId),
    );
    return accounts;
  }

  async accountTags(accountId: string): Promise<Record<string, string>> {
    const tags: Record<string, string> = {};
    await call(
      'organizations:ListTagsForResource',
      async () => {
        for await (const page of paginateListTagsForResource(
          { client: this.client },
          { ResourceId: accountId },
        )) {
          for (const tag of page.Tags ?? []) if (tag.Key !== undefined) tags[tag.Key] = tag.Value ?? '';
        }
      },
      noSuchAccount(accountId),
    );
    return tags;
  }
}
