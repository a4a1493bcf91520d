/**
 * Organization mode: telling a member account's failure from the service's own. Only opening the
 * account (its member role) and the calls made in it (its IAM, its Secrets Manager) fail because of
 * the account; an error of the central ledger, queue or topic, or a plain bug, is the service's own
 * and must not be reported as one unreachable account after another.
 */
import { CredentialReportUnavailableError } from '../domain/errors';
import type { AccountPorts } from '../ports';

/** Remembers the errors thrown by an account's ports (and anything wrapping them, through `cause`). */
export class AccountErrors {
  private readonly seen = new WeakSet<object>();

  /** The account's ports, each of whose calls records the error it throws. */
  watch(ports: AccountPorts): AccountPorts {
    return { accountId: ports.accountId, iam: this.wrap(ports.iam), vault: this.wrap(ports.vault) };
  }

  /** Records an error as the account's (opening the account, for one). */
  mark(error: unknown): void {
    if (typeof error === 'object' && error !== null) this.seen.add(error);
  }

  /**
   * True when the error (or one it wraps) came from the account: thrown by its ports, marked, or the
   * credential report it could not produce in time.
   */
  isAccounts(error: unknown): boolean {
    for (let current = error, depth = 0; current !== undefined && depth < 10; depth++) {
      if (current instanceof CredentialReportUnavailableError) return true;
      if (typeof current !== 'object' || current === null) return false;
      if (this.seen.has(current)) return true;
      current = (current as { cause?: unknown }).cause;
    }
    return false;
  }

  private wrap<T extends object>(port: T): T {
    return new Proxy(port, {
      get: (target, property, receiver) => {
        const value: unknown = Reflect.get(target, property, receiver);
        if (typeof value !== 'function') return value;
        return async (...args: unknown[]) => {
          try {
            return await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          } catch (error) {
            this.mark(error);
            throw error;
          }
        };
      },
    });
  }
}
