/** One simulated AWS account with every fake wired to the real services. */
import { resolveSettings, RotationSettings } from '../../lambda/domain/settings';
import { secretNameFor } from '../../lambda/domain/naming';
import { AccountPlan, planAccount, PlanAccountOptions } from '../../lambda/services/plan-account';
import { rotateUser, RotationDeps, RotationOptions, UserOutcome } from '../../lambda/services/rotate-user';
import { FakeClock } from './clock';
import { Faults } from './faults';
import { FakeIam, FakeVerifier } from './iam';
import { FakeLedger } from './ledger';
import { CapturingLogger } from './logger';
import { FakeNotifier, FakeNotifierOptions } from './notifier';
import { FakeVault } from './vault';

export const SECRET_PREFIX = 'iam-key-rotation';

export interface WorldOptions {
  readonly start?: string;
  readonly settings?: Partial<RotationSettings>;
  readonly rotationOptions?: Partial<RotationOptions>;
  readonly planOptions?: Partial<PlanAccountOptions>;
  /** Who is subscribed to the topics from the start (default recipients, operators). */
  readonly notifier?: FakeNotifierOptions;
}

export class World {
  readonly clock: FakeClock;
  readonly faults = new Faults();
  readonly iam: FakeIam;
  readonly verifier: FakeVerifier;
  readonly vault: FakeVault;
  readonly notifier: FakeNotifier;
  readonly ledger: FakeLedger;
  readonly logger = new CapturingLogger();
  readonly settings: RotationSettings;
  private holderCounter = 0;

  constructor(private readonly options: WorldOptions = {}) {
    this.clock = new FakeClock(options.start ?? '2026-01-01T02:00:00Z');
    this.iam = new FakeIam(this.clock, this.faults);
    this.verifier = new FakeVerifier(this.iam, this.clock, this.faults);
    this.vault = new FakeVault(this.clock, this.faults);
    this.notifier = new FakeNotifier(this.faults, options.notifier);
    this.ledger = new FakeLedger(this.faults);
    this.settings = resolveSettings(options.settings ?? {});
  }

  get accountId(): string {
    return this.iam.accountId;
  }

  secretName(userName: string): string {
    return secretNameFor(SECRET_PREFIX, this.accountId, userName);
  }

  rotationDeps(): RotationDeps {
    this.holderCounter++;
    return {
      iam: this.iam,
      verifier: this.verifier,
      vault: this.vault,
      notifier: this.notifier,
      ledger: this.ledger,
      clock: this.clock,
      logger: this.logger,
      settings: this.settings,
      secretPrefix: SECRET_PREFIX,
      holderId: `run-${this.holderCounter}`,
      options: this.options.rotationOptions,
    };
  }

  plan(dryRun = false, options: Partial<PlanAccountOptions> = {}): Promise<AccountPlan> {
    return planAccount(
      { accountId: this.accountId, dryRun },
      {
        iam: this.iam,
        ledger: this.ledger,
        clock: this.clock,
        logger: this.logger,
        settings: this.settings,
        options: { ...this.options.planOptions, ...options },
      },
    );
  }

  rotate(userName: string, dryRun = false): Promise<UserOutcome> {
    return rotateUser({ accountId: this.accountId, userName, dryRun }, this.rotationDeps());
  }

  /** The scheduled pipeline for one day: plan, then rotate each user with work (as the queue would). */
  async runDay(): Promise<{
    plan: AccountPlan;
    outcomes: UserOutcome[];
    failures: { userName: string; error: unknown }[];
  }> {
    const plan = await this.plan(false);
    const outcomes: UserOutcome[] = [];
    const failures: { userName: string; error: unknown }[] = [];
    for (const message of plan.messages) {
      try {
        outcomes.push(await this.rotate(message.userName, message.dryRun));
      } catch (error) {
        failures.push({ userName: message.userName, error });
      }
    }
    return { plan, outcomes, failures };
  }
}
