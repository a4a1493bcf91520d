/**
 * keyrot in organization mode (--org, --accounts, --ou, --role-name), through main() with an
 * organization in memory: each member account has its own IAM and vault; the central stack's ledger
 * and notifier serve them all.
 */
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { parseCli } from '../../../cli/args';
import { connect, Connection, memberAccess, Resources } from '../../../cli/connect';
import { organizationSettingsFor } from '../../../cli/organization';
import type { PlanningMessage } from '../../../lambda/contract';
import { resolveOrganizationSettings } from '../../../lambda/domain/organization';
import { dispatchAccounts } from '../../../lambda/services/dispatch-accounts';
import { AccessDeniedError, MemberSessionUnavailableError } from '../../../lambda/domain/errors';
import { secretNameFor } from '../../../lambda/domain/naming';
import { SECRET_PREFIX } from '../../fakes/world';
import { keyrot } from './harness';
import { CENTRAL_ACCOUNT, CliOrganization, MemberFake } from './org-harness';

const OWNER = (name: string) => ({ 'key-rotation:owner': `${name}@example.com` });
const RESOURCES: Resources = {
  table: 'ledger',
  topicArn: 'topic',
  secretPrefix: SECRET_PREFIX,
  kmsKeyArn: 'key',
};

/** alice's key is 85 days old (a rotation is due), bob's 10 days (nothing due). */
function withUsers(member: MemberFake, { due = true } = {}): MemberFake {
  member.iam.reportGenerationPolls = 0;
  if (due) {
    member.iam.addUser('alice', { tags: OWNER('alice') });
    member.iam.addKey('alice', { ageDays: 85, lastUsedDaysAgo: 1 });
  }
  member.iam.addUser('bob', { tags: OWNER('bob') });
  member.iam.addKey('bob', { ageDays: 10, lastUsedDaysAgo: 0 });
  return member;
}

/** Root > dev (a), prod (b > nested c). */
function organization(options: { due?: boolean } = {}) {
  const org = new CliOrganization();
  const dev = org.organization.addOu();
  const prod = org.organization.addOu();
  const nested = org.organization.addOu(prod);
  const a = withUsers(org.addMember(dev, { name: 'dev' }), options);
  const b = withUsers(org.addMember(prod, { name: 'prod' }), options);
  const c = withUsers(org.addMember(nested, { name: 'payments' }), options);
  // The central account's own users are not a member account's: never planned in organization mode.
  org.central.iam.addUser('central-admin');
  org.central.iam.addKey('central-admin', { ageDays: 300 });
  return { org, dev, prod, nested, a, b, c };
}

const lines = (text: string) => text.split('\n');

interface AccountJson {
  readonly accountId: string;
  readonly name: string;
  readonly status: string;
  readonly users?: readonly { readonly userName: string }[];
  readonly counts?: Record<string, number>;
  readonly [field: string]: unknown;
}

/** What --json prints in organization mode. */
interface OrganizationJson {
  readonly runId: string;
  readonly memberRoleName: string;
  readonly accounts: readonly AccountJson[];
  readonly skipped: readonly unknown[];
  readonly summary: Record<string, unknown> & { readonly counts?: Record<string, number> };
}

const parsed = (text: string) => JSON.parse(text) as OrganizationJson;

describe('keyrot plan --org', () => {
  test('plans every account with an ACCOUNT column, per-account totals and an organization summary', async () => {
    const { org, a, b, c } = organization();

    const run = await keyrot('plan --org', org.wiring());

    expect(run.code).toBe(2);
    const out = lines(run.stdout);
    expect(out[0]).toMatch(
      /^ACCOUNT\s+USER\s+KEY\s+STATUS\s+AGE\s+LAST USED\s+OWNER\s+STAGE\s+ACTION\s+REASON$/,
    );
    for (const member of [a, b, c]) {
      expect(out).toContainEqual(
        expect.stringMatching(
          new RegExp(`^${member.accountId}\\s+alice\\s+AKIAFAKE\\w+\\s+Active\\s+85d.*rotate`),
        ),
      );
      expect(out).toContainEqual(
        expect.stringMatching(new RegExp(`^${member.accountId}\\s+bob\\s+.*current`)),
      );
      expect(run.stdout).toContain(
        `account ${member.accountId} (${member.name}): 2 users, 2 keys, 0 over 90 days; 1 user(s) with actions due`,
      );
    }
    expect(run.stdout).toContain(
      'organization: 3 account(s) selected, 0 skipped, 0 unreachable; 6 users, 6 keys, 0 over 90 days; 3 user(s) with actions due',
    );
    expect(run.stdout).not.toContain('central-admin');
    // One run id (the run's time) for every account: the member role's session name.
    expect(org.access.opened).toEqual(
      [a, b, c].map((member) => ({ accountId: member.accountId, runId: '2026-03-01T09:00:00.000Z' })),
    );
    expect(org.roleNames).toEqual(['iam-key-rotation-member']);
    // A plan only reads.
    for (const member of [a, b, c]) {
      expect(member.faults.writes().filter((op) => op !== 'iam:GenerateCredentialReport')).toEqual([]);
    }
  });

  test('an unreachable account is named on stderr with what to check; the others are planned; exit 2', async () => {
    const { org, a, b, c } = organization({ due: false });
    org.members.delete(b.accountId); // no member role there: AssumeRole is denied

    const run = await keyrot('plan --org', org.wiring());

    expect(run.code).toBe(2);
    expect(run.stderr).toContain(
      `keyrot: account ${b.accountId} (prod) unreachable: MemberRoleAccessDeniedError`,
    );
    expect(run.stderr).toContain(
      `check that arn:aws:iam::${b.accountId}:role/iam-key-rotation-member exists (the member stack or the StackSet's instance`,
    );
    expect(run.stderr).toContain('the other accounts go on');
    expect(run.stdout).toContain(
      `account ${b.accountId} (prod): unreachable (MemberRoleAccessDeniedError; see stderr)`,
    );
    for (const member of [a, c]) {
      expect(run.stdout).toContain(`account ${member.accountId} (${member.name}): 1 users, 1 keys`);
    }
    expect(run.stdout).toContain(
      'organization: 3 account(s) selected, 0 skipped, 1 unreachable; 2 users, 2 keys',
    );
    expect(org.access.opened.map((open) => open.accountId)).toEqual([a.accountId, b.accountId, c.accountId]);
  });

  test('with every account reachable and nothing due, exit 0', async () => {
    const { org } = organization({ due: false });

    const run = await keyrot('plan --org', org.wiring());

    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
  });

  test('a throttled account says to try it again later', async () => {
    const { org, a } = organization({ due: false });
    org.access.failures.set(
      a.accountId,
      new MemberSessionUnavailableError('Throttling: Rate exceeded', a.accountId, 'arn'),
    );

    const run = await keyrot('plan --org', org.wiring());

    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`try this account again later (keyrot ... --accounts ${a.accountId})`);
  });

  test('a user that cannot be read in one account makes the result incomplete: exit 1 wins over 2', async () => {
    const { org, a, b } = organization({ due: false });
    org.members.delete(b.accountId);
    a.faults.inject('iam:ListAccessKeys', 'access-denied', 10);

    const run = await keyrot('plan --org', org.wiring());

    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`(user bob in account ${a.accountId})`);
  });

  test("the central ledger refused (the operator's own access) is a failure, exit 1, not one unreachable account after another", async () => {
    const { org, a } = organization({ due: false });
    org.central.faults.inject('dynamodb:Query', 'access-denied', 100);

    const run = await keyrot('plan --org', org.wiring());

    expect(run.code).toBe(1);
    expect(run.stderr).toContain('keyrot: failed: dynamodb:Query: not authorized');
    expect(run.stderr).not.toContain('unreachable');
    expect(run.stdout).not.toContain('unreachable');
    // The run stopped at the first account: the failure is not the account's, and would be every account's.
    expect(org.access.opened.map((open) => open.accountId)).toEqual([a.accountId]);
  });

  test('the central ledger throttled is a failure too (exit 1), whichever account was being planned', async () => {
    const { org } = organization({ due: false });
    org.central.faults.inject('dynamodb:Query', 'throttle', 100);

    const run = await keyrot('plan --org --json', org.wiring());

    expect(run.code).toBe(1);
    expect(run.stderr).toContain('keyrot: failed: dynamodb:Query: Rate exceeded');
    expect(run.stderr).not.toContain('unreachable');
  });

  test("an account's own IAM refusing the plan makes that account unreachable, named; the others go on: exit 2", async () => {
    const { org, a, b, c } = organization({ due: false });
    b.faults.inject('iam:GenerateCredentialReport', 'access-denied');

    const run = await keyrot('plan --org', org.wiring());

    expect(run.code).toBe(2);
    expect(run.stderr).toContain(
      `keyrot: account ${b.accountId} (prod) unreachable: AccessDeniedError: iam:GenerateCredentialReport: not authorized`,
    );
    expect(run.stderr).not.toContain(`account ${a.accountId} (dev) unreachable`);
    expect(run.stderr).not.toContain(`account ${c.accountId} (payments) unreachable`);
    expect(run.stdout).toContain(
      'organization: 3 account(s) selected, 0 skipped, 1 unreachable; 2 users, 2 keys',
    );
  });

  test('--json: accounts with their status and result, skipped accounts with reasons, and a summary', async () => {
    const { org, a, b, c, prod } = organization();
    const suspended = org.addMember(prod, { name: 'closing', state: 'SUSPENDED' });
    org.access.failures.set(c.accountId, new AccessDeniedError('AccessDenied: iam:GenerateCredentialReport'));

    const run = await keyrot('plan --org --json', org.wiring());

    expect(run.code).toBe(2);
    const document = parsed(run.stdout);
    expect(document.runId).toBe('2026-03-01T09:00:00.000Z');
    expect(document.memberRoleName).toBe('iam-key-rotation-member');
    expect(document.accounts.map((account) => account.status)).toEqual(['planned', 'planned', 'unreachable']);
    expect(document.accounts[0]).toMatchObject({
      accountId: a.accountId,
      name: 'dev',
      status: 'planned',
      usersScanned: 2,
      keysScanned: 2,
      failures: [],
    });
    expect(Object.keys(document.accounts[0]!).slice(0, 3)).toEqual(['accountId', 'name', 'status']);
    expect(document.accounts[1]!.users!.map((user) => user.userName)).toEqual(['alice', 'bob']);
    expect(document.accounts[1]!.accountId).toBe(b.accountId);
    expect(document.accounts[2]).toEqual({
      accountId: c.accountId,
      name: 'payments',
      status: 'unreachable',
      error: { name: 'AccessDeniedError', message: 'AccessDenied: iam:GenerateCredentialReport' },
    });
    expect(document.skipped).toEqual([
      {
        accountId: suspended.accountId,
        name: 'closing',
        reason: 'not-active',
        detail: 'state SUSPENDED, not ACTIVE',
      },
    ]);
    expect(document.summary).toEqual({
      accountsSelected: 3,
      accountsSkipped: 1,
      accountsUnreachable: 1,
      usersScanned: 4,
      keysScanned: 4,
      overdueKeys: 0,
      usersWithActionsDue: 2,
    });
    expect(org.access.opened.map((open) => open.accountId)).not.toContain(suspended.accountId);
  });
});

describe('choosing the accounts', () => {
  test('--accounts names them without discovery: no Organizations call', async () => {
    const { org, a, c } = organization();

    const run = await keyrot(`plan --accounts ${a.accountId},${c.accountId}`, org.wiring());

    expect(run.code).toBe(2);
    expect(org.organization.faults.count('organizations:')).toBe(0);
    expect(org.access.opened.map((open) => open.accountId)).toEqual([a.accountId, c.accountId]);
    expect(run.stdout).toContain(`account ${a.accountId}: 2 users`);
    expect(run.stdout).toContain('organization: 2 account(s) selected, 0 skipped, 0 unreachable');
  });

  test('--accounts may repeat; an account without the member role is unreachable, not a crash', async () => {
    const { org, a } = organization({ due: false });

    const run = await keyrot(`plan --accounts ${a.accountId} --accounts 123456789012`, org.wiring());

    expect(run.code).toBe(2);
    expect(run.stderr).toContain('keyrot: account 123456789012 unreachable: MemberRoleAccessDeniedError');
    expect(run.stdout).toContain(`account ${a.accountId}: 1 users`);
  });

  test('--ou narrows discovery to the accounts under that OU, at any depth', async () => {
    const { org, a, b, c, prod } = organization();

    const run = await keyrot(`plan --ou ${prod} --json`, org.wiring());

    const document = parsed(run.stdout);
    expect(document.accounts.map((account) => account.accountId)).toEqual([b.accountId, c.accountId]);
    expect(org.access.opened.map((open) => open.accountId)).not.toContain(a.accountId);
  });

  test("--org follows the stack's organization settings; --ou replaces its includeOus but keeps its excludes", async () => {
    const { org, a, b, c, dev, nested } = organization();
    const resources = {
      ...RESOURCES,
      organizationJson: JSON.stringify({
        includeOus: [dev],
        excludeOus: [nested],
        memberRoleName: 'keyrot-member',
      }),
    };

    const byStack = await keyrot('plan --org --json', org.wiring(resources));
    const byOu = await keyrot(`plan --ou ${org.organization.rootId} --json`, org.wiring(resources));

    const ids = (run: { stdout: string }) => parsed(run.stdout).accounts.map((account) => account.accountId);
    expect(ids(byStack)).toEqual([a.accountId]);
    expect(ids(byOu)).toEqual([a.accountId, b.accountId]);
    expect(parsed(byOu.stdout).skipped).toEqual([
      expect.objectContaining({ accountId: c.accountId, reason: 'excluded-ou' }),
    ]);
    // The member role: the stack's memberRoleName, unless --role-name says otherwise.
    expect(org.roleNames).toEqual(['keyrot-member', 'keyrot-member']);
    await keyrot(`plan --accounts ${a.accountId} --role-name other-role`, org.wiring(resources));
    expect(org.roleNames[2]).toBe('other-role');
  });

  test('skipped accounts are summarised in text', async () => {
    const { org, prod } = organization({ due: false });
    org.addMember(prod, { state: 'SUSPENDED' });

    const run = await keyrot('plan --org', org.wiring());

    expect(run.stdout).toContain('organization: 3 account(s) selected, 1 skipped, 0 unreachable');
    expect(run.stdout).toContain('skipped accounts: 1 not-active (--json lists them)');
  });

  test('an included OU that is not in the organization is a warning and exit 2', async () => {
    const { org, dev } = organization({ due: false });

    const run = await keyrot(`plan --ou ${dev},ou-ab12-99999999`, org.wiring());

    expect(run.code).toBe(2);
    expect(run.stderr).toContain('included OU ou-ab12-99999999 is not in the organization');
  });

  test('discovery that Organizations refuses says where to run keyrot, or to name the accounts', async () => {
    const { org } = organization();
    org.organization.faults.inject('organizations:ListAccounts', 'access-denied');

    const run = await keyrot('plan --org', org.wiring());

    expect(run.code).toBe(1);
    expect(run.stderr).toContain("keyrot: cannot list the organization's accounts");
    expect(run.stderr).toContain('management account or a delegated administrator');
    expect(run.stderr).toContain('--accounts ID,ID (no discovery)');
    expect(org.access.opened).toEqual([]);
  });
});

describe('keyrot run --apply across accounts', () => {
  test("rotates in each account, each secret in its own account's vault; the ledger and notices are central", async () => {
    const { org, a, b, c } = organization();

    const run = await keyrot(`run --apply --accounts ${a.accountId},${b.accountId}`, org.wiring());

    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(lines(run.stdout)[0]).toMatch(/^ACCOUNT\s+USER\s+RESULT\s+ACTION\s+KEY\s+NEW KEY\s+DETAIL$/);
    for (const member of [a, b]) {
      expect(run.stdout).toMatch(new RegExp(`${member.accountId}\\s+alice\\s+\\S+\\s+rotate`));
      expect(run.stdout).toContain(`account ${member.accountId}: 1 user(s) done, 0 failed`);
      // alice has her new key next to the old one, in her own account
      expect(member.iam.users.get('alice')!.keys.filter((key) => key.status === 'Active')).toHaveLength(2);
      // the secret is in that account's vault, named after that account
      const name = secretNameFor(SECRET_PREFIX, member.accountId, 'alice');
      expect([...member.vault.secrets.keys()]).toEqual([name]);
      expect(member.vault.secrets.get(name)!.tags['iam-key-rotation:user']).toBe(`${member.accountId}/alice`);
    }
    expect(run.stdout).toContain(
      'organization: 2 account(s) selected, 0 skipped, 0 unreachable; 2 user(s) done, 0 failed',
    );
    // nothing in the account not named, nor in the central account's vault
    expect(c.vault.secrets.size).toBe(0);
    expect(c.iam.users.get('alice')!.keys).toHaveLength(1);
    expect(org.central.vault.secrets.size).toBe(0);
    // the central ledger holds each account's record of alice
    for (const member of [a, b]) {
      expect(await org.central.ledger.load(member.accountId, 'alice')).toBeDefined();
    }
    const notices = org.central.notifier.published.filter((notice) => notice.event === 'key.rotated');
    expect(notices.map((notice) => notice.accountId).sort()).toEqual([a.accountId, b.accountId]);
    // the secret value never reaches the output
    for (const secret of [...a.iam.issuedSecrets, ...b.iam.issuedSecrets]) {
      expect(run.stdout + run.stderr).not.toContain(secret);
    }
  });

  test('an unreachable account does not stop the others: exit 2; a failed user still makes it 1', async () => {
    const { org, b, c } = organization();
    org.members.delete(b.accountId);

    const reached = await keyrot(`run --apply --org --json`, org.wiring());

    expect(reached.code).toBe(2);
    const document = parsed(reached.stdout);
    expect(document.accounts.map((account) => account.status)).toEqual(['planned', 'unreachable', 'planned']);
    expect(document.summary).toEqual({
      accountsSelected: 3,
      accountsSkipped: 0,
      accountsUnreachable: 1,
      usersDone: 2,
      usersFailed: 0,
    });
    expect(c.vault.secrets.has(secretNameFor(SECRET_PREFIX, c.accountId, 'alice'))).toBe(true);

    const other = organization();
    other.org.members.delete(other.b.accountId);
    other.a.faults.inject('iam:CreateAccessKey', 'access-denied');
    const failed = await keyrot('run --apply --org', other.org.wiring());
    expect(failed.code).toBe(1);
    expect(failed.stdout).toContain(`FAILED ${other.a.accountId}/alice:`);
  });

  test('without --apply it is the organization plan, and nothing is written', async () => {
    const { org, a } = organization();

    const run = await keyrot('run --org', org.wiring());

    expect(run.code).toBe(2);
    expect(lines(run.stdout)[0]).toMatch(/^ACCOUNT\s+USER\s+KEY/);
    expect(a.vault.secrets.size).toBe(0);
  });
});

/** The stack's organization settings: only the dev OU is covered by the schedule. */
function stackCoveringOnly(ouId: string): Resources {
  return { ...RESOURCES, organizationJson: JSON.stringify({ includeOus: [ouId] }) };
}

/** What the schedule's dispatcher would queue next: finish-only messages go to accounts it does not select. */
async function nextDispatch(org: CliOrganization, includeOus: string[]) {
  const sent: PlanningMessage[] = [];
  const quiet = {
    debug: () => undefined,
    info: () => undefined,
    warn: () => undefined,
    error: () => undefined,
  };
  const result = await dispatchAccounts(
    { plannedAt: '2026-03-02T09:00:00.000Z', dryRun: false },
    {
      directory: org.organization,
      settings: resolveOrganizationSettings({ includeOus }),
      queue: { send: (messages) => Promise.resolve(void sent.push(...messages)) },
      runs: org.central.ledger,
      logger: quiet,
    },
  );
  return { result, sent };
}

describe('account-run records of keyrot --apply (the schedule finishes what the CLI leaves unfinished)', () => {
  const RUN_ID = '2026-03-01T09:00:00.000Z';

  test('run --apply --org --accounts X outside the settings records X planned, and the dispatcher then finishes X', async () => {
    const { org, dev, a, c } = organization();

    const run = await keyrot(
      `run --apply --org --accounts ${c.accountId}`,
      org.wiring(stackCoveringOnly(dev)),
    );

    expect(run.code).toBe(0);
    expect(org.central.ledger.peekAccountRun(c.accountId)).toEqual({
      accountId: c.accountId,
      runId: RUN_ID,
      dryRun: false,
      status: 'planned',
      at: RUN_ID,
      queued: 1,
      consecutiveFailures: 0,
      lastPlannedAt: RUN_ID,
    });
    // Only the account it worked in.
    expect(org.central.ledger.peekAccountRun(a.accountId)).toBeUndefined();
    const { result } = await nextDispatch(org, [dev]);
    expect(result.finishing).toEqual([{ accountId: c.accountId, lastStatus: 'planned', lastRunId: RUN_ID }]);
  });

  test('a rotation that stops in the middle of the account still leaves the record; the dispatcher sends X a finish-only message', async () => {
    const { org, dev, c } = organization();
    // The process dies right after CreateAccessKey: alice's new key exists, its secret is not stored.
    c.faults.inject('iam:CreateAccessKey', 'crash-after');

    const run = await keyrot(`run --apply --accounts ${c.accountId}`, org.wiring(stackCoveringOnly(dev)));

    expect(run.code).toBe(1);
    expect((await org.central.ledger.load(c.accountId, 'alice'))?.inFlight?.phase).toBe('intent');
    expect(org.central.ledger.peekAccountRun(c.accountId)).toMatchObject({
      status: 'planned',
      runId: RUN_ID,
    });
    const { sent } = await nextDispatch(org, [dev]);
    expect(sent.filter((message) => message.accountId === c.accountId)).toEqual([
      expect.objectContaining({ accountId: c.accountId, finishOnly: true, dryRun: false }),
    ]);
  });

  test('the record is written before the account is touched: a ledger that refuses it stops the run with nothing changed there', async () => {
    const { org, c } = organization();
    org.central.faults.inject('dynamodb:PutItem', 'access-denied');

    const run = await keyrot(`run --apply --accounts ${c.accountId}`, org.wiring());

    expect(run.code).toBe(1);
    expect(c.faults.calls).not.toContain('iam:CreateAccessKey');
    expect(c.iam.users.get('alice')!.keys).toHaveLength(1);
    expect(org.central.ledger.peekAccountRun(c.accountId)).toBeUndefined();
  });

  test("an account with nothing to do gets no record; a schedule's failed record is kept; a left one is replaced", async () => {
    const { org, a, b, c } = organization({ due: false }); // nothing due in a
    for (const member of [b, c]) {
      member.iam.addUser('alice', { tags: OWNER('alice') });
      member.iam.addKey('alice', { ageDays: 85, lastUsedDaysAgo: 1 });
    }
    const failed = {
      accountId: b.accountId,
      runId: '2026-02-28T09:00:00.000Z',
      dryRun: false,
      status: 'failed' as const,
      at: '2026-02-28T09:00:05.000Z',
      error: { name: 'MemberRoleAccessDeniedError', message: 'AccessDenied' },
      retryable: false,
      consecutiveFailures: 3,
    };
    await org.central.ledger.recordAccountRun(failed);
    await org.central.ledger.recordAccountRun({
      accountId: c.accountId,
      runId: '2026-02-28T09:00:00.000Z',
      dryRun: false,
      status: 'left',
      at: '2026-02-28T09:00:05.000Z',
      consecutiveFailures: 0,
    });

    const run = await keyrot(
      `run --apply --accounts ${a.accountId},${b.accountId},${c.accountId}`,
      org.wiring(),
    );

    expect(run.code).toBe(0);
    expect(org.central.ledger.peekAccountRun(a.accountId)).toBeUndefined();
    expect(org.central.ledger.peekAccountRun(b.accountId)).toEqual(failed);
    expect(org.central.ledger.peekAccountRun(c.accountId)).toMatchObject({
      status: 'planned',
      runId: RUN_ID,
    });
  });

  test('rotate --accounts X --apply records X; its dry run, plan --org and run --org record nothing', async () => {
    const { org, a, b, c } = organization({ due: false });

    for (const argv of [
      `rotate --user bob --accounts ${b.accountId}`,
      'plan --org',
      'run --org',
      `run --accounts ${a.accountId}`,
    ]) {
      await keyrot(argv, org.wiring());
    }
    expect(org.central.ledger.accountRuns.size).toBe(0);

    const run = await keyrot(`rotate --user bob --accounts ${b.accountId} --apply`, org.wiring());

    expect(run.code).toBe(0);
    expect(org.central.ledger.peekAccountRun(b.accountId)).toMatchObject({
      status: 'planned',
      runId: RUN_ID,
      queued: 1,
      consecutiveFailures: 0,
    });
    expect([...org.central.ledger.accountRuns.keys()]).toEqual([b.accountId]);
    expect(c.vault.secrets.size).toBe(0);
  });

  test('a ledger without account runs is refused before any account is opened', async () => {
    const { org, a } = organization();
    const wiring = org.wiring();
    // The central ledger as a RotationLedger only (as the CLI's EmptyLedger is).
    const plainLedger = new Proxy(org.central.ledger, {
      get: (target, property, receiver) =>
        property === 'lastAccountRun' || property === 'recordAccountRun' || property === 'listAccountRuns'
          ? undefined
          : (Reflect.get(target, property, receiver) as unknown),
    });
    const withoutRuns = {
      ...wiring,
      connect: async (options: Parameters<typeof wiring.connect>[0]) => ({
        ...(await wiring.connect(options)),
        ledger: plainLedger,
      }),
    };

    const run = await keyrot(`run --apply --accounts ${a.accountId}`, withoutRuns);

    expect(run.code).toBe(1);
    expect(run.stderr).toContain('needs a ledger that records account runs');
    expect(org.access.opened).toEqual([]);
    expect(a.vault.secrets.size).toBe(0);
  });
});

describe('keyrot report --org', () => {
  test('CSV with an accountId column first; the organization summary on stderr', async () => {
    const { org, a, b, c } = organization();
    for (const member of [a, b, c]) {
      member.iam.addUser('old', { tags: OWNER('old') });
      member.iam.addKey('old', { ageDays: 95, lastUsedDaysAgo: 3 });
    }
    org.members.delete(c.accountId);

    const run = await keyrot('report --org', org.wiring());

    expect(run.code).toBe(2);
    const out = lines(run.stdout);
    expect(out[0]).toBe('accountId,category,userName,accessKeyId,status,ageDays,lastUsed,owner,detail');
    expect(out.filter((line) => line.includes(',over-policy-age,old,'))).toEqual([
      expect.stringMatching(new RegExp(`^${a.accountId},over-policy-age,old,`)),
      expect.stringMatching(new RegExp(`^${b.accountId},over-policy-age,old,`)),
    ]);
    expect(run.stderr).toContain(
      'keyrot: organization: 3 account(s) selected, 0 skipped, 1 unreachable; 6 users, 6 keys; 2 over-policy-age',
    );
  });

  test('--json: accounts with counts and rows, and summed counts', async () => {
    const { org, a } = organization({ due: false });
    a.iam.addUser('old');
    a.iam.addKey('old', { ageDays: 95 });

    const run = await keyrot('report --org --json', org.wiring());

    const document = parsed(run.stdout);
    expect(document.accounts[0]).toMatchObject({
      accountId: a.accountId,
      status: 'planned',
      counts: { 'over-policy-age': 1 },
      rows: [expect.objectContaining({ userName: 'old', category: 'over-policy-age' })],
    });
    expect(document.summary).toMatchObject({ accountsSelected: 3, accountsUnreachable: 0, usersScanned: 4 });
    expect(document.summary.counts!['over-policy-age']).toBe(1);
    expect(run.code).toBe(2);
  });
});

describe('keyrot rotate --accounts ID', () => {
  test("rotates the user of that account, the secret in that account's vault", async () => {
    const { org, a, b } = organization({ due: false });

    const run = await keyrot(`rotate --user bob --accounts ${b.accountId} --apply`, org.wiring());

    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect([...b.vault.secrets.keys()]).toEqual([secretNameFor(SECRET_PREFIX, b.accountId, 'bob')]);
    expect(a.vault.secrets.size).toBe(0);
    expect(a.iam.users.get('bob')!.keys).toHaveLength(1);
  });

  test('an account that cannot be opened is a failure (exit 1): nothing else to go on with', async () => {
    const { org, b } = organization({ due: false });
    org.members.delete(b.accountId);

    const run = await keyrot(`rotate --user bob --accounts ${b.accountId} --apply`, org.wiring());

    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`keyrot: account ${b.accountId} unreachable: MemberRoleAccessDeniedError`);
    expect(run.stderr).not.toContain('the other accounts go on');
  });

  test('a user that is not in that account: nothing is written', async () => {
    const { org, a } = organization({ due: false });

    const run = await keyrot(`rotate --user nobody --accounts ${a.accountId} --apply`, org.wiring());

    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`user nobody does not exist in account ${a.accountId}`);
  });
});

describe('usage errors', () => {
  test.each([
    ['plan --accounts 12345', '--accounts must be 12-digit account ids separated by commas', '"12345"'],
    [
      'plan --accounts 111122223333,abc',
      '--accounts must be 12-digit account ids',
      'not an account id: "abc"',
    ],
    ['plan --accounts', '--accounts needs a value', ''],
    [
      'plan --ou ou-x',
      '--ou must be an OU id such as ou-ab12-cdef3456 or a root id such as r-ab12',
      '"ou-x"',
    ],
    ['report --ou r-ab12,123456789012', '--ou must be an OU id', 'not an OU or root id: "123456789012"'],
    ['plan --accounts 111122223333 --ou r-ab12', 'give one of --accounts or --ou', ''],
    ['plan --org --role-name bad/name', '--role-name must be an IAM role name', '"bad/name"'],
    [
      'plan --org --account-id 111122223333',
      '--account-id checks the account of your credentials',
      '--accounts ID,ID',
    ],
    ['rotate --user bob --org', 'rotate works on one user of one account', '--accounts ID'],
    [
      'rotate --user bob --accounts 111122223333,444455556666',
      'give --accounts exactly one account id',
      '(got 2)',
    ],
    ['rotate --user bob --accounts 111122223333 --ou r-ab12', 'give one of --accounts or --ou', ''],
  ])('keyrot %s', async (argv, message, detail) => {
    const { org } = organization();

    const run = await keyrot(argv, org.wiring());

    expect(run.code).toBe(1);
    expect(run.stderr).toContain(message);
    expect(run.stderr).toContain(detail);
    expect(run.stderr).toContain(`Run "keyrot ${argv.split(' ')[0]} --help" for usage.`);
    expect(org.access.opened).toEqual([]);
  });

  test('parsed flags: ids split on commas, repeated, without duplicates; no flag means one account', () => {
    expect(
      parseCli(['plan', '--accounts', '111122223333, 444455556666', '--accounts', '111122223333'])
        .organization,
    ).toEqual({
      accounts: ['111122223333', '444455556666'],
    });
    expect(
      parseCli(['plan', '--ou', 'ou-ab12-cdef3456', '--ou', 'r-ab12', '--role-name', 'm']).organization,
    ).toEqual({
      includeOus: ['ou-ab12-cdef3456', 'r-ab12'],
      memberRoleName: 'm',
    });
    expect(parseCli(['plan', '--org']).organization).toEqual({});
    expect(parseCli(['plan']).organization).toBeUndefined();
  });
});

describe('the AWS wiring', () => {
  afterEach(() => {
    mockClient(STSClient).restore();
    mockClient(CloudFormationClient).restore();
  });

  test("connect reads the stack's OrganizationSettings output: its settings choose the accounts and the role", async () => {
    mockClient(STSClient)
      .on(GetCallerIdentityCommand)
      .resolves({ Account: CENTRAL_ACCOUNT, Arn: `arn:aws:iam::${CENTRAL_ACCOUNT}:user/operator` });
    const organizationJson = '{"memberRoleName":"org-member","includeOus":["ou-ab12-cdef3456"]}';
    mockClient(CloudFormationClient)
      .on(DescribeStacksCommand)
      .resolves({
        Stacks: [
          {
            StackName: 'IamKeyRotation',
            CreationTime: new Date(0),
            StackStatus: 'CREATE_COMPLETE',
            Outputs: [
              { OutputKey: 'LedgerTableName', OutputValue: 'ledger-table' },
              { OutputKey: 'OrganizationSettings', OutputValue: organizationJson },
            ],
          },
        ],
      });
    const options = parseCli(['plan', '--org', '--stack', 'IamKeyRotation', '--region', 'eu-west-1']);

    const connection = await connect(options);

    expect(connection.resources.organizationJson).toBe(organizationJson);
    expect(organizationSettingsFor(options.organization!, connection.resources)).toMatchObject({
      memberRoleName: 'org-member',
      includeOus: ['ou-ab12-cdef3456'],
    });
    expect(
      organizationSettingsFor({ memberRoleName: 'mine', includeOus: ['r-ab12'] }, connection.resources),
    ).toMatchObject({ memberRoleName: 'mine', includeOus: ['r-ab12'] });
    // Settings the stack output cannot have had are named as the construct names them.
    expect(() => organizationSettingsFor({}, { organizationJson: '{"includeOus":["bad"]}' })).toThrow(
      /organization\.includeOus entry "bad" is not valid/,
    );
  });

  test("memberAccess assumes the member role in the account, with the operator's partition and the run id", async () => {
    const sts = mockClient(STSClient);
    sts.on(AssumeRoleCommand).resolves({
      Credentials: {
        AccessKeyId: 'ASIAEXAMPLE',
        SecretAccessKey: 'example',
        SessionToken: 'token',
        Expiration: new Date(Date.now() + 3_600_000),
      },
    });
    const connection = {
      accountId: CENTRAL_ACCOUNT,
      caller: {
        account: CENTRAL_ACCOUNT,
        arn: `arn:aws-us-gov:sts::${CENTRAL_ACCOUNT}:assumed-role/admin/me`,
      },
      resources: { adminRoleArn: 'none' },
    } as unknown as Connection;

    const access = memberAccess(
      connection,
      parseCli(['plan', '--org', '--region', 'us-gov-west-1']),
      'member',
    );
    const ports = await access.open('111122223333', '2026-03-01T09:00:00.000Z');

    expect(ports.accountId).toBe('111122223333');
    expect(sts.commandCalls(AssumeRoleCommand)[0]!.args[0].input).toMatchObject({
      RoleArn: 'arn:aws-us-gov:iam::111122223333:role/member',
      RoleSessionName: '2026-03-01T09-00-00.000Z',
    });
  });
});
