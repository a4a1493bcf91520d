import { ConfigError } from '../../../lambda/domain/errors';
import {
  DEFAULT_ORGANIZATION_SETTINGS,
  DiscoveredAccount,
  resolveOrganizationSettings,
  SelectionSettings,
  selectAccounts,
  skipReason,
} from '../../../lambda/domain/organization';

function problemsOf(input: unknown): readonly string[] {
  try {
    resolveOrganizationSettings(input);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('resolveOrganizationSettings', () => {
  test('no settings: the defaults (the member role, no filters, SELF, 10 accounts at a time)', () => {
    expect(resolveOrganizationSettings({})).toEqual({
      memberRoleName: 'iam-key-rotation-member',
      includeOus: [],
      excludeOus: [],
      accounts: [],
      excludeAccounts: [],
      accountTags: {},
      callAs: 'SELF',
      planConcurrency: 10,
    });
    expect(resolveOrganizationSettings()).toEqual(DEFAULT_ORGANIZATION_SETTINGS);
  });

  test('every setting given is kept; a tag value alone becomes a list; repeated ids are dropped', () => {
    expect(
      resolveOrganizationSettings({
        memberRoleName: 'key-rotation@member',
        includeOus: ['ou-ab12-cdef3456', 'r-ab12', 'ou-ab12-cdef3456'],
        excludeOus: ['ou-0000-11111111111111111111111111111111'],
        excludeAccounts: ['000000000001'],
        accountTags: { environment: 'prod', team: ['a', 'b', 'a'], reviewed: [] },
        callAs: 'DELEGATED_ADMIN',
        planConcurrency: 1000,
      }),
    ).toEqual({
      memberRoleName: 'key-rotation@member',
      includeOus: ['ou-ab12-cdef3456', 'r-ab12'],
      excludeOus: ['ou-0000-11111111111111111111111111111111'],
      accounts: [],
      excludeAccounts: ['000000000001'],
      accountTags: { environment: ['prod'], team: ['a', 'b'], reviewed: [] },
      callAs: 'DELEGATED_ADMIN',
      planConcurrency: 1000,
    });
  });

  test.each<[string, Record<string, unknown>, string]>([
    ['misspelt key', { includeOu: [] }, 'organization.includeOu is not a setting: did you mean includeOus?'],
    [
      'key in another case',
      { MemberRoleName: 'x' },
      'organization.MemberRoleName is not a setting: did you mean memberRoleName?',
    ],
    [
      'unknown key',
      { region: 'eu-west-1' },
      'organization.region is not a setting; the settings are memberRoleName, includeOus',
    ],
    [
      'OU id without its root part',
      { includeOus: ['ou-cdef3456'] },
      'organization.includeOus entry "ou-cdef3456" is not valid: expected an id such as "ou-ab12-cdef3456" (an OU) or "r-ab12" (a root)',
    ],
    [
      'OU id in capitals',
      { excludeOus: ['ou-AB12-CDEF3456'] },
      'organization.excludeOus entry "ou-AB12-CDEF3456" is not valid',
    ],
    [
      'OU name instead of id',
      { includeOus: ['Production'] },
      'organization.includeOus entry "Production" is not valid',
    ],
    ['root id too short', { includeOus: ['r-ab1'] }, 'organization.includeOus entry "r-ab1" is not valid'],
    [
      'OU list not a list',
      { includeOus: 'ou-ab12-cdef3456' },
      'organization.includeOus must be a list such as ["ou-ab12-cdef3456"',
    ],
    [
      'account id of 11 digits',
      { accounts: ['12345678901'] },
      'organization.accounts entry "12345678901" is not valid: expected an id such as "123456789012" (12 digits)',
    ],
    [
      'account id as a number',
      { excludeAccounts: [12345678901] },
      'organization.excludeAccounts entry 12345678901 must be written as a string ("012345678901"?)',
    ],
    [
      'role name with a slash',
      { memberRoleName: 'team/member' },
      'organization.memberRoleName must be an IAM role name',
    ],
    [
      'role name too long',
      { memberRoleName: 'r'.repeat(65) },
      'organization.memberRoleName must be an IAM role name',
    ],
    [
      'callAs misspelt',
      { callAs: 'delegated_admin' },
      'organization.callAs must be "SELF" (the management account) or "DELEGATED_ADMIN" (got "delegated_admin": did you mean "DELEGATED_ADMIN"?)',
    ],
    [
      'planConcurrency 1',
      { planConcurrency: 1 },
      'organization.planConcurrency must be a whole number from 2 to 1000',
    ],
    [
      'planConcurrency 1001',
      { planConcurrency: 1001 },
      'organization.planConcurrency must be a whole number from 2 to 1000',
    ],
    ['planConcurrency 2.5', { planConcurrency: 2.5 }, 'organization.planConcurrency must be a whole number'],
    [
      'tag filter as a list',
      { accountTags: ['env'] },
      'organization.accountTags must be an object of tag key to value(s)',
    ],
    [
      'aws: tag key',
      { accountTags: { 'aws:x': 'y' } },
      'organization.accountTags key "aws:x" is not an Organizations tag key',
    ],
    [
      'tag value a number',
      { accountTags: { env: 1 } },
      'organization.accountTags.env must be a tag value or a list of them',
    ],
    [
      'accounts and includeOus',
      { accounts: ['123456789012'], includeOus: ['r-ab12'] },
      'organization.accounts replaces discovery, so includeOus does not apply',
    ],
    [
      'OU included and excluded',
      { includeOus: ['ou-ab12-cdef3456'], excludeOus: ['ou-ab12-cdef3456'] },
      'organization: ou-ab12-cdef3456 is in both includeOus and excludeOus',
    ],
    [
      'account listed and excluded',
      { accounts: ['123456789012'], excludeAccounts: ['123456789012'] },
      'organization: account 123456789012 is in both accounts and excludeAccounts',
    ],
    [
      'root excluded',
      { excludeOus: ['r-ab12'] },
      'organization.excludeOus names the root r-ab12, which excludes every account',
    ],
  ])('%s: a named problem', (_, input, expected) => {
    const problems = problemsOf(input);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(expected);
  });

  test('every problem is listed at once', () => {
    expect(problemsOf({ incldeOus: [], accounts: ['1'], planConcurrency: 0 })).toHaveLength(3);
  });

  test('not an object: named', () => {
    expect(problemsOf(['r-ab12'])).toEqual([
      'organization must be an object of settings such as {"includeOus": ["ou-ab12-cdef3456"]} (got ["r-ab12"])',
    ]);
  });
});

describe('selectAccounts', () => {
  const OU_PROD = 'ou-ab12-11111111';
  const OU_TEAM = 'ou-ab12-22222222';
  const OU_SANDBOX = 'ou-ab12-33333333';
  const NONE: SelectionSettings = { includeOus: [], excludeOus: [], excludeAccounts: [], accountTags: {} };

  function account(overrides: Partial<DiscoveredAccount> = {}): DiscoveredAccount {
    return {
      id: '111111111111',
      name: 'workload',
      state: 'ACTIVE',
      tags: {},
      parents: ['r-ab12', OU_PROD, OU_TEAM],
      ...overrides,
    };
  }

  test.each<[string, Partial<DiscoveredAccount>, Partial<SelectionSettings>, string | undefined, string?]>([
    ['active, no filters', {}, {}, undefined],
    [
      'account excluded',
      {},
      { excludeAccounts: ['111111111111'] },
      'excluded-account',
      'listed in excludeAccounts',
    ],
    [
      'direct parent excluded',
      {},
      { excludeOus: [OU_TEAM] },
      'excluded-ou',
      `under ${OU_TEAM}, listed in excludeOus`,
    ],
    [
      'OU excluded two levels up',
      {},
      { excludeOus: [OU_PROD] },
      'excluded-ou',
      `under ${OU_PROD}, listed in excludeOus`,
    ],
    [
      'exclusion wins over an inclusion below it',
      {},
      { includeOus: [OU_TEAM], excludeOus: [OU_PROD] },
      'excluded-ou',
    ],
    ['another OU excluded', {}, { excludeOus: [OU_SANDBOX] }, undefined],
    ['included at any depth', {}, { includeOus: [OU_PROD] }, undefined],
    [
      'outside the included OUs',
      {},
      { includeOus: [OU_SANDBOX] },
      'outside-included-ous',
      `not under any of ${OU_SANDBOX}`,
    ],
    ['ancestry unknown and OUs included', { parents: [] }, { includeOus: [OU_PROD] }, 'outside-included-ous'],
    ['suspended', { state: 'SUSPENDED' }, {}, 'not-active', 'state SUSPENDED, not ACTIVE'],
    ['pending closure', { state: 'PENDING_CLOSURE' }, {}, 'not-active'],
    ['state unknown', { state: 'UNKNOWN' }, {}, 'not-active'],
    [
      'excluded and suspended: the exclusion is named',
      { state: 'SUSPENDED' },
      { excludeAccounts: ['111111111111'] },
      'excluded-account',
    ],
    [
      'tag present with a wanted value',
      { tags: { env: 'prod' } },
      { accountTags: { env: ['prod', 'stage'] } },
      undefined,
    ],
    ['tag present, any value', { tags: { env: '' } }, { accountTags: { env: [] } }, undefined],
    ['tag missing', { tags: {} }, { accountTags: { env: [] } }, 'tags-not-matched', 'no tag env'],
    [
      'tag with another value',
      { tags: { env: 'dev' } },
      { accountTags: { env: ['prod'] } },
      'tags-not-matched',
      'tag env is "dev", not one of "prod"',
    ],
    [
      'every tag must match',
      { tags: { env: 'prod' } },
      { accountTags: { env: ['prod'], team: [] } },
      'tags-not-matched',
      'no tag team',
    ],
    [
      'suspended and untagged: the state is named',
      { state: 'SUSPENDED' },
      { accountTags: { env: [] } },
      'not-active',
    ],
  ])('%s', (...row) => {
    // A rest parameter: rows without a detail would otherwise get jest's `done` callback in its place.
    const [, overrides, settings, reason, detail] = row;
    const result = skipReason(account(overrides), { ...NONE, ...settings });

    expect(result?.reason).toBe(reason);
    if (detail) expect(result?.detail).toBe(detail);
  });

  test('splits the accounts in their order, naming each skipped one', () => {
    const accounts = [
      account({ id: '000000000001' }),
      account({ id: '000000000002', state: 'SUSPENDED', name: 'gone' }),
      account({ id: '000000000003', parents: ['r-ab12', OU_SANDBOX] }),
      account({ id: '000000000004' }),
    ];

    const { selected, skipped } = selectAccounts(accounts, { ...NONE, excludeOus: [OU_SANDBOX] });

    expect(selected.map((a) => a.id)).toEqual(['000000000001', '000000000004']);
    expect(skipped).toEqual([
      {
        accountId: '000000000002',
        name: 'gone',
        reason: 'not-active',
        detail: 'state SUSPENDED, not ACTIVE',
      },
      {
        accountId: '000000000003',
        name: 'workload',
        reason: 'excluded-ou',
        detail: `under ${OU_SANDBOX}, listed in excludeOus`,
      },
    ]);
  });
});
