/**
 * An AWS Organization in memory, with every fake wired to the real services of organization mode:
 * a FakeOrganization (nested OUs, N accounts), and per member account its own IAM (its own account
 * id, key ids unique across the organization as AWS's are), its own Secrets Manager and the STS that
 * accepts its keys; one clock, one Faults, one ledger, one notifier and one logger for the central
 * account. `FakeAccountAccess` stands for the member roles: it opens an account's ports, or fails as
 * STS does (role missing or not trusting us, throttled, account suspended).
 *
 * `runDay` is the scheduled pipeline of organization mode: dispatcher → planning queue (standard SQS,
 * redelivered on a retryable failure up to PLANNING_MAX_RECEIVE_COUNT, then its dead-letter queue) →
 * planner per message (continuations through the planning queue) → work queue → rotator per message,
 * in that account.
 */
import { PLANNING_MAX_RECEIVE_COUNT, PlanningMessage, WorkMessage } from '../../lambda/contract';
import {
  CredentialsNotYetValidError,
  MemberRoleAccessDeniedError,
  MemberSessionUnavailableError,
} from '../../lambda/domain/errors';
import type { KeyCredentials } from '../../lambda/domain/model';
import { secretNameFor } from '../../lambda/domain/naming';
import { OrganizationSettings, resolveOrganizationSettings } from '../../lambda/domain/organization';
import { resolveSettings, RotationSettings } from '../../lambda/domain/settings';
import type { AccountAccess, AccountPorts, KeyVerifier, PlanningQueue } from '../../lambda/ports';
import { dispatchAccounts, DispatchResult } from '../../lambda/services/dispatch-accounts';
import type { AccountPlan, PlanAccountOptions } from '../../lambda/services/plan-account';
import { MemberAccountOutcome, planMemberAccount } from '../../lambda/services/plan-member-account';
import { rotateUser, RotationOptions, UserOutcome } from '../../lambda/services/rotate-user';
import { FakeClock } from './clock';
import { Faults } from './faults';
import { FakeIam, FakeVerifier } from './iam';
import { FakeLedger } from './ledger';
import { CapturingLogger } from './logger';
import { FakeNotifier, FakeNotifierOptions } from './notifier';
import { FakeOrganization } from './organization';
import { FakeQueue } from './queue';
import { FakeVault } from './vault';

export const ORG_SECRET_PREFIX = 'iam-key-rotation';
/** The central (delegated administrator) account that runs the functions. */
export const CENTRAL_ACCOUNT_ID = '999988887777';
const PLANNER_ROLE = `arn:aws:iam::${CENTRAL_ACCOUNT_ID}:role/iam-key-rotation-planner`;

/**
 * One account's view of the shared faults: every call is counted here (which account it was made
 * in) and in the shared Faults (the organization's log, where the shared injections and crashes
 * apply); a fault injected here hits this account only.
 */
export class AccountFaults extends Faults {
  constructor(private readonly shared: Faults) {
    super();
  }

  override around<T>(op: string, effect: () => T | Promise<T>): Promise<T> {
    return this.shared.around(op, () => super.around(op, effect));
  }
}

/** One member account: its IAM users and keys, its secrets, and the STS that accepts its keys. */
export class MemberAccount {
  /** The calls made in this account (IAM, Secrets Manager, STS), and faults for it alone. */
  readonly faults: AccountFaults;
  readonly iam: FakeIam;
  readonly vault: FakeVault;
  readonly verifier: FakeVerifier;

  constructor(
    readonly accountId: string,
    readonly name: string,
    readonly roleArn: string,
    shared: Faults,
    clock: FakeClock,
    /** The central ledger (for the invariant checks, which look up this account's records). */
    readonly ledger: FakeLedger,
    index: number,
  ) {
    this.faults = new AccountFaults(shared);
    this.iam = new FakeIam(clock, this.faults, accountId);
    // AWS access key ids are unique across accounts: start each account's key numbers apart.
    (this.iam as unknown as { keyCounter: number }).keyCounter = index * 1_000_000;
    this.vault = new FakeVault(clock, this.faults);
    // In a member account the secrets are written by the member role (its policy names it).
    this.vault.serviceRoleArn = roleArn;
    this.verifier = new FakeVerifier(this.iam, clock, this.faults);
  }

  secretName(userName: string): string {
    return secretNameFor(ORG_SECRET_PREFIX, this.accountId, userName);
  }

  /** Calls that change something in this account (the credential report's generation aside). */
  writes(): string[] {
    return this.faults.writes().filter((op) => op !== 'iam:GenerateCredentialReport');
  }
}

/**
 * STS GetCallerIdentity for the whole organization: a key is accepted by the account whose IAM
 * holds it (with that account's propagation delay), and the identity names that account.
 */
export class OrgVerifier implements KeyVerifier {
  constructor(
    private readonly members: ReadonlyMap<string, MemberAccount>,
    private readonly faults: Faults,
  ) {}

  callerIdentity(credentials: KeyCredentials): Promise<{ readonly arn: string; readonly account: string }> {
    for (const member of this.members.values()) {
      if (member.iam.findKey(credentials.accessKeyId)) return member.verifier.callerIdentity(credentials);
    }
    return this.faults.around('sts:GetCallerIdentity', () => {
      throw new CredentialsNotYetValidError(
        'InvalidClientTokenId: The security token included in the request is invalid.',
      );
    });
  }
}

/** How AssumeRole into an account fails. */
export type AccessFailure = 'no-role' | 'denied' | 'throttled' | 'suspended';

interface FailureRule {
  readonly mode: AccessFailure;
  remaining: number;
}

/**
 * The member roles: AssumeRole into `<account>/<memberRoleName>` with the run id as session name,
 * one session per account and run (reused by every later open, as MemberCredentials does), failures
 * not cached. AssumeRole is counted in the account's calls.
 */
export class FakeAccountAccess implements AccountAccess {
  /** Every session opened (one AssumeRole that succeeded), in order. */
  readonly sessions: { readonly accountId: string; readonly runId: string }[] = [];
  /** Every open refused, in order. */
  readonly refusals: { readonly accountId: string; readonly runId: string; readonly mode: AccessFailure }[] =
    [];
  private readonly failures = new Map<string, FailureRule>();
  private readonly opened = new Map<string, AccountPorts>();

  constructor(private readonly world: OrgWorld) {}

  /** AssumeRole into the account fails this way (`times` times; by default until `clear`). */
  fail(accountId: string, mode: AccessFailure, times = Number.POSITIVE_INFINITY): void {
    this.failures.set(accountId, { mode, remaining: times });
  }

  /** The failure is fixed: the role deployed or trusted again, STS calm, the account reinstated. */
  clear(accountId: string): void {
    const rule = this.failures.get(accountId);
    this.failures.delete(accountId);
    const account = this.world.organization.accounts.get(accountId);
    if (rule?.mode === 'suspended' && account) account.state = 'ACTIVE';
  }

  async open(accountId: string, runId: string): Promise<AccountPorts> {
    const key = `${accountId}\n${runId}`;
    const cached = this.opened.get(key);
    if (cached) return cached;
    const member = this.world.members.get(accountId);
    const roleArn = `arn:aws:iam::${accountId}:role/${this.world.organizationSettings.memberRoleName}`;
    const denied = () =>
      new MemberRoleAccessDeniedError(
        `sts:AssumeRole: AccessDenied: User: ${PLANNER_ROLE.replace(':iam::', ':sts::').replace(':role/', ':assumed-role/')}/${runId} is not authorized to perform: sts:AssumeRole on resource: ${roleArn}`,
        accountId,
        roleArn,
      );
    const faults = member?.faults ?? this.world.faults;
    const ports = await faults.around('sts:AssumeRole', () => {
      const rule = this.failures.get(accountId);
      if (rule && rule.remaining > 0) {
        rule.remaining--;
        this.refusals.push({ accountId, runId, mode: rule.mode });
        switch (rule.mode) {
          case 'throttled':
            throw new MemberSessionUnavailableError(
              `sts:AssumeRole: Throttling: Rate exceeded (role ${roleArn}, after the SDK's retries)`,
              accountId,
              roleArn,
            );
          case 'suspended': {
            const account = this.world.organization.accounts.get(accountId);
            if (account) account.state = 'SUSPENDED';
            throw denied();
          }
          case 'no-role':
          case 'denied':
            throw denied();
        }
      }
      if (!member) throw denied();
      return { accountId, iam: member.iam, vault: member.vault };
    });
    this.sessions.push({ accountId, runId });
    this.opened.set(key, ports);
    return ports;
  }
}

/** The planning queue (standard SQS) in memory: every message sent, in order. */
export class FakePlanningQueue implements PlanningQueue {
  readonly sent: PlanningMessage[] = [];
  /** Messages waiting for a planner, with how often SQS has delivered each. */
  readonly waiting: { readonly message: PlanningMessage; receiveCount: number }[] = [];

  constructor(private readonly faults: Faults) {}

  async send(messages: readonly PlanningMessage[]): Promise<void> {
    for (let start = 0; start < messages.length; start += 10) {
      const batch = messages.slice(start, start + 10);
      await this.faults.around('sqs:SendMessageBatch', () => {
        this.sent.push(...batch);
        this.waiting.push(...batch.map((message) => ({ message, receiveCount: 0 })));
      });
    }
  }
}

export interface OrgWorldOptions {
  readonly start?: string;
  readonly settings?: Partial<RotationSettings>;
  readonly rotationOptions?: Partial<RotationOptions>;
  readonly planOptions?: Partial<PlanAccountOptions>;
  readonly notifier?: FakeNotifierOptions;
}

/** How one account fared in one day. */
export interface AccountDay {
  readonly accountId: string;
  /** The planner's outcome of each delivery for the account, in order (retries, continuations). */
  readonly deliveries: MemberAccountOutcome[];
  /** The plans of its planned deliveries. */
  readonly plans: AccountPlan[];
  /** The rotator's outcome for each of its work messages. */
  readonly outcomes: UserOutcome[];
  /** Work messages the rotator failed (thrown), with why. */
  readonly failures: { readonly userName: string; readonly error: unknown }[];
}

export interface OrgDay {
  readonly runId: string;
  readonly dispatch: DispatchResult;
  readonly accounts: ReadonlyMap<string, AccountDay>;
  /** Planning messages that reached the dead-letter queue (retryable failures on every delivery). */
  readonly deadLetters: readonly PlanningMessage[];
  readonly workMessages: readonly WorkMessage[];
}

export interface RunDayOptions {
  readonly dryRun?: boolean;
  /** Users a planner invocation handles before it runs short of time (continuations); default no limit. */
  readonly usersPerPlannerInvocation?: number;
}

export class OrgWorld {
  readonly clock: FakeClock;
  readonly faults = new Faults();
  readonly organization: FakeOrganization;
  readonly members = new Map<string, MemberAccount>();
  readonly ledger: FakeLedger;
  readonly notifier: FakeNotifier;
  readonly logger = new CapturingLogger();
  readonly settings: RotationSettings;
  readonly access: FakeAccountAccess;
  readonly verifier: OrgVerifier;
  readonly planningQueue: FakePlanningQueue;
  readonly workQueue: FakeQueue;
  organizationSettings: OrganizationSettings = resolveOrganizationSettings({});
  private holderCounter = 0;

  constructor(private readonly options: OrgWorldOptions = {}) {
    this.clock = new FakeClock(options.start ?? '2026-01-01T02:00:00Z');
    this.organization = new FakeOrganization(this.faults);
    this.ledger = new FakeLedger(this.faults);
    this.notifier = new FakeNotifier(this.faults, options.notifier);
    this.settings = resolveSettings(options.settings ?? {});
    this.access = new FakeAccountAccess(this);
    this.verifier = new OrgVerifier(this.members, this.faults);
    this.planningQueue = new FakePlanningQueue(this.faults);
    this.workQueue = new FakeQueue(this.faults);
  }

  /** Creates an OU under `parentId` (the root by default). */
  addOu(parentId?: string): string {
    return this.organization.addOu(parentId);
  }

  /** Creates an account under `parentId` (the root by default), with its own IAM and Secrets Manager. */
  addAccount(
    parentId?: string,
    options: { name?: string; tags?: Record<string, string> } = {},
  ): MemberAccount {
    const accountId = this.organization.addAccount(parentId, options);
    const name = this.organization.accounts.get(accountId)!.name;
    const roleArn = `arn:aws:iam::${accountId}:role/${this.organizationSettings.memberRoleName}`;
    const member = new MemberAccount(
      accountId,
      name,
      roleArn,
      this.faults,
      this.clock,
      this.ledger,
      this.members.size + 1,
    );
    this.members.set(accountId, member);
    return member;
  }

  member(accountId: string): MemberAccount {
    const member = this.members.get(accountId);
    if (!member) throw new Error(`no member account ${accountId}`);
    return member;
  }

  /** The organization settings (validated as the construct does). */
  configure(input: unknown): void {
    this.organizationSettings = resolveOrganizationSettings(input);
  }

  /** The scheduled pipeline of organization mode for one day (see the header). */
  async runDay(options: RunDayOptions = {}): Promise<OrgDay> {
    const dryRun = options.dryRun ?? false;
    const runId = this.clock.now().toISOString();
    const dispatch = await dispatchAccounts(
      { plannedAt: runId, dryRun },
      {
        directory: this.organization,
        settings: this.organizationSettings,
        queue: this.planningQueue,
        logger: this.logger,
      },
    );
    const accounts = new Map<string, AccountDay>();
    const day = (accountId: string): AccountDay => {
      let found = accounts.get(accountId);
      if (!found) {
        found = { accountId, deliveries: [], plans: [], outcomes: [], failures: [] };
        accounts.set(accountId, found);
      }
      return found;
    };
    const deadLetters: PlanningMessage[] = [];
    const workFrom = this.workQueue.messages.length;

    // The planners: SQS delivers each planning message until it is consumed or has been received
    // PLANNING_MAX_RECEIVE_COUNT times (then the dead-letter queue takes it).
    for (let next = this.planningQueue.waiting.shift(); next; next = this.planningQueue.waiting.shift()) {
      next.receiveCount++;
      const { message } = next;
      const outcome = await planMemberAccount(message, {
        access: this.access,
        ledger: this.ledger,
        queue: this.workQueue,
        clock: this.clock,
        logger: this.logger,
        settings: this.settings,
        notifier: this.notifier,
        options: this.options.planOptions,
        timeLeftMs: plannerBudget(options.usersPerPlannerInvocation),
        lastAttempt: next.receiveCount >= PLANNING_MAX_RECEIVE_COUNT,
      });
      const account = day(message.accountId);
      account.deliveries.push(outcome);
      if (outcome.status === 'planned') {
        account.plans.push(outcome.plan);
        if (outcome.plan.continueAfter !== undefined) {
          // As the planner handler does: the run continues in a new message, not a self-invocation.
          await this.planningQueue.send([{ ...message, startAfter: outcome.plan.continueAfter }]);
        }
      } else if (outcome.retryable) {
        // A batch item failure: SQS delivers the message again, or gives it to the dead-letter queue.
        if (next.receiveCount < PLANNING_MAX_RECEIVE_COUNT) this.planningQueue.waiting.push(next);
        else deadLetters.push(message);
      }
    }

    // The rotators: one user per work message, in the message's account.
    const workMessages = this.workQueue.messages.slice(workFrom);
    for (const message of workMessages) {
      const account = day(message.accountId);
      try {
        const ports = await this.access.open(message.accountId, message.plannedAt);
        account.outcomes.push(
          await rotateUser(
            { accountId: message.accountId, userName: message.userName, dryRun: message.dryRun },
            {
              iam: ports.iam,
              vault: ports.vault,
              verifier: this.verifier,
              notifier: this.notifier,
              ledger: this.ledger,
              clock: this.clock,
              logger: this.logger,
              settings: this.settings,
              secretPrefix: ORG_SECRET_PREFIX,
              holderId: `rotator-${++this.holderCounter}`,
              options: this.options.rotationOptions,
            },
          ),
        );
      } catch (error) {
        account.failures.push({ userName: message.userName, error });
      }
    }
    return { runId, dispatch, accounts, deadLetters, workMessages };
  }
}

/** A planner invocation's time left: plenty for `users` users, then short (undefined: no limit). */
function plannerBudget(users: number | undefined): (() => number) | undefined {
  if (users === undefined) return undefined;
  let asked = 0;
  return () => (++asked < users ? 900_000 : 0);
}
