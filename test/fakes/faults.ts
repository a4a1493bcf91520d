/**
 * Fault injection shared by every fake: make a named call fail before or after its effect, or
 * "crash" the process right after it. Also the log of calls made, for counting and for read-only checks.
 */
import { AccessDeniedError, ThrottledError, TransientServiceError } from '../../lambda/domain/errors';

export type FaultKind = 'throttle' | 'access-denied' | 'timeout-before' | 'timeout-after' | 'crash-after';

/** Thrown to simulate the process dying: not an engine error, nothing should handle it. */
export class SimulatedCrash extends Error {
  constructor(readonly op: string) {
    super(`simulated crash after ${op}`);
    this.name = 'SimulatedCrash';
  }
}

/** Calls that change state somewhere; everything else only reads. */
export const WRITE_OPS = new Set([
  'iam:CreateAccessKey',
  'iam:UpdateAccessKey',
  'iam:DeleteAccessKey',
  'iam:GenerateCredentialReport',
  'secretsmanager:Store',
  'secretsmanager:Promote',
  'secretsmanager:SettlePolicy',
  'sns:Publish',
  'sns:Subscribe',
  'dynamodb:Save',
  'dynamodb:AcquireLock',
  'dynamodb:ReleaseLock',
  'dynamodb:RecordOwnerSubscription',
  'dynamodb:PutItem', // an account's run record (organization mode)
]);

interface Rule {
  readonly op: string;
  readonly kind: FaultKind;
  remaining: number;
}

export class Faults {
  readonly calls: string[] = [];
  private rules: Rule[] = [];
  private crashed = false;

  inject(op: string, kind: FaultKind, times = 1): void {
    this.rules.push({ op, kind, remaining: times });
  }

  /** The process "restarts": calls work again, pending faults are dropped. */
  restart(): void {
    this.crashed = false;
    this.rules = [];
  }

  count(prefix?: string): number {
    return prefix ? this.calls.filter((op) => op.startsWith(prefix)).length : this.calls.length;
  }

  writes(): string[] {
    return this.calls.filter((op) => WRITE_OPS.has(op));
  }

  async around<T>(op: string, effect: () => T | Promise<T>): Promise<T> {
    if (this.crashed) throw new SimulatedCrash(`(process is down) ${op}`);
    this.calls.push(op);
    const rule = this.rules.find((candidate) => candidate.op === op && candidate.remaining > 0);
    if (rule) rule.remaining--;
    switch (rule?.kind) {
      case 'throttle':
        throw new ThrottledError(`${op}: Rate exceeded`);
      case 'access-denied':
        throw new AccessDeniedError(`${op}: not authorized`);
      case 'timeout-before':
        throw new TransientServiceError(`${op}: timed out`);
      default:
        break;
    }
    const result = await effect();
    if (rule?.kind === 'timeout-after')
      throw new TransientServiceError(`${op}: timed out (after taking effect)`);
    if (rule?.kind === 'crash-after') {
      this.crashed = true;
      throw new SimulatedCrash(op);
    }
    return result;
  }
}
