/**
 * OrganizationsAdapter and discoverAccounts (production code) against the emulator's Organizations.
 *
 * Where moto differs from AWS (each pinned below where a test meets it):
 * - CreateAccount completes at once (AWS answers IN_PROGRESS and creates the account asynchronously).
 * - ListChildren answers every child in one page whatever MaxResults says; ListAccounts and
 *   ListAccountsForParent do page. The empty-page-with-a-token case is covered by the adapter's unit test.
 * - CloseAccount makes the account SUSPENDED at once (AWS passes through PENDING_CLOSURE).
 * - ListAccounts outside an organization answers an empty list (AWS: AWSOrganizationsNotInUseException).
 */
import {
  CloseAccountCommand,
  CreateAccountCommand,
  CreateOrganizationalUnitCommand,
  CreateOrganizationCommand,
  ListAccountsCommand,
  ListChildrenCommand,
  ListRootsCommand,
  MoveAccountCommand,
  OrganizationsClient,
  TagResourceCommand,
} from '@aws-sdk/client-organizations';
import { OrganizationsAdapter } from '../../../lambda/adapters/organizations';
import { OrganizationParentNotFoundError } from '../../../lambda/domain/errors';
import { resolveOrganizationSettings } from '../../../lambda/domain/organization';
import { discoverAccounts } from '../../../lambda/services/discover-accounts';
import { ACCOUNT, rejectionOf } from './fixtures';

const client = new OrganizationsClient({});
const adapter = new OrganizationsAdapter();

afterAll(() => client.destroy());

async function createOu(parentId: string, name: string): Promise<string> {
  const response = await client.send(new CreateOrganizationalUnitCommand({ ParentId: parentId, Name: name }));
  return response.OrganizationalUnit!.Id!;
}

async function createAccount(name: string, parentId: string, rootId: string): Promise<string> {
  const created = await client.send(
    new CreateAccountCommand({ AccountName: name, Email: `${name}@example.com` }),
  );
  // moto completes the creation at once; AWS would have us poll DescribeCreateAccountStatus.
  expect(created.CreateAccountStatus?.State).toBe('SUCCEEDED');
  const accountId = created.CreateAccountStatus!.AccountId!;
  await client.send(
    new MoveAccountCommand({ AccountId: accountId, SourceParentId: rootId, DestinationParentId: parentId }),
  );
  return accountId;
}

test('outside an organization: moto lists no accounts where AWS refuses', async () => {
  // AWS answers AWSOrganizationsNotInUseException (OrganizationsNotInUseError, see the adapter's unit
  // test); moto answers an empty list. Pinned, so that a moto that starts refusing shows up here.
  await expect(adapter.listAccounts()).resolves.toEqual([]);
});

describe('an organization of 2 nested OUs, 3 member accounts and an excluded OU', () => {
  let rootId: string;
  let workloads: string;
  let team: string;
  let sandbox: string;
  const accounts: Record<string, string> = {};

  beforeAll(async () => {
    await client.send(new CreateOrganizationCommand({ FeatureSet: 'ALL' }));
    rootId = (await client.send(new ListRootsCommand({}))).Roots![0]!.Id!;
    workloads = await createOu(rootId, 'workloads');
    team = await createOu(workloads, 'team');
    sandbox = await createOu(rootId, 'sandbox');
    accounts.app = await createAccount('app', workloads, rootId);
    accounts.teamOne = await createAccount('team-one', team, rootId);
    accounts.teamTwo = await createAccount('team-two', team, rootId);
    accounts.play = await createAccount('play', sandbox, rootId);
    accounts.closed = await createAccount('closed', team, rootId);
    await client.send(new CloseAccountCommand({ AccountId: accounts.closed }));
    await client.send(
      new TagResourceCommand({ ResourceId: accounts.teamTwo, Tags: [{ Key: 'rotation', Value: 'off' }] }),
    );
    await client.send(
      new TagResourceCommand({ ResourceId: accounts.teamOne, Tags: [{ Key: 'rotation', Value: 'on' }] }),
    );
  });

  test('the ids moto issues match the Organizations API patterns the settings validate', () => {
    expect(() => resolveOrganizationSettings({ includeOus: [rootId, workloads, team] })).not.toThrow();
    expect(Object.values(accounts).every((id) => /^\d{12}$/.test(id))).toBe(true);
  });

  test('the adapter lists accounts with their State, child OUs and accounts of a parent, and tags', async () => {
    const listed = await adapter.listAccounts();

    expect(listed).toEqual(
      expect.arrayContaining([
        { id: ACCOUNT, name: expect.any(String) as string, state: 'ACTIVE' },
        { id: accounts.app, name: 'app', state: 'ACTIVE' },
        { id: accounts.closed, name: 'closed', state: 'SUSPENDED' },
      ]),
    );
    expect(listed).toHaveLength(6); // the management account and 5 created
    await expect(adapter.listChildOus(rootId)).resolves.toEqual(expect.arrayContaining([workloads, sandbox]));
    await expect(adapter.listChildOus(workloads)).resolves.toEqual([team]);
    await expect(adapter.listChildOus(team)).resolves.toEqual([]);
    expect((await adapter.listAccountsForParent(team)).map((a) => a.id).sort()).toEqual(
      [accounts.teamOne, accounts.teamTwo, accounts.closed].sort(),
    );
    await expect(adapter.accountTags(accounts.teamOne!)).resolves.toEqual({ rotation: 'on' });
    await expect(adapter.accountTags(accounts.app!)).resolves.toEqual({});
    // moto answers ListChildren in one page whatever MaxResults says (AWS pages it).
    const page = await client.send(
      new ListChildrenCommand({ ParentId: rootId, ChildType: 'ORGANIZATIONAL_UNIT', MaxResults: 1 }),
    );
    expect(page.Children!.length).toBe(2);
  });

  test('ListAccounts pages are all followed', async () => {
    // moto pages ListAccounts: with MaxResults 2, the 6 accounts take 3 pages.
    const first = await client.send(new ListAccountsCommand({ MaxResults: 2 }));
    expect(first.Accounts).toHaveLength(2);
    expect(first.NextToken).toBeDefined();

    expect((await adapter.listAccounts()).map((a) => a.id)).toHaveLength(6);
  });

  test('discovery under the outer OU finds the 3 members 2 OUs deep, never the excluded OU or the closed account', async () => {
    const settings = resolveOrganizationSettings({ includeOus: [workloads], excludeOus: [sandbox] });

    const result = await discoverAccounts(adapter, settings);

    expect(result.selected.map((a) => a.id)).toEqual(
      [accounts.app, accounts.teamOne, accounts.teamTwo].sort(),
    );
    expect(result.selected.find((a) => a.id === accounts.teamOne)?.parents).toEqual([workloads, team]);
    expect(result.skipped).toEqual([
      expect.objectContaining({ accountId: accounts.closed, reason: 'not-active' }),
    ]);
    expect(result.missingOus).toEqual([]);
  });

  test('discovery over the whole organization with the excluded OU, an excluded account and a tag filter', async () => {
    const settings = resolveOrganizationSettings({
      excludeOus: [sandbox],
      excludeAccounts: [ACCOUNT],
      accountTags: { rotation: ['on'] },
    });

    const result = await discoverAccounts(adapter, settings);

    expect(result.selected.map((a) => a.id)).toEqual([accounts.teamOne]);
    const reasons = Object.fromEntries(result.skipped.map((s) => [s.accountId, s.reason]));
    expect(reasons).toEqual({
      [ACCOUNT]: 'excluded-account',
      [accounts.play!]: 'excluded-ou',
      [accounts.closed!]: 'not-active',
      [accounts.app!]: 'tags-not-matched',
      [accounts.teamTwo!]: 'tags-not-matched',
    });
  });

  test('an excluded OU that does not exist fails discovery with OrganizationParentNotFoundError', async () => {
    const settings = resolveOrganizationSettings({ excludeOus: ['ou-zzzz-99999999'] });

    const error = await rejectionOf(discoverAccounts(adapter, settings));

    expect(error).toBeInstanceOf(OrganizationParentNotFoundError);
  });
});
