/**
 * The audit trail: one structured log line per decision and per action, always with the same fields,
 * so that CloudWatch Logs Insights can query `audit.action`, `audit.userName`, `audit.outcome`...
 */
import type { Logger } from '../ports';

export type AuditAction =
  | 'user.planned'
  | 'key.warned'
  | 'key.rotated'
  | 'key.deactivated'
  | 'key.postponed'
  | 'key.enforced'
  | 'key.deleted'
  | 'key.reaped'
  | 'key.tracked'
  | 'key.reactivated'
  | 'keys.conflict'
  | 'ledger.tidied'
  | 'notice.sent'
  | 'owner.unsubscribed'
  | 'owner.resubscribed'
  | 'rotation.started'
  | 'rotation.recovered'
  | 'rotation.skipped'
  | 'rotation.failed'
  | 'secret.reader-omitted'
  | 'accounts.dispatched'
  | 'account.planned'
  | 'account.failed';

export interface AuditEntry {
  readonly action: AuditAction;
  /** Absent on the run-level entry of organization mode (`accounts.dispatched`: every account). */
  readonly accountId?: string;
  /** Absent on the account-level entries of organization mode (`accounts.dispatched`, `account.*`). */
  readonly userName?: string;
  readonly keyId?: string;
  readonly newKeyId?: string;
  readonly reason: string;
  readonly dryRun: boolean;
  readonly outcome: 'planned' | 'success' | 'skipped' | 'failure';
  readonly [extra: string]: unknown;
}

export function audit(logger: Logger, entry: AuditEntry): void {
  const log = entry.outcome === 'failure' ? logger.error.bind(logger) : logger.info.bind(logger);
  log(`audit ${entry.action} ${entry.outcome}`, { audit: entry });
}

/** A short description of an error for logs: its name and message, never the objects it holds. */
export function describeError(error: unknown): { readonly name: string; readonly message: string } {
  if (error instanceof Error) return { name: error.name, message: error.message };
  return { name: 'UnknownError', message: String(error) };
}
