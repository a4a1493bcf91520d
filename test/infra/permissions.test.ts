/**
 * Every AWS call the adapters make is allowed to the function that makes it, and nothing more is
 * granted: the calls are read from the adapters' source (each `new XCommand(`/`paginateX(`), so a
 * new SDK call without its permission fails here, not in production.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { statementsOfRole, synthesize } from './support';

const ADAPTERS = join(__dirname, '..', '..', 'lambda', 'adapters');

/** The IAM action of each SDK command (document client commands map to their DynamoDB actions). */
const ACTION: Record<string, string> = {
  'dynamodb-ledger:Get': 'dynamodb:GetItem',
  'dynamodb-ledger:Put': 'dynamodb:PutItem',
  'dynamodb-ledger:Update': 'dynamodb:UpdateItem',
  'dynamodb-ledger:Query': 'dynamodb:Query',
  'sqs-queue:SendMessageBatch': 'sqs:SendMessage',
  'lambda-invoke:Invoke': 'lambda:InvokeFunction',
};
const SERVICE: Record<string, string> = {
  iam: 'iam',
  'secrets-manager': 'secretsmanager',
  sns: 'sns',
  sts: 'sts',
  'lambda-invoke': 'lambda',
};

function callsOf(adapter: string): string[] {
  const source = readFileSync(join(ADAPTERS, `${adapter}.ts`), 'utf8');
  const names = [
    ...[...source.matchAll(/new (\w+)Command\(/g)].map((match) => match[1]!),
    ...[...source.matchAll(/paginate(\w+)\(/g)].map((match) => match[1]!),
  ];
  return [...new Set(names)].map((name) => ACTION[`${adapter}:${name}`] ?? `${SERVICE[adapter]}:${name}`);
}

function allowed(roleId: string, template: ReturnType<typeof synthesize>['template']): Set<string> {
  return new Set(
    statementsOfRole(template, roleId)
      .filter((statement) => statement.effect === 'Allow')
      .flatMap((statement) => statement.actions),
  );
}

const { stack, template, id } = synthesize();
const plannerActions = allowed(id(stack.rotation.plannerRole), template);
const rotatorActions = allowed(id(stack.rotation.rotatorRole), template);

// Which adapter calls each function makes (the planner only detects and queues; the rotator acts).
const PLANNER_CALLS = [
  'iam:GenerateCredentialReport',
  'iam:GetCredentialReport',
  'iam:ListUsers',
  'iam:GetUser',
  'iam:ListAccessKeys',
  'iam:GetAccessKeyLastUsed',
  'dynamodb:Query',
  'sqs:SendMessage',
  'lambda:InvokeFunction', // itself, to continue a run that comes close to its timeout
];
const ROTATOR_CALLS = [
  'iam:GetUser',
  'iam:ListAccessKeys',
  'iam:GetAccessKeyLastUsed',
  'iam:CreateAccessKey',
  'iam:UpdateAccessKey',
  'iam:DeleteAccessKey',
  ...callsOf('secrets-manager'),
  ...callsOf('sns'),
  'dynamodb:GetItem',
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
];

test('the lists above are every call the adapters make (the STS call is signed by the new key)', () => {
  const everything = [
    'iam',
    'secrets-manager',
    'sns',
    'sts',
    'dynamodb-ledger',
    'sqs-queue',
    'lambda-invoke',
  ].flatMap(callsOf);
  expect(new Set(everything)).toEqual(new Set([...PLANNER_CALLS, ...ROTATOR_CALLS, 'sts:GetCallerIdentity']));
});

test('the planner may make each of its calls, and is granted no other API action', () => {
  for (const action of PLANNER_CALLS)
    expect({ action, allowed: plannerActions.has(action) }).toEqual({ action, allowed: true });
  const apiActions = [...plannerActions].filter((action) => !/^(logs|xray|kms):/.test(action));
  expect(apiActions.sort()).toEqual([...new Set(PLANNER_CALLS)].sort());
});

test('the rotator may make each of its calls, and is granted no other API action', () => {
  for (const action of ROTATOR_CALLS)
    expect({ action, allowed: rotatorActions.has(action) }).toEqual({ action, allowed: true });
  // Besides its calls: TagResource (CreateSecret with tags needs it) and consuming its queue.
  const apiActions = [...rotatorActions].filter((action) => !/^(logs|xray|kms|sqs):/.test(action));
  expect(apiActions.sort()).toEqual([...new Set([...ROTATOR_CALLS, 'secretsmanager:TagResource'])].sort());
});
