/**
 * The AccountAccess port in organization mode: the IAM and Secrets Manager adapters of any member
 * account, through its member role. The adapters are the same as in one account, built with clients
 * whose credentials are the member role's session (MemberCredentials: one session per account, named
 * after the run); the vault encrypts with the member account's own key (by alias, which KMS resolves
 * in the account the call acts in) and names the member role as the service that writes the secrets.
 * (In one account the functions use their own adapters: the rotator checks a message's account itself.)
 */
import { IAMClient } from '@aws-sdk/client-iam';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { STSClient } from '@aws-sdk/client-sts';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { ConfigError, InvalidMessageError } from '../domain/errors';
import type { AccessKeyVault, AccountAccess, AccountPorts } from '../ports';
import { IamAdapter } from './iam';
import { MemberCredentials } from './member-credentials';
import { SDK_CLIENT_CONFIG } from './sdk-config';
import { SecretsManagerVault } from './secrets-manager';

const ACCOUNT_ID = /^\d{12}$/;

/**
 * How many accounts' ports (and their SDK clients) a container keeps. A long-lived container may work
 * in a thousand accounts over a day; the ones it works in now are the ones it needs.
 */
export const DEFAULT_MAX_OPEN_ACCOUNTS = 50;
/** Sockets the shared handler keeps per host (the SDK's own default for one client). */
const MAX_SOCKETS = 50;

export interface MemberAccountAccessOptions {
  /** Name of the role every member account holds for the service. */
  readonly memberRoleName: string;
  /** The organization's partition (`aws`, `aws-cn`, `aws-us-gov`...). */
  readonly partition: string;
  /**
   * The alias of each member account's own KMS key for secrets ('alias/iam-key-rotation-member').
   * Without it the accounts are opened for IAM only (the planner): every call of their vault is refused.
   * @default none
   */
  readonly memberKeyAlias?: string;
  /** An admin role that may also read every secret (written into each secret's policy). */
  readonly adminRoleArn?: string;
  /** Roles and users that may also read every secret's value. */
  readonly readerArns?: readonly string[];
  /** A seam for tests. @default MemberCredentials built from these options (its STS client with clientConfig) */
  readonly credentials?: MemberCredentials;
  /**
   * Extra SDK client configuration (an endpoint for an emulator), laid over SDK_CLIENT_CONFIG for
   * every client built here. A `requestHandler` given as a handler (not options) is shared as it is.
   * @default SDK_CLIENT_CONFIG alone
   */
  readonly clientConfig?: object;
  /** How many accounts' ports are kept; the least recently opened beyond it are dropped. @default 50 */
  readonly maxOpenAccounts?: number;
}

interface Opened {
  readonly runId: string;
  readonly ports: AccountPorts;
}

/** A request handler instance (rather than the options of one). */
function isHandler(value: unknown): value is { handle: unknown } {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { handle?: unknown }).handle === 'function'
  );
}

/**
 * The vault of an account opened for IAM only: refuses every call, so that a caller that was not
 * given the member key alias fails loudly instead of writing secrets with a made-up key.
 */
function iamOnlyVault(accountId: string): AccessKeyVault {
  const refuse = (): Promise<never> =>
    Promise.reject(
      new ConfigError([
        `the vault of account ${accountId} was used, but MemberAccountAccess opened it for IAM only (no memberKeyAlias, as for the planner): give memberKeyAlias to read or write secrets in member accounts`,
      ]),
    );
  return { describe: refuse, store: refuse, promote: refuse, read: refuse, settlePolicy: refuse };
}

export class MemberAccountAccess implements AccountAccess {
  private readonly credentials: MemberCredentials;
  /**
   * The ports of the accounts opened most recently in this container, for the run they were opened
   * for; oldest first (a Map keeps insertion order, and an account is moved to the end when opened).
   */
  private readonly opened = new Map<string, Opened>();
  private readonly maxOpenAccounts: number;
  /**
   * One HTTP handler (one keep-alive connection pool) for every client built here: clients of
   * dropped accounts hold no sockets, and calls to the same endpoint from many accounts share them.
   */
  private readonly requestHandler: unknown;

  constructor(private readonly options: MemberAccountAccessOptions) {
    this.maxOpenAccounts = options.maxOpenAccounts ?? DEFAULT_MAX_OPEN_ACCOUNTS;
    if (!Number.isInteger(this.maxOpenAccounts) || this.maxOpenAccounts < 1) {
      throw new ConfigError([`maxOpenAccounts ${this.maxOpenAccounts} must be a whole number of at least 1`]);
    }
    const given = (options.clientConfig as { requestHandler?: unknown } | undefined)?.requestHandler;
    this.requestHandler = isHandler(given)
      ? given
      : new NodeHttpHandler({
          ...SDK_CLIENT_CONFIG.requestHandler,
          ...(typeof given === 'object' && given !== null ? given : {}),
          // Keep-alive (the SDK's default for one client, said here because the pool is shared).
          httpAgent: { keepAlive: true, maxSockets: MAX_SOCKETS },
          httpsAgent: { keepAlive: true, maxSockets: MAX_SOCKETS },
        });
    this.credentials =
      options.credentials ??
      new MemberCredentials(
        { memberRoleName: options.memberRoleName, partition: options.partition },
        new STSClient(this.clientConfig()),
      );
  }

  private clientConfig(): Record<string, unknown> {
    return { ...SDK_CLIENT_CONFIG, ...this.options.clientConfig, requestHandler: this.requestHandler };
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
    if (known && known.runId === runId) {
      this.keep(accountId, known);
      return known.ports;
    }

    // Every client of the account signs with the member role's session (refreshed by the provider
    // before it expires); a new run gets new clients, so that its session carries its own name.
    const config = { ...this.clientConfig(), credentials: provider };
    const iam = new IamAdapter(
      new IAMClient(config),
      // CreateAccessKey is not idempotent: one attempt, as IamAdapter's own default client.
      new IAMClient({ ...config, maxAttempts: 1 }),
    );
    const memberKeyAlias = this.options.memberKeyAlias;
    const vault =
      memberKeyAlias === undefined
        ? iamOnlyVault(accountId)
        : new SecretsManagerVault(
            {
              kmsKeyArn: memberKeyAlias,
              serviceRoleArn: this.credentials.roleArn(accountId),
              ...(this.options.adminRoleArn !== undefined ? { adminRoleArn: this.options.adminRoleArn } : {}),
              ...(this.options.readerArns !== undefined ? { readerArns: this.options.readerArns } : {}),
            },
            new SecretsManagerClient(config),
          );
    const ports: AccountPorts = { accountId, iam, vault };
    this.keep(accountId, { runId, ports });
    return ports;
  }

  /**
   * Keeps the account as the most recently opened, dropping the least recently opened beyond the
   * limit. Dropped clients are not destroyed: destroying one would close the shared handler.
   */
  private keep(accountId: string, opened: Opened): void {
    this.opened.delete(accountId);
    this.opened.set(accountId, opened);
    for (const oldest of this.opened.keys()) {
      if (this.opened.size <= this.maxOpenAccounts) break;
      this.opened.delete(oldest);
    }
  }
}
