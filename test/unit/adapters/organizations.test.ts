import {
  AccessDeniedException,
  Account,
  AccountState,
  AccountStatus,
  AWSOrganizationsNotInUseException,
  ListAccountsCommand,
  ListAccountsForParentCommand,
  ListChildrenCommand,
  ListTagsForResourceCommand,
  OrganizationsClient,
  ParentNotFoundException,
  TargetNotFoundException,
  TooManyRequestsException,
} from '@aws-sdk/client-organizations';
import { mockClient } from 'aws-sdk-client-mock';
import { OrganizationsAdapter } from '../../../lambda/adapters/organizations';
import {
  AccessDeniedError,
  OrganizationAccountNotFoundError,
  OrganizationParentNotFoundError,
  OrganizationsNotInUseError,
  ThrottledError,
} from '../../../lambda/domain/errors';
import { rejectionOf } from './sdk-errors';

const organizations = mockClient(OrganizationsClient);

function adapter(): OrganizationsAdapter {
  // One attempt and static credentials: no retries slow the error tests, nothing reaches AWS.
  return new OrganizationsAdapter(
    new OrganizationsClient({
      region: 'us-east-1',
      maxAttempts: 1,
      credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
    }),
  );
}

const OU = 'ou-ab12-cdef3456';
const account = (id: string, state?: AccountState, name = `name-${id}`): Account => ({
  Id: id,
  Name: name,
  Arn: `arn:aws:organizations::000000000000:account/o-abcdefghij/${id}`,
  Email: `${id}@example.com`,
  // Status is being retired; the adapter must read State. Set to the opposite to prove which is read.
  Status: state === 'ACTIVE' ? AccountStatus.SUSPENDED : AccountStatus.ACTIVE,
  ...(state ? { State: state } : {}),
});

/**
 * Answers each call with the page for the token it carries, and records the tokens sent. (The SDK's
 * paginators reuse one input object, so the recorded calls' inputs all show the last token.)
 */
function pages<T extends { NextToken?: string }>(byToken: Record<string, T>, sent: (string | undefined)[]) {
  return (input: { NextToken?: string }): T => {
    sent.push(input.NextToken);
    const page = byToken[input.NextToken ?? ''];
    if (!page) throw new Error(`no page for token ${String(input.NextToken)}`);
    return page;
  };
}

beforeEach(() => organizations.reset());
afterAll(() => organizations.restore());

describe('listAccounts', () => {
  test('follows every page, an empty page with a NextToken too, and reads State (not Status)', async () => {
    const sent: (string | undefined)[] = [];
    organizations.on(ListAccountsCommand).callsFake(
      pages(
        {
          '': { Accounts: [account('000000000001', 'ACTIVE')], NextToken: 't1' },
          t1: { Accounts: [], NextToken: 't2' },
          t2: { NextToken: 't3' },
          t3: { Accounts: [account('000000000002', 'SUSPENDED'), account('000000000003')] },
        },
        sent,
      ),
    );

    const accounts = await adapter().listAccounts();

    expect(accounts).toEqual([
      { id: '000000000001', name: 'name-000000000001', state: 'ACTIVE' },
      { id: '000000000002', name: 'name-000000000002', state: 'SUSPENDED' },
      // No State at all: not taken for active.
      { id: '000000000003', name: 'name-000000000003', state: 'UNKNOWN' },
    ]);
    expect(sent).toEqual([undefined, 't1', 't2', 't3']);
  });

  test.each<[string, Error, new (...args: never[]) => Error]>([
    [
      'AWSOrganizationsNotInUseException',
      new AWSOrganizationsNotInUseException({ message: 'not in an organization', $metadata: {} }),
      OrganizationsNotInUseError,
    ],
    [
      'AccessDeniedException',
      new AccessDeniedException({ message: 'not authorized', $metadata: {} }),
      AccessDeniedError,
    ],
    [
      'TooManyRequestsException',
      new TooManyRequestsException({ message: 'rate exceeded', $metadata: {} }),
      ThrottledError,
    ],
  ])('%s is %p', async (name, sdk, named) => {
    organizations.on(ListAccountsCommand).rejects(sdk);

    const error = await rejectionOf(() => adapter().listAccounts());

    expect(error).toBeInstanceOf(named);
    expect((error as Error).message).toContain(`organizations:ListAccounts: ${name}`);
    expect((error as Error).cause).toBe(sdk);
  });

  test('a throttled page after a first one fails the whole list (no partial inventory)', async () => {
    organizations
      .on(ListAccountsCommand)
      .resolvesOnce({ Accounts: [account('000000000001', 'ACTIVE')], NextToken: 't1' })
      .rejectsOnce(new TooManyRequestsException({ message: 'rate exceeded', $metadata: {} }));

    const error = await rejectionOf(() => adapter().listAccounts());

    expect(error).toBeInstanceOf(ThrottledError);
    expect((error as ThrottledError).retryable).toBe(true);
  });
});

describe('listChildOus', () => {
  test('asks for OUs only and follows every page, an empty one with a NextToken too', async () => {
    const sent: (string | undefined)[] = [];
    organizations.on(ListChildrenCommand, { ParentId: 'r-ab12', ChildType: 'ORGANIZATIONAL_UNIT' }).callsFake(
      pages(
        {
          '': { Children: [{ Id: 'ou-ab12-00000001', Type: 'ORGANIZATIONAL_UNIT' }], NextToken: 'a' },
          a: { Children: [], NextToken: 'b' },
          b: { Children: [{ Id: 'ou-ab12-00000002', Type: 'ORGANIZATIONAL_UNIT' }] },
        },
        sent,
      ),
    );

    await expect(adapter().listChildOus('r-ab12')).resolves.toEqual(['ou-ab12-00000001', 'ou-ab12-00000002']);

    expect(sent).toEqual([undefined, 'a', 'b']);
  });

  test('ParentNotFoundException is OrganizationParentNotFoundError naming the parent', async () => {
    organizations
      .on(ListChildrenCommand)
      .rejects(new ParentNotFoundException({ message: 'no parent', $metadata: {} }));

    const error = await rejectionOf(() => adapter().listChildOus(OU));

    expect(error).toBeInstanceOf(OrganizationParentNotFoundError);
    expect((error as Error).message).toContain(`${OU} is not a root or OU of the organization`);
  });
});

describe('listAccountsForParent', () => {
  test('follows every page, an empty one with a NextToken too', async () => {
    const sent: (string | undefined)[] = [];
    organizations.on(ListAccountsForParentCommand, { ParentId: OU }).callsFake(
      pages(
        {
          '': { Accounts: [], NextToken: 'x' },
          x: { Accounts: [account('000000000009', 'ACTIVE', 'prod')] },
        },
        sent,
      ),
    );

    await expect(adapter().listAccountsForParent(OU)).resolves.toEqual([
      { id: '000000000009', name: 'prod', state: 'ACTIVE' },
    ]);
    expect(sent).toEqual([undefined, 'x']);
  });

  test('ParentNotFoundException is OrganizationParentNotFoundError; access denied is AccessDeniedError', async () => {
    organizations
      .on(ListAccountsForParentCommand)
      .rejectsOnce(new ParentNotFoundException({ message: 'no parent', $metadata: {} }))
      .rejectsOnce(new AccessDeniedException({ message: 'denied', $metadata: {} }));

    await expect(adapter().listAccountsForParent(OU)).rejects.toBeInstanceOf(OrganizationParentNotFoundError);
    await expect(adapter().listAccountsForParent(OU)).rejects.toBeInstanceOf(AccessDeniedError);
  });
});

describe('accountTags', () => {
  test('every page of tags, empty values kept', async () => {
    const sent: (string | undefined)[] = [];
    organizations.on(ListTagsForResourceCommand, { ResourceId: '000000000001' }).callsFake(
      pages(
        {
          '': { Tags: [{ Key: 'env', Value: 'prod' }], NextToken: 'n' },
          n: { Tags: [], NextToken: 'm' },
          m: { Tags: [{ Key: 'reviewed', Value: '' }] },
        },
        sent,
      ),
    );

    await expect(adapter().accountTags('000000000001')).resolves.toEqual({ env: 'prod', reviewed: '' });
    expect(sent).toEqual([undefined, 'n', 'm']);
  });

  test('TargetNotFoundException is OrganizationAccountNotFoundError naming the account', async () => {
    organizations
      .on(ListTagsForResourceCommand)
      .rejects(new TargetNotFoundException({ message: 'no target', $metadata: {} }));

    const error = await rejectionOf(() => adapter().accountTags('000000000001'));

    expect(error).toBeInstanceOf(OrganizationAccountNotFoundError);
    expect((error as Error).message).toContain('account 000000000001 is not in the organization');
  });
});
