/**
 * The CLI wired to an organization in memory: a FakeOrganization (nested OUs), member accounts that
 * each hold their own FakeIam and FakeVault, and a FakeAccountAccess standing for the member roles
 * (an account is opened, or refused as STS refuses it). The central account's ledger, notifier and
 * clock are one World's, as the central stack's are for every account.
 */
import { CredentialsNotYetValidError, MemberRoleAccessDeniedError } from '../../../lambda/domain/errors';
import type { KeyCredentials } from '../../../lambda/domain/model';
import type { AccountAccess, AccountPorts, KeyVerifier } from '../../../lambda/ports';
import type { CliOptions } from '../../../cli/args';
import type { Resources } from '../../../cli/connect';
import { settingsFor } from '../../../cli/connect';
import type { Wiring } from '../../../cli/main';
import { Faults } from '../../fakes/faults';
import { FakeIam, FakeVerifier } from '../../fakes/iam';
import { FakeOrganization } from '../../fakes/organization';
import { FakeVault } from '../../fakes/vault';
import { SECRET_PREFIX, World } from '../../fakes/world';
import { ADMIN_SESSION } from './harness';

/** The central (delegated administrator) account the operator runs keyrot in. */
export const CENTRAL_ACCOUNT = '999988887777';

/** One member account: its own IAM (users, keys), its own Secrets Manager, its own STS. */
export interface MemberFake {
  readonly accountId: string;
  readonly name: string;
  readonly faults: Faults;
  readonly iam: FakeIam;
  readonly vault: FakeVault;
  readonly verifier: FakeVerifier;
}

/** The member roles: opens an account's ports, or fails for it as STS AssumeRole would. */
export class FakeAccountAccess implements AccountAccess {
  readonly opened: { accountId: string; runId: string }[] = [];
  /** An account's AssumeRole failure (role missing, denied, throttled, account suspended). */
  readonly failures = new Map<string, Error>();

  constructor(
    private readonly members: ReadonlyMap<string, MemberFake>,
    private readonly roleName: () => string,
  ) {}

  open(accountId: string, runId: string): Promise<AccountPorts> {
    this.opened.push({ accountId, runId });
    const failure = this.failures.get(accountId);
    if (failure) return Promise.reject(failure);
    const member = this.members.get(accountId);
    if (!member) {
      const roleArn = `arn:aws:iam::${accountId}:role/${this.roleName()}`;
      return Promise.reject(
        new MemberRoleAccessDeniedError(
          `AccessDenied: sts:AssumeRole ${roleArn} (account ${accountId})`,
          accountId,
          roleArn,
        ),
      );
    }
    return Promise.resolve({ accountId, iam: member.iam, vault: member.vault });
  }
}

/** STS for every member account: a key is verified by the account that issued it. */
class OrganizationVerifier implements KeyVerifier {
  constructor(private readonly members: ReadonlyMap<string, MemberFake>) {}

  callerIdentity(credentials: KeyCredentials) {
    for (const member of this.members.values()) {
      const key = member.iam.findKey(credentials.accessKeyId);
      // Key ids restart in each fake account: the secret says which account issued the key.
      if (key && key.secretAccessKey === credentials.secretAccessKey) {
        return member.verifier.callerIdentity(credentials);
      }
    }
    return Promise.reject(
      new CredentialsNotYetValidError(
        'InvalidClientTokenId: The security token included in the request is invalid.',
      ),
    );
  }
}

export class CliOrganization {
  /** The central account: ledger, notifier, clock (its IAM must never be read in organization mode). */
  readonly central: World;
  readonly organization = new FakeOrganization();
  readonly members = new Map<string, MemberFake>();
  /** The member role name keyrot asked the access for, once per command. */
  readonly roleNames: string[] = [];
  private roleName = 'iam-key-rotation-member';
  readonly access = new FakeAccountAccess(this.members, () => this.roleName);
  readonly verifier = new OrganizationVerifier(this.members);

  constructor(start = '2026-03-01T09:00:00Z') {
    this.central = new World({ start });
  }

  /** A member account under `parentId` (the root by default), with its own IAM and vault. */
  addMember(
    parentId: string = this.organization.rootId,
    options: { name?: string; state?: string; tags?: Record<string, string> } = {},
  ): MemberFake {
    const accountId = this.organization.addAccount(parentId, options);
    const faults = new Faults();
    const iam = new FakeIam(this.central.clock, faults, accountId);
    const member: MemberFake = {
      accountId,
      name: this.organization.accounts.get(accountId)!.name,
      faults,
      iam,
      vault: new FakeVault(this.central.clock, faults),
      verifier: new FakeVerifier(iam, this.central.clock, faults),
    };
    this.members.set(accountId, member);
    return member;
  }

  member(accountId: string): MemberFake {
    const member = this.members.get(accountId);
    if (!member) throw new Error(`no member account ${accountId}`);
    return member;
  }

  /** The CLI's wiring: the operator in the central account, as the stack's admin role. */
  wiring(
    resources: Resources = {
      table: 'ledger',
      topicArn: 'topic',
      secretPrefix: SECRET_PREFIX,
      kmsKeyArn: 'key',
    },
  ): Wiring {
    const central = this.central;
    return {
      connect: (options: CliOptions) =>
        Promise.resolve({
          accountId: CENTRAL_ACCOUNT,
          caller: { account: CENTRAL_ACCOUNT, arn: ADMIN_SESSION(CENTRAL_ACCOUNT) },
          clock: central.clock,
          settings: settingsFor(options, resources),
          resources,
          iam: central.iam,
          ledger: central.ledger,
        }),
      forWriting: (connection) => ({
        ...connection,
        secretPrefix: SECRET_PREFIX,
        verifier: this.verifier,
        vault: central.vault,
        notifier: central.notifier,
      }),
      organization: () => this.organization,
      accountAccess: (_connection, _options, memberRoleName) => {
        this.roleNames.push(memberRoleName);
        this.roleName = memberRoleName;
        return this.access;
      },
    };
  }
}
