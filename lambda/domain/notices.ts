/**
 * What owners are told. Plain text for people, `details` for machines. Names the secret and key ids,
 * and when things happen; never secret material (I4). Pure.
 */
import type { OwnerNotification } from './model';

export interface NoticeContext {
  readonly accountId: string;
  readonly userName: string;
  readonly owner: string;
  /** Every address the notice is for (the owner tag may name several), or [`default`]. */
  readonly recipients: readonly string[];
  readonly secretName: string;
  /** Why the default recipients get this instead of an owner, if they do. */
  readonly ownerProblem?: string;
}

/**
 * Why the service will not act on a user again after the unit that sends the notice: it only
 * finished our unfinished work there (a rotation in flight, I1) and leaves the rest to the owner.
 * - `account`: no user of the account is covered any more (the account left the organization
 *   selection: the rotator finishes its work with every path excluded);
 * - `path`: the user's path is outside includePaths, or inside excludePaths;
 * - `exempt`: the exemption tag applies (while it does; `until` is its last day, if it has one).
 */
export type NotCovered =
  | { readonly why: 'account' }
  | { readonly why: 'path'; readonly path: string }
  | { readonly why: 'exempt'; readonly reason: string; readonly until?: string };

type NoticeFacts =
  | {
      readonly event: 'key.expiring';
      readonly keyId: string;
      readonly rotateOn: string;
      readonly graceDays: number;
    }
  | {
      readonly event: 'key.rotated';
      readonly oldKeyId: string;
      readonly newKeyId: string;
      readonly deactivateFrom: string;
      readonly enforceOn: string;
      /**
       * Set when the service finished this rotation for a user it no longer covers: it will not
       * deactivate the old key (deactivateFrom and enforceOn do not apply), the owner retires it.
       */
      readonly notCovered?: NotCovered;
    }
  | {
      readonly event: 'key.deactivated';
      readonly keyId: string;
      readonly newKeyId: string;
      readonly deleteOn: string;
    }
  | {
      readonly event: 'key.deactivation-postponed';
      readonly keyId: string;
      readonly newKeyId: string;
      readonly lastUsed: string;
      readonly enforceOn: string;
    }
  | {
      readonly event: 'key.enforced';
      readonly keyId: string;
      readonly newKeyId: string;
      readonly deleteOn: string;
    }
  | { readonly event: 'key.deleted'; readonly keyId: string; readonly reason: string }
  | {
      readonly event: 'key.reaped';
      readonly keyId: string;
      readonly reason: string;
      readonly deleteOn: string;
    }
  | { readonly event: 'key.reactivated'; readonly keyId: string; readonly reason: string }
  | { readonly event: 'keys.conflict'; readonly keyIds: readonly string[] }
  | { readonly event: 'secret.conflict'; readonly reason: string }
  | { readonly event: 'tags.invalid'; readonly findings: readonly string[] }
  | { readonly event: 'owner.subscription-failed'; readonly address: string; readonly problem: string };

function lines(...parts: (string | undefined | false)[]): string {
  return parts.filter((part): part is string => typeof part === 'string').join('\n');
}

/** Why the service no longer acts on the user, and for how long, in the owner's terms. */
function notCoveredLine(notCovered: NotCovered, accountId: string): { why: string; until: string } {
  switch (notCovered.why) {
    case 'account':
      return {
        why: `The rotation service no longer covers account ${accountId} (it is no longer among the accounts it rotates).`,
        until: '',
      };
    case 'path':
      return {
        why: `The rotation service no longer covers this user: its path ${notCovered.path} is outside the paths it rotates (includePaths, excludePaths).`,
        until: '',
      };
    case 'exempt':
      return {
        why: `This user is exempt from rotation (${notCovered.reason}${notCovered.until ? `, until ${notCovered.until}` : ''}).`,
        until: ' while the exemption applies',
      };
  }
}

export function renderNotice(
  context: NoticeContext,
  facts: NoticeFacts,
  dedupeId: string,
): OwnerNotification {
  const { accountId, userName, secretName } = context;
  const who = `IAM user ${userName} in account ${accountId}`;
  const footer = lines(
    '',
    context.ownerProblem ? `You receive this as a default recipient: ${context.ownerProblem}.` : undefined,
    'Sent by iam-key-rotation. The secret itself is never sent by e-mail; read it from Secrets Manager.',
  );
  let subject: string;
  let body: string;
  const details: Record<string, string | number | boolean | null> = { secretName };
  switch (facts.event) {
    case 'key.expiring':
      subject = `Access key of ${userName} will be rotated on ${facts.rotateOn}`;
      body = lines(
        `The access key ${facts.keyId} of ${who} will be replaced on ${facts.rotateOn}.`,
        `The new key will be stored in the secret ${secretName} (Secrets Manager).`,
        `Switch your workload to read its credentials from that secret; the old key keeps working for ${facts.graceDays} days after the rotation.`,
      );
      Object.assign(details, { keyId: facts.keyId, rotateOn: facts.rotateOn });
      break;
    case 'key.rotated':
      if (facts.notCovered) {
        // Finished for a user the service no longer covers: nothing more will happen to the old key.
        const { why, until } = notCoveredLine(facts.notCovered, accountId);
        subject = `ACTION NEEDED: retire the old access key of ${userName} yourself (new key in ${secretName})`;
        body = lines(
          `A new access key ${facts.newKeyId} was created for ${who} and verified with AWS STS.`,
          `It is stored in the secret ${secretName} under the label AWSCURRENT, as usual.`,
          `${why} The service finished this rotation, which had started before, and will not act on this user's keys again${until}.`,
          `The old key ${facts.oldKeyId} is still active, and the service will not deactivate or delete it. Retire it yourself: switch every workload to the new key in ${secretName}, then deactivate ${facts.oldKeyId} in IAM, and delete it once nothing uses it (IAM shows when a key was last used).`,
          `The new key will not be rotated by the service either${until}.`,
        );
        Object.assign(details, {
          oldKeyId: facts.oldKeyId,
          newKeyId: facts.newKeyId,
          deactivateFrom: null,
          enforceOn: null,
          covered: false,
          notCovered: facts.notCovered.why,
        });
        break;
      }
      subject = `New access key for ${userName} is in ${secretName}`;
      body = lines(
        `A new access key ${facts.newKeyId} was created for ${who} and verified with AWS STS.`,
        `It is stored in the secret ${secretName} under the label AWSCURRENT.`,
        `The old key ${facts.oldKeyId} keeps working for now. It will be deactivated from ${facts.deactivateFrom} if it has not been used since the new key was created, and on ${facts.enforceOn} at the latest.`,
      );
      Object.assign(details, {
        oldKeyId: facts.oldKeyId,
        newKeyId: facts.newKeyId,
        deactivateFrom: facts.deactivateFrom,
        enforceOn: facts.enforceOn,
        covered: true,
      });
      break;
    case 'key.deactivated':
      subject = `Old access key of ${userName} deactivated`;
      body = lines(
        `The access key ${facts.keyId} of ${who} was deactivated: it was not used since its replacement ${facts.newKeyId} was created.`,
        `It will be deleted on ${facts.deleteOn}. If something broke, reactivate it in IAM and switch to ${secretName}.`,
      );
      Object.assign(details, { keyId: facts.keyId, newKeyId: facts.newKeyId, deleteOn: facts.deleteOn });
      break;
    case 'key.deactivation-postponed':
      subject = `ACTION NEEDED: old access key of ${userName} is still in use`;
      body = lines(
        `The access key ${facts.keyId} of ${who} was last used ${facts.lastUsed}, after its replacement ${facts.newKeyId} was created.`,
        `Its deactivation is postponed. Switch the workload to the new key in ${secretName}: the old key will be deactivated on ${facts.enforceOn} even if it is still in use.`,
      );
      Object.assign(details, {
        keyId: facts.keyId,
        newKeyId: facts.newKeyId,
        lastUsed: facts.lastUsed,
        enforceOn: facts.enforceOn,
      });
      break;
    case 'key.enforced':
      subject = `Old access key of ${userName} deactivated at the maximum age`;
      body = lines(
        `The access key ${facts.keyId} of ${who} reached the maximum key age and was deactivated although it was still in use.`,
        `Use the new key ${facts.newKeyId} from ${secretName}. The old key will be deleted on ${facts.deleteOn}.`,
      );
      Object.assign(details, { keyId: facts.keyId, newKeyId: facts.newKeyId, deleteOn: facts.deleteOn });
      break;
    case 'key.deleted':
      subject = `Inactive access key of ${userName} deleted`;
      body = lines(`The inactive access key ${facts.keyId} of ${who} was deleted: ${facts.reason}.`);
      Object.assign(details, { keyId: facts.keyId, reason: facts.reason });
      break;
    case 'key.reaped':
      subject = `Unused access key of ${userName} deactivated`;
      body = lines(
        `The access key ${facts.keyId} of ${who} was deactivated because it is not used: ${facts.reason}.`,
        `It will be deleted on ${facts.deleteOn}. Reactivate it in IAM if it is still needed.`,
      );
      Object.assign(details, { keyId: facts.keyId, reason: facts.reason, deleteOn: facts.deleteOn });
      break;
    case 'key.reactivated':
      subject = `Access key of ${userName} was reactivated by hand`;
      body = lines(
        `The access key ${facts.keyId} of ${who} had been deactivated and is active again: ${facts.reason}.`,
        `It gets one more grace period and then follows the rotation rules again. To keep it longer, exempt the user with a tag.`,
      );
      Object.assign(details, { keyId: facts.keyId, reason: facts.reason });
      break;
    case 'keys.conflict':
      subject = `ACTION NEEDED: ${userName} has two active access keys`;
      body = lines(
        `${who} has two active access keys (${facts.keyIds.join(', ')}) that the service did not create as a rotation pair.`,
        'Nothing was changed. Deactivate the key that is no longer needed; the service then rotates the other one as usual.',
      );
      details.keyIds = facts.keyIds.join(',');
      break;
    case 'secret.conflict':
      subject = `ACTION NEEDED: cannot rotate the access key of ${userName}`;
      body = lines(
        `The key of ${who} is due for rotation, but ${facts.reason}.`,
        'Nothing was changed. Rename or delete that secret, or exempt the user.',
      );
      details.reason = facts.reason;
      break;
    case 'tags.invalid':
      subject = `Check the rotation tags of ${userName}`;
      body = lines(
        `The rotation tags of ${who} could not be read:`,
        ...facts.findings.map((finding) => `- ${finding}`),
      );
      details.findings = facts.findings.join('; ');
      break;
    case 'owner.subscription-failed':
      subject = `ACTION NEEDED: ${facts.address} cannot get the key notices of ${userName}`;
      body = lines(
        `${facts.address}, an owner of ${who}, could not be subscribed to their notification topic: ${facts.problem}.`,
        'Until this is fixed, the default recipients receive the notices meant for that owner. Check the address in the owner tag, and the SNS quotas of the account (topics, subscriptions); the next notice tries again.',
      );
      Object.assign(details, { address: facts.address, problem: facts.problem });
      break;
  }
  return {
    event: facts.event,
    accountId,
    userName,
    owner: context.owner,
    recipients: context.recipients,
    subject: subject.slice(0, 99),
    text: lines(body, footer),
    details: { event: facts.event, accountId, userName, ...details },
    dedupeId,
    ...(facts.event === 'owner.subscription-failed' ? { toOperators: true } : {}),
  };
}

export type { NoticeFacts };

/**
 * The `userName` of a notice about a whole account: SNS refuses an empty message attribute value,
 * and parentheses are not allowed in IAM user names, so no user's filter policy can match it.
 */
export const ACCOUNT_NOTICE_USER = '(account)';

/** Organization mode: what the operators are told when a member account could not be planned. */
export interface AccountUnreachableFacts {
  readonly accountId: string;
  /** The run (its plannedAt). */
  readonly runId: string;
  /** The member role the service tried to assume, if the failure names it. */
  readonly roleArn?: string;
  /** The error's name and message (never secret material: see describeError). */
  readonly error: { readonly name: string; readonly message: string };
  /** Whether trying again may succeed (STS throttled or unreachable). */
  readonly retryable: boolean;
  /** Runs in a row that failed for the account, this one included. */
  readonly consecutiveFailures: number;
  /**
   * An account no longer covered by the run (its finish-only pass): the users whose unfinished work
   * (a rotation in flight, notices not delivered) waits for the account to be reachable again.
   */
  readonly unfinishedUsers?: readonly string[];
}

/**
 * The ops notice `account.unreachable`: which account, the member role, the error, and what to
 * check. For the operators (`toOperators`), sent to the default recipients (owner `default`), once
 * per account and run (dedupeId `account.unreachable/<accountId>/<runId>`).
 */
export function renderAccountUnreachableNotice(facts: AccountUnreachableFacts): OwnerNotification {
  const { accountId, runId, roleArn, error, retryable, consecutiveFailures } = facts;
  const unfinishedUsers = facts.unfinishedUsers ?? [];
  const role = roleArn ?? 'the member role';
  const subject = `ACTION NEEDED: key rotation cannot reach account ${accountId}`;
  const text = lines(
    `The access keys of account ${accountId} could not be planned in the run of ${runId}: ${error.name}: ${error.message}`,
    roleArn ? `Member role: ${roleArn}` : undefined,
    consecutiveFailures > 1 ? `This account has failed ${consecutiveFailures} runs in a row.` : undefined,
    ...(unfinishedUsers.length > 0
      ? [
          '',
          `The account is no longer covered by the run, but our work there is unfinished for these users: ${unfinishedUsers.join(' ')}`,
          'A rotation in flight may hold an active new key whose secret is not stored yet: keep (or redeploy) the member role there until the account is recorded left (the member stack is not deleted when an account leaves the selection; redeploy the plain member stack if it was).',
        ]
      : []),
    '',
    'Nothing was changed in the account, and the other accounts are planned as usual. Check:',
    `- the member stack in account ${accountId}: its stack instance of the member StackSet (status CURRENT; the account must be under a target OU), the stack it kept after leaving the target OUs, or its plain member stack (the management account's, or one deployed by hand);`,
    `- the trust policy of ${role}: it must let the central planner and rotator roles in (sts:AssumeRole, sts:SetSourceIdentity, sts:TagSession) from within the organization;`,
    `- the account's state in AWS Organizations (ACTIVE, not SUSPENDED), and that STS is active in this Region for the account.`,
    retryable
      ? 'AWS may only have been busy (throttled or unreachable): the planner tried again before sending this, and the next run tries again.'
      : 'The account is tried again in the next run.',
    '',
    'Sent by iam-key-rotation.',
  );
  return {
    event: 'account.unreachable',
    accountId,
    userName: ACCOUNT_NOTICE_USER,
    owner: 'default',
    recipients: ['default'],
    subject: subject.slice(0, 99),
    text,
    details: {
      event: 'account.unreachable',
      accountId,
      runId,
      roleArn: roleArn ?? null,
      errorName: error.name,
      errorMessage: error.message,
      retryable,
      consecutiveFailures,
      // Separated by spaces (IAM user names have none; they may have commas).
      ...(unfinishedUsers.length > 0 ? { unfinishedUsers: unfinishedUsers.join(' ') } : {}),
    },
    dedupeId: `account.unreachable/${accountId}/${runId}`,
    toOperators: true,
  };
}
