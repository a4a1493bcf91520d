/** Dispatcher Lambda entry point (organization mode): configuration and clients are built once, at cold start. */
import { DynamoLedger } from '../adapters/dynamodb-ledger';
import { OrganizationsAdapter } from '../adapters/organizations';
import { SqsPlanningQueue } from '../adapters/sqs-queue';
import { systemClock } from '../ports';
import { createDispatcherHandler } from './dispatcher-app';
import { createObservability, loadDispatcherConfig } from './runtime';

const config = loadDispatcherConfig(process.env);
const { logger, metrics } = createObservability();

export const handler = createDispatcherHandler({
  config,
  directory: new OrganizationsAdapter(),
  queue: new SqsPlanningQueue(config.planningQueueUrl),
  runs: new DynamoLedger(config.tableName),
  clock: systemClock,
  logger,
  metrics,
});
