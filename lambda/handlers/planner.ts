/** Planner Lambda entry point: configuration and clients are built once, at cold start. */
import { DynamoLedger } from '../adapters/dynamodb-ledger';
import { IamAdapter } from '../adapters/iam';
import { LambdaContinuation } from '../adapters/lambda-invoke';
import { SqsWorkQueue } from '../adapters/sqs-queue';
import { systemClock } from '../ports';
import { createPlannerHandler } from './planner-app';
import { createObservability, loadPlannerConfig } from './runtime';

const config = loadPlannerConfig(process.env);
const { logger, metrics } = createObservability();

export const handler = createPlannerHandler({
  config,
  iam: new IamAdapter(),
  ledger: new DynamoLedger(config.tableName),
  queue: new SqsWorkQueue(config.queueUrl),
  continuation: new LambdaContinuation(),
  clock: systemClock,
  logger,
  metrics,
});
