import type { Logger } from '../../lambda/ports';

export interface LogLine {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly message: string;
  readonly attributes: Record<string, unknown>;
}

/** Keeps every line as the JSON a structured logger would print. */
export class CapturingLogger implements Logger {
  readonly lines: LogLine[] = [];
  readonly printed: string[] = [];

  private write(level: LogLine['level'], message: string, attributes: Record<string, unknown> = {}) {
    this.lines.push({ level, message, attributes });
    this.printed.push(JSON.stringify({ level, message, ...attributes }, errorReplacer));
  }

  debug(message: string, attributes?: Record<string, unknown>) {
    this.write('debug', message, attributes);
  }
  info(message: string, attributes?: Record<string, unknown>) {
    this.write('info', message, attributes);
  }
  warn(message: string, attributes?: Record<string, unknown>) {
    this.write('warn', message, attributes);
  }
  error(message: string, attributes?: Record<string, unknown>) {
    this.write('error', message, attributes);
  }

  /** Audit entries, optionally of one action. */
  audits(action?: string): Record<string, unknown>[] {
    return this.lines
      .map((line) => line.attributes.audit as Record<string, unknown> | undefined)
      .filter((entry): entry is Record<string, unknown> => entry !== undefined)
      .filter((entry) => action === undefined || entry.action === action);
  }
}

function errorReplacer(_key: string, value: unknown) {
  return value instanceof Error ? { name: value.name, message: value.message, stack: value.stack } : value;
}
