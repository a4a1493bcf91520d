/**
 * Lambda Invoke over the AWS SDK v3: the planner continues a run that stopped for lack of time in a
 * new, asynchronous invocation of itself.
 */
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import type { PlannerInput } from '../contract';
import { TransientServiceError } from '../domain/errors';
import { call } from './aws-errors';
import { SDK_CLIENT_CONFIG } from './sdk-config';

export class LambdaContinuation {
  constructor(private readonly client: LambdaClient = new LambdaClient(SDK_CLIENT_CONFIG)) {}

  /**
   * Queues an invocation of the function with this input (InvocationType Event): Lambda answers 202
   * once the event is queued, and retries the invocation itself if it fails (the function's
   * asynchronous retry settings).
   */
  async continueRun(functionName: string, input: PlannerInput): Promise<void> {
    const response = await call('lambda:Invoke', () =>
      this.client.send(
        new InvokeCommand({
          FunctionName: functionName,
          InvocationType: 'Event',
          Payload: new TextEncoder().encode(JSON.stringify(input)),
        }),
      ),
    );
    if (response.StatusCode !== 202) {
      throw new TransientServiceError(
        `lambda:Invoke of ${functionName} was not queued (status ${String(response.StatusCode)})`,
      );
    }
  }
}
