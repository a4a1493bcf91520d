/**
 * The DynamoDB ledger in memory: items stored as JSON (as a table would hold them), writes
 * conditional on the version that take or release the user's lock in the same write (as the adapter's
 * PutItem does), and a lock with a lease.
 */
import { LEDGER_SCREENING_FIELDS } from '../../lambda/contract';
import { ConcurrentUpdateError, LockHeldError } from '../../lambda/domain/errors';
import { emptyLedger, UserLedger } from '../../lambda/domain/model';
import type {
  AccountRunLedger,
  AccountRunRecord,
  OwnerSubscription,
  RotationLedger,
  SaveOptions,
} from '../../lambda/ports';
import { Faults } from './faults';

export class FakeLedger implements RotationLedger, AccountRunLedger {
  readonly items = new Map<string, string>();
  /** Owner subscriptions (their own partition in the table). */
  readonly ownerSubscriptions = new Map<string, OwnerSubscription>();
  /** Organization mode: each account's last run (their own partition), stored as JSON. */
  readonly accountRuns = new Map<string, string>();

  constructor(private readonly faults: Faults) {}

  private key(accountId: string, userName: string) {
    return `${accountId}#${userName}`;
  }

  private get(accountId: string, userName: string): UserLedger | undefined {
    const item = this.items.get(this.key(accountId, userName));
    return item ? (JSON.parse(item) as UserLedger) : undefined;
  }

  private put(record: UserLedger): UserLedger {
    const stored = { ...record, version: record.version + 1 };
    this.items.set(this.key(record.accountId, record.userName), JSON.stringify(stored));
    return JSON.parse(JSON.stringify(stored)) as UserLedger;
  }

  /** Test helper: read without a counted call. */
  peek(accountId: string, userName: string): UserLedger | undefined {
    return this.get(accountId, userName);
  }

  load(accountId: string, userName: string) {
    return this.faults.around('dynamodb:Load', () => this.get(accountId, userName));
  }

  loadAccount(accountId: string) {
    return this.faults.around('dynamodb:Query', () =>
      [...this.items.values()]
        .map((item) => JSON.parse(item) as UserLedger)
        .filter((record) => record.accountId === accountId),
    );
  }

  /**
   * As the `screening` index returns them: only the keys and the projected fields, every other field
   * empty (version 0), so that a planner reading any other field on its scheduled path fails the
   * tests. Counted as the same Query as loadAccount (the planner's one ledger call in the fault
   * tables). Always up to date: the index's lag behind the table is not modelled.
   */
  screenAccount(accountId: string) {
    return this.faults.around('dynamodb:Query', () =>
      [...this.items.values()]
        .map((item) => JSON.parse(item) as UserLedger)
        .filter((record) => record.accountId === accountId)
        .map((record) => {
          const screened: Record<string, unknown> = { ...emptyLedger(record.accountId, record.userName) };
          for (const field of LEDGER_SCREENING_FIELDS) {
            if (record[field] !== undefined) screened[field] = record[field];
          }
          return screened as unknown as UserLedger;
        }),
    );
  }

  /**
   * Test helper (not part of the port): another run takes the user's lock, as its first write would,
   * if it is free or its lease has expired at `now`; creates the record if absent.
   */
  acquireLock(accountId: string, userName: string, holder: string, now: Date, until: Date) {
    return this.faults.around('dynamodb:AcquireLock', () => {
      const current = this.get(accountId, userName) ?? emptyLedger(accountId, userName);
      if (
        current.lock &&
        current.lock.holder !== holder &&
        new Date(current.lock.until).getTime() > now.getTime()
      ) {
        throw new LockHeldError(
          `user ${userName} is locked by ${current.lock.holder} until ${current.lock.until}`,
        );
      }
      return this.put({ ...current, lock: { holder, until: until.toISOString() } });
    });
  }

  save(record: UserLedger, { lock, release }: SaveOptions = {}) {
    return this.faults.around('dynamodb:Save', () => {
      const current = this.get(record.accountId, record.userName);
      if ((current?.version ?? 0) !== record.version) {
        // As the adapter reads the failed write's item: a lock someone else took meanwhile is named.
        if (lock && current?.lock && current.lock.holder !== lock.holder) {
          throw new LockHeldError(
            `user ${record.userName} is locked by ${current.lock.holder} until ${current.lock.until}`,
          );
        }
        throw new ConcurrentUpdateError(
          `ledger record of ${record.userName} changed (version ${current?.version}, expected ${record.version})`,
        );
      }
      if (lock)
        return this.put({ ...record, lock: { holder: lock.holder, until: lock.until.toISOString() } });
      if (release !== undefined && record.lock?.holder === release)
        return this.put({ ...record, lock: undefined });
      return this.put(record);
    });
  }

  releaseLock(accountId: string, userName: string, holder: string) {
    return this.faults.around('dynamodb:ReleaseLock', () => {
      const current = this.get(accountId, userName);
      if (current?.lock?.holder !== holder) return;
      this.put({ ...current, lock: undefined });
    });
  }

  findOwnerSubscription(owner: string) {
    return this.faults.around('dynamodb:FindOwnerSubscription', () => {
      const found = this.ownerSubscriptions.get(owner.toLowerCase());
      return found ? { ...found } : undefined;
    });
  }

  recordOwnerSubscription(subscription: OwnerSubscription) {
    return this.faults.around('dynamodb:RecordOwnerSubscription', () => {
      this.ownerSubscriptions.set(subscription.owner.toLowerCase(), { ...subscription });
    });
  }
  /** Test helper: an account's last run, read without a counted call. */
  peekAccountRun(accountId: string): AccountRunRecord | undefined {
    const item = this.accountRuns.get(accountId);
    return item ? (JSON.parse(item) as AccountRunRecord) : undefined;
  }

  lastAccountRun(accountId: string) {
    return this.faults.around('dynamodb:GetItem', () => this.peekAccountRun(accountId));
  }

  recordAccountRun(record: AccountRunRecord) {
    return this.faults.around('dynamodb:PutItem', () => {
      this.accountRuns.set(record.accountId, JSON.stringify(record));
    });
  }

  listAccountRuns() {
    return this.faults.around('dynamodb:Query', () =>
      [...this.accountRuns.values()].map((item) => JSON.parse(item) as AccountRunRecord),
    );
  }
}
