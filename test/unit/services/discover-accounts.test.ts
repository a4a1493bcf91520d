import {
  AccessDeniedError,
  OrganizationParentNotFoundError,
  OrganizationsNotInUseError,
  ThrottledError,
} from '../../../lambda/domain/errors';
import { discoverAccounts, DiscoverySettings } from '../../../lambda/services/discover-accounts';
import { FakeOrganization } from '../../fakes/organization';

const NONE: DiscoverySettings = {
  includeOus: [],
  excludeOus: [],
  accounts: [],
  excludeAccounts: [],
  accountTags: {},
};

/**
 * root (2 accounts)
 * ├── prod (8)
 * │   └── prod-teams (10)
 * │       └── team-a (10, 2 suspended)
 * │           └── team-a-legacy (10, 1 pending closure)   4 OUs deep
 * └── sandbox (10)
 * 50 accounts; every third one tagged env=prod.
 */
function organization() {
  const org = new FakeOrganization();
  const prod = org.addOu();
  const prodTeams = org.addOu(prod);
  const teamA = org.addOu(prodTeams);
  const legacy = org.addOu(teamA);
  const sandbox = org.addOu();
  const ids: Record<string, string[]> = {};
  let n = 0;
  const add = (name: string, parent: string, count: number, states: Record<number, string> = {}) => {
    ids[name] = [];
    for (let index = 0; index < count; index++) {
      n++;
      ids[name].push(
        org.addAccount(parent, {
          state: states[index] ?? 'ACTIVE',
          tags: n % 3 === 0 ? { env: 'prod' } : { env: 'dev' },
        }),
      );
    }
  };
  add('root', org.rootId, 2);
  add('prod', prod, 8);
  add('prodTeams', prodTeams, 10);
  add('teamA', teamA, 10, { 0: 'SUSPENDED', 1: 'SUSPENDED' });
  add('legacy', legacy, 10, { 9: 'PENDING_CLOSURE' });
  add('sandbox', sandbox, 10);
  return { org, ous: { prod, prodTeams, teamA, legacy, sandbox }, ids };
}

const idsOf = (accounts: readonly { id?: string; accountId?: string }[]) =>
  accounts.map((a) => a.id ?? a.accountId).sort();

test('the fixture: 50 accounts, 3 not active, OUs 4 deep', () => {
  const { org, ous } = organization();
  expect(org.accounts.size).toBe(50);
  expect([...org.accounts.values()].filter((a) => a.state !== 'ACTIVE')).toHaveLength(3);
  expect(org.ous.get(ous.legacy)).toBe(ous.teamA);
});

test('no filters: ListAccounts once, every ACTIVE account, the others named', async () => {
  const { org, ids } = organization();

  const result = await discoverAccounts(org, NONE);

  expect(result.selected).toHaveLength(47);
  expect(result.skipped).toEqual(
    [
      { accountId: ids.teamA![0], reason: 'not-active', detail: 'state SUSPENDED, not ACTIVE' },
      { accountId: ids.teamA![1], reason: 'not-active', detail: 'state SUSPENDED, not ACTIVE' },
      { accountId: ids.legacy![9], reason: 'not-active', detail: 'state PENDING_CLOSURE, not ACTIVE' },
    ].map((entry) => expect.objectContaining(entry) as unknown),
  );
  expect(result.missingOus).toEqual([]);
  expect(org.faults.calls).toEqual(['organizations:ListAccounts']);
});

test('an included OU covers its accounts at every depth below it, and only those', async () => {
  const { org, ous, ids } = organization();

  const result = await discoverAccounts(org, { ...NONE, includeOus: [ous.prod] });

  const expected = [...ids.prod!, ...ids.prodTeams!, ...ids.teamA!.slice(2), ...ids.legacy!.slice(0, 9)];
  expect(idsOf(result.selected)).toEqual(expected.sort());
  expect(idsOf(result.skipped)).toEqual([ids.teamA![0], ids.teamA![1], ids.legacy![9]].sort());
  // Each account's ancestry from the included OU down: the 4-deep one has all four.
  const deep = result.selected.find((a) => a.id === ids.legacy![0]);
  expect(deep?.parents).toEqual([ous.prod, ous.prodTeams, ous.teamA, ous.legacy]);
  // One ListAccountsForParent and one ListChildren per OU walked; no ListAccounts.
  expect(org.faults.count('organizations:ListAccountsForParent')).toBe(4);
  expect(org.faults.count('organizations:ListChildren')).toBe(4);
  expect(org.faults.count('organizations:ListAccounts')).toBe(
    org.faults.count('organizations:ListAccountsForParent'),
  );
});

test('an excluded OU excludes every account below it; an included root covers the rest', async () => {
  const { org, ous, ids } = organization();

  const result = await discoverAccounts(org, { ...NONE, includeOus: [org.rootId], excludeOus: [ous.teamA] });

  const excluded = result.skipped.filter((s) => s.reason === 'excluded-ou');
  expect(idsOf(excluded)).toEqual([...ids.teamA!, ...ids.legacy!].sort());
  expect(excluded.find((s) => s.accountId === ids.legacy![0])?.detail).toBe(
    `under ${ous.teamA}, listed in excludeOus`,
  );
  expect(idsOf(result.selected)).toEqual(
    [...ids.root!, ...ids.prod!, ...ids.prodTeams!, ...ids.sandbox!].sort(),
  );
  // The include walk passed through the excluded OU: it is not walked a second time.
  expect(org.faults.count('organizations:ListChildren')).toBe(6);
});

test('ListAccounts with an excluded OU: that OU is walked to find its accounts at any depth', async () => {
  const { org, ous, ids } = organization();

  const result = await discoverAccounts(org, { ...NONE, excludeOus: [ous.prodTeams] });

  expect(idsOf(result.skipped.filter((s) => s.reason === 'excluded-ou'))).toEqual(
    [...ids.prodTeams!, ...ids.teamA!, ...ids.legacy!].sort(),
  );
  expect(idsOf(result.selected)).toEqual([...ids.root!, ...ids.prod!, ...ids.sandbox!].sort());
});

test('an OU included inside an excluded one stays excluded (the exclusion wins)', async () => {
  const { org, ous, ids } = organization();

  const result = await discoverAccounts(org, { ...NONE, includeOus: [ous.teamA], excludeOus: [ous.prod] });

  expect(result.selected).toEqual([]);
  expect(idsOf(result.skipped)).toEqual([...ids.teamA!, ...ids.legacy!].sort());
  expect(result.skipped.find((s) => s.accountId === ids.legacy![0])).toMatchObject({
    reason: 'excluded-ou',
    detail: `under ${ous.prod}, listed in excludeOus`,
  });
});

test('an explicit list: those accounts, checked against the organization, the unknown one reported', async () => {
  const { org, ous, ids } = organization();

  const result = await discoverAccounts(org, {
    ...NONE,
    accounts: [ids.prod![0]!, ids.sandbox![0]!, ids.teamA![0]!, '999999999999'],
    excludeOus: [ous.sandbox],
  });

  expect(idsOf(result.selected)).toEqual([ids.prod![0]]);
  // By account id.
  expect(result.skipped).toEqual([
    expect.objectContaining({ accountId: ids.teamA![0], reason: 'not-active' }),
    expect.objectContaining({ accountId: ids.sandbox![0], reason: 'excluded-ou' }),
    {
      accountId: '999999999999',
      reason: 'not-in-organization',
      detail: 'listed in accounts, but ListAccounts does not return it',
    },
  ]);
});

test('excluded accounts are named; the tag filter reads tags only for accounts still in the running', async () => {
  const { org, ous, ids } = organization();

  const result = await discoverAccounts(org, {
    ...NONE,
    excludeOus: [ous.sandbox],
    excludeAccounts: [ids.root![0]!],
    accountTags: { env: ['prod'] },
  });

  const active = [...org.accounts.values()].filter(
    (a) => a.state === 'ACTIVE' && a.parentId !== ous.sandbox && a.id !== ids.root![0],
  );
  expect(idsOf(result.selected)).toEqual(
    active
      .filter((a) => a.tags.env === 'prod')
      .map((a) => a.id)
      .sort(),
  );
  expect(result.selected.every((a) => a.tags.env === 'prod')).toBe(true);
  expect(result.skipped.find((s) => s.accountId === ids.root![0])?.reason).toBe('excluded-account');
  const untagged = result.skipped.filter((s) => s.reason === 'tags-not-matched');
  expect(untagged).toHaveLength(active.length - result.selected.length);
  expect(untagged[0]?.detail).toBe('tag env is "dev", not one of "prod"');
  // 50 accounts: 10 excluded by OU, 1 by id, 3 not active: tags read for the 36 others only.
  expect(org.faults.count('organizations:ListTagsForResource')).toBe(36);
});

test('a cycle in the tree (which Organizations never has) does not loop: each OU is walked once', async () => {
  const { org, ous, ids } = organization();
  org.extraChildren.set(ous.legacy, [ous.prod, ous.teamA]);

  const result = await discoverAccounts(org, { ...NONE, includeOus: [ous.prod] });

  expect(result.selected).toHaveLength(35);
  expect(result.selected.find((a) => a.id === ids.legacy![0])?.parents).toHaveLength(4);
  expect(org.faults.count('organizations:ListChildren')).toBe(4);
});

test('a deep chain of OUs is walked to the bottom (no depth limit, no recursion)', async () => {
  const org = new FakeOrganization();
  let parent = org.rootId;
  for (let depth = 0; depth < 2000; depth++) parent = org.addOu(parent);
  const bottom = org.addAccount(parent);

  const result = await discoverAccounts(org, { ...NONE, includeOus: [org.rootId] });

  expect(idsOf(result.selected)).toEqual([bottom]);
  expect(result.selected[0]?.parents).toHaveLength(2001);
});

test('an included OU the organization does not have is reported; the other OUs are covered', async () => {
  const { org, ous, ids } = organization();

  const result = await discoverAccounts(org, { ...NONE, includeOus: ['ou-ab12-99999999', ous.sandbox] });

  expect(result.missingOus).toEqual(['ou-ab12-99999999']);
  expect(idsOf(result.selected)).toEqual([...ids.sandbox!].sort());
});

test('an excluded OU the organization does not have fails discovery (never rotate what was meant excluded)', async () => {
  const { org } = organization();

  await expect(discoverAccounts(org, { ...NONE, excludeOus: ['ou-ab12-99999999'] })).rejects.toBeInstanceOf(
    OrganizationParentNotFoundError,
  );
});

test.each([
  ['access denied', 'access-denied', AccessDeniedError],
  ['throttled', 'throttle', ThrottledError],
] as const)('%s while walking fails discovery with the named error', async (_, kind, named) => {
  const { org, ous } = organization();
  org.faults.inject('organizations:ListChildren', kind);

  await expect(discoverAccounts(org, { ...NONE, includeOus: [ous.prod] })).rejects.toBeInstanceOf(named);
});

test('outside an organization: OrganizationsNotInUseError', async () => {
  const { org } = organization();
  org.inUse = false;

  await expect(discoverAccounts(org, NONE)).rejects.toBeInstanceOf(OrganizationsNotInUseError);
});
