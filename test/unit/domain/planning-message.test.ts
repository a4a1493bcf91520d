import { PLANNING_MESSAGE_VERSION, WORK_MESSAGE_VERSION } from '../../../lambda/contract';
import { InvalidMessageError } from '../../../lambda/domain/errors';
import {
  parseDispatcherInput,
  parsePlanningMessage,
  parseWorkMessage,
} from '../../../lambda/domain/messages';

const VALID = {
  version: PLANNING_MESSAGE_VERSION,
  accountId: '111122223333',
  dryRun: false,
  plannedAt: '2026-01-01T02:00:00.000Z',
};

function body(overrides: Record<string, unknown> = {}): string {
  return JSON.stringify({ ...VALID, ...overrides });
}

function problemOf(text: string): string {
  try {
    parsePlanningMessage(text);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidMessageError);
    return (error as Error).message;
  }
  throw new Error('expected the message to be refused');
}

describe('parsePlanningMessage', () => {
  test('reads a message of the run', () => {
    expect(parsePlanningMessage(body())).toEqual(VALID);
  });

  test('reads a continuation (startAfter)', () => {
    expect(parsePlanningMessage(body({ startAfter: 'svc.deploy@ci', dryRun: true }))).toEqual({
      ...VALID,
      dryRun: true,
      startAfter: 'svc.deploy@ci',
    });
  });

  test.each([
    ['version', { version: 2 }, 'version must be 1 (got 2)'],
    ['version missing', { version: undefined }, 'version must be 1 (got undefined)'],
    [
      'accountId of 11 digits',
      { accountId: '11112222333' },
      'accountId must be 12 digits (got "11112222333")',
    ],
    ['accountId as a number', { accountId: 111122223333 }, 'accountId must be 12 digits (got 111122223333)'],
    ['dryRun as a string', { dryRun: 'false' }, 'dryRun must be true or false (got "false")'],
    ['plannedAt not a date', { plannedAt: 'yesterday' }, 'plannedAt must be an ISO date-time'],
    [
      'plannedAt not a real day',
      { plannedAt: '2026-02-31T02:00:00.000Z' },
      'plannedAt must be an ISO date-time',
    ],
    ['plannedAt missing', { plannedAt: undefined }, 'plannedAt must be an ISO date-time'],
    ['startAfter not a user name', { startAfter: 'a b' }, 'startAfter must be an IAM user name'],
    ['an unknown field', { userName: 'alice' }, 'unknown field(s) userName'],
  ])('refuses %s, saying which field', (_case, overrides, says) => {
    const message = problemOf(body(overrides));

    expect(message).toContain('invalid planning message: ');
    expect(message).toContain(says);
  });

  test('names every wrong field at once', () => {
    const message = problemOf(body({ accountId: 'x', dryRun: 1 }));

    expect(message).toContain('accountId must be 12 digits');
    expect(message).toContain('dryRun must be true or false');
  });

  test.each([
    ['not JSON', '{oops', 'planning message body is not JSON (5 characters)'],
    ['an array', '[]', 'planning message body is not a JSON object'],
    ['null', 'null', 'planning message body is not a JSON object'],
  ])('refuses a body that is %s', (_case, text, says) => {
    expect(problemOf(text)).toBe(says);
  });

  test('a work message is not a planning message', () => {
    const work = JSON.stringify({
      version: 1,
      accountId: '111122223333',
      userName: 'alice',
      dryRun: false,
      plannedActions: ['rotate'],
      plannedAt: '2026-01-01T02:00:00.000Z',
    });

    expect(problemOf(work)).toContain('unknown field(s) userName, plannedActions');
  });
});

describe('finishOnly (an account the run no longer covers)', () => {
  test('a planning message reads it', () => {
    expect(parsePlanningMessage(body({ finishOnly: true }))).toEqual({ ...VALID, finishOnly: true });
  });

  test.each([
    [{ finishOnly: false }, 'finishOnly must be true when present'],
    [{ finishOnly: 'yes' }, 'finishOnly must be true when present'],
    [{ finishOnly: true, startAfter: 'alice' }, 'finishOnly and startAfter do not go together'],
  ])('a planning message with %j is refused, saying why', (overrides, problem) => {
    expect(problemOf(body(overrides))).toContain(problem);
  });

  const WORK = {
    version: WORK_MESSAGE_VERSION,
    accountId: '111122223333',
    userName: 'deploy-bot',
    dryRun: false,
    plannedActions: ['resume'],
    plannedAt: '2026-01-01T02:00:00.000Z',
  };

  test('a work message reads it, and leaves it out when absent', () => {
    expect(parseWorkMessage(JSON.stringify({ ...WORK, finishOnly: true }))).toEqual({
      ...WORK,
      finishOnly: true,
    });
    expect(parseWorkMessage(JSON.stringify(WORK))).toEqual(WORK);
  });

  test('a work message with finishOnly other than true is refused', () => {
    expect(() => parseWorkMessage(JSON.stringify({ ...WORK, finishOnly: 1 }))).toThrow(
      'finishOnly must be true when present',
    );
  });
});

describe('parseDispatcherInput', () => {
  test.each([
    [undefined, { dryRun: false }],
    [{}, { dryRun: false }],
    [{ dryRun: true }, { dryRun: true }],
    // EventBridge Scheduler's <aws.scheduler.scheduled-time>, written as Date#toISOString writes it.
    [
      { dryRun: false, scheduledAt: '2026-01-01T02:00:00Z' },
      { dryRun: false, scheduledAt: '2026-01-01T02:00:00.000Z' },
    ],
    [{ scheduledAt: '2026-03-05T02:00:00.250Z' }, { dryRun: false, scheduledAt: '2026-03-05T02:00:00.250Z' }],
  ])('reads %j', (input, expected) => {
    expect(parseDispatcherInput(input)).toEqual(expected);
  });

  test.each([
    ['a list', [], 'dispatcher input must be a JSON object'],
    [
      'a continuation',
      { dryRun: false, startAfter: 'a', plannedAt: '2026-01-01T02:00:00.000Z' },
      'unknown field(s) startAfter, plannedAt; only "dryRun" and "scheduledAt" are read',
    ],
    [
      'a time with an offset',
      { scheduledAt: '2026-01-01T03:00:00+01:00' },
      '"scheduledAt" must be an ISO date-time in UTC',
    ],
    ['31 February', { scheduledAt: '2026-02-31T02:00:00Z' }, '"scheduledAt" must be an ISO date-time in UTC'],
    ['a number', { scheduledAt: 1767232800000 }, '"scheduledAt" must be an ISO date-time in UTC'],
  ])('refuses %s, saying what is read', (_name, input, problem) => {
    expect(() => parseDispatcherInput(input)).toThrow(InvalidMessageError);
    expect(() => parseDispatcherInput(input)).toThrow(problem);
  });
});
