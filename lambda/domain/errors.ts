/**
 * Named errors of the engine. Adapters map SDK errors onto these so that services decide on meaning
 * (retry, skip, report) rather than on SDK error codes. Every error keeps its `cause`.
 * Messages never contain secret material: only user names, key ids and settings.
 */
export class KeyRotationError extends Error {
  /** Whether trying the same thing again later may succeed. */
  readonly retryable: boolean = false;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A configuration value is invalid. `problems` names each setting and what to change. */
export class ConfigError extends KeyRotationError {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid key rotation configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

/** A queue message or invocation payload does not have the expected shape. */
export class InvalidMessageError extends KeyRotationError {}

/** The IAM user does not exist (any more). */
export class NoSuchUserError extends KeyRotationError {}

/** The access key does not exist (any more). */
export class NoSuchKeyError extends KeyRotationError {}

/** IAM refused a third access key for the user. */
export class KeyLimitExceededError extends KeyRotationError {}

/** The caller lacks a permission. Not retryable without a change of policy. */
export class AccessDeniedError extends KeyRotationError {}

/** AWS throttled the request (after the SDK's own retries). */
export class ThrottledError extends KeyRotationError {
  override readonly retryable = true;
}

/** The call timed out or the service failed; the effect of the call is unknown. */
export class TransientServiceError extends KeyRotationError {
  override readonly retryable = true;
}

/** Another rotation of the same user holds the lock. */
export class LockHeldError extends KeyRotationError {
  override readonly retryable = true;
}

/** The ledger record changed under us (optimistic concurrency). */
export class ConcurrentUpdateError extends KeyRotationError {
  override readonly retryable = true;
}

/** A secret with our name exists but was not created by this service; we refuse to overwrite it. */
export class ForeignSecretError extends KeyRotationError {}

/**
 * Our secret has Secrets Manager's own rotation turned on: it would move the same staging labels as
 * this service, so we refuse to write until it is turned off (CancelRotateSecret).
 */
export class SecretRotationConflictError extends KeyRotationError {}

/** The secret (or the version for a key) is not in the vault. */
export class SecretNotFoundError extends KeyRotationError {}

/** STS rejected new credentials; usually IAM has not propagated the new key yet. */
export class CredentialsNotYetValidError extends KeyRotationError {
  override readonly retryable = true;
}

/** The new key could not be proven to work as the expected user. */
export class VerificationError extends KeyRotationError {
  override readonly retryable = true;
}

/** The IAM credential report could not be produced or read. */
export class CredentialReportUnavailableError extends KeyRotationError {}

/**
 * IAM has no capacity to start another credential report for the account right now (GenerateCredentialReport
 * answers LimitExceeded, for example while other tools generate reports). Waiting may help; if it does
 * not, users and keys can still be listed.
 */
export class CredentialReportBusyError extends CredentialReportUnavailableError {
  override readonly retryable = true;
}

/**
 * The caller's account is not in an AWS Organization (AWSOrganizationsNotInUseException): organization
 * settings were given to a deployment outside one.
 */
export class OrganizationsNotInUseError extends KeyRotationError {}

/** An OU or root id that the organization does not have (ParentNotFoundException). */
export class OrganizationParentNotFoundError extends KeyRotationError {}

/** An account id that the organization does not have (AccountNotFoundException, TargetNotFoundException). */
export class OrganizationAccountNotFoundError extends KeyRotationError {}

/**
 * The member role of an account could not be assumed: STS answers AccessDenied alike when the role
 * does not exist, when its trust policy does not let this service's role in (sts:AssumeRole,
 * sts:SetSourceIdentity, sts:TagSession, the organization condition), and when the account is
 * suspended. Not retryable until the member footprint or the account is fixed; the account is tried
 * again next run.
 */
export class MemberRoleAccessDeniedError extends AccessDeniedError {
  constructor(
    message: string,
    readonly accountId: string,
    readonly roleArn: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * STS cannot issue a session for the member account from this Region (RegionDisabledException: STS
 * is not activated for the account in the Region the service runs in). Not retryable until someone
 * activates it.
 */
export class MemberAccountUnavailableError extends KeyRotationError {
  constructor(
    message: string,
    readonly accountId: string,
    readonly roleArn: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** STS throttled or failed the member role session after the SDK's retries; trying later may work. */
export class MemberSessionUnavailableError extends TransientServiceError {
  constructor(
    message: string,
    readonly accountId: string,
    readonly roleArn: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
