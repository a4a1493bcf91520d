/**
 * IAM and STS in memory, behaving like AWS where the engine depends on it: at most two keys per user
 * (LimitExceeded), the secret returned only by CreateAccessKey, last-used dates, the credential
 * report's CSV columns and its four-hour reuse, paginated listing, and keys that STS accepts only
 * after a propagation delay.
 */
import {
  CredentialReportBusyError,
  CredentialReportUnavailableError,
  CredentialsNotYetValidError,
  KeyLimitExceededError,
  NoSuchKeyError,
  NoSuchUserError,
} from '../../lambda/domain/errors';
import type { KeyCredentials, KeyStatus, NewAccessKey } from '../../lambda/domain/model';
import { MS_PER_DAY } from '../../lambda/domain/time';
import type {
  CredentialReportState,
  IamDirectory,
  KeyVerifier,
  UserDetails,
  UserSummary,
} from '../../lambda/ports';
import type { FakeClock } from './clock';
import { Faults } from './faults';

export interface FakeKey {
  accessKeyId: string;
  secretAccessKey: string;
  status: KeyStatus;
  createDate: Date;
  lastUsedDate?: Date;
  /** Created through CreateAccessKey (by the code under test), not seeded by the test. */
  createdByApi: boolean;
}

export interface FakeUser {
  userName: string;
  path: string;
  arn: string;
  tags: Record<string, string>;
  keys: FakeKey[];
  createDate: Date;
}

const REPORT_HEADER =
  'user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,' +
  'access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,' +
  'access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,' +
  'cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated';

function reportTime(date: Date | undefined): string {
  return date ? date.toISOString().replace('.000Z', '+00:00') : 'N/A';
}

export class FakeIam implements IamDirectory {
  readonly users = new Map<string, FakeUser>();
  /** Every secret CreateAccessKey ever returned, so that tests can search outputs for them. */
  readonly issuedSecrets: string[] = [];
  /** Calls of Generate needed after a start before the report is COMPLETE (0: a fresh report exists). */
  reportGenerationPolls = 1;
  /** When false, there is no report to get (as with a missing permission or an unsupported partition). */
  reportAvailable = true;
  /** GenerateCredentialReport calls refused with LimitExceeded (no capacity for a report now) before one is accepted. */
  reportGenerationRefusals = 0;
  private report?: { csv: string; generatedAt: Date };
  private generating?: { pollsLeft: number };
  private keyCounter = 0;
  pageSize = 100;

  constructor(
    private readonly clock: FakeClock,
    readonly faults: Faults,
    readonly accountId = '111122223333',
  ) {}

  // ---- test set-up helpers (no faults, not counted) ----

  addUser(userName: string, options: { path?: string; tags?: Record<string, string> } = {}): FakeUser {
    const path = options.path ?? '/';
    const user: FakeUser = {
      userName,
      path,
      arn: `arn:aws:iam::${this.accountId}:user${path}${userName}`,
      tags: { ...options.tags },
      keys: [],
      createDate: new Date(this.clock.now().getTime() - 400 * MS_PER_DAY),
    };
    this.users.set(userName, user);
    return user;
  }

  /** Seeds a key `ageDays` old; returns it with its secret (as the workload would know it). */
  addKey(
    userName: string,
    options: { ageDays: number; status?: KeyStatus; lastUsedDaysAgo?: number; ageMs?: number },
  ): FakeKey {
    const user = this.mustUser(userName);
    const now = this.clock.now().getTime();
    const key: FakeKey = {
      ...this.newKeyMaterial(),
      status: options.status ?? 'Active',
      createDate: new Date(now - options.ageDays * MS_PER_DAY - (options.ageMs ?? 0)),
      lastUsedDate:
        options.lastUsedDaysAgo === undefined
          ? undefined
          : new Date(now - options.lastUsedDaysAgo * MS_PER_DAY),
      createdByApi: false,
    };
    user.keys.push(key);
    return key;
  }

  /** A workload signs a request with these credentials. Returns false if AWS would reject them. */
  use(credentials: KeyCredentials, at: Date = this.clock.now()): boolean {
    const key = this.findKey(credentials.accessKeyId);
    if (!key || key.status !== 'Active' || key.secretAccessKey !== credentials.secretAccessKey) return false;
    key.lastUsedDate = at;
    return true;
  }

  findKey(accessKeyId: string): FakeKey | undefined {
    for (const user of this.users.values()) {
      const key = user.keys.find((candidate) => candidate.accessKeyId === accessKeyId);
      if (key) return key;
    }
    return undefined;
  }

  ownerOfKey(accessKeyId: string): FakeUser | undefined {
    return [...this.users.values()].find((user) => user.keys.some((key) => key.accessKeyId === accessKeyId));
  }

  /** Keys created through the API (by the service) that still exist. */
  apiCreatedKeys(): { user: FakeUser; key: FakeKey }[] {
    return [...this.users.values()].flatMap((user) =>
      user.keys.filter((key) => key.createdByApi).map((key) => ({ user, key })),
    );
  }

  snapshot(): string {
    return JSON.stringify(
      [...this.users.values()].map((user) => ({
        user: user.userName,
        tags: user.tags,
        keys: user.keys.map((key) => ({ id: key.accessKeyId, status: key.status, created: key.createDate })),
      })),
    );
  }

  private newKeyMaterial() {
    this.keyCounter++;
    const accessKeyId = `AKIAFAKE${this.keyCounter.toString(36).toUpperCase().padStart(12, '0')}`;
    const secretAccessKey =
      `fakeSecret/${this.keyCounter.toString(36)}/${Math.random().toString(36).slice(2)}`.padEnd(40, 'Q');
    return { accessKeyId, secretAccessKey };
  }

  private mustUser(userName: string): FakeUser {
    const user = this.users.get(userName);
    if (!user) throw new NoSuchUserError(`The user with name ${userName} cannot be found.`);
    return user;
  }

  // ---- the port ----

  generateCredentialReport(): Promise<CredentialReportState> {
    return this.faults.around('iam:GenerateCredentialReport', () => {
      if (this.reportGenerationRefusals > 0) {
        this.reportGenerationRefusals--;
        throw new CredentialReportBusyError(
          'iam:GenerateCredentialReport: LimitExceededException: No more capacity to launch new report generation tasks',
        );
      }
      const now = this.clock.now();
      if (this.generating) {
        if (this.generating.pollsLeft > 0) {
          this.generating.pollsLeft--;
          return 'INPROGRESS';
        }
        this.generating = undefined;
        this.report = { csv: this.renderReport(), generatedAt: now };
        return 'COMPLETE';
      }
      if (this.report && now.getTime() - this.report.generatedAt.getTime() < 4 * 3_600_000) return 'COMPLETE';
      if (this.reportGenerationPolls <= 0) {
        // As if a report had been generated moments ago by someone else.
        this.report = { csv: this.renderReport(), generatedAt: now };
        return 'COMPLETE';
      }
      this.generating = { pollsLeft: this.reportGenerationPolls - 1 };
      return 'STARTED';
    });
  }

  getCredentialReport(): Promise<{ csv: string; generatedAt: Date }> {
    return this.faults.around('iam:GetCredentialReport', () => {
      if (!this.report || !this.reportAvailable) {
        throw new CredentialReportUnavailableError(
          'ReportNotPresent: no credential report has been generated',
        );
      }
      return this.report;
    });
  }

  renderReport(): string {
    const lines = [REPORT_HEADER];
    lines.push(
      `<root_account>,arn:aws:iam::${this.accountId}:root,2020-01-01T00:00:00+00:00,not_supported,2026-01-01T00:00:00+00:00,not_supported,not_supported,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A`,
    );
    for (const user of this.users.values()) {
      const keys = [...user.keys].sort((a, b) => a.createDate.getTime() - b.createDate.getTime());
      const slot = (index: number) => {
        const key = keys[index];
        if (!key) return 'false,N/A,N/A,N/A,N/A';
        const used = key.lastUsedDate;
        return [
          key.status === 'Active' ? 'true' : 'false',
          reportTime(key.createDate),
          reportTime(used),
          used ? 'us-east-1' : 'N/A',
          used ? 'sts' : 'N/A',
        ].join(',');
      };
      lines.push(
        [
          user.userName,
          user.arn,
          reportTime(user.createDate),
          'false',
          'N/A',
          'N/A',
          'N/A',
          'false',
          slot(0),
          slot(1),
          'false,N/A,false,N/A',
        ].join(','),
      );
    }
    return lines.join('\n');
  }

  async listUsers(): Promise<UserSummary[]> {
    const all = [...this.users.values()];
    const result: UserSummary[] = [];
    for (let start = 0; start === 0 || start < all.length; start += this.pageSize) {
      const page = await this.faults.around('iam:ListUsers', () => all.slice(start, start + this.pageSize));
      result.push(...page.map((user) => ({ userName: user.userName, arn: user.arn, path: user.path })));
    }
    return result;
  }

  getUser(userName: string): Promise<UserDetails> {
    return this.faults.around('iam:GetUser', () => {
      const user = this.mustUser(userName);
      return { userName: user.userName, arn: user.arn, path: user.path, tags: { ...user.tags } };
    });
  }

  listAccessKeys(userName: string) {
    return this.faults.around('iam:ListAccessKeys', () =>
      this.mustUser(userName).keys.map((key) => ({
        accessKeyId: key.accessKeyId,
        status: key.status,
        createDate: key.createDate,
      })),
    );
  }

  getAccessKeyLastUsed(accessKeyId: string) {
    return this.faults.around('iam:GetAccessKeyLastUsed', () => {
      const key = this.findKey(accessKeyId);
      if (!key) throw new NoSuchKeyError(`The Access Key with id ${accessKeyId} cannot be found`);
      return key.lastUsedDate;
    });
  }

  createAccessKey(userName: string): Promise<NewAccessKey> {
    return this.faults.around('iam:CreateAccessKey', () => {
      const user = this.mustUser(userName);
      if (user.keys.length >= 2) {
        throw new KeyLimitExceededError(`Cannot exceed quota for AccessKeysPerUser: 2 (${userName})`);
      }
      const key: FakeKey = {
        ...this.newKeyMaterial(),
        status: 'Active',
        createDate: this.clock.now(),
        createdByApi: true,
      };
      user.keys.push(key);
      this.issuedSecrets.push(key.secretAccessKey);
      return {
        userName,
        accessKeyId: key.accessKeyId,
        secretAccessKey: key.secretAccessKey,
        createDate: key.createDate,
      };
    });
  }

  updateAccessKey(userName: string, accessKeyId: string, status: KeyStatus): Promise<void> {
    return this.faults.around('iam:UpdateAccessKey', () => {
      const key = this.mustUser(userName).keys.find((candidate) => candidate.accessKeyId === accessKeyId);
      if (!key) throw new NoSuchKeyError(`The Access Key with id ${accessKeyId} cannot be found`);
      key.status = status;
    });
  }

  deleteAccessKey(userName: string, accessKeyId: string): Promise<void> {
    return this.faults.around('iam:DeleteAccessKey', () => {
      const user = this.mustUser(userName);
      const index = user.keys.findIndex((candidate) => candidate.accessKeyId === accessKeyId);
      if (index < 0) throw new NoSuchKeyError(`The Access Key with id ${accessKeyId} cannot be found`);
      user.keys.splice(index, 1);
    });
  }
}

/** STS GetCallerIdentity against the fake IAM: a new key is accepted only after it has propagated. */
export class FakeVerifier implements KeyVerifier {
  constructor(
    private readonly iam: FakeIam,
    private readonly clock: FakeClock,
    private readonly faults: Faults,
    public propagationMs = 8_000,
  ) {}

  callerIdentity(credentials: KeyCredentials) {
    return this.faults.around('sts:GetCallerIdentity', () => {
      const key = this.iam.findKey(credentials.accessKeyId);
      const user = this.iam.ownerOfKey(credentials.accessKeyId);
      const propagated = key && this.clock.now().getTime() - key.createDate.getTime() >= this.propagationMs;
      if (!key || !user || !propagated || !this.iam.use(credentials)) {
        throw new CredentialsNotYetValidError(
          'InvalidClientTokenId: The security token included in the request is invalid.',
        );
      }
      return { arn: user.arn, account: this.iam.accountId };
    });
  }
}
