/**
 * The AccountAccess port: the IAM and Secrets Manager adapters of the account a unit of work is for.
 *
 * - MemberAccountAccess (organization mode): any member account, through its member role. The
 *   adapters are the same as in one account, built with clients whose credentials are the member
 *   role's session (MemberCredentials: one session per account, named after the run); the vault
 *   encrypts with the member account's own key (by alias, which KMS resolves in the account the
 *   call acts in) and names the member role as the service that writes the secrets.
 * - LocalAccountAccess (one account): the function's own adapters, for its own account only.
 */
import { IAMClient } from '@aws-sdk/client-iam';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { STSClient } from '@aws-sdk/client-sts';
import { InvalidMessageError, KeyRotationError } from '../domain/errors';
import type { AccountAccess, AccountPorts } from '../ports';
import { IamAdapter } from './iam';
import { MemberCredentials } from './member-credentials';
import { SDK_CLIENT_CONFIG } from './sdk-config';
import { SecretsManagerVault } from './secrets-manager';

const ACCOUNT_ID = /^\d{12}$/;

export interface MemberAccountAccessOptions {
  /** Name of the role every member account holds for the service. */
  readonly memberRoleName: string;
  /** The organization's partition (`aws`, `aws-cn`, `aws-us-gov`...). */
  readonly partition: string;
  /** The alias of each member account's own KMS key for secrets ('alias/iam-key-rotation-member'). */
  readonly memberKeyAlias: string;
  /** An admin role that may also read every secret (written into each secret's policy). */
  readonly adminRoleArn?: string;
  /** Roles and users that may also read every secret's value. */
  readonly readerArns?: readonly string[];
  /** A seam for tests. @default MemberCredentials built from these options (its STS client with clientConfig) */
  readonly credentials?: MemberCredentials;
  /**
   * Extra SDK client configuration (an endpoint for an emulator), laid over SDK_CLIENT_CONFIG for
   * every client built here. @default SDK_CLIENT_CONFIG alone
   */
  readonly clientConfig?: object;
}

interface Opened {
  readonly runId: string;
  readonly ports: AccountPorts;
}

export class MemberAccountAccess implements AccountAccess {
  private readonly credentials: MemberCredentials;
  /** The ports of each account opened in this container, for the run they were opened for. */
  private readonly opened = new Map<string, Opened>();

  constructor(private readonly options: MemberAccountAccessOptions) {
    this.credentials =
      options.credentials ??
      new MemberCredentials(
        { memberRoleName: options.memberRoleName, partition: options.partition },
        new STSClient(this.clientConfig()),
      );
  }

  private clientConfig(): Record<string, unknown> {
    return { ...SDK_CLIENT_CONFIG, ...this.options.clientConfig };
  }

  /**
   * The account's ports. The member role is assumed here (or its cached session reused), so that an
   * account that cannot be reached fails at open with MemberRoleAccessDeniedError,
   * MemberAccountUnavailableError or MemberSessionUnavailableError, before any work starts.
   */
  async open(accountId: string, runId: string): Promise<AccountPorts> {
    if (!ACCOUNT_ID.test(accountId)) {
      throw new InvalidMessageError(`"${accountId}" is not an AWS account id (12 digits)`);
    }
    const provider = this.credentials.forAccount(accountId, runId);
    await provider();
    const known = this.opened.get(accountId);
    if (known && known.runId === runId) return known.ports;

    // Every client of the account signs with the member role's session (refreshed by the provider
    // before it expires); a new run gets new clients, so that its session carries its own name.
    const config = { ...this.clientConfig(), credentials: provider };
    const iam = new IamAdapter(
      new IAMClient(config),
      // CreateAccessKey is not idempotent: one attempt, as IamAdapter's own default client.
      new IAMClient({ ...config, maxAttempts: 1 }),
    );
    const vault = new SecretsManagerVault(
      {
        kmsKeyArn: this.options.memberKeyAlias,
        serviceRoleArn: this.credentials.roleArn(accountId),
        ...(this.options.adminRoleArn !== undefined ? { adminRoleArn: this.options.adminRoleArn } : {}),
        ...(this.options.readerArns !== undefined ? { readerArns: this.options.readerArns } : {}),
      },
      new SecretsManagerClient(config),
    );
    const ports: AccountPorts = { accountId, iam, vault };
    this.opened.set(accountId, { runId, ports });
    return ports;
  }
}

/**
 * One account: the function's own adapters, for its own account only. The account may be learnt
 * after construction (handlers read it from context.invokedFunctionArn at the first invocation).
 */
export class LocalAccountAccess implements AccountAccess {
  constructor(
    private readonly ports: Omit<AccountPorts, 'accountId'>,
    private ownAccountId?: string,
  ) {}

  withAccount(accountId: string): void {
    this.ownAccountId = accountId;
  }

  open(accountId: string, _runId: string): Promise<AccountPorts> {
    return Promise.resolve().then(() => this.own(accountId));
  }

  private own(accountId: string): AccountPorts {
    if (this.ownAccountId === undefined) {
      throw new KeyRotationError(
        'LocalAccountAccess does not know its own account yet: call withAccount (from the invoked function ARN) first',
      );
    }
    if (accountId !== this.ownAccountId) {
      throw new InvalidMessageError(
        `message is for account ${accountId} but this function works in ${this.ownAccountId}`,
      );
    }
    return { accountId, iam: this.ports.iam, vault: this.ports.vault };
  }
}
