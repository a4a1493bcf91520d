/** Validation of what arrives from outside: queue messages and planner input. Pure. */
import { PLANNING_MESSAGE_VERSION, PlanningMessage, WORK_MESSAGE_VERSION, WorkMessage } from '../contract';
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
  if (message.finishOnly !== undefined && message.finishOnly !== true) {
    problems.push(
      `finishOnly must be true when present (the planner sets it for an account the run no longer covers; leave it out otherwise) (got ${JSON.stringify(message.finishOnly)})`,
    );
  }
  if (problems.length > 0) throw new InvalidMessageError(`invalid work message: ${problems.join('; ')}`);
  return {
    version: WORK_MESSAGE_VERSION,
    accountId: message.accountId as string,
    userName: message.userName as string,
    dryRun: message.dryRun as boolean,
    plannedActions: message.plannedActions as string[],
    plannedAt: message.plannedAt as string,
    ...(message.finishOnly === true ? { finishOnly: true as const } : {}),
  };
}

/** The planner's input, read: whether to dry-run, and where a continued run resumes. */
export interface PlannerRequest {
  readonly dryRun: boolean;
  /** The last user an earlier invocation of the same run handled (with plannedAt). */
  readonly startAfter?: string;
  /** The time of the run being continued (with startAfter). */
  readonly plannedAt?: string;
}

const PLANNER_FIELDS = ['dryRun', 'startAfter', 'plannedAt'];
// What Date#toISOString writes: the planner writes plannedAt itself.
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$/;

/** An ISO date-time as Date#toISOString writes it (no 31 February: it would roll over). */
function isIsoTime(value: unknown): boolean {
  if (typeof value !== 'string' || !ISO_TIME.test(value)) return false;
  const date = new Date(value);
  return !Number.isNaN(date.getTime()) && date.toISOString() === value.replace(/(:\d{2})Z$/, '$1.000Z');
}

/**
 * Reads the planner's input: the schedule sends `{"dryRun": false}`; an operator may invoke it by
 * hand with `{"dryRun": true}`; a run that stopped for lack of time continues itself with
 * `{"dryRun", "startAfter", "plannedAt"}`. Anything else is refused rather than guessed at.
 */
export function parsePlannerInput(event: unknown): PlannerRequest {
  if (event === undefined || event === null) return { dryRun: false };
  if (typeof event !== 'object' || Array.isArray(event)) {
    throw new InvalidMessageError('planner input must be a JSON object such as {"dryRun": true}');
  }
  const input = event as Record<string, unknown>;
  const unknownKeys = Object.keys(input).filter((key) => !PLANNER_FIELDS.includes(key));
  if (unknownKeys.length > 0) {
    throw new InvalidMessageError(
      `planner input has unknown field(s) ${unknownKeys.join(', ')}; only "dryRun" is read (and "startAfter" with "plannedAt", which the planner writes to continue a run)`,
    );
  }
  const problems: string[] = [];
  if (input.dryRun !== undefined && typeof input.dryRun !== 'boolean') {
    problems.push(`planner input "dryRun" must be true or false (got ${JSON.stringify(input.dryRun)})`);
  }
  const { startAfter, plannedAt } = input;
  if (startAfter !== undefined && (typeof startAfter !== 'string' || !USER_NAME.test(startAfter))) {
    problems.push(
      `planner input "startAfter" must be an IAM user name (1-64 of letters, digits and _+=,.@-) (got ${JSON.stringify(startAfter)})`,
    );
  }
  if (plannedAt !== undefined && !isIsoTime(plannedAt)) {
    problems.push(
      `planner input "plannedAt" must be an ISO date-time such as 2026-01-01T02:00:00.000Z (got ${JSON.stringify(plannedAt)})`,
    );
  }
  if ((startAfter === undefined) !== (plannedAt === undefined)) {
    problems.push(
      'planner input "startAfter" and "plannedAt" go together: the planner writes both to continue a run; leave both out to start one',
    );
  }
  if (problems.length > 0) throw new InvalidMessageError(problems.join('; '));
  return {
    dryRun: input.dryRun === true,
    ...(startAfter !== undefined ? { startAfter: startAfter as string, plannedAt: plannedAt as string } : {}),
  };
}

const PLANNING_FIELDS = ['version', 'accountId', 'dryRun', 'plannedAt', 'startAfter', 'finishOnly'];

/**
 * Parses a planning queue message body (organization mode), saying exactly which field is wrong if it
 * is not a PlanningMessage. plannedAt is the run's id (the member role's session name and part of the
 * work messages' deduplication): it must be an ISO time as the dispatcher writes it.
 */
export function parsePlanningMessage(body: string): PlanningMessage {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    throw new InvalidMessageError(`planning message body is not JSON (${body.length} characters)`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidMessageError('planning message body is not a JSON object');
  }
  const message = value as Record<string, unknown>;
  const problems: string[] = [];
  const unknownKeys = Object.keys(message).filter((key) => !PLANNING_FIELDS.includes(key));
  if (unknownKeys.length > 0) problems.push(`unknown field(s) ${unknownKeys.join(', ')}`);
  if (message.version !== PLANNING_MESSAGE_VERSION) {
    problems.push(`version must be ${PLANNING_MESSAGE_VERSION} (got ${JSON.stringify(message.version)})`);
  }
  if (typeof message.accountId !== 'string' || !ACCOUNT_ID.test(message.accountId)) {
    problems.push(`accountId must be 12 digits (got ${JSON.stringify(message.accountId)})`);
  }
  if (typeof message.dryRun !== 'boolean') {
    problems.push(`dryRun must be true or false (got ${JSON.stringify(message.dryRun)})`);
  }
  if (!isIsoTime(message.plannedAt)) {
    problems.push(
      `plannedAt must be an ISO date-time such as 2026-01-01T02:00:00.000Z (got ${JSON.stringify(message.plannedAt)})`,
    );
  }
  const { startAfter } = message;
  if (startAfter !== undefined && (typeof startAfter !== 'string' || !USER_NAME.test(startAfter))) {
    problems.push(
      `startAfter must be an IAM user name (1-64 of letters, digits and _+=,.@-) (got ${JSON.stringify(startAfter)})`,
    );
  }
  const { finishOnly } = message;
  if (finishOnly !== undefined && finishOnly !== true) {
    problems.push(
      `finishOnly must be true when present (the dispatcher sets it for an account the run no longer covers; leave it out otherwise) (got ${JSON.stringify(finishOnly)})`,
    );
  }
  if (finishOnly === true && startAfter !== undefined) {
    problems.push(
      'finishOnly and startAfter do not go together: finishing an account reads the ledger alone and never continues',
    );
  }
  if (problems.length > 0) throw new InvalidMessageError(`invalid planning message: ${problems.join('; ')}`);
  return {
    version: PLANNING_MESSAGE_VERSION,
    accountId: message.accountId as string,
    dryRun: message.dryRun as boolean,
    plannedAt: message.plannedAt as string,
    ...(startAfter !== undefined ? { startAfter: startAfter as string } : {}),
    ...(finishOnly === true ? { finishOnly: true as const } : {}),
  };
}

/** The dispatcher's input, read: whether to dry-run, and the schedule's time if it sent one. */
export interface DispatcherRequest {
  readonly dryRun: boolean;
  /** The schedule's time as Date#toISOString writes it (the run's id), if the input carried one. */
  readonly scheduledAt?: string;
}

const DISPATCHER_FIELDS = ['dryRun', 'scheduledAt'];
// EventBridge Scheduler's <aws.scheduler.scheduled-time> (2022-03-22T18:59:43Z), or with milliseconds.
const SCHEDULED_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;

/**
 * Reads the dispatcher's input (organization mode): the schedule sends
 * `{"dryRun": false, "scheduledAt": "<aws.scheduler.scheduled-time>"}`; an operator may invoke it by
 * hand with `{"dryRun": true}`. The scheduled time becomes the run's id, so that Lambda's retry of a
 * failed invocation (same input) continues the same run. Anything else is refused, naming the fields
 * that are read.
 */
export function parseDispatcherInput(event: unknown): DispatcherRequest {
  if (event === undefined || event === null) return { dryRun: false };
  if (typeof event !== 'object' || Array.isArray(event)) {
    throw new InvalidMessageError(
      'dispatcher input must be a JSON object such as {"dryRun": true} or {"dryRun": false, "scheduledAt": "2026-01-01T02:00:00Z"}',
    );
  }
  const input = event as Record<string, unknown>;
  const problems: string[] = [];
  const unknownKeys = Object.keys(input).filter((key) => !DISPATCHER_FIELDS.includes(key));
  if (unknownKeys.length > 0) {
    problems.push(
      `dispatcher input has unknown field(s) ${unknownKeys.join(', ')}; only "dryRun" and "scheduledAt" are read`,
    );
  }
  if (input.dryRun !== undefined && typeof input.dryRun !== 'boolean') {
    problems.push(`dispatcher input "dryRun" must be true or false (got ${JSON.stringify(input.dryRun)})`);
  }
  const { scheduledAt } = input;
  let normalised: string | undefined;
  if (scheduledAt !== undefined) {
    const date =
      typeof scheduledAt === 'string' && SCHEDULED_TIME.test(scheduledAt) ? new Date(scheduledAt) : undefined;
    // No 31 February (Date would roll it over): the date must read back as written.
    if (
      !date ||
      Number.isNaN(date.getTime()) ||
      date.toISOString().slice(0, 19) !== (scheduledAt as string).slice(0, 19)
    ) {
      problems.push(
        `dispatcher input "scheduledAt" must be an ISO date-time in UTC such as 2026-01-01T02:00:00Z (got ${JSON.stringify(scheduledAt)})`,
      );
    } else {
      normalised = date.toISOString();
    }
  }
  if (problems.length > 0) throw new InvalidMessageError(problems.join('; '));
  return { dryRun: input.dryRun === true, ...(normalised !== undefined ? { scheduledAt: normalised } : {}) };
}
