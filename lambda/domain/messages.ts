/** Validation of what arrives from outside: queue messages and planner input. Pure. */
import { PlannerInput, WORK_MESSAGE_VERSION, WorkMessage } from '../contract';
import { InvalidMessageError } from './errors';

const ACCOUNT_ID = /^\d{12}$/;
const USER_NAME = /^[\w+=,.@-]{1,64}$/;

/** Parses a queue message body, saying exactly what is wrong with it if it is not a WorkMessage. */
export function parseWorkMessage(body: string): WorkMessage {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    throw new InvalidMessageError(`body is not JSON (${body.length} characters)`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidMessageError('body is not a JSON object');
  }
  const message = value as Record<string, unknown>;
  const problems: string[] = [];
  if (message.version !== WORK_MESSAGE_VERSION) {
    problems.push(`version must be ${WORK_MESSAGE_VERSION} (got ${JSON.stringify(message.version)})`);
  }
  if (typeof message.accountId !== 'string' || !ACCOUNT_ID.test(message.accountId)) {
    problems.push(`accountId must be 12 digits (got ${JSON.stringify(message.accountId)})`);
  }
  if (typeof message.userName !== 'string' || !USER_NAME.test(message.userName)) {
    problems.push('userName must be an IAM user name (1-64 of letters, digits and _+=,.@-)');
  }
  if (typeof message.dryRun !== 'boolean') problems.push('dryRun must be true or false');
  if (
    !Array.isArray(message.plannedActions) ||
    !message.plannedActions.every((kind) => typeof kind === 'string')
  ) {
    problems.push('plannedActions must be a list of strings');
  }
  if (typeof message.plannedAt !== 'string' || Number.isNaN(Date.parse(message.plannedAt))) {
    problems.push('plannedAt must be an ISO date-time');
  }
  if (problems.length > 0) throw new InvalidMessageError(`invalid work message: ${problems.join('; ')}`);
  return {
    version: WORK_MESSAGE_VERSION,
    accountId: message.accountId as string,
    userName: message.userName as string,
    dryRun: message.dryRun as boolean,
    plannedActions: message.plannedActions as string[],
    plannedAt: message.plannedAt as string,
  };
}

/**
 * Reads the planner's input: the schedule sends `{"dryRun": false}`; an operator may invoke it by
 * hand with `{"dryRun": true}`. Anything else is refused rather than guessed at.
 */
export function parsePlannerInput(event: unknown): Required<PlannerInput> {
  if (event === undefined || event === null) return { dryRun: false };
  if (typeof event !== 'object' || Array.isArray(event)) {
    throw new InvalidMessageError('planner input must be a JSON object such as {"dryRun": true}');
  }
  const input = event as Record<string, unknown>;
  const unknownKeys = Object.keys(input).filter((key) => key !== 'dryRun');
  if (unknownKeys.length > 0) {
    throw new InvalidMessageError(
      `planner input has unknown field(s) ${unknownKeys.join(', ')}; only "dryRun" is read`,
    );
  }
  if (input.dryRun !== undefined && typeof input.dryRun !== 'boolean') {
    throw new InvalidMessageError(
      `planner input "dryRun" must be true or false (got ${JSON.stringify(input.dryRun)})`,
    );
  }
  return { dryRun: input.dryRun === true };
}
