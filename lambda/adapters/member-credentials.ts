/**
 * Credentials for a member account of the organization: a session of the account's member role
 * (`arn:<partition>:iam::<account>:role/<memberRoleName>`), assumed with STS AssumeRole from this
 * function's own role. One session per account per container, reused until shortly before it expires;
 * callers that ask at the same time share one AssumeRole call. The provider it returns fits the
 * `credentials` setting of every SDK v3 client, so each adapter (IamAdapter, SecretsManagerVault...)
 * can be built for a member account unchanged.
 *
 * What the member account's CloudTrail shows: the session name is the run id, and the source identity
 * is the service (SERVICE_NAME), which AWS keeps for the whole session and any role chained from it.
 */
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { SERVICE_NAME } from '../contract';
import {
  AccessDeniedError,
  ConfigError,
  KeyRotationError,
  MemberAccountUnavailableError,
  MemberRoleAccessDeniedError,
  MemberSessionUnavailableError,
  TransientServiceError,
  ThrottledError,
} from '../domain/errors';
import { systemClock, type Clock } from '../ports';
import { awsErrorName, mapAwsError } from './aws-errors';
import { SDK_CLIENT_CONFIG } from './sdk-config';

/**
 * The function's own credentials are a role session, so assuming the member role is role chaining,
 * which AWS limits to one hour: a longer DurationSeconds fails the call (ValidationError).
 */
export const ROLE_CHAINING_MAX_SECONDS = 3_600;
/** AssumeRole's smallest DurationSeconds. */
const MIN_DURATION_SECONDS = 900;
/**
 * A session is replaced when it has less than this left, so that no call starts with credentials
 * about to expire. The SDK's clients ask their provider again at the same margin (5 minutes).
 */
export const DEFAULT_REFRESH_MARGIN_MS = 5 * 60_000;

/** RoleSessionName and SourceIdentity: 2 to 64 characters of [\w+=,.@-]. */
const SESSION_NAME_MAX = 64;
const SESSION_NAME_MIN = 2;
const NOT_SESSION_NAME_CHARACTER = /[^\w+=,.@-]/g;
/** IAM role names: 1 to 64 characters of [\w+=,.@-]. */
const ROLE_NAME = /^[\w+=,.@-]{1,64}$/;
const ACCOUNT_ID = /^\d{12}$/;
const PARTITION = /^aws(-[a-z]+)*$/;

/**
 * The run id as STS accepts it for RoleSessionName: every other character becomes `-` (an ISO time's
 * colons, for example), cut to 64 characters, and padded to the 2-character minimum.
 */
export function roleSessionName(runId: string): string {
  const name = runId.replace(NOT_SESSION_NAME_CHARACTER, '-').slice(0, SESSION_NAME_MAX);
  return name.length >= SESSION_NAME_MIN ? name : `${name}${'-'.repeat(SESSION_NAME_MIN - name.length)}`;
}

export interface MemberCredentialsOptions {
  /** Name of the role every member account holds for the service (no path). */
  readonly memberRoleName: string;
  /** The partition of the organization (`aws`, `aws-cn`, `aws-us-gov`...), as in this function's ARN. */
  readonly partition: string;
  /** @default one hour, role chaining's maximum */
  readonly durationSeconds?: number;
  /** @default 5 minutes */
  readonly refreshMarginMs?: number;
  /** Time as the cache sees it (a seam for tests). @default the system clock */
  readonly clock?: Pick<Clock, 'now'>;
}

/** A member role session, shaped as the SDK's AwsCredentialIdentity (`credentials` of any client). */
export interface MemberSessionCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly expiration: Date;
  readonly accountId: string;
}

/** Fits the `credentials` setting of every SDK v3 client (an AwsCredentialIdentityProvider). */
export type MemberCredentialsProvider = () => Promise<MemberSessionCredentials>;

interface Session {
  readonly runId: string;
  readonly credentials: Promise<MemberSessionCredentials>;
}

export class MemberCredentials {
  private readonly sessions = new Map<string, Session>();
  private readonly durationSeconds: number;
  private readonly refreshMarginMs: number;
  private readonly clock: Pick<Clock, 'now'>;

  /** @param sts signs with this function's own credentials (the standard chain), adaptive retries */
  constructor(
    private readonly options: MemberCredentialsOptions,
    private readonly sts: STSClient = new STSClient(SDK_CLIENT_CONFIG),
  ) {
    this.durationSeconds = options.durationSeconds ?? ROLE_CHAINING_MAX_SECONDS;
    this.refreshMarginMs = options.refreshMarginMs ?? DEFAULT_REFRESH_MARGIN_MS;
    this.clock = options.clock ?? systemClock;
    const problems: string[] = [];
    if (!ROLE_NAME.test(options.memberRoleName)) {
      problems.push(
        `memberRoleName "${options.memberRoleName}" is not an IAM role name (1 to 64 letters, digits or +=,.@_-)`,
      );
    }
    if (!PARTITION.test(options.partition)) {
      problems.push(`partition "${options.partition}" is not an AWS partition (aws, aws-cn, aws-us-gov...)`);
    }
    if (
      !Number.isInteger(this.durationSeconds) ||
      this.durationSeconds < MIN_DURATION_SECONDS ||
      this.durationSeconds > ROLE_CHAINING_MAX_SECONDS
    ) {
      problems.push(
        `durationSeconds ${this.durationSeconds} must be a whole number from ${MIN_DURATION_SECONDS} to ${ROLE_CHAINING_MAX_SECONDS} (role chaining lasts at most one hour)`,
      );
    }
    if (this.refreshMarginMs < 0 || this.refreshMarginMs >= this.durationSeconds * 1_000) {
      problems.push(
        `refreshMarginMs ${this.refreshMarginMs} must be at least 0 and shorter than the session`,
      );
    }
    if (problems.length > 0) throw new ConfigError(problems);
  }

  /** The member role's ARN in `accountId`. */
  roleArn(accountId: string): string {
    return `arn:${this.options.partition}:iam::${accountId}:role/${this.options.memberRoleName}`;
  }

  /**
   * A provider for SDK clients acting in `accountId` during run `runId`. Cheap: sessions are shared
   * by every provider of the same account in this container.
   */
  forAccount(accountId: string, runId: string): MemberCredentialsProvider {
    if (!ACCOUNT_ID.test(accountId)) {
      throw new KeyRotationError(`"${accountId}" is not an AWS account id (12 digits)`);
    }
    return () => this.credentials(accountId, runId);
  }

  /**
   * The account's session: the cached one while it has more than the margin left and belongs to the
   * same run (so that CloudTrail names the run that acted), else a new one. A failed AssumeRole is not
   * kept: the next caller tries again.
   */
  async credentials(accountId: string, runId: string): Promise<MemberSessionCredentials> {
    const cached = this.sessions.get(accountId);
    if (cached && cached.runId === runId) {
      const credentials = await cached.credentials;
      if (this.fresh(credentials)) return credentials;
      // Another caller may have replaced it while this one waited.
      const current = this.sessions.get(accountId);
      if (current && current !== cached && current.runId === runId) return this.credentials(accountId, runId);
    }
    const session: Session = { runId, credentials: this.assume(accountId, runId) };
    this.sessions.set(accountId, session);
    try {
      return await session.credentials;
    } catch (error) {
      if (this.sessions.get(accountId) === session) this.sessions.delete(accountId);
      throw error;
    }
  }

  private fresh(credentials: MemberSessionCredentials): boolean {
    return credentials.expiration.getTime() - this.clock.now().getTime() > this.refreshMarginMs;
  }

  private async assume(accountId: string, runId: string): Promise<MemberSessionCredentials> {
    const roleArn = this.roleArn(accountId);
    let response;
    try {
      response = await this.sts.send(
        new AssumeRoleCommand({
          RoleArn: roleArn,
          RoleSessionName: roleSessionName(runId),
          // Set once at the start of the chain and kept by AWS for it; the member role's trust policy
          // must allow sts:SetSourceIdentity.
          SourceIdentity: SERVICE_NAME,
          DurationSeconds: this.durationSeconds,
        }),
      );
    } catch (error) {
      throw memberSessionError(error, accountId, roleArn);
    }
    const credentials = response.Credentials;
    if (
      !credentials?.AccessKeyId ||
      !credentials.SecretAccessKey ||
      !credentials.SessionToken ||
      !credentials.Expiration
    ) {
      throw new KeyRotationError(
        `sts:AssumeRole ${roleArn} (account ${accountId}) returned no complete credentials`,
      );
    }
    return {
      accessKeyId: credentials.AccessKeyId,
      secretAccessKey: credentials.SecretAccessKey,
      sessionToken: credentials.SessionToken,
      expiration: credentials.Expiration,
      accountId,
    };
  }
}

/** The named error for a failed AssumeRole, saying what to fix. Never carries credentials. */
export function memberSessionError(error: unknown, accountId: string, roleArn: string): KeyRotationError {
  const what = `sts:AssumeRole ${roleArn} (account ${accountId})`;
  const mapped = mapAwsError(error, what);
  if (awsErrorName(error) === 'RegionDisabledException') {
    return new MemberAccountUnavailableError(
      `${mapped.message}. STS is not active in this Region for account ${accountId}: activate the Region's ` +
        `STS endpoint in the account's IAM settings (or enable the opt-in Region), or exclude the account.`,
      accountId,
      roleArn,
      { cause: error },
    );
  }
  if (mapped instanceof AccessDeniedError) {
    return new MemberRoleAccessDeniedError(
      `${mapped.message}. Either role ${roleArn} does not exist (deploy the member stack to account ` +
        `${accountId}: the StackSet covers the target OUs, the management account needs a plain member ` +
        `stack), or its trust policy does not let this service's role in (sts:AssumeRole, ` +
        `sts:SetSourceIdentity and sts:TagSession within the organization), or account ${accountId} is suspended.`,
      accountId,
      roleArn,
      { cause: error },
    );
  }
  if (mapped instanceof ThrottledError || mapped instanceof TransientServiceError) {
    return new MemberSessionUnavailableError(
      `${mapped.message}. STS did not issue a session for ${roleArn} (account ${accountId}) after the ` +
        `SDK's retries; try the account again later.`,
      accountId,
      roleArn,
      { cause: error },
    );
  }
  return mapped;
}
