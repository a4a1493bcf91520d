import { PLANNING_MESSAGE_VERSION, type PlanningMessage } from '../../../lambda/contract';
import { OrganizationsNotInUseError, ThrottledError } from '../../../lambda/domain/errors';
import {
  DEFAULT_ORGANIZATION_SETTINGS,
  type OrganizationSettings,
} from '../../../lambda/domain/organization';
import type { AccountRunRecord, PlanningQueue } from '../../../lambda/ports';
import { dispatchAccounts, type DispatchDeps } from '../../../lambda/services/dispatch-accounts';
import { Faults } from '../../fakes/faults';
import { CapturingLogger } from '../../fakes/logger';
import { FakeLedger } from '../../fakes/ledger';
import { FakeOrganization } from '../../fakes/organization';

const RUN = '2026-01-01T02:00:00.000Z';
const EARLIER_RUN = '2025-12-31T02:00:00.000Z';

/** The planning queue in memory: each send as one batch, through Faults. */
class MemoryPlanningQueue implements PlanningQueue {
  readonly batches: PlanningMessage[][] = [];
  constructor(readonly faults = new Faults()) {}
  get messages(): PlanningMessage[] {
    return this.batches.flat();
  }
  send(messages: readonly PlanningMessage[]): Promise<void> {
    return this.faults.around('sqs:SendMessageBatch', () => {
      this.batches.push([...messages]);
    });
  }
}

function setUp() {
  const org = new FakeOrganization();
  const queue = new MemoryPlanningQueue();
  const logger = new CapturingLogger();
  const ledgerFaults = new Faults();
  const ledger = new FakeLedger(ledgerFaults);
  const deps = (settings: Partial<OrganizationSettings> = {}): DispatchDeps => ({
    directory: org,
    settings: { ...DEFAULT_ORGANIZATION_SETTINGS, ...settings },
    queue,
    runs: ledger,
    logger,
  });
  return { org, queue, logger, ledger, ledgerFaults, deps };
}

/** An account's last run as the planner records it. */
function run(accountId: string, status: AccountRunRecord['status'], runId = EARLIER_RUN): AccountRunRecord {
  return { accountId, runId, dryRun: false, status, at: runId, consecutiveFailures: 0 };
}

describe('dispatchAccounts', () => {
  test('queues one planning message per selected account, by account id, ten per send', async () => {
    // Arrange: 23 accounts, in an OU and under the root.
    const { org, queue, deps } = setUp();
    const ou = org.addOu();
    const ids = Array.from({ length: 23 }, (_, index) => org.addAccount(index % 2 === 0 ? ou : org.rootId));

    // Act
    const result = await dispatchAccounts({ plannedAt: RUN, dryRun: false }, deps());

    // Assert
    expect(queue.batches.map((batch) => batch.length)).toEqual([10, 10, 3]);
    expect(queue.messages).toEqual(
      [...ids].sort().map((accountId) => ({
        version: PLANNING_MESSAGE_VERSION,
        accountId,
        dryRun: false,
        plannedAt: RUN,
      })),
    );
    expect(queue.messages.some((sent) => 'startAfter' in sent)).toBe(false);
    expect(result).toMatchObject({ plannedAt: RUN, dryRun: false, queued: 23, skipped: [], missingOus: [] });
    expect(result.selected.map((account) => account.accountId)).toEqual([...ids].sort());
  });

  test('skipped accounts are not queued, and the run is audited once with each skip and its reason', async () => {
    // Arrange
    const { org, queue, logger, deps } = setUp();
    const kept = org.addAccount(org.rootId, { name: 'kept' });
    const excluded = org.addAccount(org.rootId, { name: 'excluded' });
    const suspended = org.addAccount(org.rootId, { name: 'gone', state: 'SUSPENDED' });

    // Act
    const result = await dispatchAccounts(
      { plannedAt: RUN, dryRun: false },
      deps({ excludeAccounts: [excluded] }),
    );

    // Assert
    expect(queue.messages.map((sent) => sent.accountId)).toEqual([kept]);
    expect(result.selected).toEqual([{ accountId: kept, name: 'kept' }]);
    expect(result.skipped.map((skip) => [skip.accountId, skip.reason])).toEqual([
      [excluded, 'excluded-account'],
      [suspended, 'not-active'],
    ]);
    expect(logger.audits()).toEqual([
      expect.objectContaining({
        action: 'accounts.dispatched',
        runId: RUN,
        dryRun: false,
        outcome: 'planned',
        selected: 1,
        skipped: [
          { accountId: excluded, reason: 'excluded-account', detail: 'listed in excludeAccounts' },
          { accountId: suspended, reason: 'not-active', detail: 'state SUSPENDED, not ACTIVE' },
        ],
        missingOus: [],
      }),
    ]);
  });

  test('an included OU the organization does not have is a warning; the other OUs are covered', async () => {
    // Arrange
    const missing = 'ou-ab12-99999999';
    const { org, queue, logger, deps } = setUp();
    const ou = org.addOu();
    const inside = org.addAccount(ou);
    org.addAccount(org.rootId); // outside the included OUs

    // Act
    const result = await dispatchAccounts(
      { plannedAt: RUN, dryRun: false },
      deps({ includeOus: [ou, missing] }),
    );

    // Assert
    expect(queue.messages.map((sent) => sent.accountId)).toEqual([inside]);
    expect(result.missingOus).toEqual([missing]);
    expect(logger.lines.filter((line) => line.level === 'warn')).toEqual([
      expect.objectContaining({ attributes: { missingOus: [missing], plannedAt: RUN } }),
    ]);
    expect(logger.audits('accounts.dispatched')).toEqual([
      expect.objectContaining({ missingOus: [missing], reason: expect.stringContaining(missing) as unknown }),
    ]);
  });

  test('a dry run queues messages that say so', async () => {
    // Arrange
    const { org, queue, deps } = setUp();
    org.addAccount();
    org.addAccount();

    // Act
    await dispatchAccounts({ plannedAt: RUN, dryRun: true }, deps());

    // Assert
    expect(queue.messages.map((sent) => sent.dryRun)).toEqual([true, true]);
  });

  test('no accounts selected: nothing is sent, and the run is still audited', async () => {
    // Arrange
    const { queue, logger, deps } = setUp();

    // Act
    const result = await dispatchAccounts({ plannedAt: RUN, dryRun: false }, deps());

    // Assert
    expect(queue.faults.count()).toBe(0);
    expect(result.queued).toBe(0);
    expect(logger.audits('accounts.dispatched')).toEqual([expect.objectContaining({ selected: 0 })]);
  });

  test('discovery failing fails the dispatch before anything is queued', async () => {
    // Arrange
    const { org, queue, deps } = setUp();
    org.addAccount();
    org.inUse = false;

    // Act
    const error = await dispatchAccounts({ plannedAt: RUN, dryRun: false }, deps()).catch(
      (caught: unknown) => caught,
    );

    // Assert
    expect(error).toBeInstanceOf(OrganizationsNotInUseError);
    expect(queue.messages).toEqual([]);
  });

  test('a send that fails fails the dispatch (the scheduled invocation fails loudly)', async () => {
    // Arrange
    const { org, queue, logger, deps } = setUp();
    for (let index = 0; index < 12; index++) org.addAccount();
    queue.faults.inject('sqs:SendMessageBatch', 'throttle');

    // Act
    const error = await dispatchAccounts({ plannedAt: RUN, dryRun: false }, deps()).catch(
      (caught: unknown) => caught,
    );

    // Assert
    expect(error).toBeInstanceOf(ThrottledError);
    expect(logger.audits('accounts.dispatched')).toEqual([]);
  });

  test('an account no longer covered whose last run is not left gets a finish-only message; left ones none', async () => {
    // Arrange: four accounts planned before; now one is excluded, one suspended, one moved out of
    // the listing altogether (left the organization), and one was already left.
    const { org, queue, logger, ledger, ledgerFaults, deps } = setUp();
    const kept = org.addAccount(org.rootId, { name: 'kept' });
    const excluded = org.addAccount(org.rootId, { name: 'excluded' });
    const suspended = org.addAccount(org.rootId, { name: 'gone', state: 'SUSPENDED' });
    const departed = '444455556666';
    const alreadyLeft = org.addAccount(org.rootId, { name: 'old' });
    await ledger.recordAccountRun(run(kept, 'planned'));
    await ledger.recordAccountRun(run(excluded, 'planned'));
    await ledger.recordAccountRun(run(suspended, 'failed'));
    await ledger.recordAccountRun(run(departed, 'finishing'));
    await ledger.recordAccountRun(run(alreadyLeft, 'left'));

    // Act
    const result = await dispatchAccounts(
      { plannedAt: RUN, dryRun: false },
      deps({ excludeAccounts: [excluded, alreadyLeft] }),
    );

    // Assert
    const finishOnly = [excluded, suspended, departed].sort();
    expect(queue.messages).toEqual([
      { version: PLANNING_MESSAGE_VERSION, accountId: kept, dryRun: false, plannedAt: RUN },
      ...finishOnly.map((accountId) => ({
        version: PLANNING_MESSAGE_VERSION,
        accountId,
        dryRun: false,
        plannedAt: RUN,
        finishOnly: true,
      })),
    ]);
    expect(result.finishing.map((account) => [account.accountId, account.lastStatus])).toEqual(
      finishOnly.map((accountId) => [
        accountId,
        accountId === excluded ? 'planned' : accountId === suspended ? 'failed' : 'finishing',
      ]),
    );
    expect(result.queued).toBe(4);
    expect(ledgerFaults.count('dynamodb:Query')).toBe(1);
    expect(logger.audits('accounts.dispatched')).toEqual([
      expect.objectContaining({
        selected: 1,
        finishing: finishOnly.map((accountId) => expect.objectContaining({ accountId }) as unknown),
        reason: expect.stringContaining('3 no longer covered queued to finish unfinished work') as unknown,
      }),
    ]);
  });

  test('a dry run sends the finish-only messages as dry ones (it reports what the real run would finish)', async () => {
    // Arrange
    const { org, queue, ledger, deps } = setUp();
    const excluded = org.addAccount(org.rootId);
    await ledger.recordAccountRun(run(excluded, 'planned'));

    // Act
    await dispatchAccounts({ plannedAt: RUN, dryRun: true }, deps({ excludeAccounts: [excluded] }));

    // Assert
    expect(queue.messages).toEqual([
      {
        version: PLANNING_MESSAGE_VERSION,
        accountId: excluded,
        dryRun: true,
        plannedAt: RUN,
        finishOnly: true,
      },
    ]);
  });

  test('a ledger that cannot be read fails the dispatch before anything is queued', async () => {
    // Arrange
    const { org, queue, ledgerFaults, deps } = setUp();
    org.addAccount();
    ledgerFaults.inject('dynamodb:Query', 'throttle');

    // Act
    const error = await dispatchAccounts({ plannedAt: RUN, dryRun: false }, deps()).catch(
      (caught: unknown) => caught,
    );

    // Assert
    expect(error).toBeInstanceOf(ThrottledError);
    expect(queue.messages).toEqual([]);
  });
});
