/**
 * The figures before issue 9's changes: `npm run bench` (this bench) run at commit 6b4ddc3 in a
 * worktree of that commit, with --json; its printed output is /work/notes/bench-before.txt. Fixed
 * data: measured once, not recomputed.
 */
import type { LatencyModel } from './aws-calls';

export interface BeforeFigures {
  /** Which commit and command produced them. */
  readonly source: string;
  readonly latency: LatencyModel;
  readonly figures: Readonly<Record<string, number | undefined>>;
  /** Figure 2's first lifecycle, by operation. */
  readonly lifecycleBreakdown?: Readonly<Record<string, number>>;
  /** Figure 2's steady state (the same user's next lifecycle), by operation. */
  readonly steadyBreakdown?: Readonly<Record<string, number>>;
}

export const BEFORE: BeforeFigures = {
  source:
    'commit 6b4ddc3 (before issue 9), this bench copied into a worktree of it: node --expose-gc --import tsx bench/run.ts --json (as npm run bench runs it); the CLI had no --concurrency then (one user at a time)',
  latency: { iamMs: 50, otherMs: 20 },
  figures: {
    'detect.quiet.250': 404,
    'detect.quiet.10000': 16772,
    'detect.dayAfter.250.calls': 695,
    'detect.dayAfter.250.plannerMs': 25790,
    'lifecycle.extra': 120,
    // Figure 2's steady state was added afterwards and measured the same way at 6b4ddc3, with a shim in
    // meter.ts for that commit's ledger port (its separate lock, one UpdateItem); every other figure of
    // that run matched the ones above (/work/notes/bench-before.txt, second addendum).
    'lifecycle.steady.extra': 113,
    'ledger.phase.lockIntent': 2,
    'ledger.phase.stored': 1,
    'ledger.phase.completion': 2,
    'ledger.phase.outboxCleared': 1,
    'ledger.phase.other': 0,
    'first.planner.ms': 511170,
    'first.planner.calls': 15504,
    'first.planner.queued': 5000,
    'first.planner.firstQueuedMs': 501170,
    // That planner had no continuation: a run was one invocation (printed as its own row since).
    'first.planner.invocations': 1,
    // The checkpoint rows were added afterwards and measured the same way at 6b4ddc3 (the addendum of
    // bench-before.txt): one invocation, cut off at 65 s with nothing queued.
    'first.checkpoint.invocations': 1,
    'first.checkpoint.cutOff': 1,
    'first.checkpoint.queued': 0,
    'first.drain.ms': 15730000,
    'first.drain.calls': 165000,
    'cli.c8.ms': 8366170,
    'cli.c1.ms': 8366170,
    'cli.c8.calls': 31504,
    'memory.peak': 67021592,
    'memory.growth': 34238600,
    'bundle.planner.bytes': 62253,
    'bundle.planner.initMs': 117.9,
    'bundle.rotator.bytes': 96498,
    'bundle.rotator.initMs': 134.7,
  },
  lifecycleBreakdown: {
    'iam:GetUser': 17,
    'iam:ListAccessKeys': 17,
    'iam:GetAccessKeyLastUsed': 27,
    'sqs:SendMessageBatch': 4,
    'dynamodb:UpdateItem': 8,
    'dynamodb:GetItem': 4,
    'sns:CreateTopic': 1,
    'sns:SetTopicAttributes': 3,
    'sns:Subscribe': 1,
    'dynamodb:PutItem': 12,
    'sns:GetTopicAttributes': 2,
    'sns:Publish': 7,
    'secretsmanager:DescribeSecret': 3,
    'iam:CreateAccessKey': 1,
    'secretsmanager:CreateSecret': 1,
    'secretsmanager:PutResourcePolicy': 1,
    'secretsmanager:PutSecretValue': 1,
    'secretsmanager:GetSecretValue': 1,
    'sts:GetCallerIdentity': 5,
    'secretsmanager:UpdateSecretVersionStage': 2,
    'iam:UpdateAccessKey': 1,
    'iam:DeleteAccessKey': 1,
  },
  steadyBreakdown: {
    'iam:GetUser': 17,
    'iam:ListAccessKeys': 17,
    'iam:GetAccessKeyLastUsed': 27,
    'sqs:SendMessageBatch': 4,
    'dynamodb:UpdateItem': 8,
    'dynamodb:GetItem': 4,
    'dynamodb:PutItem': 11,
    'sns:GetTopicAttributes': 1,
    'sns:Publish': 8,
    'secretsmanager:DescribeSecret': 3,
    'iam:CreateAccessKey': 1,
    'secretsmanager:PutSecretValue': 1,
    'secretsmanager:GetSecretValue': 1,
    'sts:GetCallerIdentity': 5,
    'secretsmanager:UpdateSecretVersionStage': 2,
    'secretsmanager:GetResourcePolicy': 1,
    'iam:UpdateAccessKey': 1,
    'iam:DeleteAccessKey': 1,
  },
};
